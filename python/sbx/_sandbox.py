"""DockerSandbox: the seed's class, each call one round trip to the
sandbox's agent through libsbx, with the GIL released while it waits."""
from __future__ import annotations

import re
import warnings
import weakref
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

from . import _sbx
from ._runtime import RuntimeConfig, _resolve
from ._types import (BackgroundOutput, BackgroundProcess, EditResult, ExecuteResponse, FileInfo,
                     GrepMatch, RunResult, SbxError, WriteResult)

_SEED_IMAGE = _sbx.SEED_IMAGE
_DEFAULT_WORKDIR = "/workspace"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.I)


def _size(value: Union[int, str, None], what: str) -> Optional[int]:
    """Bytes from 536870912, "512m", "1g" or "1GiB" (docker-py's forms)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError("%s must be bytes (int) or a size such as '512m'" % what)
    if isinstance(value, int):
        return value
    m = _SIZE.match(value)
    if not m:
        raise ValueError("%s %r is not a size: use bytes or a number with k, m, g or t" %
                         (what, value))
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2).lower() or " "))


def _volumes(volumes) -> List[str]:
    """The seed's {host: container} (or docker-py's {host: {"bind", "mode"}})
    as libsbx's "HOST:CONTAINER[:ro]"."""
    out = []
    for host, target in (volumes or {}).items():
        mode = "rw"
        if isinstance(target, Mapping):
            mode = target.get("mode", "rw")
            target = target.get("bind")
        if not isinstance(target, str) or mode not in ("rw", "ro"):
            raise ValueError("volume %r: give a container path (and mode 'rw' or 'ro')" % host)
        out.append("%s:%s%s" % (host, target, ":ro" if mode == "ro" else ""))
    return out


def _text(data: Optional[bytes]) -> str:
    return (data or b"").decode("utf-8", "replace")


def _file_info(entries) -> List[FileInfo]:
    return [FileInfo(name=n, path=p, is_dir=d, size=s) for n, p, d, s in entries]


def _reap(holder: list) -> None:
    """An auto-remove sandbox dropped (or left at exit) without stop():
    its container goes, so that a forgotten stop() leaves none behind."""
    try:
        if holder[0].id() is not None:
            holder[0].stop()
    except SbxError:
        pass


class DockerSandbox:
    """A sandbox: a Docker container with sbx's agent as PID 1.

    Nothing starts until ``start()`` or the first operation. The seed's
    arguments keep their meaning; ``network_mode=None`` is sbx's secure
    default, no network (the seed's was Docker's bridge). ``image`` is the
    seed's image where it can be had; where it can't (no registry), sbx's
    base image stands in and ``notice`` (and a warning) says so.

    sbx's extras: ``mem_limit``, ``cpus``, ``pids_limit``, ``disk_limit``,
    ``env`` and ``default_timeout`` (seconds an ``execute`` may take when
    given no timeout; None for no limit).
    """

    def __init__(self, image: str = _SEED_IMAGE, sandbox_id: Optional[str] = None,
                 work_dir: str = _DEFAULT_WORKDIR, auto_remove: bool = True,
                 runtime: Union[str, RuntimeConfig, None] = None,
                 session_id: Optional[str] = None, idle_timeout: float = 3600,
                 volumes: Optional[Mapping[str, object]] = None,
                 network_mode: Optional[str] = None, container_name: Optional[str] = None,
                 *, mem_limit: Union[int, str, None] = None, cpus: Optional[float] = None,
                 pids_limit: Optional[int] = None, disk_limit: Union[int, str, None] = None,
                 env: Optional[Mapping[str, str]] = None,
                 default_timeout: Optional[float] = 3600) -> None:
        self._sandbox_id = sandbox_id
        self.session_id = session_id
        self.idle_timeout = idle_timeout
        self.default_timeout = default_timeout
        # As in the seed, a named container is kept by stop().
        self._auto_remove = auto_remove and container_name is None
        self._warned = False
        opts = dict(auto_remove=self._auto_remove, name=container_name, network=network_mode,
                    volumes=_volumes(volumes), memory=_size(mem_limit, "mem_limit"),
                    disk=_size(disk_limit, "disk_limit"), cpus=cpus, pids=pids_limit,
                    env=["%s=%s" % kv for kv in (env or {}).items()])
        if runtime is not None:
            opts["runtime"] = _resolve(runtime)
            # A runtime brings its image and work dir; asked-for ones win.
            if image != _SEED_IMAGE:
                opts["image"] = image
            if work_dir != _DEFAULT_WORKDIR:
                opts["workdir"] = work_dir
        else:
            opts["image"] = image
            opts["workdir"] = work_dir
        self._options = {k: v for k, v in opts.items() if v is not None}
        self._sb = _sbx.new(**self._options)
        # The finalizer holds the handle, not the object (which it outlives).
        self._holder = [self._sb]
        if self._auto_remove:
            weakref.finalize(self, _reap, self._holder)

    @classmethod
    def _wrap(cls, handle, session_id: Optional[str] = None,
              idle_timeout: float = 3600) -> "DockerSandbox":
        """A DockerSandbox on a handle libsbx made (a session's)."""
        self = cls.__new__(cls)
        self._sandbox_id = None
        self.session_id = session_id
        self.idle_timeout = idle_timeout
        self.default_timeout = 3600
        self._auto_remove = False
        self._warned = False
        self._options = {}
        self._sb = handle
        return self

    # ------------------------------------------------------------ lifecycle

    @property
    def id(self) -> Optional[str]:
        """The ``sandbox_id`` given, else the container's name (None until it starts)."""
        return self._sandbox_id or self._sb.id()

    @property
    def container_id(self) -> Optional[str]:
        """The container's name (the docker CLI and ``sbx`` accept it)."""
        return self._sb.id()

    @property
    def image(self) -> Optional[str]:
        """The image the sandbox runs (known once started)."""
        return self._sb.image()

    @property
    def work_dir(self) -> str:
        return self._sb.workdir()

    @property
    def notice(self) -> Optional[str]:
        """What sbx did otherwise than asked (an image standing in, a disk limit held by
        other means), or None."""
        return self._sb.notice()

    def _say_notice(self) -> None:
        if not self._warned:
            text = self._sb.notice()
            if text:
                self._warned = True
                warnings.warn("sbx: " + text, RuntimeWarning, stacklevel=3)

    def start(self) -> None:
        """Starts the container now (otherwise the first operation does)."""
        self._sb.start()
        self._say_notice()

    def _forget(self) -> None:
        """After its container is removed, the next operation starts a new
        one, as in the seed (a session's sandbox is its manager's business)."""
        if self._options:
            self._sb = self._holder[0] = _sbx.new(**self._options)

    def stop(self) -> None:
        """Stops the container; removes it when ``auto_remove`` (the default,
        unless it is named). A sandbox that never started is left as it is."""
        if self._sb.id() is not None:
            self._sb.stop()
            if self._auto_remove:
                self._forget()

    def remove(self) -> None:
        """Removes the container, whatever ``auto_remove`` says."""
        if self._sb.id() is not None:
            self._sb.remove()
            self._forget()

    def is_alive(self) -> bool:
        return self._sb.id() is not None and self._sb.is_alive()

    def __enter__(self) -> "DockerSandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return "DockerSandbox(id=%r)" % (self.id,)

    # ------------------------------------------------------------------ exec

    def _timeout(self, timeout: Optional[float]) -> float:
        t = self.default_timeout if timeout is None else timeout
        return float(t or 0)

    def execute(self, command: str, timeout: Optional[float] = None) -> ExecuteResponse:
        """Runs ``sh -c command`` in the work dir: stdout and stderr together,
        at most 100,000 bytes (``truncated`` past it); after ``timeout``
        seconds the whole process tree is killed and the exit code is 124."""
        try:
            out = self._sb.exec(command, self._timeout(timeout))
        except SbxError as e:
            return ExecuteResponse(output="Error: %s" % e, exit_code=125, truncated=False)
        self._say_notice()
        return ExecuteResponse(output=_text(out[0]), exit_code=out[3], truncated=out[4])

    def run(self, command: str, timeout: Optional[float] = None, *,
            stdin: Union[bytes, str, None] = None, cwd: Optional[str] = None,
            env: Optional[Mapping[str, str]] = None, max_output: int = 0,
            on_output: Optional[Callable[[str, bytes], Optional[bool]]] = None) -> RunResult:
        """``execute`` with stdout and stderr apart, input, a work dir and
        variables, and the output as it comes: ``on_output(stream, data)``
        with stream "stdout" or "stderr" (return True to stop the command).
        Raises SbxError when the sandbox can't run it."""
        if isinstance(stdin, str):
            stdin = stdin.encode()
        callback = None
        if on_output is not None:
            def callback(stream: int, data: bytes) -> Optional[bool]:
                return on_output("stderr" if stream == 2 else "stdout", data)
        out = self._sb.exec(command, self._timeout(timeout), cwd,
                            ["%s=%s" % kv for kv in (env or {}).items()], max_output, True,
                            stdin, callback)
        self._say_notice()
        return RunResult(stdout=_text(out[1]), stderr=_text(out[2]), exit_code=out[3],
                         truncated=out[4], timed_out=out[5], oom_killed=out[6])

    def execute_background(self, command: str, cwd: Optional[str] = None,
                           env: Optional[Mapping[str, str]] = None) -> str:
        """Starts a command that keeps running; its id for the calls below."""
        return self._sb.bg_start(command, cwd, ["%s=%s" % kv for kv in (env or {}).items()])

    def read_background(self, process_id: str) -> BackgroundOutput:
        data, info = self._sb.bg_read(process_id)
        return BackgroundOutput(output=_text(data), running=info[3],
                                exit_code=None if info[3] else info[4])

    def kill_background(self, process_id: str) -> bool:
        try:
            self._sb.bg_kill(process_id)
            return True
        except SbxError as e:
            if e.code in ("no_such_process", "not_found"):
                return False
            raise

    def list_background(self) -> List[BackgroundProcess]:
        return [BackgroundProcess(id=i, command=c, pid=p, running=r,
                                  exit_code=None if r else x, dropped=d)
                for i, c, p, r, x, d in self._sb.bg_list()]

    def kill_all(self) -> int:
        """Kills every process in the sandbox but its agent; how many there were."""
        return self._sb.kill_all()

    # ----------------------------------------------------------------- files

    def exists(self, path: str) -> bool:
        """Whether PATH is a regular file (as in the seed)."""
        try:
            return bool(self._sb.resolve(path)[3])
        except SbxError:
            return False

    def ls_info(self, path: str = ".") -> List[FileInfo]:
        """Directories first, then by name; [] when PATH can't be listed."""
        try:
            return _file_info(self._sb.ls(path)[0])
        except SbxError:
            return []

    def read(self, path: str, offset: int = 0, limit: int = 2000) -> str:
        """Lines offset+1 .. offset+limit, numbered; an "Error: ..." string on failure."""
        try:
            return self._sb.read(path, offset, limit)
        except SbxError as e:
            if e.code == "not_found":
                return "Error: File '%s' not found" % path
            return "Error: %s" % e

    def read_bytes(self, path: str) -> bytes:
        """The whole file; b"" when it is missing."""
        try:
            return self._sb.read_bytes(path)
        except SbxError as e:
            if e.code == "not_found":
                return b""
            raise

    def write(self, path: str, content: Union[str, bytes]) -> WriteResult:
        """Writes atomically, making parent folders."""
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        try:
            self._sb.write(path, data)
        except SbxError as e:
            return WriteResult(path=None, error="Error: %s" % e)
        return WriteResult(path=path, error=None)

    def edit(self, path: str, old_string: str, new_string: str,
             replace_all: bool = False) -> EditResult:
        """Replaces OLD_STRING, which must occur once unless ``replace_all``."""
        try:
            n = self._sb.edit(path, old_string, new_string, replace_all)
        except SbxError as e:
            text = str(e)
            if e.code == "edit_ambiguous":
                text += " (replace_all=True)"
            return EditResult(path=None, error="Error: %s" % text)
        return EditResult(path=path, error=None, occurrences=n)

    def glob_info(self, pattern: str, path: str = "/") -> List[FileInfo]:
        """Files matching PATTERN under PATH, sorted by path."""
        try:
            return _file_info(self._sb.glob(pattern, path)[0])
        except SbxError:
            return []

    def grep_raw(self, pattern: str, path: Optional[str] = None, glob: Optional[str] = None,
                 ignore_hidden: bool = True) -> Union[List[GrepMatch], str]:
        """PCRE2 search; the matches, or an "Error: ..." string."""
        try:
            matches, _ = self._sb.grep(pattern, path, glob, not ignore_hidden)
        except SbxError as e:
            return "Error: %s" % e
        return [GrepMatch(path=p, line_number=n, line=line) for p, n, line in matches]
