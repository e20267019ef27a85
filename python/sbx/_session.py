"""SessionManager: the seed's, on libsbx's session manager (state on the
host, per-session locks, workspaces, limits, idle reaping, a warm pool)."""
from __future__ import annotations

import asyncio
import os
from typing import Callable, Dict, Optional, Union

from . import _sbx
from ._runtime import RuntimeConfig
from ._sandbox import DockerSandbox
from ._types import SbxError, SessionLimitExceeded


def _call(fn, *args):
    try:
        return fn(*args)
    except SbxError as e:
        if e.code == "limit_reached":
            limit = SessionLimitExceeded(str(e))
            limit.code = e.code
            raise limit from None
        raise


class SessionManager:
    """Sandboxes for the users of an application.

    Both vocabularies work: the seed documents' ``create_session(user_id=...)``,
    ``get_session(id)``, ``end_session(id)``, and the library's async
    ``get_or_create``, ``release``, ``cleanup_idle``, ``shutdown``. Sessions
    live on the host (sbx's state root), so a new manager of the same
    ``name`` finds them after a restart. ``sandbox_factory`` is called once,
    with no arguments, for a template DockerSandbox whose options every
    session's sandbox gets (nothing of it starts).
    """

    def __init__(self, sandbox_factory: Optional[Callable[..., DockerSandbox]] = None,
                 default_runtime: Union[str, RuntimeConfig, None] = None,
                 default_idle_timeout: float = 3600, workspace_root: Optional[str] = None,
                 *, image: Optional[str] = None, max_sessions: Optional[int] = None,
                 max_per_user: Optional[int] = None, pool_size: int = 0,
                 name: Optional[str] = None, **sandbox_options) -> None:
        self.sandbox_factory = sandbox_factory
        self.default_runtime = default_runtime
        self.default_idle_timeout = default_idle_timeout
        self.workspace_root = workspace_root
        self.max_sessions = max_sessions
        if sandbox_factory is not None:
            template = sandbox_factory()
            opts = dict(template._options)
            template._options = {}
            template.stop()  # never started: nothing to remove
        else:
            if image is not None:
                sandbox_options.setdefault("image", image)
            if default_runtime is not None:
                sandbox_options.setdefault("runtime", default_runtime)
            template = DockerSandbox(**sandbox_options)
            opts = template._options
            template.stop()
        opts.pop("auto_remove", None)
        opts.pop("name", None)
        if workspace_root is not None:
            os.makedirs(workspace_root, exist_ok=True)
        self._m = _sbx.Manager(name=name, workspace_root=workspace_root,
                               idle_timeout=float(default_idle_timeout or 0),
                               max_sessions=max_sessions or 0, max_per_user=max_per_user or 0,
                               pool_size=pool_size, **opts)

    def _sandbox(self, handle, session_id: str) -> DockerSandbox:
        return DockerSandbox._wrap(handle, session_id, self.default_idle_timeout)

    # ------------------------------------------------- the documents' names

    def create_session(self, user_id: str) -> str:
        """A new session for USER_ID (their workspace at the work dir); its id."""
        return _call(self._m.create_session, user_id)

    def get_session(self, session_id: str) -> DockerSandbox:
        """The session's sandbox (started again, or replaced with its files
        kept, when its container stopped or died). SbxError when unknown."""
        return self._sandbox(_call(self._m.get_session, session_id), session_id)

    def end_session(self, session_id: str, purge: bool = False) -> None:
        """Removes the session's container; its workspace stays unless PURGE."""
        _call(self._m.end_session, session_id, purge)

    # ---------------------------------------------------- the library's API

    def _get_or_create(self, session_id: str, user_id: Optional[str] = None) -> DockerSandbox:
        handle = _call(self._m.get_session, session_id, user_id or session_id)
        return self._sandbox(handle, session_id)

    async def get_or_create(self, session_id: str,
                            runtime: Union[str, RuntimeConfig, None] = None) -> DockerSandbox:
        """The session SESSION_ID, made when missing (its user is its id).
        Concurrent calls for one id make one sandbox."""
        if runtime is not None and runtime != self.default_runtime:
            raise ValueError("a session's runtime is its manager's (default_runtime); "
                             "make a manager per runtime")
        return await asyncio.to_thread(self._get_or_create, session_id)

    def _release(self, session_id: str) -> bool:
        try:
            self._m.end_session(session_id, False)
            return True
        except SbxError as e:
            if e.code == "not_found":
                return False
            raise

    async def release(self, session_id: str) -> bool:
        """Ends the session (workspace kept); False when there was none."""
        return await asyncio.to_thread(self._release, session_id)

    async def cleanup_idle(self, max_idle: Optional[float] = None) -> int:
        """Ends sessions idle longer than MAX_IDLE seconds (None: each
        session's own timeout; 0: every session not in use); how many."""
        if max_idle is not None and max_idle < 0:
            raise ValueError("max_idle must not be negative")
        # libsbx reads 0 as "each session's own timeout".
        limit = 0.0 if max_idle is None else max(float(max_idle), 1e-6)
        return await asyncio.to_thread(self._m.cleanup_idle, limit)

    def start_cleanup_loop(self, interval: float = 300) -> None:
        """Runs cleanup_idle every INTERVAL seconds in a thread of the manager."""
        self._m.start_reaper(float(interval))

    def stop_cleanup_loop(self) -> None:
        self._m.stop_reaper()

    async def shutdown(self) -> int:
        """Stops every session's container, concurrently; how many."""
        return await asyncio.to_thread(self._m.shutdown)

    def close(self) -> None:
        """Lets go of the manager: its reaper stops and its warm sandboxes
        are removed; the sessions keep running, for a later manager of the
        same name. Call it when no other thread uses the manager."""
        self._m.close()

    def __enter__(self) -> "SessionManager":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def pool_ready(self) -> int:
        """Warm sandboxes ready to be claimed."""
        return self._m.pool_ready()

    def list_sessions(self) -> list:
        """Every session: dicts with session_id, user_id, sandbox, created,
        last_activity (Unix times) and state."""
        return [dict(session_id=i, user_id=u, sandbox=s, created=c, last_activity=a, state=st)
                for i, u, s, c, a, st in self._m.list()]

    def _running(self):
        """(id, sandbox) of the sessions whose sandbox runs: what the seed's
        dict of live sessions holds (stopped ones, after shutdown, come
        back through get_or_create with their files)."""
        return [(i, s) for i, _, s, _, _, st in self._m.list() if st == "running"]

    @property
    def sessions(self) -> Dict[str, DockerSandbox]:
        """A copy: session id -> its sandbox, for the running sessions."""
        return {i: self._sandbox(_sbx.open(s), i) for i, s in self._running()}

    @property
    def session_count(self) -> int:
        return len(self._running())

    def __len__(self) -> int:
        return self.session_count

    def __contains__(self, session_id: object) -> bool:
        return any(i == session_id for i, _ in self._running())
