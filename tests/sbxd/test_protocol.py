"""sbxd's REST routes, as the sandboxd protocol (0.2.21) defines them: every
route, its statuses, its bodies, and the order of its checks."""
from __future__ import annotations

import base64
import json
import os
import re

from conftest import containers

SID_PATTERN = "String should match pattern '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ------------------------------------------------------------------ service

def test_healthz_needs_no_token(server):
    r = server.request("GET", "/healthz")
    assert r.status == 200
    doc = r.json()
    assert doc["status"] == "ok" and doc["runtimes"] == ["default"] and doc["limit"] == 100
    assert isinstance(doc["sessions"], int) and isinstance(doc["open_sessions"], int)


def test_only_healthz_is_open(server):
    _, tok = server.session()
    for path in ("/", "/openapi.json", "/docs"):
        assert server.request("GET", path).status == 401, path
        assert server.request("GET", path, token="wrong").status == 401, path
        assert server.request("GET", path, token=tok).status == 200, path
        assert server.request("GET", path, token=server.token, bearer=True).status == 200, path
    for path in ("/policy", "/metrics", "/sessions"):
        assert server.request("GET", path, token=tok).status == 401, path
    assert server.request("GET", "/healthz").status == 200


def test_index_lists_the_routes_and_openapi_describes_each(server):
    doc = server.request("GET", "/", token=server.token).json()
    assert doc["service"] == "sandboxd" and doc["openapi_url"] == "/openapi.json"
    assert "/sessions/{session_id}/exec" in doc["endpoints"]
    assert doc["endpoints"] == sorted(set(doc["endpoints"])) and "/" not in doc["endpoints"]
    assert doc["docs_url"] == "/docs"
    page = server.request("GET", "/docs", token=server.token)
    assert page.status == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"/sessions/{session_id}/exec_stream" in page.body and b"<script" not in page.body
    api = server.request("GET", "/openapi.json", token=server.token).json()
    assert api["openapi"].startswith("3.")
    for path in doc["endpoints"] + ["/"]:
        assert path in api["paths"], path
    ops = ["exec", "read", "read_bytes", "write", "edit", "exists", "ls", "glob", "grep"]
    for op in ops:
        body = api["paths"]["/sessions/{session_id}/" + op]["post"]["requestBody"]
        schema = body["content"]["application/json"]["schema"]
        assert schema["type"] == "object" and schema["required"], op
    assert api["paths"]["/sessions/{session_id}/read"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["properties"]["limit"] == {"type": "integer", "minimum": 1}


def test_policy_needs_the_service_token(server):
    assert server.request("GET", "/policy").status == 401
    assert server.request("GET", "/policy", token="wrong").status == 401
    r = server.request("GET", "/policy", token=server.token)
    assert r.status == 200
    doc = r.json()
    assert doc["execute_timeout"] == 300 and doc["default_runtime"] == "default"
    assert doc["work_dir"] == "/workspace" and doc["max_read_bytes"] == 8 << 20
    assert [rt["alias"] for rt in doc["runtimes"]] == ["default"]
    assert doc["runtimes"][0]["image"] == "sbx-test/busybox:1"
    # The limits the sandboxes get, sbx's defaults unless given: never null.
    for where in (doc, doc["runtimes"][0]):
        assert (where["mem_limit"], where["memswap_limit"], where["cpus"], where["pids_limit"],
                where["network_mode"]) == (1 << 30, 1 << 30, 1.0, 512, "none"), where
    assert server.request("GET", "/policy", token=server.token, bearer=True).status == 200


def test_metrics_count_operations(server):
    sid, tok = server.session()
    server.op(sid, tok, "exec", {"command": "true"})
    assert server.request("GET", "/metrics").status == 401
    r = server.request("GET", "/metrics", token=server.token)
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
    text = r.body.decode()
    m = re.search(r'^sbxd_operations_total\{op="exec",outcome="ok"\} (\d+)$', text, re.M)
    assert m and int(m.group(1)) >= 1
    assert re.search(r'^sbxd_sessions\{state="running"\} [1-9]', text, re.M)
    assert 'sbxd_operation_seconds_bucket{op="exec",le="+Inf"}' in text


def test_unknown_route_and_wrong_method(server):
    assert server.request("GET", "/nope").status == 404
    assert server.request("GET", "/sessions/a/b/c/d/e/f").status == 404
    r = server.request("PUT", "/sessions", token=server.token)
    assert r.status == 405 and r.headers["Allow"] == "GET, POST"
    sid, tok = server.session()
    r = server.request("GET", "/sessions/%s/exec" % sid, token=tok)
    assert r.status == 405 and r.headers["Allow"] == "POST"
    assert server.op(sid, tok, "nosuchop", {}).status == 404


# ----------------------------------------------------------------- sessions

def test_create_returns_the_session_and_its_token(server):
    r = server.open("create-1")
    assert r.status == 200
    doc = r.json()
    s = doc["session"]
    assert s["session_id"] == "create-1" and s["runtime"] == "default" and s["tenant"] is None
    assert s["alive"] is True and s["state"] == "running" and s["usage"] is None
    assert 0 <= s["idle_seconds"] < 60 and s["created_at"] > 1.7e9
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", doc["token"])


def test_record_holds_only_the_token_hash(server):
    from conftest import STATE_DIR
    sid, tok = server.session("hashed-1")
    path = os.path.join(STATE_DIR, "sbxd", server.name, "sessions", sid + ".json")
    rec = json.load(open(path))
    assert tok not in json.dumps(rec)
    import hashlib
    assert rec["token_sha256"] == [hashlib.sha256(tok.encode()).hexdigest()]
    assert os.stat(os.path.dirname(path)).st_mode & 0o077 == 0


def test_server_generated_id(server):
    r = server.request("POST", "/sessions", {}, token=server.token)
    assert r.status == 200
    assert re.fullmatch(r"s-[0-9a-f]{16}", r.json()["session"]["session_id"])
    # An empty body reads as {} too.
    r = server.request("POST", "/sessions", raw=b"", token=server.token)
    assert r.status == 200


def test_create_conflicts_and_reuse(server):
    sid, tok = server.session("dup-1")
    r = server.open("dup-1")
    assert r.status == 409 and r.json() == {"detail": "Session exists: dup-1"}
    r = server.open("dup-1", reuse=True)
    assert r.status == 200 and r.json()["token"] == tok
    r = server.open("dup-1", reuse=True, runtime="default")
    assert r.status == 200
    r = server.open("dup-1", reuse=True, runtime="other")
    assert r.status == 400  # an unknown runtime is refused first
    r = server.open("dup-2", runtime="python")
    assert r.status == 400 and r.json() == {"detail": "Unknown runtime 'python'. Allowed: default"}


def test_create_validation(server):
    for body, field in [({"session_id": "../etc"}, "session_id"),
                        ({"session_id": "a" * 65}, "session_id"),
                        ({"session_id": "-x"}, "session_id"),
                        ({"tenant": "a b"}, "tenant"),
                        ({"reuse": "yes"}, "reuse"),
                        ({"session_id": 5}, "session_id")]:
        r = server.request("POST", "/sessions", body, token=server.token)
        assert r.status == 422, (body, r)
        detail = r.json()["detail"]
        assert isinstance(detail, list) and detail[0]["loc"] == ["body", field], (body, detail)
    r = server.request("POST", "/sessions", raw=b"{not json", token=server.token)
    assert r.status == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    r = server.request("POST", "/sessions", raw=b"[1]", token=server.token)
    assert r.status == 422 and r.json()["detail"][0]["type"] == "dict_type"
    r = server.request("POST", "/sessions", raw=b'{"session_id":"a","session_id":"b"}',
                       token=server.token)
    assert r.status == 422


def test_create_needs_the_service_token(server):
    _, tok = server.session()
    assert server.open("x-1", token=tok).status == 401
    assert server.open("x-1", token="").status == 401
    assert server.request("POST", "/sessions", {}).status == 401
    assert server.request("GET", "/sessions", token=tok).status == 401
    # A header that is not ASCII is a 401, not a crash.
    r = server.request("GET", "/sessions", headers={"X-Sandbox-Token": "t\u00e9st".encode(
        "latin-1").decode("latin-1")})
    assert r.status == 401


def test_list_and_get(server):
    sid, tok = server.session("listed-1", tenant="acme")
    doc = server.request("GET", "/sessions", token=server.token).json()
    assert doc["limit"] == 100 and doc["open_limit"] is None and doc["tenant_limit"] is None
    row = [s for s in doc["sessions"] if s["session_id"] == sid]
    assert row and row[0]["tenant"] == "acme"
    for token in (tok, server.token):
        r = server.request("GET", "/sessions/%s?usage=true" % sid, token=token)
        assert r.status == 200 and r.json()["session_id"] == sid and r.json()["alive"] is True


def test_usage_is_sampled_on_request(server):
    sid, tok = server.session("usage-1")
    assert server.request("GET", "/sessions/" + sid, token=tok).json()["usage"] is None
    first = server.request("GET", "/sessions/%s?usage=true" % sid, token=tok).json()["usage"]
    assert set(first) == {"memory_bytes", "memory_limit_bytes", "cpu_percent", "pids"}
    assert first["memory_limit_bytes"] == 1 << 30 and 0 < first["memory_bytes"] < 1 << 30
    assert first["pids"] >= 1 and first["cpu_percent"] is None  # one sample says no rate
    server.op(sid, tok, "exec", {"command": "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"})
    second = server.request("GET", "/sessions/%s?usage=yes" % sid, token=tok).json()["usage"]
    assert isinstance(second["cpu_percent"], float) and second["cpu_percent"] >= 0, second
    rows = server.request("GET", "/sessions?usage=1", token=server.token).json()["sessions"]
    row = [r for r in rows if r["session_id"] == sid][0]
    assert row["usage"]["memory_limit_bytes"] == 1 << 30
    for q in ("usage=maybe", "usage="):
        r = server.request("GET", "/sessions/%s?%s" % (sid, q), token=tok)
        assert r.status == 422 and r.json()["detail"][0]["loc"] == ["query", "usage"], r
    assert server.request("GET", "/sessions?usage=2", token=server.token).status == 422
    assert server.request("DELETE", "/sessions/%s?purge=perhaps" % sid, token=tok).status == 422
    # A stranger learns nothing from a bad flag: the token is checked as well.
    assert server.request("GET", "/sessions/%s?usage=true" % sid, token="wrong").status == 401


def test_delete_ends_the_session_and_its_token(server):
    sid, tok = server.session("del-1")
    server.op(sid, tok, "write", {"path": "keep.txt", "content_b64": b64(b"kept")})
    ws = os.path.join(server.workspace_root, sid, "workspace")
    assert open(os.path.join(ws, "keep.txt")).read() == "kept"
    before = len(containers(server.name))
    r = server.request("DELETE", "/sessions/" + sid, token=tok)
    assert r.status == 204 and r.body == b""
    assert server.request("GET", "/sessions/" + sid, token=tok).status == 401
    assert server.request("GET", "/sessions/" + sid, token=server.token).status == 404
    assert server.request("DELETE", "/sessions/" + sid, token=server.token).status == 404
    assert len(containers(server.name)) == before - 1
    # Without purge the workspace stays, and a new session of that id sees it.
    assert os.path.exists(os.path.join(ws, "keep.txt"))
    sid2, tok2 = server.session(sid)
    assert tok2 != tok
    r = server.op(sid2, tok2, "exec", {"command": "cat keep.txt"})
    assert r.json()["output"] == "kept"
    r = server.request("DELETE", "/sessions/%s?purge=true" % sid, token=tok2)
    assert r.status == 204 and not os.path.exists(ws)


# ------------------------------------------------------- token isolation

ROUTES = [("GET", "", None), ("GET", "/events", None), ("DELETE", "", None),
          ("POST", "/exec", {"command": "true"}), ("POST", "/read", {"path": "f"}),
          ("POST", "/read_bytes", {"path": "f"}),
          ("POST", "/write", {"path": "f", "content_b64": ""}),
          ("POST", "/edit", {"path": "f", "old_string": "a", "new_string": "b"}),
          ("POST", "/exists", {"path": "f"}), ("POST", "/ls", {"path": "."}),
          ("POST", "/glob", {"pattern": "*"}), ("POST", "/grep", {"pattern": "x"})]


def test_a_token_reaches_only_its_own_session(server):
    a, ta = server.session("iso-a")
    b, tb = server.session("iso-b")
    server.op(b, tb, "write", {"path": "secret", "content_b64": b64(b"b's")})
    for method, suffix, body in ROUTES:
        for token, bearer in ((ta, False), (ta, True), ("", False), (None, False), (tb + "x", False)):
            r = server.request(method, "/sessions/" + b + suffix, body, token=token, bearer=bearer)
            assert r.status == 401, (method, suffix, token, r)
        # An id that does not exist: 401 for a session token, 404 for the service's.
        r = server.request(method, "/sessions/nosuch" + suffix, body, token=ta)
        assert r.status == 401, (method, suffix, r)
        r = server.request(method, "/sessions/nosuch" + suffix, body, token=server.token)
        assert r.status == 404, (method, suffix, r)
        # A bad id is a 422 before any token is looked at.
        r = server.request(method, "/sessions/bad%20id" + suffix, body)
        assert r.status == 422 and r.json()["detail"][0]["loc"] == ["path", "session_id"], r
    # b is untouched; the service token reaches it.
    r = server.op(b, server.token, "exec", {"command": "cat secret"})
    assert r.json()["output"] == "b's"
    assert server.op(b, tb, "exec", {"command": "true"}, bearer=True).status == 200


def test_events_after_delete_race_is_404(server):
    sid, tok = server.session()
    server.request("DELETE", "/sessions/" + sid, token=server.token)
    assert server.request("GET", "/sessions/%s/events" % sid, token=server.token).status == 404


# --------------------------------------------------------------- operations

def test_exec(server):
    sid, tok = server.session()
    r = server.op(sid, tok, "exec", {"command": "echo out; echo err >&2; exit 3",
                                     "timeout_seconds": None})
    assert r.status == 200
    assert r.json() == {"output": "out\nerr\n", "exit_code": 3, "truncated": False}
    r = server.op(sid, tok, "exec", {"command": "pwd"})
    assert r.json()["output"] == "/workspace\n"
    r = server.op(sid, tok, "exec", {"command": "sleep 5", "timeout_seconds": 1})
    assert r.json()["exit_code"] == 124
    r = server.op(sid, tok, "exec", {"command": "head -c 150000 /dev/zero | tr '\\0' a"})
    doc = r.json()
    assert doc["truncated"] is True and len(doc["output"]) == 100000
    r = server.op(sid, tok, "exec", {"command": "printf '\\377ok'"})
    assert r.json()["output"] == "\ufffdok"


def test_exec_validation(server):
    sid, tok = server.session()
    for body, loc in [({}, "command"), ({"command": 5}, "command"),
                      ({"command": "x", "timeout_seconds": "5"}, "timeout_seconds"),
                      ({"command": "x", "timeout_seconds": 1.5}, "timeout_seconds")]:
        r = server.op(sid, tok, "exec", body)
        assert r.status == 422 and r.json()["detail"][0]["loc"] == ["body", loc], (body, r)
    r = server.op(sid, tok, "exec", None, raw=b"nope")
    assert r.status == 422
    # Nothing invalid is logged as an event.
    assert server.request("GET", "/sessions/%s/events" % sid, token=tok).json()["events"] == []


def test_read_formats(server):
    sid, tok = server.session()
    lines = "".join("line %d\n" % i for i in range(1, 11))
    server.op(sid, tok, "write", {"path": "ten.txt", "content_b64": b64(lines.encode())})
    r = server.op(sid, tok, "read", {"path": "ten.txt", "offset": 0, "limit": 2000})
    assert r.json() == {"content": lines.rstrip("\n")}
    r = server.op(sid, tok, "read", {"path": "ten.txt", "offset": 2, "limit": 3})
    assert r.json()["content"] == \
        "line 3\nline 4\nline 5\n\n[... 5 more lines. Use offset=5 to read more.]"
    r = server.op(sid, tok, "read", {"path": "ten.txt", "offset": 10})
    assert r.json()["content"] == "[End of file]"
    r = server.op(sid, tok, "read", {"path": "/workspace/ten.txt", "limit": 1})
    assert r.json()["content"].startswith("line 1\n\n[... 9 more lines.")
    r = server.op(sid, tok, "read", {"path": "nope.txt"})
    assert r.status == 200 and r.json()["content"] == "Error: File 'nope.txt' not found"
    for bad in ({"path": "x", "offset": -1}, {"path": "x", "limit": 0}, {"offset": 1}):
        assert server.op(sid, tok, "read", bad).status == 422, bad
    server.op(sid, tok, "write", {"path": "bin", "content_b64": b64(b"a\0b")})
    assert server.op(sid, tok, "read", {"path": "bin"}).json()["content"].startswith("[Error:")


def test_read_bytes_and_write(server):
    sid, tok = server.session()
    data = bytes(range(256)) * 40
    r = server.op(sid, tok, "write", {"path": "d/e/blob.bin", "content_b64": b64(data)})
    assert r.json() == {"path": "/workspace/d/e/blob.bin", "error": None}
    r = server.op(sid, tok, "read_bytes", {"path": "d/e/blob.bin"})
    assert base64.b64decode(r.json()["content_b64"]) == data
    assert server.op(sid, tok, "read_bytes", {"path": "missing"}).json() == {"content_b64": ""}
    for bad in ("not base64!", "QQ=", "QR==", "Q===", "QUJD\n"):
        r = server.op(sid, tok, "write", {"path": "x", "content_b64": bad})
        assert r.status == 400 and r.json()["detail"].startswith(
            "content_b64 is not valid base64: "), (bad, r)
    assert server.op(sid, tok, "exists", {"path": "x"}).json() == {"exists": False}
    r = server.op(sid, tok, "write", {"path": "/proc/nope/x", "content_b64": ""})
    assert r.status == 200 and r.json()["path"] is None and r.json()["error"]


def test_read_bytes_past_the_limit_is_empty(fresh):
    s = fresh("--max-read-bytes", "4KiB").start()
    sid, tok = s.session()
    s.op(sid, tok, "exec", {"command": "head -c 5000 /dev/zero > big"})
    assert s.op(sid, tok, "read_bytes", {"path": "big"}).json() == {"content_b64": ""}
    assert s.op(sid, tok, "read", {"path": "big"}).json()["content"] == \
        "[Error: 'big' is larger than 4096 bytes]"


def test_edit(server):
    sid, tok = server.session()
    server.op(sid, tok, "write", {"path": "e.txt", "content_b64": b64(b"a b a")})
    r = server.op(sid, tok, "edit", {"path": "e.txt", "old_string": "b", "new_string": "c",
                                     "replace_all": False})
    assert r.json() == {"path": "/workspace/e.txt", "error": None, "occurrences": 1}
    r = server.op(sid, tok, "edit", {"path": "e.txt", "old_string": "a", "new_string": "x"})
    assert r.json()["error"].startswith("String 'a' found 2 times. Use replace_all=True")
    r = server.op(sid, tok, "edit", {"path": "e.txt", "old_string": "a", "new_string": "x",
                                     "replace_all": True})
    assert r.json()["occurrences"] == 2
    r = server.op(sid, tok, "edit", {"path": "e.txt", "old_string": "zz", "new_string": "x"})
    assert r.json() == {"path": None, "error": "String 'zz' not found in file",
                        "occurrences": None}
    r = server.op(sid, tok, "edit", {"path": "no.txt", "old_string": "a", "new_string": "b"})
    assert r.json()["error"] == "File 'no.txt' not found"
    r = server.op(sid, tok, "exec", {"command": "cat e.txt"})
    assert r.json()["output"] == "x c x"


def test_exists_ls_glob_grep(server):
    sid, tok = server.session()
    server.op(sid, tok, "exec", {"command": "mkdir -p zdir/sub adir && echo hello > b.txt && "
                                            "echo hello > zdir/sub/c.py && echo hi > .hidden"})
    assert server.op(sid, tok, "exists", {"path": "b.txt"}).json() == {"exists": True}
    assert server.op(sid, tok, "exists", {"path": "zdir"}).json() == {"exists": False}
    rows = server.op(sid, tok, "ls", {"path": "."}).json()
    assert [(e["name"], e["is_dir"]) for e in rows] == \
        [("adir", True), ("zdir", True), (".hidden", False), ("b.txt", False)]
    assert rows[3] == {"name": "b.txt", "path": "/workspace/b.txt", "is_dir": False, "size": 6}
    assert server.op(sid, tok, "ls", {"path": "nope"}).json() == []
    rows = server.op(sid, tok, "glob", {"pattern": "**/*.py", "path": "/workspace"}).json()
    assert rows == [{"name": "c.py", "path": "/workspace/zdir/sub/c.py", "is_dir": False,
                     "size": None}]
    r = server.op(sid, tok, "grep", {"pattern": "h(ello|i)", "path": None, "glob": None,
                                     "ignore_hidden": True})
    assert sorted((m["path"], m["line_number"], m["line"]) for m in r.json()["matches"]) == \
        [("/workspace/b.txt", 1, "hello"), ("/workspace/zdir/sub/c.py", 1, "hello")]
    assert r.json()["error"] is None
    r = server.op(sid, tok, "grep", {"pattern": "hi", "ignore_hidden": False})
    assert [m["path"] for m in r.json()["matches"]] == ["/workspace/.hidden"]
    r = server.op(sid, tok, "grep", {"pattern": "hello", "glob": "*.py"})
    assert [m["path"] for m in r.json()["matches"]] == ["/workspace/zdir/sub/c.py"]
    r = server.op(sid, tok, "grep", {"pattern": "(unclosed"})
    assert r.status == 200 and r.json()["matches"] == [] and r.json()["error"]


# ------------------------------------------------------------------ events

def test_events_log_operations_without_payloads(server):
    sid, tok = server.session()
    server.op(sid, tok, "write", {"path": "p.txt", "content_b64": b64(b"SECRET-PAYLOAD")})
    server.op(sid, tok, "exec", {"command": "exit 2"})
    server.op(sid, tok, "read", {"path": "missing"})
    server.op(sid, tok, "exists", {"path": "p.txt"})
    server.op(sid, tok, "glob", {"pattern": "*.txt", "path": "/workspace"})
    server.op(sid, tok, "exec", {"command": "echo " + "y" * 300})
    doc = server.request("GET", "/sessions/%s/events" % sid, token=tok).json()
    ev = doc["events"]
    assert doc["latest_seq"] == 6 and [e["seq"] for e in ev] == [1, 2, 3, 4, 5, 6]
    assert [(e["op"], e["ok"], e["detail"]) for e in ev[:5]] == [
        ("write", True, "14 bytes"), ("exec", False, "exit 2"),
        ("read", False, "31 chars"), ("exists", True, "found"), ("glob", True, "1 entries")]
    assert ev[4]["target"] == "*.txt in /workspace"
    assert ev[5]["target"] == ("echo " + "y" * 300)[:200] + "\u2026"
    assert "SECRET-PAYLOAD" not in json.dumps(doc)
    assert all(e["duration_ms"] >= 0 and e["at"] > 1.7e9 for e in ev)
    after = server.request("GET", "/sessions/%s/events?after=4" % sid, token=tok).json()
    assert [e["seq"] for e in after["events"]] == [5, 6]
    for bad in ("-1", "x", ""):
        r = server.request("GET", "/sessions/%s/events?after=%s" % (sid, bad), token=tok)
        assert r.status == 422, bad


def test_events_keep_the_last_200(server):
    sid, tok = server.session()
    for i in range(205):
        server.op(sid, tok, "exists", {"path": "f%d" % i})
    doc = server.request("GET", "/sessions/%s/events" % sid, token=tok).json()
    assert doc["latest_seq"] == 205 and len(doc["events"]) == 200
    assert doc["events"][0]["seq"] == 6 and doc["events"][0]["target"] == "f5"


# --------------------------------------------------------------- workspaces

def test_workspace_routes(server):
    sid, tok = server.session("ws-1")
    server.op(sid, tok, "exec", {"command": "mkdir -p d && printf 'a\\nb\\nc\\n' > d/f.txt && "
                                            "ln -s /etc/passwd d/out && ln -s f.txt d/in && "
                                            "ln -s ../../.. d/up && printf '\\0' > d/bin"})
    r = server.request("POST", "/workspaces/ws-1/ls", {"path": "d"}, token=server.token)
    assert r.status == 200
    assert [(e["name"], e["path"]) for e in r.json()] == \
        [("bin", "d/bin"), ("f.txt", "d/f.txt"), ("in", "d/in"), ("out", "d/out"), ("up", "d/up")]
    r = server.request("POST", "/workspaces/ws-1/ls", {}, token=server.token)
    assert [e["name"] for e in r.json()] == ["d"]
    r = server.request("POST", "/workspaces/ws-1/read",
                       {"path": "/workspace/d/f.txt", "offset": 1, "limit": 1},
                       token=server.token)
    assert r.json() == {"content": "b\n\n[... 1 more lines. Use offset=2 to read more.]"}
    assert server.request("POST", "/workspaces/ws-1/read", {"path": "d/in"},
                          token=server.token).json() == {"content": "a\nb\nc"}
    for path, status in [("d/out", 400), ("d/up/etc/passwd", 400), ("../../etc/passwd", 400),
                         ("/etc/passwd", 400), ("d/nope", 404), ("d", 404), ("d/bin", 400)]:
        r = server.request("POST", "/workspaces/ws-1/read", {"path": path}, token=server.token)
        assert r.status == status, (path, r)
    assert server.request("POST", "/workspaces/ws-1/ls", {"path": "d/up"},
                          token=server.token).status == 400
    assert server.request("POST", "/workspaces/nosuch/ls", {}, token=server.token).status == 404
    assert server.request("POST", "/workspaces/ws-1/ls", {}, token=tok).status == 401
    assert server.request("POST", "/workspaces/ws-1/read", {}, token=server.token).status == 422
    # After the session ends, its files are still readable.
    server.request("DELETE", "/sessions/ws-1", token=tok)
    r = server.request("POST", "/workspaces/ws-1/read", {"path": "d/f.txt"}, token=server.token)
    assert r.status == 200 and r.json()["content"] == "a\nb\nc"


def test_workspace_routes_without_a_root(fresh):
    s = fresh(workspace=False).start()
    r = s.request("POST", "/workspaces/x/ls", {}, token=s.token)
    assert r.status == 409


# ------------------------------------------------------------- bad input

def test_bodies_are_bounded(fresh):
    s = fresh("--max-body", "64KiB").start()
    sid, tok = s.session()
    big = {"path": "big", "content_b64": "A" * (100 << 10)}
    r = s.op(sid, tok, "write", big)
    assert r.status == 413 and "65536" in r.json()["detail"]
    # Chunked, with no length said first: cut off as well.
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
    conn.putrequest("POST", "/sessions/%s/write" % sid)
    conn.putheader("X-Sandbox-Token", tok)
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    chunk = b"A" * 8192
    try:
        for _ in range(20):
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        assert resp.status == 413
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        conn.close()
    # The server goes on, and nothing was written.
    assert s.op(sid, tok, "exists", {"path": "big"}).json() == {"exists": False}


def test_host_and_origin_are_checked(server):
    assert server.request("GET", "/healthz", headers={"Host": "evil.example"}).status == 403
    assert server.request("GET", "/healthz",
                          headers={"Origin": "http://evil.example"}).status == 403
    assert server.request("GET", "/healthz",
                          headers={"Origin": "http://localhost:%d" % server.port}).status == 200
    assert server.request("GET", "/healthz", headers={"Host": "localhost:1"}).status == 200


def test_no_auth_is_loopback_only(tmp_path):
    import subprocess
    from conftest import SBXD
    p = subprocess.run([SBXD, "--no-auth", "--listen", "0.0.0.0:0"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2 and "--no-auth is for a loopback address" in p.stderr
    tf = tmp_path / "tok"
    tf.write_text("x" * 32)
    tf.chmod(0o644)
    p = subprocess.run([SBXD, "--token-file", str(tf)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "may be read by others (mode 0644): chmod 600" in p.stderr
    tf.chmod(0o600)
    tf.write_text("short")
    p = subprocess.run([SBXD, "--token-file", str(tf)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "use at least 16" in p.stderr
    env = {k: v for k, v in __import__("os").environ.items() if k != "SBXD_TOKEN"}
    p = subprocess.run([SBXD], capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 2 and "no service token" in p.stderr
    p = subprocess.run([SBXD, "--token", "x"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "unknown option '--token'" in p.stderr


# ------------------------------------------------------- beyond sandboxd

def sse_events(body: bytes):
    events = []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_exec_stream_sends_output_as_it_comes(server):
    import http.client
    import time
    sid, tok = server.session()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/sessions/%s/exec_stream" % sid,
                 json.dumps({"command": "echo one; sleep 1.5; echo two >&2; exit 4"}),
                 {"X-Sandbox-Token": tok, "Content-Type": "application/json"})
    t0 = time.time()
    r = conn.getresponse()
    assert r.status == 200 and r.headers["Content-Type"] == "text/event-stream"
    first = b""
    while b"\n\n" not in first:
        first += r.read1(65536)
    # The first line arrives before the command ends.
    assert time.time() - t0 < 1.2, time.time() - t0
    rest = r.read()
    conn.close()
    events = sse_events(first + rest)
    assert events == [("output", {"stream": "stdout", "text": "one\n"}),
                      ("output", {"stream": "stderr", "text": "two\n"}),
                      ("exit", {"exit_code": 4, "truncated": False, "timed_out": False})]
    r = server.op(sid, tok, "exec_stream", {"command": "sleep 5", "timeout_seconds": 1})
    assert sse_events(r.body)[-1] == ("exit", {"exit_code": 124, "truncated": False,
                                               "timed_out": True})
    assert server.op(sid, tok, "exec_stream", {}).status == 422
    _, other = server.session()
    assert server.op(sid, other, "exec_stream", {"command": "true"}).status == 401
    ev = server.request("GET", "/sessions/%s/events" % sid, token=tok).json()["events"]
    assert [(e["op"], e["detail"]) for e in ev] == [("exec", "exit 4"), ("exec", "exit 124")]


def test_exec_stream_client_gone_cancels_the_command(server):
    import http.client
    import time
    sid, tok = server.session()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/sessions/%s/exec_stream" % sid,
                 json.dumps({"command": "while true; do echo tick; sleep 0.1; done"}),
                 {"X-Sandbox-Token": tok, "Content-Type": "application/json"})
    r = conn.getresponse()
    r.read1(100)
    conn.close()
    deadline = time.time() + 20
    while time.time() < deadline:
        ps = server.op(sid, tok, "exec", {"command": "ps | grep -c '[s]leep 0.1'"}).json()
        if ps["output"].strip() == "0":
            break
        time.sleep(0.3)
    assert ps["output"].strip() == "0", "the command still runs after its client left"


def test_background_processes_and_kill_all(server):
    import time
    sid, tok = server.session()
    r = server.request("POST", "/sessions/%s/bg" % sid, {"command": "echo started; sleep 30"},
                       token=tok)
    assert r.status == 200
    bg = r.json()["id"]
    r = server.request("POST", "/sessions/%s/bg" % sid, {"command": "echo quick; exit 3"},
                       token=tok)
    quick = r.json()["id"]
    time.sleep(0.5)
    rows = server.request("GET", "/sessions/%s/bg" % sid, token=tok).json()
    by_id = {row["id"]: row for row in rows}
    assert by_id[bg]["running"] is True and by_id[bg]["command"] == "echo started; sleep 30"
    assert by_id[quick] == {**by_id[quick], "running": False, "exit_code": 3}
    r = server.request("GET", "/sessions/%s/bg/%s" % (sid, bg), token=tok).json()
    assert r == {"output": "started\n", "running": True, "exit_code": None, "dropped": 0}
    r = server.request("GET", "/sessions/%s/bg/%s" % (sid, bg), token=tok).json()
    assert r["output"] == ""
    r = server.request("DELETE", "/sessions/%s/bg/%s" % (sid, bg), token=tok)
    assert r.status == 204
    assert server.request("GET", "/sessions/%s/bg/nosuch" % sid, token=tok).status == 404
    assert server.request("POST", "/sessions/%s/bg" % sid, {}, token=tok).status == 422
    r = server.request("PUT", "/sessions/%s/bg" % sid, token=tok)
    assert r.status == 405 and r.headers["Allow"] == "GET, POST"
    server.request("POST", "/sessions/%s/bg" % sid, {"command": "sleep 60"}, token=tok)
    server.request("POST", "/sessions/%s/bg" % sid, {"command": "sleep 61"}, token=tok)
    r = server.request("POST", "/sessions/%s/kill_all" % sid, token=tok)
    assert r.status == 200 and r.json()["killed"] >= 2
    out = server.op(sid, tok, "exec", {"command": "ps | grep -c '[s]leep 6'"}).json()["output"]
    assert out.strip() == "0"
    _, other = server.session()
    assert server.request("GET", "/sessions/%s/bg" % sid, token=other).status == 401
    assert server.request("POST", "/sessions/%s/kill_all" % sid, token=other).status == 401


def test_a_huge_announced_body_is_refused_before_it_is_sent(server):
    import socket
    sid, tok = server.session()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(("POST /sessions/%s/write HTTP/1.1\r\nHost: localhost\r\nX-Sandbox-Token: %s\r\n"
                  "Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
                  % (sid, tok)).encode())
    head = sock.recv(4096).decode()
    sock.close()
    assert head.startswith("HTTP/1.1 413 "), head


def test_delete_and_create_of_one_id_do_not_cross(server):
    import threading
    sid, tok = server.session("race-1")
    results = []

    def create():
        import time
        deadline = time.time() + 60
        while time.time() < deadline:
            r = server.open("race-1")
            results.append(r.status)
            if r.status == 200:
                return
            time.sleep(0.02)

    t = threading.Thread(target=create)
    t.start()
    assert server.request("DELETE", "/sessions/race-1", token=tok).status == 204
    t.join(60)
    # Refused while the old one was there or closing, then made anew, and it works.
    assert set(results) <= {409, 200} and results[-1] == 200, results
    new_tok = server.open("race-1", reuse=True).json()["token"]
    r = server.op("race-1", new_tok, "exec", {"command": "echo fresh"})
    assert r.status == 200 and r.json()["output"] == "fresh\n"


def test_an_operation_past_the_ceiling_is_504(fresh):
    s = fresh("--execute-timeout", "1", "--max-read-bytes", "1GiB").start()
    sid, tok = s.session()
    assert s.op(sid, tok, "exec", {"command": "truncate -s 9G big"}).json()["exit_code"] == 0
    import time
    t0 = time.time()
    r = s.op(sid, tok, "read_bytes", {"path": "big"})
    assert r.status == 504 and r.json() == {"detail": "Operation exceeded the 1s service ceiling"}
    assert time.time() - t0 < 10
    # exec's own timeout is min(timeout_seconds, the ceiling): exit 124, not a 504.
    r = s.op(sid, tok, "exec", {"command": "sleep 5", "timeout_seconds": 60})
    assert r.status == 200 and r.json()["exit_code"] == 124
    ev = s.request("GET", "/sessions/%s/events" % sid, token=tok).json()["events"]
    assert (ev[1]["op"], ev[1]["ok"], ev[1]["detail"]) == \
        ("read_bytes", False, "Operation exceeded the 1s service ceiling")
