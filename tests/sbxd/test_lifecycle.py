"""sbxd's sessions over time: limits, hibernation, idle reaping, a dead
container, SIGTERM with requests in flight, and a restart."""
from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time

from conftest import containers, docker


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def running(server) -> int:
    return len([c for c in containers(server.name) if c[2] == "running"])


def test_session_and_tenant_limits(fresh):
    s = fresh("--max-sessions", "2", "--max-sessions-per-tenant", "1").start()
    s.session("l-1", tenant="acme")
    r = s.open("l-2", tenant="acme")
    assert r.status == 429 and r.json()["detail"] == \
        "Tenant 'acme' has 1 sessions, its limit. End one first."
    s.session("l-2", tenant="other")
    r = s.open("l-3")
    assert r.status == 429 and r.json()["detail"] == (
        "Session limit reached: 2 sessions are running, the limit. End a session first "
        "(sbxd --evict-idle-after SECONDS hibernates idle ones instead).")
    # An existing session is still served at the limit.
    r = s.open("l-1", reuse=True)
    assert r.status == 200
    # Nothing of the refused ones was made.
    assert running(s) == 2
    assert s.request("GET", "/healthz").json()["sessions"] == 2


def test_hibernation_and_wake(fresh):
    s = fresh("--max-sessions", "1", "--evict-idle-after", "3").start()
    a, ta = s.session("h-a")
    s.op(a, ta, "write", {"path": "a.txt", "content_b64": b64(b"from a")})
    time.sleep(3.2)
    b, tb = s.session("h-b")
    # b is busy (not idle long enough to give way): a cannot wake yet.
    r = s.op(a, ta, "exec", {"command": "cat a.txt"})
    assert r.status == 429 and r.json()["detail"].startswith("Cannot wake session h-a"), r
    info = s.request("GET", "/sessions/h-a?usage=true", token=ta).json()
    assert info["state"] == "hibernated" and info["alive"] is False and info["usage"] is None
    assert running(s) == 1
    time.sleep(3.2)
    r = s.op(a, ta, "exec", {"command": "cat a.txt"})
    assert r.status == 200 and r.json()["output"] == "from a"
    assert s.request("GET", "/sessions/h-b", token=tb).json()["state"] == "hibernated"
    assert s.request("GET", "/sessions/h-a", token=ta).json()["state"] == "running"
    # Its token and events were kept.
    ev = s.request("GET", "/sessions/h-a/events", token=ta).json()["events"]
    assert [e["op"] for e in ev] == ["write", "exec", "exec"]
    assert running(s) == 1
    # A reuse open wakes a hibernated session too.
    time.sleep(3.2)
    r = s.open("h-b", reuse=True)
    assert r.status == 200 and r.json()["session"]["state"] == "running"


def test_open_ceiling_closes_the_longest_hibernated(fresh):
    s = fresh("--max-sessions", "1", "--max-open-sessions", "2", "--evict-idle-after", "1").start()
    a, ta = s.session("o-a")
    time.sleep(1.2)
    s.session("o-b")  # a hibernates
    time.sleep(1.2)
    s.session("o-c")  # b hibernates; at the open ceiling a is closed for good
    assert s.request("GET", "/sessions/o-a", token=s.token).status == 404
    assert s.request("GET", "/sessions/o-a", token=ta).status == 401
    ids = sorted(x["session_id"] for x in s.request("GET", "/sessions", token=s.token).json()[
        "sessions"])
    assert ids == ["o-b", "o-c"]


def test_evict_needs_a_workspace_root(fresh):
    import subprocess
    from conftest import SBXD
    p = subprocess.run([SBXD, "--no-auth", "--evict-idle-after", "5"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2 and "--evict-idle-after needs --workspace-root" in p.stderr


def test_idle_sessions_are_reaped(fresh):
    s = fresh("--idle-timeout", "2").start()
    sid, tok = s.session("idle-1")
    busy, btok = s.session("idle-2")
    deadline = time.time() + 30
    while time.time() < deadline:
        s.op(busy, btok, "exists", {"path": "x"})
        if s.request("GET", "/sessions/idle-1", token=s.token).status == 404:
            break
        time.sleep(0.5)
    assert s.request("GET", "/sessions/idle-1", token=s.token).status == 404
    assert s.op(sid, tok, "exec", {"command": "true"}).status == 401
    # The busy one, in use all along, is still there.
    assert s.op(busy, btok, "exec", {"command": "echo alive"}).json()["output"] == "alive\n"


def test_a_dead_container_is_replaced_with_its_files(server):
    sid, tok = server.session("dead-1")
    server.op(sid, tok, "write", {"path": "f.txt", "content_b64": b64(b"kept")})
    before = {c[0] for c in containers(server.name)}
    # The container that holds the file: the one whose workspace mount is ours.
    for cid in before:
        mounts = docker("inspect", "-f", "{{range .Mounts}}{{.Source}} {{end}}", cid)
        if "/dead-1/workspace" in mounts:
            docker("rm", "-f", cid)
            break
    else:
        raise AssertionError("no container mounts dead-1's workspace")
    ok = None
    for _ in range(2):  # the first may fail on the lost handle (502), the next replaces it
        r = server.op(sid, tok, "exec", {"command": "cat f.txt"})
        if r.status == 200:
            ok = r.json()["output"]
            break
        assert r.status == 502 and "replaced on the next request" in r.json()["detail"], r
    assert ok == "kept"


def test_sigterm_finishes_requests_in_flight(fresh):
    s = fresh().start()
    sid, tok = s.session("term-1")
    out = {}

    def slow():
        out["r"] = s.op(sid, tok, "exec", {"command": "sleep 2; echo done"})

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.7)
    s.proc.send_signal(signal.SIGTERM)
    t.join(30)
    assert out["r"].status == 200 and out["r"].json()["output"] == "done\n"
    assert s.proc.wait(30) == 0
    s.proc.stdout.close()
    s.proc = None
    # Kept by default: the sandbox still runs, for the next sbxd, which serves it.
    assert running(s) == 1
    s.start()
    assert s.op(sid, tok, "exec", {"command": "echo again"}).json()["output"] == "again\n"


def test_restart_finds_sessions_and_tokens(fresh):
    s = fresh("--on-exit", "stop").start()
    sid, tok = s.session("re-1", tenant="acme")
    s.op(sid, tok, "write", {"path": "r.txt", "content_b64": b64(b"before")})
    assert s.stop() == 0
    assert running(s) == 0  # --on-exit stop
    from conftest import STATE_DIR
    kept = os.path.join(STATE_DIR, "sbxd", s.name, "sessions", "re-1.events")
    assert json.load(open(kept))["latest_seq"] == 1
    s.start()
    info = s.request("GET", "/sessions/re-1", token=tok)
    assert info.status == 200 and info.json()["tenant"] == "acme"
    assert info.json()["state"] == "hibernated"  # stopped: woken by the next request
    # Its events were kept across the restart, and go on from there.
    assert not os.path.exists(kept)  # read back, then forgotten on the host
    r = s.op(sid, tok, "exec", {"command": "cat r.txt"})
    assert r.status == 200 and r.json()["output"] == "before"
    ev = s.request("GET", "/sessions/re-1/events", token=tok).json()
    assert [(e["seq"], e["op"]) for e in ev["events"]] == [(1, "write"), (2, "exec")], ev
    assert s.request("GET", "/sessions/re-1", token="wrong").status == 401
    # A reuse after the restart mints a new token; the old one still works.
    r = s.open("re-1", reuse=True)
    assert r.status == 200 and r.json()["token"] != tok
    tok2 = r.json()["token"]
    assert s.op(sid, tok2, "exists", {"path": "r.txt"}).json() == {"exists": True}
    assert s.op(sid, tok, "exists", {"path": "r.txt"}).json() == {"exists": True}
    assert "1 sessions found again" in s.read_log()


def test_restart_drops_records_of_ended_sessions(fresh):
    s = fresh().start()
    sid, tok = s.session("gone-1")
    assert s.stop() == 0
    # The session's container is removed behind sbxd's back, its manager
    # record with it (as `sbx session end` would).
    import subprocess
    import os
    from conftest import STATE_DIR
    env = dict(os.environ, SBX_STATE_DIR=STATE_DIR)
    from conftest import ROOT
    p = subprocess.run([os.path.join(ROOT, "build", "sbx"), "session", "end", "--manager",
                        s.name + "-default", sid], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    s.start()
    assert s.request("GET", "/sessions/gone-1", token=s.token).status == 404
    assert "0 sessions found again, 1 records dropped" in s.read_log()


def test_config_file_and_unix_socket(fresh, tmp_path):
    import http.client
    import json as js
    import socket
    import stat
    import os
    conf = tmp_path / "sbxd.json"
    conf.write_text(js.dumps({"max-sessions": 3, "execute-timeout": 42,
                              "runtime": ["default=sbx-test/busybox:1", "bb=sbx-test/busybox:1"],
                              "pool-size": 1}))
    sock = str(tmp_path / "sbxd.sock")
    s = fresh("--config", str(conf), "--max-sessions", "4")
    s.argv_orig = s.argv
    s.argv = lambda: [a for a in s.argv_orig() if a not in ("127.0.0.1:0",)]
    argv = s.argv_orig()
    i = argv.index("--listen")
    argv[i + 1] = "unix:" + sock
    # The config's runtimes: drop the fixture's own --runtime.
    k = argv.index("--runtime")
    del argv[k:k + 2]
    s.argv = lambda: argv
    env = dict(os.environ)
    from conftest import STATE_DIR
    env["SBX_STATE_DIR"] = STATE_DIR
    import subprocess
    s.logf = open(s.log, "ab")
    s.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=s.logf, env=env)
    assert s.proc.stdout.readline().decode().strip() == "sbxd: listening on unix:" + sock
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600

    class UnixConn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(sock)

    c = UnixConn("localhost")
    c.request("GET", "/policy", headers={"X-Sandbox-Token": s.token})
    doc = js.loads(c.getresponse().read())
    # Flags win over the file; the file's other options hold.
    assert doc["max_sessions"] == 4 and doc["execute_timeout"] == 42 and doc["prewarm"] is True
    assert [r["alias"] for r in doc["runtimes"]] == ["default", "bb"]
    c.request("POST", "/sessions", js.dumps({"session_id": "u-1", "runtime": "bb"}),
              {"X-Sandbox-Token": s.token})
    r = c.getresponse()
    assert r.status == 200 and js.loads(r.read())["session"]["runtime"] == "bb"
    c.request("DELETE", "/sessions/u-1", headers={"X-Sandbox-Token": s.token})
    assert c.getresponse().status == 204
    c.close()
    assert s.stop() == 0
    assert not os.path.exists(sock)


def test_bad_config_files(tmp_path):
    import subprocess
    from conftest import SBXD
    for text, msg in [("{", "the config file"), ("[1]", "is not a JSON object"),
                      ('{"bogus": 1}', 'unknown option "bogus"'),
                      ('{"config": "x"}', "may not name another"),
                      ('{"max-sessions": "many"}', "--max-sessions wants a whole number"),
                      ('{"no-auth": "yes"}', "has a value of the wrong type")]:
        conf = tmp_path / "c.json"
        conf.write_text(text)
        p = subprocess.run([SBXD, "--config", str(conf), "--no-auth"], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 2 and msg in p.stderr, (text, p.stderr)
