"""What an attacker with a socket, or with one session's token, tries: to
take every worker, to fill the server's memory with bodies, to hold every
connection, to list a folder without end. Each is bounded, and the server
goes on serving everyone else."""
from __future__ import annotations

import json
import os
import socket
import threading
import time

from test_mcp_http import ACCEPT, INIT, initialize


def raw_head(port: int, method: str, path: str, headers: dict, length: int | None) -> socket.socket:
    """A connection with a request's head sent and none of its body."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: localhost",
             "Content-Type: application/json"]
    lines += ["%s: %s" % kv for kv in headers.items()]
    if length is not None:
        lines.append("Content-Length: %d" % length)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def status_of(sock: socket.socket) -> int:
    head = sock.recv(4096).decode(errors="replace")
    assert head.startswith("HTTP/1.1 "), head
    return int(head.split()[1])


def wait_for(what, timeout: float = 30, step: float = 0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = what()
        if got:
            return got
        time.sleep(step)
    return what()


# -------------------------------------------------------------- bodies

def test_a_stranger_is_answered_before_the_body(server):
    sid, _ = server.session()
    for path, hdrs, status in (
            ("/sessions/%s/write" % sid, {"X-Sandbox-Token": "wrong"}, 401),
            ("/sessions/%s/write" % sid, {}, 401),
            ("/sessions", {"Authorization": "Bearer wrong"}, 401),
            ("/workspaces/%s/ls" % sid, {}, 401),
            ("/mcp", dict(ACCEPT, Authorization="Bearer wrong"), 401),
            ("/nowhere", {"X-Sandbox-Token": "wrong"}, 404)):
        sock = raw_head(server.port, "POST", path, hdrs, 16 << 20)
        try:
            assert status_of(sock) == status, path
        finally:
            sock.close()
    assert server.request("GET", "/healthz").status == 200


def test_bodies_held_at_once_are_bounded_together(fresh):
    s = fresh("--max-body", "1KiB", "--max-inflight", "32").start()  # 16 KiB of bodies at once
    sid, tok = s.session()
    path = "/sessions/%s/write" % sid
    # An announced length holds nothing: only bytes sent count.
    idle = [raw_head(s.port, "POST", path, {"X-Sandbox-Token": tok}, 1024) for _ in range(20)]
    assert s.op(sid, tok, "write", {"path": "free.txt", "content_b64": "eA=="}).status == 200
    for sock in idle:
        sock.close()
    # 17 bodies of 1 KiB, 980 bytes of each sent: whichever the server reads last is refused,
    # 16 fit.
    socks = [raw_head(s.port, "POST", path, {"X-Sandbox-Token": tok}, 1024) for _ in range(17)]
    for sock in socks:
        sock.sendall(b" " * 980)
    try:
        time.sleep(1)  # every byte sent is read
        # Each body finished: one refused (its bytes were dropped), the others written.
        rest = b'{"path":"held.txt","content_b64":"aGVsZA=="}'
        for sock in socks:
            sock.sendall(rest + b" " * (44 - len(rest)))
        statuses = sorted(status_of(sock) for sock in socks)
        assert statuses == [200] * 16 + [503], statuses
    finally:
        for sock in socks:
            sock.close()
    # Given back when they end: a request gets through again.
    r = wait_for(lambda: (lambda r: r if r.status == 200 else None)(
        s.op(sid, tok, "write", {"path": "after.txt", "content_b64": "YWZ0ZXI="})))
    assert r is not None and r.json()["error"] is None
    assert s.op(sid, tok, "read", {"path": "held.txt"}).json()["content"] == "held"


# ------------------------------------------------------------- workers

def test_one_session_cannot_take_every_worker(fresh):
    s = fresh("--workers", "3", "--max-inflight", "2").start()
    sid, tok = s.session()
    ws = os.path.join(s.workspace_root, sid, "workspace")
    out = {}

    def slow(i):
        out[i] = s.op(sid, tok, "exec", {"command": "touch m%d; sleep 4; echo done" % i})

    threads = [threading.Thread(target=slow, args=(i,)) for i in (1, 2)]
    for t in threads:
        t.start()
    assert wait_for(lambda: os.path.exists(os.path.join(ws, "m1"))
                    and os.path.exists(os.path.join(ws, "m2")))
    r = s.op(sid, tok, "exec", {"command": "echo third"})
    assert r.status == 429 and "--max-inflight" in r.json()["detail"], r
    # The others are served meanwhile: the documents at once, another session by a worker.
    assert s.request("GET", "/healthz").status == 200
    assert s.request("GET", "/sessions/%s" % sid, token=tok).status == 200
    other, otok = s.session()
    assert s.op(other, otok, "exec", {"command": "echo other"}).json()["output"] == "other\n"
    assert all(t.is_alive() for t in threads)
    for t in threads:
        t.join(60)
    assert [out[i].json()["output"] for i in (1, 2)] == ["done\n", "done\n"]
    assert s.op(sid, tok, "exec", {"command": "echo again"}).json()["output"] == "again\n"


def test_mcp_calls_waiting_count_against_the_session(fresh):
    s = fresh("--max-inflight", "2").start()
    sid, tok = s.session()
    # A session's token, and the service's (whose MCP session has a sandbox of its own).
    for token in (tok, s.token):
        msid = initialize(s, token)
        if token == s.token:  # its sandbox is made by the first call
            body = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                    "params": {"name": "execute", "arguments": {"command": "true"}}}
            assert s.request("POST", "/mcp", body, token=token, bearer=True,
                             headers=dict(ACCEPT, **{"Mcp-Session-Id": msid})).status == 200
        statuses = []

        def call(i):
            body = {"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call",
                    "params": {"name": "execute", "arguments": {"command": "sleep 2"}}}
            r = s.request("POST", "/mcp", body, token=token, bearer=True,
                          headers=dict(ACCEPT, **{"Mcp-Session-Id": msid}))
            statuses.append(r.status)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(statuses) == [200, 200, 429, 429, 429], (token == tok, statuses)
        s.request("DELETE", "/mcp", token=token, bearer=True, headers={"Mcp-Session-Id": msid})


def test_an_mcp_session_outliving_its_sandbox_session_can_be_ended(server):
    sid, tok = server.session()
    msid = initialize(server, tok)
    assert server.request("DELETE", "/sessions/" + sid, token=tok).status == 204
    h = {"Mcp-Session-Id": msid}
    # Its token is dead: no new MCP session, nothing else, but this one can be ended.
    assert server.request("POST", "/mcp", INIT, token=tok, bearer=True,
                          headers=ACCEPT).status == 401
    assert server.request("DELETE", "/mcp", token="wrong", bearer=True, headers=h).status == 404
    assert server.request("DELETE", "/mcp", token=tok, bearer=True, headers=h).status == 204
    assert server.request("DELETE", "/mcp", token=tok, bearer=True, headers=h).status == 404


def hang_up_cancels(s, op: str):
    sid, tok = s.session()
    ws = os.path.join(s.workspace_root, sid, "workspace")
    body = json.dumps({"command": "touch started; sleep 300; touch finished"}).encode()
    sock = raw_head(s.port, "POST", "/sessions/%s/%s" % (sid, op), {"X-Sandbox-Token": tok},
                    len(body))
    sock.sendall(body)
    assert wait_for(lambda: os.path.exists(os.path.join(ws, "started")))
    sock.close()

    def gone():
        r = s.op(sid, tok, "exec", {"command": "ps | grep -c '[s]leep 300'"})
        return r.status == 200 and r.json()["output"].strip() == "0"

    assert wait_for(gone, timeout=20, step=0.3)

    def logged():
        events = s.request("GET", "/sessions/%s/events" % sid, token=tok).json()["events"]
        return any(e["detail"] == "cancelled: the client went away" for e in events)

    # Logged once the worker has the command's end, just after the kill.
    assert wait_for(logged, timeout=10)
    assert not os.path.exists(os.path.join(ws, "finished"))


def test_a_client_that_hangs_up_cancels_its_command(server):
    hang_up_cancels(server, "exec")


def test_a_stream_client_that_hangs_up_cancels_a_silent_command(server):
    hang_up_cancels(server, "exec_stream")


# ---------------------------------------------------------- connections

def test_connections_from_one_address_are_bounded(fresh):
    s = fresh("--max-connections-per-ip", "4").start()
    held = [socket.create_connection(("127.0.0.1", s.port), timeout=10) for _ in range(4)]
    try:
        for sock in held:  # each accepted and idle, half a request sent
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        refused = 0
        for _ in range(60):
            sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            try:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                refused += sock.recv(4096) == b""
            except ConnectionResetError:
                refused += 1
            finally:
                sock.close()
        assert refused == 60
    finally:
        for sock in held:
            sock.close()
    def healthy():
        try:
            return s.request("GET", "/healthz").status == 200
        except OSError:  # refused still, until the server has seen the four close
            return False

    assert wait_for(healthy)
    # The refusals are logged, but not one line each.
    lines = [ln for ln in s.read_log().splitlines() if "more messages of libmicrohttpd" not in ln]
    assert len(lines) < 40, lines


def test_documents_answered_at_once_keep_the_connection(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n" * 3)
        got = b""
        while got.count(b"HTTP/1.1 200 ") < 3:
            chunk = sock.recv(65536)
            assert chunk, got
            got += chunk
    finally:
        sock.close()


def test_a_head_sent_slowly_is_cut(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    started = time.time()
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        closed = False
        for i in range(30):  # a header line every second: never silent
            time.sleep(1)
            try:
                sock.sendall(b"X-Slow-%d: 1\r\n" % i)
            except OSError:
                closed = True
                break
            sock.settimeout(0.01)
            try:
                closed = sock.recv(4096) == b""
            except socket.timeout:
                pass
            except OSError:
                closed = True
            sock.settimeout(60)
            if closed:
                break
        assert closed and 9 < time.time() - started < 16, time.time() - started
    finally:
        sock.close()
    # A connection in use is not cut: a request, then its keep-alive neighbour, 12 s apart.
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
        time.sleep(12)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
    finally:
        sock.close()


def test_a_silent_connection_is_closed(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
        started = time.time()  # then nothing more
        assert sock.recv(4096) == b""
        assert 25 < time.time() - started < 55
    finally:
        sock.close()


# ------------------------------------------------------------- listings

def test_a_workspace_listing_is_bounded_and_says_so(server):
    sid, tok = server.session()
    ws = os.path.join(server.workspace_root, sid, "workspace")
    many = os.path.join(ws, "many")
    os.makedirs(many)
    for i in range(100005):
        os.close(os.open(os.path.join(many, "f%06d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
    r = server.request("POST", "/workspaces/%s/ls" % sid, {"path": "many"}, token=server.token)
    assert r.status == 200
    assert r.headers["X-Sbx-Truncated"] == "true" and r.headers["X-Sbx-Total"] == "100005"
    entries = r.json()
    assert len(entries) == 100000 and entries[0]["path"].startswith("many/f")
    small = server.request("POST", "/workspaces/%s/ls" % sid, {"path": "."}, token=server.token)
    assert small.status == 200 and "X-Sbx-Truncated" not in small.headers
    assert [e["name"] for e in small.json()] == ["many"]
    server.request("DELETE", "/sessions/%s?purge=true" % sid, token=tok)


# --------------------------------------------------------------- the disk

def test_each_file_is_bounded_and_a_shared_root_is_warned_of(fresh):
    s = fresh("--disk", "16MiB").start()
    assert "warning: the workspace root %s is on the file system of /" % s.workspace_root \
        in s.read_log()
    assert s.request("GET", "/policy", token=s.token).json()["disk_limit"] == 16 << 20
    sid, tok = s.session()
    r = s.op(sid, tok, "exec", {"command": "dd if=/dev/zero of=big bs=1M count=20 2>/dev/null; "
                                           "echo dd $?; wc -c < big"})
    assert r.status == 200
    assert r.json()["output"].split()[-3:] == ["dd", "153", "16777216"], r  # SIGXFSZ
    assert os.path.getsize(os.path.join(s.workspace_root, sid, "workspace", "big")) == 16 << 20
