"""A bounded load test on loopback: 50 concurrent clients, each with a
session of its own, looping exec + write + read for a fixed time. No
request may fail, every answer must be the client's own, and no container
may be left. SBXD_LOAD_SECONDS sets the time (default 8) and
SBXD_LOAD_CLIENTS the clients (default 50; the TSan run uses fewer);
`make bench` runs a longer one and reports latencies."""
from __future__ import annotations

import base64
import http.client
import json
import os
import threading
import time

from conftest import containers

CLIENTS = int(os.environ.get("SBXD_LOAD_CLIENTS", "50"))
SECONDS = float(os.environ.get("SBXD_LOAD_SECONDS", "8"))


class Client:
    def __init__(self, port: int, token: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.token = token

    def post(self, path: str, body: dict):
        self.conn.request("POST", path, json.dumps(body),
                          {"X-Sandbox-Token": self.token, "Content-Type": "application/json"})
        r = self.conn.getresponse()
        return r.status, r.read()


def test_fifty_clients(fresh):
    s = fresh("--max-sessions", str(CLIENTS + 5), "--workers", "64").start()
    errors, counts = [], [0] * CLIENTS
    ready = threading.Barrier(CLIENTS + 1)

    def client(i: int):
        try:
            sid, tok = s.session("load-%d" % i)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append("client %d: open: %r" % (i, e))
            ready.wait()
            return
        c = Client(s.port, tok)
        ready.wait()
        deadline = time.time() + SECONDS
        n = 0
        while time.time() < deadline:
            payload = ("client %d round %d\n" % (i, n)).encode()
            st, body = c.post("/sessions/%s/exec" % sid, {"command": "echo %d-%d" % (i, n)})
            if st != 200 or json.loads(body)["output"] != "%d-%d\n" % (i, n):
                errors.append("client %d exec: %d %r" % (i, st, body[:200]))
                return
            st, body = c.post("/sessions/%s/write" % sid,
                              {"path": "f.txt", "content_b64": base64.b64encode(payload).decode()})
            if st != 200 or json.loads(body)["error"] is not None:
                errors.append("client %d write: %d %r" % (i, st, body[:200]))
                return
            st, body = c.post("/sessions/%s/read_bytes" % sid, {"path": "f.txt"})
            if st != 200 or base64.b64decode(json.loads(body)["content_b64"]) != payload:
                errors.append("client %d read: %d %r" % (i, st, body[:200]))
                return
            n += 1
        counts[i] = n

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    ready.wait()
    for t in threads:
        t.join(SECONDS + 120)
    assert not errors, errors[:5]
    assert all(n > 0 for n in counts), counts
    assert len(containers(s.name)) == CLIENTS
    # Ended as they were used: at once.
    enders = [threading.Thread(target=s.request, args=("DELETE", "/sessions/load-%d" % i),
                               kwargs={"token": s.token}) for i in range(CLIENTS)]
    for t in enders:
        t.start()
    for t in enders:
        t.join(120)
    assert containers(s.name) == []
    print("load: %d rounds of exec+write+read by %d clients in %.0f s" %
          (sum(counts), CLIENTS, SECONDS))
