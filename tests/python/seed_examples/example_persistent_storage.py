from sbx import DockerSandbox  # the page's import

# Mount host directory for persistence
sandbox = DockerSandbox(
    image="python:3.12-slim",
    volumes={
        "/host/data": "/workspace/data",
    },
)

# Files in /workspace/data persist after container stops
sandbox.write("/workspace/data/results.txt", "Important data")
sandbox.stop()

# Data still available in /host/data/results.txt
