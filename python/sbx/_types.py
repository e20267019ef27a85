"""The seed's result types, with sbx's extras."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, TypedDict


class SbxError(Exception):
    """An sbx failure: ``str(e)`` is a sentence saying what to do, ``e.code``
    its kind (``not_found``, ``timeout``, ``limit_reached``, ...)."""

    code: str = "io_error"


class SessionLimitExceeded(SbxError):
    """A session manager's maximum of sessions (or of one user's) is reached."""


class FileInfo(TypedDict):
    name: str
    path: str
    is_dir: bool
    size: int


class GrepMatch(TypedDict):
    path: str
    line_number: int
    line: str


@dataclass
class ExecuteResponse:
    """What ``execute`` returns: stdout and stderr together."""

    output: str
    exit_code: Optional[int] = None
    truncated: bool = False


@dataclass
class WriteResult:
    path: Optional[str] = None
    error: Optional[str] = None


@dataclass
class EditResult:
    path: Optional[str] = None
    error: Optional[str] = None
    occurrences: Optional[int] = None


@dataclass
class RunResult:
    """What ``run`` returns: the streams kept apart, and how the command ended."""

    stdout: str
    stderr: str
    exit_code: int
    truncated: bool = False
    timed_out: bool = False
    oom_killed: bool = False


@dataclass
class BackgroundProcess:
    id: str
    command: str
    pid: int
    running: bool
    exit_code: Optional[int]
    dropped: int = 0


@dataclass
class BackgroundOutput:
    """New output since the last read, and the process's state."""

    output: str
    running: bool
    exit_code: Optional[int]


__all__: List[str] = [
    "SbxError", "SessionLimitExceeded", "FileInfo", "GrepMatch", "ExecuteResponse",
    "WriteResult", "EditResult", "RunResult", "BackgroundProcess", "BackgroundOutput",
]
