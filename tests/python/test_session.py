"""SessionManager: the seed documents' API (create_session, get_session,
end_session) and the seed library's async one (get_or_create, release,
cleanup_idle, shutdown, sessions, session_count, len, in). Each test has its
own manager name and workspace root; the make_manager fixture ends every
session and deletes the manager afterwards."""
from __future__ import annotations

import asyncio
import os
import time

import pytest

import sbx
from sbx import ExecuteResponse, SessionLimitExceeded, WriteResult

from conftest import BUSYBOX, container_state, docker


# ============================================================ the documents' API

def test_two_users_are_isolated(make_manager):
    m, name, root = make_manager()
    a = m.create_session(user_id="alice")
    b = m.create_session(user_id="bob")
    assert isinstance(a, str) and isinstance(b, str) and a != b
    sa, sb = m.get_session(a), m.get_session(b)
    assert isinstance(sa, sbx.DockerSandbox)
    assert (sa.session_id, sb.session_id) == (a, b)
    assert sa.container_id != sb.container_id
    assert sa.write("/workspace/secret.txt", "alice data") == WriteResult(
        "/workspace/secret.txt", None)
    assert sa.read_bytes("/workspace/secret.txt") == b"alice data"
    assert sb.exists("/workspace/secret.txt") is False
    assert sb.read_bytes("/workspace/secret.txt") == b""
    assert sb.execute("ls -A /workspace") == ExecuteResponse("", 0, False)
    with open(os.path.join(root, "alice", "workspace", "secret.txt")) as f:
        assert f.read() == "alice data"
    assert os.listdir(os.path.join(root, "bob", "workspace")) == []
    assert sorted(os.listdir(root)) == ["alice", "bob"]
    info = {s["session_id"]: s for s in m.list_sessions()}
    assert (info[a]["user_id"], info[a]["sandbox"], info[a]["state"]) == (
        "alice", sa.container_id, "running")
    assert (info[b]["user_id"], info[b]["state"]) == ("bob", "running")


def test_user_files_persist_after_end_session(make_manager):
    m, name, root = make_manager()
    a = m.create_session(user_id="alice")
    sa = m.get_session(a)
    sa.write("/workspace/notes/todo.txt", "keep me\n")
    container = sa.container_id
    m.end_session(a)
    assert container_state(container) is None
    assert a not in m and len(m) == 0
    with open(os.path.join(root, "alice", "workspace", "notes", "todo.txt")) as f:
        assert f.read() == "keep me\n"
    with pytest.raises(sbx.SbxError) as e:
        m.get_session(a)
    assert e.value.code == "not_found"
    a2 = m.create_session(user_id="alice")
    assert a2 != a
    s2 = m.get_session(a2)
    assert s2.container_id != container
    assert s2.read_bytes("/workspace/notes/todo.txt") == b"keep me\n"
    assert s2.execute("cat /workspace/notes/todo.txt").output == "keep me\n"


def test_end_session_purge_removes_workspace(make_manager):
    m, name, root = make_manager()
    a = m.create_session(user_id="carol")
    m.get_session(a).write("/workspace/f", "x")
    m.end_session(a, purge=True)
    assert not os.path.exists(os.path.join(root, "carol", "workspace", "f"))


@pytest.mark.parametrize("user", ["../x", "..", "a/b", "/etc", "", "x\ny"])
def test_path_traversal_user_id_is_refused(make_manager, user):
    m, name, root = make_manager()
    with pytest.raises(sbx.SbxError) as e:
        m.create_session(user_id=user)
    assert e.value.code == "invalid_argument"
    assert len(m) == 0
    assert not os.path.exists(os.path.join(os.path.dirname(root), "x"))
    assert os.listdir(root) == []


def test_path_traversal_session_id_is_refused_by_get_or_create(make_manager):
    m, name, root = make_manager()
    with pytest.raises(sbx.SbxError) as e:
        asyncio.run(m.get_or_create("../x"))
    assert e.value.code == "invalid_argument"
    assert len(m) == 0 and os.listdir(root) == []


def test_unknown_session_is_not_found(make_manager):
    m, name, root = make_manager()
    with pytest.raises(sbx.SbxError) as e:
        m.get_session("s-0000000000000000")
    assert e.value.code == "not_found"
    with pytest.raises(sbx.SbxError) as e:
        m.end_session("s-0000000000000000")
    assert e.value.code == "not_found"


def test_max_sessions_refuses_a_second_while_serving_the_first(make_manager):
    m, name, root = make_manager(max_sessions=1)
    a = m.create_session(user_id="alice")
    with pytest.raises(SessionLimitExceeded) as e:
        m.create_session(user_id="bob")
    assert isinstance(e.value, sbx.SbxError)
    assert str(e.value) == ("the session limit of 1 is reached; end an idle session "
                            "(`sbx session gc`) before starting another")
    with pytest.raises(SessionLimitExceeded):
        asyncio.run(m.get_or_create("other"))
    # The existing session is still served at the cap.
    assert m.get_session(a).execute("echo served").output == "served\n"
    assert [s["session_id"] for s in m.list_sessions()] == [a]
    assert not os.path.exists(os.path.join(root, "bob"))
    m.end_session(a)
    b = m.create_session(user_id="bob")
    assert m.get_session(b).execute("echo bob").output == "bob\n"


def test_session_limit_exceeded_has_code_limit_reached(make_manager):
    """SbxError's contract: e.code is its kind; libsbx says limit_reached."""
    m, name, root = make_manager(max_sessions=1)
    m.create_session(user_id="alice")
    with pytest.raises(SessionLimitExceeded) as e:
        m.create_session(user_id="bob")
    assert e.value.code == "limit_reached"


# ============================================================ the library's API

def test_get_or_create_twice_returns_the_same_sandbox(make_manager):
    m, name, root = make_manager()

    async def scenario():
        s1 = await m.get_or_create("u1")
        s1.write("/workspace/hello.txt", "hi\n")
        s2 = await m.get_or_create("u1")
        return s1, s2

    s1, s2 = asyncio.run(scenario())
    assert isinstance(s1, sbx.DockerSandbox)
    assert s1.container_id == s2.container_id
    assert (s1.session_id, s2.session_id) == ("u1", "u1")
    assert s2.read_bytes("/workspace/hello.txt") == b"hi\n"
    with open(os.path.join(root, "u1", "workspace", "hello.txt")) as f:
        assert f.read() == "hi\n"
    assert len(m) == 1 and m.session_count == 1
    assert "u1" in m and "u2" not in m
    sessions = m.sessions
    assert list(sessions) == ["u1"]
    assert sessions["u1"].container_id == s1.container_id
    [info] = m.list_sessions()
    assert (info["session_id"], info["user_id"], info["sandbox"], info["state"]) == (
        "u1", "u1", s1.container_id, "running")
    assert info["created"] <= info["last_activity"] <= time.time()
    # sessions is a copy
    sessions.clear()
    assert list(m.sessions) == ["u1"]


def test_concurrent_get_or_create_tasks_make_one_sandbox(make_manager):
    m, name, root = make_manager()

    async def scenario():
        return await asyncio.gather(*(m.get_or_create("same") for _ in range(5)))

    boxes = asyncio.run(scenario())
    assert len({b.container_id for b in boxes}) == 1
    assert len(m) == 1
    out = docker("ps", "-aq", "--filter", "label=io.sbx.manager=" + name).split()
    assert len(out) == 1


def test_get_or_create_with_another_runtime_is_refused(make_manager):
    m, name, root = make_manager()
    with pytest.raises(ValueError):
        asyncio.run(m.get_or_create("u1", runtime="python-web"))
    assert len(m) == 0


def test_release_returns_true_then_false(make_manager):
    m, name, root = make_manager()

    async def scenario():
        s = await m.get_or_create("u1")
        s.write("/workspace/kept.txt", "kept")
        container = s.container_id
        first = await m.release("u1")
        second = await m.release("u1")
        return container, first, second

    container, first, second = asyncio.run(scenario())
    assert (first, second) == (True, False)
    assert container_state(container) is None
    assert "u1" not in m and len(m) == 0 and m.sessions == {}
    with open(os.path.join(root, "u1", "workspace", "kept.txt")) as f:
        assert f.read() == "kept"


def test_release_unknown_is_false(make_manager):
    m, name, root = make_manager()
    assert asyncio.run(m.release("never-made")) is False


def test_dead_session_container_is_replaced_with_files_kept(make_manager):
    m, name, root = make_manager()

    async def scenario():
        s = await m.get_or_create("u1")
        s.write("/workspace/f.txt", "survives")
        docker("rm", "-f", s.container_id)
        return await m.get_or_create("u1")

    s = asyncio.run(scenario())
    assert s.is_alive() is True
    assert s.read_bytes("/workspace/f.txt") == b"survives"
    assert s.execute("echo alive").output == "alive\n"
    assert len(m) == 1


def test_cleanup_idle_reaps_after_max_idle(make_manager):
    m, name, root = make_manager()

    async def scenario():
        s = await m.get_or_create("u1")
        container = s.container_id
        fresh = await m.cleanup_idle(max_idle=30)
        await asyncio.sleep(1.2)
        reaped = await m.cleanup_idle(max_idle=0.5)
        return container, fresh, reaped

    container, fresh, reaped = asyncio.run(scenario())
    assert (fresh, reaped) == (0, 1)
    assert len(m) == 0 and "u1" not in m
    assert container_state(container) is None


def test_cleanup_idle_counts_file_operations_as_activity(make_manager):
    m, name, root = make_manager()

    async def scenario():
        busy = await m.get_or_create("busy")
        await m.get_or_create("idle")
        await asyncio.sleep(1.5)
        busy.write("/workspace/x", "y")  # a file operation only
        return await m.cleanup_idle(max_idle=1.0)

    assert asyncio.run(scenario()) == 1
    assert [s["session_id"] for s in m.list_sessions()] == ["busy"]


def test_cleanup_idle_default_uses_the_idle_timeout(make_manager):
    m, name, root = make_manager(default_idle_timeout=1)

    async def scenario():
        await m.get_or_create("u1")
        kept = await m.cleanup_idle()
        await asyncio.sleep(1.3)
        return kept, await m.cleanup_idle()

    assert asyncio.run(scenario()) == (0, 1)
    assert len(m) == 0


def test_cleanup_idle_with_max_idle_zero_reaps_every_idle_session(make_manager):
    """The seed: an explicit max_idle overrides the sessions' own timeouts;
    0 means any idleness at all is too much."""
    m, name, root = make_manager()  # default_idle_timeout=3600

    async def scenario():
        await m.get_or_create("u1")
        await asyncio.sleep(0.5)
        return await m.cleanup_idle(max_idle=0)

    assert asyncio.run(scenario()) == 1
    assert len(m) == 0


def test_cleanup_loop_reaps_idle_sessions(make_manager):
    m, name, root = make_manager(default_idle_timeout=1)
    asyncio.run(m.get_or_create("u1"))
    m.start_cleanup_loop(interval=0.3)
    try:
        deadline = time.monotonic() + 10
        while len(m) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        m.stop_cleanup_loop()
    assert len(m) == 0


def test_shutdown_stops_every_session_and_returns_the_count(make_manager):
    m, name, root = make_manager()

    async def scenario():
        s1 = await m.get_or_create("u1")
        s2 = await m.get_or_create("u2")
        s1.write("/workspace/f.txt", "one")
        return [s1.container_id, s2.container_id], await m.shutdown()

    containers, stopped = asyncio.run(scenario())
    assert stopped == 2
    assert all(container_state(c) != "running" for c in containers)
    assert m.sessions == {}
    # sbx keeps the sessions on the host: the next request starts them again.
    s = asyncio.run(m.get_or_create("u1"))
    assert s.read_bytes("/workspace/f.txt") == b"one"
    assert s.is_alive() is True


def test_after_shutdown_len_and_in_agree_with_sessions(make_manager):
    """The seed's shutdown releases every session: afterwards len() is 0 and
    `in` is False, as `sessions` (empty) says."""
    m, name, root = make_manager()

    async def scenario():
        await m.get_or_create("u1")
        await m.get_or_create("u2")
        return await m.shutdown()

    assert asyncio.run(scenario()) == 2
    assert m.sessions == {}
    assert (len(m), m.session_count, "u1" in m) == (0, 0, False)


def test_new_manager_with_the_same_name_finds_the_sessions(make_manager):
    m1, name, root = make_manager()

    async def first():
        s = await m1.get_or_create("u1")
        s.write("/workspace/state.txt", "from m1")
        return s.container_id

    container = asyncio.run(first())
    a = m1.create_session(user_id="alice")
    m2, _, _ = make_manager(name=name, workspace_root=root)
    assert len(m2) == 2 and m2.session_count == 2
    assert "u1" in m2 and a in m2
    assert set(m2.sessions) == {"u1", a}
    s = asyncio.run(m2.get_or_create("u1"))
    assert s.container_id == container
    assert s.read_bytes("/workspace/state.txt") == b"from m1"
    assert m2.get_session(a).execute("echo alice").output == "alice\n"
    m2.end_session(a)
    assert a not in m1


def test_sandbox_factory_options_reach_every_session(make_manager):
    m, name, root = make_manager(
        sandbox_factory=lambda: sbx.DockerSandbox(image=BUSYBOX, env={"FROM_FACTORY": "yes"}))
    s = asyncio.run(m.get_or_create("u1"))
    assert s.execute("echo $FROM_FACTORY; pwd").output == "yes\n/workspace\n"
    assert s.image == BUSYBOX


def test_pool_claims_a_warm_sandbox_that_sees_the_workspace(make_manager):
    m, name, root = make_manager(pool_size=1)
    deadline = time.monotonic() + 60
    while m.pool_ready() < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert m.pool_ready() == 1
    os.makedirs(os.path.join(root, "wendy", "workspace"))
    with open(os.path.join(root, "wendy", "workspace", "note.txt"), "w") as f:
        f.write("from the host\n")
    sid = m.create_session(user_id="wendy")
    sb = m.get_session(sid)
    assert sb.execute("cat note.txt; pwd").output == "from the host\n/workspace\n"
    assert sb.write("/workspace/made.txt", "in the sandbox").error is None
    with open(os.path.join(root, "wendy", "workspace", "made.txt")) as f:
        assert f.read() == "in the sandbox"
    m.end_session(sid)
