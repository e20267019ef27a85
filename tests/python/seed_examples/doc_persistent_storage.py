from sbx import DockerSandbox

sandbox = DockerSandbox(
    image="python:3.12-slim",
    volumes={"/host/data": "/workspace/data"},  # Mount host directory
)
