from sbx import DockerSandbox
sandbox = DockerSandbox(image="python:3.12-slim")
