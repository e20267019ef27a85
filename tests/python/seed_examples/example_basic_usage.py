from sbx import DockerSandbox

# Create sandbox
sandbox = DockerSandbox(image="python:3.12-slim")

try:
    # Write code
    sandbox.write("/workspace/app.py", """
def fibonacci(n):
    if n <= 1:
        return n
    return fibonacci(n-1) + fibonacci(n-2)

for i in range(10):
    print(fibonacci(i), end=' ')
""")

    # Execute
    result = sandbox.execute("python /workspace/app.py")
    print(result.output)  # 0 1 1 2 3 5 8 13 21 34

finally:
    sandbox.stop()  # Clean up container
