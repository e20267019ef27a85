from sbx import DockerSandbox

sandbox = DockerSandbox(image="python:3.12-slim")

try:
    # Write and execute code
    sandbox.write("/workspace/hello.py", "print('Hello from Docker!')")
    result = sandbox.execute("python /workspace/hello.py")
    print(result.output)  # "Hello from Docker!"
finally:
    sandbox.stop()  # Clean up container
