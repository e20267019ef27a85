from sbx import DockerSandbox  # the page's import

sandbox = DockerSandbox(image="python:3.12-slim")

# Container starts lazily on first operation
sandbox.write("/workspace/test.py", "print('hello')")

# Check if running
print(sandbox.is_alive())  # True

# Explicitly start (useful for pre-warming)
sandbox.start()

# Stop and remove
sandbox.stop()
print(sandbox.is_alive())  # False
