"""sbx: Docker sandboxes for AI agents, with the seed's Python API.

Code written for the seed (``pydantic_ai_backends``) runs with its import
changed to ``sbx``: DockerSandbox, RuntimeConfig, BUILTIN_RUNTIMES and
SessionManager behave as documented there, on libsbx (an exec is one round
trip to the sandbox's agent, not a ``docker exec``).
"""
from . import _sbx
from ._runtime import BUILTIN_RUNTIMES, RuntimeConfig
from ._sandbox import DockerSandbox
from ._session import SessionManager
from ._types import (BackgroundOutput, BackgroundProcess, EditResult, ExecuteResponse, FileInfo,
                     GrepMatch, RunResult, SbxError, SessionLimitExceeded, WriteResult)

_sbx.set_error_class(SbxError)

__all__ = [
    "DockerSandbox", "SessionManager", "RuntimeConfig", "BUILTIN_RUNTIMES", "ExecuteResponse",
    "WriteResult", "EditResult", "FileInfo", "GrepMatch", "RunResult", "BackgroundProcess",
    "BackgroundOutput", "SbxError", "SessionLimitExceeded",
]
__version__ = "0.1.0"
