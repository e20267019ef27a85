"""Threads: the binding releases the GIL while it waits on a sandbox, a
sandbox used by several threads serializes them safely, and a session
manager shared by threads makes one sandbox per session id."""
from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import sbx
from sbx import ExecuteResponse

from conftest import BUSYBOX, docker


def _run_threads(n, fn):
    """Runs fn(i) in N threads started together; their results in order."""
    barrier = threading.Barrier(n)

    def call(i):
        barrier.wait(10)
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(call, range(n)))


def test_eight_threads_eight_sessions_on_one_manager(make_manager):
    m, name, root = make_manager()

    def work(i):
        s = asyncio.run(m.get_or_create("t%d" % i))
        return s.container_id, s.execute("echo session $((%d * 10))" % i)

    results = _run_threads(8, work)
    assert [r for _, r in results] == [
        ExecuteResponse("session %d\n" % (i * 10), 0, False) for i in range(8)]
    assert len({c for c, _ in results}) == 8
    assert len(m) == 8
    assert sorted(m.sessions) == sorted("t%d" % i for i in range(8))
    assert len(docker("ps", "-q", "--filter", "label=io.sbx.manager=" + name).split()) == 8


def test_eight_threads_documents_api(make_manager):
    m, name, root = make_manager()

    def work(i):
        sid = m.create_session(user_id="user%d" % i)
        s = m.get_session(sid)
        s.write("/workspace/me.txt", "user%d" % i)
        return sid, s.read_bytes("/workspace/me.txt")

    results = _run_threads(8, work)
    assert [data for _, data in results] == [b"user%d" % i for i in range(8)]
    assert len({sid for sid, _ in results}) == 8
    assert len(m) == 8
    for i in range(8):
        with open("%s/user%d/workspace/me.txt" % (root, i)) as f:
            assert f.read() == "user%d" % i


def test_eight_threads_on_one_session_id_get_one_container(make_manager):
    m, name, root = make_manager()

    def work(i):
        s = asyncio.run(m.get_or_create("shared"))
        return s.container_id, s.execute("echo %d" % i).output

    results = _run_threads(8, work)
    assert len({c for c, _ in results}) == 1
    assert [o for _, o in results] == ["%d\n" % i for i in range(8)]
    assert len(m) == 1
    assert len(docker("ps", "-aq", "--filter", "label=io.sbx.manager=" + name).split()) == 1


def test_gil_is_released_while_two_sandboxes_sleep(make_sandbox):
    a, b = make_sandbox(), make_sandbox()
    a.start()
    b.start()
    a.execute("true")
    b.execute("true")
    t0 = time.monotonic()
    results = _run_threads(2, lambda i: (a, b)[i].execute("sleep 1; echo done %d" % i))
    elapsed = time.monotonic() - t0
    assert results == [ExecuteResponse("done 0\n", 0, False), ExecuteResponse("done 1\n", 0, False)]
    assert elapsed < 1.8, "two 1 s commands on two sandboxes took %.2f s" % elapsed


def test_python_threads_run_while_a_command_waits(shared_sb):
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        t0 = time.monotonic()
        assert shared_sb.execute("sleep 1; echo slept").output == "slept\n"
        t1 = time.monotonic()
    finally:
        stop.set()
        t.join()
    during = [x for x in ticks if t0 < x < t1]
    assert len(during) >= 30, "only %d ticks while the command ran" % len(during)


def test_two_threads_on_the_same_sandbox_are_serialized(shared_sb):
    def work(i):
        return shared_sb.execute("echo begin %d; sleep 0.5; echo end %d" % (i, i))

    t0 = time.monotonic()
    results = _run_threads(2, work)
    elapsed = time.monotonic() - t0
    assert results == [ExecuteResponse("begin %d\nend %d\n" % (i, i), 0, False) for i in range(2)]
    assert elapsed >= 0.95, "one handle ran two commands at once (%.2f s)" % elapsed


def test_many_threads_mixing_operations_on_one_sandbox(make_sandbox):
    sb = make_sandbox()
    sb.start()

    def work(i):
        p = "/workspace/th/%d.txt" % i
        assert sb.write(p, "thread %d\n" % i).error is None
        assert sb.edit(p, "thread", "THREAD").occurrences == 1
        return (sb.read_bytes(p), sb.execute("cat " + p).output, sb.exists(p),
                sb.grep_raw("THREAD %d$" % i, "/workspace/th"))

    results = _run_threads(8, work)
    for i, (data, out, exists, matches) in enumerate(results):
        assert data == b"THREAD %d\n" % i
        assert out == "THREAD %d\n" % i
        assert exists is True
        assert matches == [{"path": "/workspace/th/%d.txt" % i, "line_number": 1,
                            "line": "THREAD %d" % i}]
    assert [f["name"] for f in sb.ls_info("/workspace/th")] == sorted("%d.txt" % i
                                                                     for i in range(8))


def test_threads_each_with_their_own_sandbox():
    boxes = [sbx.DockerSandbox(image=BUSYBOX) for _ in range(4)]
    try:
        out = _run_threads(4, lambda i: boxes[i].execute("echo box %d" % i).output)
        assert out == ["box %d\n" % i for i in range(4)]
        assert len({b.container_id for b in boxes}) == 4
    finally:
        for b in boxes:
            b.remove()
