"""Fixtures for sbxd's tests: real sbxd processes on loopback, a real engine,
and a plain HTTP client (urllib from Debian's python3).

Each server runs with a private state root (SBX_STATE_DIR) and its own
instance name, so its records and containers are its own; the session-wide
guard checks that no container of any test server is left.
"""
from __future__ import annotations

import http.client
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SBXD = os.path.join(ROOT, os.environ.get("SBXD_BIN") or os.path.join("build", "sbxd"))
BUSYBOX = "sbx-test/busybox:1"
STATE_DIR = tempfile.mkdtemp(prefix="sbxd-pytest-state-")
PREFIX = "t%d" % (os.getpid() % 100000)
_numbers = itertools.count(1)


def docker(*args: str) -> str:
    p = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, "docker %s: %s" % (" ".join(args), p.stderr)
    return p.stdout


def containers(name_prefix: str = PREFIX) -> list:
    """The containers of this run's servers (their managers' label)."""
    out = docker("ps", "-a", "--format", '{{.ID}} {{.Label "io.sbx.manager"}} {{.State}}')
    return [line.split() for line in out.splitlines()
            if len(line.split()) >= 2 and line.split()[1].startswith(name_prefix)]


class Response:
    def __init__(self, status: int, headers, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


class Server:
    """An sbxd process. start() waits for its "listening on" line."""

    def __init__(self, *args: str, name: str | None = None, token: str | None = "svc-" + "x" * 28,
                 workspace: bool = True, env: dict | None = None):
        self.name = name or "%s-%d" % (PREFIX, next(_numbers))
        self.token = token
        self.dir = tempfile.mkdtemp(prefix="sbxd-test-")
        self.workspace_root = os.path.join(self.dir, "ws") if workspace else None
        self.args = list(args)
        self.env = env or {}
        self.proc = None
        self.port = None
        self.log = os.path.join(self.dir, "sbxd.log")

    def argv(self):
        argv = [SBXD, "--listen", "127.0.0.1:0", "--name", self.name,
                "--runtime", "default=" + BUSYBOX]
        if self.workspace_root:
            os.makedirs(self.workspace_root, exist_ok=True)
            argv += ["--workspace-root", self.workspace_root]
        if self.token is None:
            argv.append("--no-auth")
        else:
            path = os.path.join(self.dir, "token")
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(self.token + "\n")
            argv += ["--token-file", path]
        return argv + self.args

    def start(self, timeout: float = 30):
        env = dict(os.environ, SBX_STATE_DIR=STATE_DIR, **self.env)
        env.pop("SBXD_TOKEN", None)
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.PIPE, stderr=self.logf,
                                     env=env)
        deadline = time.time() + timeout
        line = self.proc.stdout.readline().decode()
        assert "listening on http://127.0.0.1:" in line, \
            "sbxd did not start: %r %s" % (line, self.read_log())
        self.port = int(line.rsplit(":", 1)[1])
        assert time.time() < deadline
        return self

    def read_log(self) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self.proc.stdout.close()
        self.logf.close()
        self.proc = None
        return rc

    def request(self, method: str, path: str, body=None, token: str | None = None,
                headers: dict | None = None, raw: bytes | None = None, timeout: float = 120,
                bearer: bool = False) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = {"Content-Type": "application/json"}
        if token is not None:
            h["Authorization" if bearer else "X-Sandbox-Token"] = \
                ("Bearer " + token) if bearer else token
        h.update(headers or {})
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            return Response(r.status, r.headers, r.read())
        finally:
            conn.close()

    # The calls as the seed's RemoteSandbox makes them (every field sent).
    def open(self, session_id=None, runtime=None, tenant=None, reuse=False, token=None):
        return self.request("POST", "/sessions", {"session_id": session_id, "runtime": runtime,
                                                  "tenant": tenant, "reuse": reuse},
                            token=self.token if token is None else token)

    def session(self, session_id=None, **kw):
        r = self.open(session_id, **kw)
        assert r.status == 200, r
        doc = r.json()
        return doc["session"]["session_id"], doc["token"]

    def op(self, sid: str, token: str, op: str, body: dict, **kw) -> Response:
        return self.request("POST", "/sessions/%s/%s" % (sid, op), body, token=token, **kw)

    def end_all(self):
        r = self.request("GET", "/sessions", token=self.token)
        if r.status == 200:
            for s in r.json()["sessions"]:
                self.request("DELETE", "/sessions/%s?purge=true" % s["session_id"],
                             token=self.token)

    def close(self):
        if self.proc is not None:
            try:
                self.end_all()
            finally:
                rc = self.stop()
                assert rc == 0, "sbxd exited %d: %s" % (rc, self.read_log())
        log = self.read_log()
        assert "Sanitizer" not in log and "runtime error:" not in log, log
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def server():
    # Room for every test's sessions: the limits have tests of their own.
    s = Server("--max-sessions", "100").start()
    yield s
    s.close()


@pytest.fixture
def fresh():
    """Servers made by the test, closed after it."""
    made = []

    def make(*args, **kw):
        s = Server(*args, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


@pytest.fixture(scope="session", autouse=True)
def no_leftovers():
    yield
    left = containers()
    for c in left:
        subprocess.run(["docker", "rm", "-f", c[0]], capture_output=True)
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    assert not left, "containers left by the sbxd tests: %r" % left
