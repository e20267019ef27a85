"""/mcp: the transport's rules (Mcp-Session-Id, MCP-Protocol-Version,
Accept, Origin) and who may use an MCP session. The tools themselves are
tested with the official SDK client (tests/sbxd/mcp-http.t)."""
from __future__ import annotations

import base64
import json

from conftest import containers

ACCEPT = {"Accept": "application/json, text/event-stream"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "pytest", "version": "1"}}}


def mcp(server, body, token=None, session=None, headers=None):
    h = dict(ACCEPT)
    if session:
        h["Mcp-Session-Id"] = session
    h.update(headers or {})
    return server.request("POST", "/mcp", body, token=token, bearer=True, headers=h)


def initialize(server, token):
    r = mcp(server, INIT, token=token)
    assert r.status == 200, r
    assert r.json()["result"]["protocolVersion"] == "2025-11-25"
    sid = r.headers["Mcp-Session-Id"]
    assert len(sid) == 32
    assert mcp(server, {"jsonrpc": "2.0", "method": "notifications/initialized"}, token=token,
               session=sid).status == 202
    return sid


def call(server, token, sid, tool, args, id=2):
    r = mcp(server, {"jsonrpc": "2.0", "id": id, "method": "tools/call",
                     "params": {"name": tool, "arguments": args}}, token=token, session=sid)
    assert r.status == 200, r
    res = r.json()["result"]
    return "".join(c["text"] for c in res["content"]), res.get("isError", False)


def test_transport_rules(server):
    assert mcp(server, INIT).status == 401
    assert mcp(server, INIT).headers["WWW-Authenticate"] == "Bearer"
    assert mcp(server, INIT, token="wrong").status == 401
    sid = initialize(server, server.token)
    ping = {"jsonrpc": "2.0", "id": 7, "method": "ping"}
    assert mcp(server, ping, token=server.token, session=sid).json() == \
        {"jsonrpc": "2.0", "id": 7, "result": {}}
    # No session header, an unknown one, and a wrong token are refused alike.
    assert mcp(server, ping, token=server.token).status == 400
    assert mcp(server, ping, token=server.token, session="0" * 32).status == 404
    _, other = server.session()
    assert mcp(server, ping, token=other, session=sid).status == 404
    r = mcp(server, ping, token=server.token, session=sid,
            headers={"MCP-Protocol-Version": "1999-01-01"})
    assert r.status == 400
    assert mcp(server, ping, token=server.token, session=sid,
               headers={"MCP-Protocol-Version": "2025-06-18"}).status == 200
    r = server.request("POST", "/mcp", ping, token=server.token, bearer=True,
                       headers={"Mcp-Session-Id": sid, "Accept": "application/json"})
    assert r.status == 406
    r = server.request("POST", "/mcp", None, raw=b"{bad", token=server.token, bearer=True,
                       headers={**ACCEPT, "Mcp-Session-Id": sid})
    assert r.status == 400 and r.json()["error"]["code"] == -32700
    r = server.request("GET", "/mcp", token=server.token, bearer=True, headers=ACCEPT)
    assert r.status == 405 and r.headers["Allow"] == "POST, DELETE"
    r = mcp(server, INIT, token=server.token, headers={"Origin": "http://evil.example"})
    assert r.status == 403
    r = mcp(server, INIT, token=server.token, session=sid)
    assert r.status == 400
    # DELETE ends it.
    r = server.request("DELETE", "/mcp", token=server.token, bearer=True,
                       headers={"Mcp-Session-Id": sid})
    assert r.status == 204
    assert mcp(server, ping, token=server.token, session=sid).status == 404


def test_a_session_token_binds_the_mcp_session_to_its_sandbox(server):
    sid, tok = server.session("mcp-bound")
    server.op(sid, tok, "write", {"path": "note.txt",
                                  "content_b64": base64.b64encode(b"from REST\n").decode()})
    msid = initialize(server, tok)
    text, err = call(server, tok, msid, "read_file", {"path": "note.txt"})
    assert not err and text == "     1\tfrom REST\n"
    text, err = call(server, tok, msid, "execute", {"command": "echo via mcp > out.txt"}, id=3)
    assert not err, text
    r = server.op(sid, tok, "exec", {"command": "cat out.txt"})
    assert r.json()["output"] == "via mcp\n"
    # The tool calls are in the session's events.
    ev = server.request("GET", "/sessions/%s/events" % sid, token=tok).json()["events"]
    assert [(e["op"], e["target"]) for e in ev][-3:] == \
        [("mcp", "read_file"), ("mcp", "execute"), ("exec", "cat out.txt")]
    # Ending the MCP session leaves the sandbox session as it was.
    server.request("DELETE", "/mcp", token=tok, bearer=True, headers={"Mcp-Session-Id": msid})
    assert server.op(sid, tok, "exists", {"path": "out.txt"}).json() == {"exists": True}
    # Another session's token cannot reach this MCP session.
    msid = initialize(server, tok)
    _, other = server.session()
    r = mcp(server, {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                     "params": {"name": "ls", "arguments": {}}}, token=other, session=msid)
    assert r.status == 404


def test_the_service_token_gets_a_sandbox_of_its_own(server):
    before = len(containers(server.name))
    msid = initialize(server, server.token)
    # No sandbox before a tool needs one.
    text, err = call(server, server.token, msid, "list_shells", {})
    assert text.strip() == "No background processes." and len(containers(server.name)) == before
    text, err = call(server, server.token, msid, "execute", {"command": "echo hi"}, id=3)
    assert not err and "hi" in text
    assert len(containers(server.name)) == before + 1
    sessions = server.request("GET", "/sessions", token=server.token).json()["sessions"]
    assert any(s["session_id"].startswith("s-") for s in sessions)
    r = server.request("DELETE", "/mcp", token=server.token, bearer=True,
                       headers={"Mcp-Session-Id": msid})
    assert r.status == 204
    assert len(containers(server.name)) == before


def test_mcp_permissions_are_enforced(fresh):
    s = fresh("--mcp-permissions", "readonly").start()
    msid = initialize(s, s.token)
    r = mcp(s, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, token=s.token, session=msid)
    names = {t["name"] for t in r.json()["result"]["tools"]}
    assert "read_file" in names and "execute" not in names and "write_file" not in names
    r = mcp(s, {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                "params": {"name": "write_file", "arguments": {"path": "x", "content": "y"}}},
            token=s.token, session=msid)
    assert r.json()["error"]["code"] == -32602 and "readonly" in r.json()["error"]["message"]
    text, err = call(s, s.token, msid, "read_file", {"path": "/root/.ssh/id_rsa"}, id=4)
    assert err and ".ssh" in text
    json.dumps(text)


def test_mcp_sessions_per_token_are_bounded(server):
    _, tok = server.session()
    made = []
    for i in range(64):
        r = mcp(server, INIT, token=tok)
        assert r.status == 200, (i, r)
        made.append(r.headers["Mcp-Session-Id"])
    r = mcp(server, INIT, token=tok)
    assert r.status == 429 and "Too many MCP sessions for this token" in r.json()["error"]["message"]
    # Another token is not held back by this one.
    _, other = server.session()
    assert mcp(server, INIT, token=other).status == 200
    for sid in made:
        server.request("DELETE", "/mcp", token=tok, bearer=True, headers={"Mcp-Session-Id": sid})
    assert mcp(server, INIT, token=tok).status == 200


def test_mcp_recovers_a_lost_sandbox(server):
    from conftest import docker
    sid, tok = server.session("mcp-lost")
    msid = initialize(server, tok)
    text, err = call(server, tok, msid, "execute", {"command": "echo one > one.txt"})
    assert not err, text
    for c in containers(server.name):
        if "/mcp-lost/workspace" in docker("inspect", "-f", "{{range .Mounts}}{{.Source}} {{end}}",
                                          c[0]):
            docker("rm", "-f", c[0])
    # The call that meets the dead sandbox fails; the next gets a new one, files kept.
    text, err = call(server, tok, msid, "execute", {"command": "cat one.txt"}, id=3)
    if err:
        text, err = call(server, tok, msid, "execute", {"command": "cat one.txt"}, id=4)
    assert not err and "one" in text, text
