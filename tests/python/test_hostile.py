"""Inputs and races a hostile or careless caller makes: each is refused
with an error, never a crash, a hang or a wrong action."""
import threading
import time

import pytest

import sbx
from sbx import _sbx
from conftest import BUSYBOX, new_manager_name


def test_closing_a_handle_while_another_thread_waits_on_it(make_sandbox):
    sb = make_sandbox()
    sb.start()
    handle = _sbx.open(sb.container_id)  # a handle of its own, closed below
    results = {}

    def long_exec():
        results["a"] = handle.exec("sleep 1; echo a")[0]

    def late_exec():
        time.sleep(0.3)
        try:
            handle.exec("echo c")
            results["c"] = "ran"
        except sbx.SbxError as e:
            results["c"] = str(e)

    a = threading.Thread(target=long_exec)
    c = threading.Thread(target=late_exec)
    a.start()
    c.start()
    time.sleep(0.1)
    handle.close()  # waits for the running command
    a.join()
    c.join()
    assert results["a"] == b"a\n"
    assert results["c"] in ("ran", "this sandbox handle is closed")
    with pytest.raises(sbx.SbxError, match="closed"):
        handle.exec("true")
    handle.close()  # a second close is no error


def test_a_manager_in_use_is_not_closed_under_a_call(tmp_path):
    name = new_manager_name()
    m = sbx.SessionManager(image=BUSYBOX, workspace_root=str(tmp_path), name=name)
    errors = []

    def create():
        try:
            sid = m.create_session(user_id="una")
            m.end_session(sid, True)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=create)
    t.start()
    time.sleep(0.05)
    refused = None
    try:
        m.close()
    except RuntimeError as e:
        refused = e
    t.join()
    if refused is not None:
        assert "in use" in str(refused)
        m.close()
    assert errors == []
    _sbx.manager_delete(name)


def test_a_manager_is_made_once(tmp_path):
    name = new_manager_name()
    m = _sbx.Manager(name=name, image=BUSYBOX)
    with pytest.raises(RuntimeError, match="made already"):
        m.__init__(name=name, image=BUSYBOX)
    m.close()
    _sbx.manager_delete(name)


@pytest.mark.parametrize("kwargs,error,text", [
    ({"default_idle_timeout": float("inf")}, sbx.SbxError, "out of range"),
    ({"default_idle_timeout": float("nan")}, sbx.SbxError, "out of range"),
    ({"name": "good\0../../x"}, ValueError, "NUL"),
    ({"workspace_root": "/tmp\0/etc"}, ValueError, "NUL|null"),
])
def test_manager_inputs_refused(tmp_path, kwargs, error, text):
    kwargs.setdefault("workspace_root", str(tmp_path))
    kwargs.setdefault("name", new_manager_name())
    with pytest.raises(error, match=text):
        sbx.SessionManager(image=BUSYBOX, **kwargs)


@pytest.mark.parametrize("kwargs,error,text", [
    ({"image": BUSYBOX + "\0evil"}, ValueError, "NUL"),
    ({"env": "ABC"}, TypeError, "not one str"),
])
def test_sandbox_inputs_refused(kwargs, error, text):
    kwargs.setdefault("image", BUSYBOX)
    with pytest.raises(error, match=text):
        _sbx.new(**kwargs) if "env" in kwargs else sbx.DockerSandbox(**kwargs)


def test_on_output_result_whose_truth_raises(shared_sb):
    class Bad:
        def __bool__(self):
            raise ValueError("no truth here")

    with pytest.raises(ValueError, match="no truth here"):
        shared_sb.run("echo go; sleep 5", on_output=lambda stream, data: Bad())
    assert shared_sb.execute("echo still").output == "still\n"


def test_a_dropped_sandbox_leaves_no_container():
    import gc
    from conftest import container_state
    sb = sbx.DockerSandbox(image=BUSYBOX)
    assert sb.execute("echo hi").output == "hi\n"
    name = sb.container_id
    assert container_state(name) is not None
    del sb
    gc.collect()
    assert container_state(name) is None


def test_a_forgotten_sandbox_is_removed_at_exit(tmp_path):
    import os
    import subprocess
    import sys
    from conftest import container_state
    code = ("import warnings, sbx; warnings.simplefilter('ignore'); "
            "s = sbx.DockerSandbox(image=%r); s.start(); print(s.container_id)" % BUSYBOX)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ))
    assert p.returncode == 0, p.stderr
    assert container_state(p.stdout.strip()) is None
