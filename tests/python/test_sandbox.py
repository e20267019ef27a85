"""DockerSandbox against the real engine: every method, its results and its
error paths, with the seed's semantics (REFERENCE.md section 1)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import warnings

import pytest

import sbx
from sbx import (BackgroundOutput, BackgroundProcess, EditResult, ExecuteResponse, RunResult,
                 WriteResult)

from conftest import BUSYBOX, container_state, inspect, purge_container, sbx_containers


# ====================================================================== execute

def test_execute_combines_stdout_and_stderr_with_exit_code(shared_sb):
    r = shared_sb.execute("echo hi; echo err >&2; echo hi2; exit 3")
    assert r == ExecuteResponse(output="hi\nerr\nhi2\n", exit_code=3, truncated=False)


def test_execute_runs_sh_in_work_dir(shared_sb):
    assert shared_sb.execute("pwd").output == "/workspace\n"
    assert shared_sb.execute("echo $0; exit 0") == ExecuteResponse("sh\n", 0, False)


def test_execute_decodes_utf8_and_replaces_invalid_bytes(shared_sb):
    r = shared_sb.execute(r"printf 'caf\303\251 \377\n'")
    assert r == ExecuteResponse(output="caf\u00e9 \ufffd\n", exit_code=0, truncated=False)


def test_execute_output_truncated_past_100000_bytes(shared_sb):
    r = shared_sb.execute("head -c 150000 /dev/zero | tr '\\0' a")
    assert r.exit_code == 0
    assert r.truncated is True
    assert r.output == "a" * 100000


def test_execute_output_of_exactly_100000_bytes_not_truncated(shared_sb):
    r = shared_sb.execute("head -c 100000 /dev/zero | tr '\\0' b")
    assert r == ExecuteResponse(output="b" * 100000, exit_code=0, truncated=False)


def test_execute_timeout_gives_124_partial_output_and_returns_fast(shared_sb):
    t0 = time.monotonic()
    r = shared_sb.execute("echo begun; sleep 30", timeout=1)
    elapsed = time.monotonic() - t0
    assert r == ExecuteResponse(output="begun\n", exit_code=124, truncated=False)
    assert 0.9 <= elapsed < 3.0, elapsed


def test_execute_timeout_kills_the_whole_process_tree(shared_sb):
    r = shared_sb.execute("sh -c 'sleep 41 & sleep 42'; echo never", timeout=0.5)
    assert r == ExecuteResponse(output="", exit_code=124, truncated=False)
    ps = shared_sb.execute("ps")
    assert "sleep 41" not in ps.output and "sleep 42" not in ps.output, ps.output


def test_execute_default_timeout_applies_when_none_given(make_sandbox):
    sb = make_sandbox(default_timeout=0.5)
    t0 = time.monotonic()
    assert sb.execute("echo x; sleep 20") == ExecuteResponse("x\n", 124, False)
    assert time.monotonic() - t0 < 3.0


# ======================================================================== files

def test_read_missing_file_returns_error_string(shared_sb, workdir):
    text = shared_sb.read(workdir + "/missing.txt")
    assert isinstance(text, str)
    assert text.startswith("Error")
    assert "not found" in text
    assert text == "Error: File '%s/missing.txt' not found" % workdir


def test_read_numbers_lines_like_the_other_backends(shared_sb, workdir):
    shared_sb.write(workdir + "/a.txt", "one\ntwo\nthree\n")
    assert shared_sb.read(workdir + "/a.txt") == "     1\tone\n     2\ttwo\n     3\tthree\n"


def test_read_offset_and_limit(shared_sb, workdir):
    shared_sb.write(workdir + "/a.txt", "one\ntwo\nthree\n")
    assert shared_sb.read(workdir + "/a.txt", 1, 1) == (
        "     2\ttwo\n... more lines follow; read on with offset=2\n")
    assert shared_sb.read(workdir + "/a.txt", offset=2) == "     3\tthree\n"
    assert shared_sb.read(workdir + "/a.txt", offset=5) == ""


def test_read_default_limit_is_2000_lines(shared_sb, workdir):
    shared_sb.write(workdir + "/long.txt", "".join("l%d\n" % i for i in range(2500)))
    text = shared_sb.read(workdir + "/long.txt")
    lines = text.split("\n")
    assert lines[0] == "     1\tl0"
    assert lines[1999] == "  2000\tl1999"
    assert lines[2000:] == ["... more lines follow; read on with offset=2000", ""]


def test_read_empty_file_is_empty_not_missing(shared_sb, workdir):
    shared_sb.write(workdir + "/empty.txt", "")
    assert shared_sb.read(workdir + "/empty.txt") == ""
    assert shared_sb.read_bytes(workdir + "/empty.txt") == b""
    assert shared_sb.exists(workdir + "/empty.txt") is True


def test_read_of_a_directory_is_an_error_string(shared_sb, workdir):
    assert shared_sb.read(workdir) == "Error: %s is a directory" % workdir


def test_read_bytes_missing_file_returns_empty_bytes(shared_sb, workdir):
    assert shared_sb.read_bytes(workdir + "/missing.bin") == b""


def test_exists_true_for_regular_files_only(shared_sb, workdir):
    shared_sb.write(workdir + "/f.txt", "x")
    shared_sb.execute("mkdir %s/d && ln -s %s/f.txt %s/link" % (workdir, workdir, workdir))
    assert shared_sb.exists(workdir + "/f.txt") is True
    assert shared_sb.exists(workdir + "/link") is True  # a link to a regular file
    assert shared_sb.exists(workdir + "/d") is False
    assert shared_sb.exists(workdir) is False
    assert shared_sb.exists(workdir + "/missing") is False


def test_relative_paths_resolve_against_work_dir(shared_sb, workdir):
    rel = workdir[len("/workspace/"):] + "/rel.txt"
    assert shared_sb.write(rel, "relative\n") == WriteResult(path=rel, error=None)
    assert shared_sb.read_bytes(workdir + "/rel.txt") == b"relative\n"
    assert shared_sb.exists(rel) is True


def test_write_returns_write_result_and_makes_parent_folders(shared_sb, workdir):
    path = workdir + "/a/b/c/new.txt"
    assert shared_sb.write(path, "hello\n") == WriteResult(path=path, error=None)
    assert shared_sb.read_bytes(path) == b"hello\n"
    assert shared_sb.execute("cat " + path).output == "hello\n"


def test_write_binary_round_trip_all_256_byte_values(shared_sb, workdir):
    data = bytes(range(256)) * 3
    assert shared_sb.write(workdir + "/all.bin", data) == WriteResult(workdir + "/all.bin", None)
    assert shared_sb.read_bytes(workdir + "/all.bin") == data
    assert shared_sb.execute("wc -c < %s/all.bin" % workdir).output.strip() == "768"


def test_write_str_is_utf8(shared_sb, workdir):
    shared_sb.write(workdir + "/u.txt", "h\u00e9llo \u2603\n")
    assert shared_sb.read_bytes(workdir + "/u.txt") == "h\u00e9llo \u2603\n".encode("utf-8")
    assert shared_sb.read(workdir + "/u.txt") == "     1\th\u00e9llo \u2603\n"


def test_write_overwrites(shared_sb, workdir):
    shared_sb.write(workdir + "/o.txt", "first version, longer\n")
    shared_sb.write(workdir + "/o.txt", "second\n")
    assert shared_sb.read_bytes(workdir + "/o.txt") == b"second\n"


def test_write_under_a_file_is_an_error_result(shared_sb, workdir):
    shared_sb.write(workdir + "/file", "x")
    r = shared_sb.write(workdir + "/file/sub", "y")
    assert r == WriteResult(path=None,
                            error="Error: cannot write %s/file/sub: Not a directory" % workdir)


def test_edit_single_occurrence(shared_sb, workdir):
    p = workdir + "/e.txt"
    shared_sb.write(p, "foo bar foo baz foo\n")
    assert shared_sb.edit(p, "bar", "BAR") == EditResult(path=p, error=None, occurrences=1)
    assert shared_sb.read_bytes(p) == b"foo BAR foo baz foo\n"


def test_edit_ambiguous_is_refused_with_the_count(shared_sb, workdir):
    p = workdir + "/e.txt"
    shared_sb.write(p, "foo bar foo baz foo\n")
    r = shared_sb.edit(p, "foo", "X")
    assert r.path is None and r.occurrences is None
    assert "3 times" in r.error
    assert "replace_all" in r.error
    assert r.error == ("Error: the old text occurs 3 times in %s; add surrounding lines to make "
                       "it unique, or replace all occurrences (replace_all=True)" % p)
    assert shared_sb.read_bytes(p) == b"foo bar foo baz foo\n"


def test_edit_replace_all(shared_sb, workdir):
    p = workdir + "/e.txt"
    shared_sb.write(p, "foo bar foo baz foo\n")
    assert shared_sb.edit(p, "foo", "Y", replace_all=True) == EditResult(p, None, 3)
    assert shared_sb.read_bytes(p) == b"Y bar Y baz Y\n"


def test_edit_absent_text_is_an_error(shared_sb, workdir):
    p = workdir + "/e.txt"
    shared_sb.write(p, "abc\n")
    r = shared_sb.edit(p, "nope", "x")
    assert r == EditResult(path=None, error="Error: the old text was not found in %s; read the "
                           "file and copy the text exactly, including whitespace" % p,
                           occurrences=None)
    assert shared_sb.read_bytes(p) == b"abc\n"


def test_edit_missing_file_is_an_error(shared_sb, workdir):
    r = shared_sb.edit(workdir + "/missing.txt", "a", "b")
    assert r == EditResult(path=None, error="Error: cannot open %s/missing.txt: No such file or "
                           "directory" % workdir, occurrences=None)


def test_edit_keeps_non_utf8_bytes(shared_sb, workdir):
    p = workdir + "/latin1.txt"
    shared_sb.write(p, b"caf\xe9 old\n")
    assert shared_sb.edit(p, "old", "new") == EditResult(p, None, 1)
    assert shared_sb.read_bytes(p) == b"caf\xe9 new\n"


def test_ls_info_directories_first_then_by_name(shared_sb, workdir):
    shared_sb.execute("cd %s && mkdir zdir adir && printf 123 > b.txt && printf 1 > a.txt "
                      "&& printf 12345 > c.py" % workdir)
    dsize = int(shared_sb.execute("stat -c %%s %s/adir" % workdir).output)
    zsize = int(shared_sb.execute("stat -c %%s %s/zdir" % workdir).output)
    assert shared_sb.ls_info(workdir) == [
        {"name": "adir", "path": workdir + "/adir", "is_dir": True, "size": dsize},
        {"name": "zdir", "path": workdir + "/zdir", "is_dir": True, "size": zsize},
        {"name": "a.txt", "path": workdir + "/a.txt", "is_dir": False, "size": 1},
        {"name": "b.txt", "path": workdir + "/b.txt", "is_dir": False, "size": 3},
        {"name": "c.py", "path": workdir + "/c.py", "is_dir": False, "size": 5},
    ]


def test_ls_info_missing_path_is_empty(shared_sb, workdir):
    assert shared_sb.ls_info(workdir + "/missing") == []


def test_ls_info_default_is_work_dir(make_sandbox):
    sb = make_sandbox()
    sb.write("/workspace/one.txt", "1")
    assert sb.ls_info() == [{"name": "one.txt", "path": "/workspace/one.txt", "is_dir": False,
                             "size": 1}]


def test_glob_info(shared_sb, workdir):
    shared_sb.execute("cd %s && mkdir -p sub/deeper && printf ab > top.py && printf abc > "
                      "sub/x.py && printf abcd > sub/deeper/y.py && printf z > sub/n.txt" % workdir)
    top = {"name": "top.py", "path": workdir + "/top.py", "is_dir": False, "size": 2}
    x = {"name": "x.py", "path": workdir + "/sub/x.py", "is_dir": False, "size": 3}
    y = {"name": "y.py", "path": workdir + "/sub/deeper/y.py", "is_dir": False, "size": 4}
    n = {"name": "n.txt", "path": workdir + "/sub/n.txt", "is_dir": False, "size": 1}
    assert shared_sb.glob_info("*.py", workdir) == [top]
    # ** matches top-level files too (the seed's missed them), sorted by path.
    assert shared_sb.glob_info("**/*.py", workdir) == [y, x, top]
    assert shared_sb.glob_info("sub/*.{py,txt}", workdir) == [n, x]
    assert shared_sb.glob_info("*.rs", workdir) == []
    assert shared_sb.glob_info("*.py", workdir + "/missing") == []


def _grep_tree(sb, d):
    sb.write(d + "/.hidden", "needle hidden\n")
    sb.write(d + "/vis.py", "x = 1\nneedle py\n")
    sb.write(d + "/vis.txt", "needle txt\nno\n")
    sb.write(d + "/.git/config", "needle in git\n")


def test_grep_raw_returns_grep_matches(shared_sb, workdir):
    _grep_tree(shared_sb, workdir)
    assert shared_sb.grep_raw("needle", workdir) == [
        {"path": workdir + "/vis.py", "line_number": 2, "line": "needle py"},
        {"path": workdir + "/vis.txt", "line_number": 1, "line": "needle txt"},
    ]


def test_grep_raw_ignore_hidden(shared_sb, workdir):
    _grep_tree(shared_sb, workdir)
    visible = shared_sb.grep_raw("needle", workdir)
    assert all("/." not in m["path"] for m in visible)
    everything = shared_sb.grep_raw("needle", workdir, ignore_hidden=False)
    assert {"path": workdir + "/.hidden", "line_number": 1, "line": "needle hidden"} in everything
    assert {"path": workdir + "/.git/config", "line_number": 1,
            "line": "needle in git"} in everything
    assert sorted(m["path"] for m in everything) == sorted(
        [workdir + "/.hidden", workdir + "/.git/config", workdir + "/vis.py",
         workdir + "/vis.txt"])


def test_grep_raw_glob_filter(shared_sb, workdir):
    _grep_tree(shared_sb, workdir)
    assert shared_sb.grep_raw("needle", workdir, glob="*.py") == [
        {"path": workdir + "/vis.py", "line_number": 2, "line": "needle py"}]


def test_grep_raw_invalid_regex_is_an_error_string(shared_sb, workdir):
    r = shared_sb.grep_raw("(", workdir)
    assert isinstance(r, str)
    assert r.startswith("Error")
    assert r == "Error: invalid regular expression at offset 1: missing closing parenthesis"


def test_grep_raw_pcre_quotes_and_single_file(shared_sb, workdir):
    p = workdir + "/q.txt"
    shared_sb.write(p, "it's a test\nfoo\tbar\n")
    # A quote, \s, and a single file as the path: all broke in the seed.
    assert shared_sb.grep_raw("it's", p) == [{"path": p, "line_number": 1, "line": "it's a test"}]
    assert shared_sb.grep_raw(r"foo\sbar", workdir) == [
        {"path": p, "line_number": 2, "line": "foo\tbar"}]
    assert shared_sb.grep_raw("absent-text", workdir) == []


# ==================================================================== lifecycle

def test_lazy_start_no_container_until_first_operation(make_sandbox):
    before = sbx_containers()
    sb = make_sandbox()
    assert sbx_containers() - before == set()
    assert sb.id is None and sb.container_id is None and sb.image is None
    assert sb.is_alive() is False
    assert sb.execute("echo up").output == "up\n"
    name = sb.container_id
    assert name is not None and name.startswith("sbx-")
    assert inspect(name)["Id"] in sbx_containers() - before
    assert sb.is_alive() is True
    assert sb.image == BUSYBOX


def test_start_stop_is_alive_auto_remove(make_sandbox):
    sb = make_sandbox()
    sb.start()
    name = sb.container_id
    assert sb.is_alive() is True
    assert container_state(name) == "running"
    sb.stop()
    assert sb.is_alive() is False
    assert container_state(name) is None  # auto_remove=True: gone


def test_stop_of_never_started_sandbox_is_a_no_op(make_sandbox):
    before = sbx_containers()
    sb = make_sandbox()
    sb.stop()
    sb.remove()
    assert sb.is_alive() is False and sb.id is None
    assert sbx_containers() - before == set()


def test_auto_remove_false_keeps_stopped_container_until_remove(make_sandbox):
    sb = make_sandbox(auto_remove=False)
    sb.start()
    name = sb.container_id
    sb.stop()
    assert sb.is_alive() is False
    assert container_state(name) == "exited"
    sb.remove()
    assert container_state(name) is None


def test_id_is_sandbox_id_else_container_name(make_sandbox):
    a = make_sandbox(sandbox_id="my-sandbox")
    assert a.id == "my-sandbox" and a.container_id is None
    a.start()
    assert a.id == "my-sandbox" and a.container_id.startswith("sbx-")
    b = make_sandbox()
    assert b.id is None
    b.start()
    assert b.id == b.container_id
    assert repr(b) == "DockerSandbox(id=%r)" % b.container_id


def test_context_manager_removes_container():
    with sbx.DockerSandbox(image=BUSYBOX) as sb:
        assert sb.execute("echo in").output == "in\n"
        name = sb.container_id
        assert container_state(name) == "running"
    assert container_state(name) is None
    assert sb.is_alive() is False


def test_container_name_is_used(make_sandbox):
    name = "pytest-named-%d" % os.getpid()
    sb = make_sandbox(container_name=name)
    sb.start()
    assert sb.container_id == name
    assert container_state(name) == "running"


def test_named_container_kept_after_stop(make_sandbox):
    """The seed: "stop() removes it (kept when named)" (REFERENCE.md 1):
    container_name implies auto_remove=False there."""
    name = "pytest-kept-%d" % os.getpid()
    sb = make_sandbox(container_name=name)
    sb.start()
    sb.stop()
    assert container_state(name) == "exited"


def test_operation_after_stop_starts_a_new_container(make_sandbox):
    """The seed's stop() forgets the container; the next operation lazily
    starts a fresh one (as the first operation does)."""
    sb = make_sandbox()
    sb.start()
    first = sb.container_id
    sb.stop()
    r = sb.execute("echo again")
    assert r == ExecuteResponse("again\n", 0, False)
    assert sb.is_alive() is True
    assert sb.container_id != first


def test_missing_image_raises_and_later_operations_say_why(make_sandbox):
    sb = make_sandbox(image="sbx-test/nonexistent:0")
    with pytest.raises(sbx.SbxError) as e:
        sb.start()
    assert e.value.code == "image_missing"
    assert str(e.value).startswith("image sbx-test/nonexistent:0 is not present and could not "
                                   "be pulled")
    assert sb.is_alive() is False
    r = sb.execute("echo x")
    assert r.exit_code == 125
    assert r.output.startswith("Error: image sbx-test/nonexistent:0 is not present"), r.output


def test_forgotten_sandbox_is_removed_when_the_process_exits():
    code = ("import sys; sys.path[:0] = %r\n"
            "import sbx\n"
            "sb = sbx.DockerSandbox(image=%r)\n"
            "sb.execute('true')\n"
            "print(sb.container_id)\n" % ([p for p in sys.path if p], BUSYBOX))
    p = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    name = p.stdout.strip()
    assert name.startswith("sbx-")
    assert container_state(name) is None


# ========================================================================= run()

def test_run_separates_stdout_and_stderr(shared_sb):
    assert shared_sb.run("echo out; echo err >&2; exit 2") == RunResult(
        stdout="out\n", stderr="err\n", exit_code=2, truncated=False, timed_out=False,
        oom_killed=False)


def test_run_stdin_bytes_and_str(shared_sb):
    assert shared_sb.run("cat", stdin=b"abc\x00def\xff").stdout == "abc\x00def\ufffd"
    assert shared_sb.run("wc -c", stdin=b"abc\x00def\xff").stdout.strip() == "8"
    assert shared_sb.run("cat", stdin="h\u00e9llo").stdout == "h\u00e9llo"
    assert shared_sb.run("wc -c", stdin="h\u00e9llo").stdout.strip() == "6"


def test_run_cwd_and_env(shared_sb):
    assert shared_sb.run("pwd", cwd="/tmp").stdout == "/tmp\n"
    assert shared_sb.run("echo \"$FOO|$BAR\"", env={"FOO": "bar baz", "BAR": "1"}).stdout == (
        "bar baz|1\n")
    # Variables given to run() are for that command only.
    assert shared_sb.run("echo \"[$FOO]\"").stdout == "[]\n"


def test_run_timeout_and_max_output(shared_sb):
    r = shared_sb.run("echo a; sleep 20", timeout=0.5)
    assert r == RunResult(stdout="a\n", stderr="", exit_code=124, truncated=False,
                          timed_out=True, oom_killed=False)
    r = shared_sb.run("echo 0123456789abcdef", max_output=10)
    assert (r.stdout, r.truncated, r.exit_code) == ("0123456789", True, 0)


def test_run_on_output_receives_chunks(shared_sb):
    chunks = []
    r = shared_sb.run("echo a; sleep 0.3; echo b >&2; sleep 0.3; echo c",
                      on_output=lambda stream, data: chunks.append((stream, data)))
    assert r.stdout == "a\nc\n" and r.stderr == "b\n" and r.exit_code == 0
    assert chunks == [("stdout", b"a\n"), ("stderr", b"b\n"), ("stdout", b"c\n")]


def test_run_on_output_returning_true_cancels(shared_sb):
    seen = []

    def stop(stream, data):
        seen.append(data)
        return True

    t0 = time.monotonic()
    r = shared_sb.run("echo go; sleep 30; echo never", on_output=stop)
    assert time.monotonic() - t0 < 5
    assert seen == [b"go\n"]
    assert (r.stdout, r.exit_code, r.timed_out) == ("go\n", 137, False)
    ps = shared_sb.execute("ps").output
    assert "sleep 30" not in ps, ps


def test_run_on_output_exception_propagates(shared_sb):
    class Boom(Exception):
        pass

    def boom(stream, data):
        raise Boom("from the callback")

    t0 = time.monotonic()
    with pytest.raises(Boom, match="from the callback"):
        shared_sb.run("echo go; sleep 30", on_output=boom)
    assert time.monotonic() - t0 < 5
    # The sandbox is still usable afterwards.
    assert shared_sb.execute("echo fine").output == "fine\n"


def test_run_on_output_calling_the_same_sandbox_does_not_hang():
    """A callback that uses its own sandbox (say, to read a file the command
    just wrote) must get an answer or an error, never hang for ever."""
    sb = sbx.DockerSandbox(image=BUSYBOX)
    sb.start()
    name = sb.container_id
    results = []

    def cb(stream, data):
        results.append(sb.exists("/etc/hostname"))

    def worker():
        try:
            results.append(sb.run("echo x", on_output=cb))
        except Exception as e:  # an error is an acceptable answer
            results.append(e)

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    t.join(3)
    hung = t.is_alive()
    if hung:
        # The handle's lock is held for ever: remove the container by hand.
        with sbx._sandbox._live_lock:
            sbx._sandbox._live.discard(sb)
        purge_container(name)
    else:
        sb.remove()
    assert not hung, "run(on_output=...) deadlocked when the callback used the same sandbox"


# ========================================================= background processes

def test_background_process_lifecycle(shared_sb):
    pid = shared_sb.execute_background("echo start; sleep 0.5; echo end; exit 7")
    assert isinstance(pid, str)
    listed = [p for p in shared_sb.list_background() if p.id == pid]
    assert len(listed) == 1
    p = listed[0]
    assert isinstance(p, BackgroundProcess)
    assert (p.command, p.running, p.exit_code, p.dropped) == (
        "echo start; sleep 0.5; echo end; exit 7", True, None, 0)
    assert p.pid > 1
    output = ""
    deadline = time.monotonic() + 10
    while True:
        o = shared_sb.read_background(pid)
        assert isinstance(o, BackgroundOutput)
        output += o.output
        if not o.running:
            break
        assert o.exit_code is None
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert output == "start\nend\n"
    assert o.exit_code == 7
    # Read again: nothing new, the same end.
    assert shared_sb.read_background(pid) == BackgroundOutput(output="", running=False,
                                                              exit_code=7)
    p = [p for p in shared_sb.list_background() if p.id == pid][0]
    assert (p.running, p.exit_code) == (False, 7)


def test_background_cwd_and_env(shared_sb):
    pid = shared_sb.execute_background("echo \"$V in $(pwd)\"", cwd="/tmp", env={"V": "val"})
    deadline = time.monotonic() + 10
    out = ""
    while True:
        o = shared_sb.read_background(pid)
        out += o.output
        if not o.running:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert (out, o.exit_code) == ("val in /tmp\n", 0)


def test_kill_background(shared_sb):
    pid = shared_sb.execute_background("sleep 100")
    assert shared_sb.kill_background(pid) is True
    deadline = time.monotonic() + 5
    while shared_sb.read_background(pid).running:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert shared_sb.read_background(pid) == BackgroundOutput("", False, 143)  # SIGTERM


def test_kill_background_unknown_id_returns_false(shared_sb):
    assert shared_sb.kill_background("999999") is False


def test_read_background_unknown_id_raises(shared_sb):
    with pytest.raises(sbx.SbxError) as e:
        shared_sb.read_background("999999")
    assert "999999" in str(e.value)


def test_kill_all(make_sandbox):
    sb = make_sandbox()
    sb.execute_background("sleep 100")
    sb.execute_background("sleep 101")
    deadline = time.monotonic() + 5
    while sum(p.running for p in sb.list_background()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert sb.kill_all() == 2
    assert all(not p.running for p in sb.list_background())
    ps = sb.execute("ps -o comm").output.split()
    assert "sleep" not in ps, ps
    assert sb.kill_all() == 0


# ======================================================================= options

def test_volume_file_written_inside_appears_on_host(make_sandbox, tmp_path):
    host = tmp_path / "data"
    host.mkdir()
    (host / "from-host.txt").write_text("host side\n")
    sb = make_sandbox(volumes={str(host): "/workspace/data"})
    assert sb.read_bytes("/workspace/data/from-host.txt") == b"host side\n"
    assert sb.write("/workspace/data/inside.txt", "written inside\n") == WriteResult(
        "/workspace/data/inside.txt", None)
    assert sb.execute("echo shell >> /workspace/data/inside.txt").exit_code == 0
    assert (host / "inside.txt").read_text() == "written inside\nshell\n"


def test_volume_read_only_mode(make_sandbox, tmp_path):
    host = tmp_path / "ro"
    host.mkdir()
    sb = make_sandbox(volumes={str(host): {"bind": "/workspace/ro", "mode": "ro"}})
    assert sb.write("/workspace/ro/x", "y").error is not None
    assert sb.execute("touch /workspace/ro/y").exit_code != 0
    assert list(host.iterdir()) == []


def test_volume_missing_host_path_raises_at_start(make_sandbox):
    before = sbx_containers()
    missing = "/nonexistent/sbx-pytest-%d" % os.getpid()
    sb = make_sandbox(volumes={missing: "/workspace/data"})  # lazy: no error yet
    with pytest.raises(sbx.SbxError) as e:
        sb.start()
    assert missing in str(e.value)
    assert e.value.code == "not_found"
    assert str(e.value) == (
        "volume %s:/workspace/data: its host path %s cannot be used (sbx creates nothing on "
        "the host; make it first): No such file or directory" % (missing, missing))
    assert sb.id is None and sb.is_alive() is False
    # execute reports it the seed's way: an error result, not an exception.
    r = sb.execute("echo x")
    assert r == ExecuteResponse(output="Error: " + str(e.value), exit_code=125, truncated=False)
    assert sbx_containers() - before == set()
    assert not os.path.exists(missing)


def test_volume_bad_spec_raises_value_error():
    with pytest.raises(ValueError):
        sbx.DockerSandbox(image=BUSYBOX, volumes={"/tmp": {"bind": "/x", "mode": "rx"}})


CGROUP_MEM = ("cat /sys/fs/cgroup/memory.max 2>/dev/null || "
              "cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
CGROUP_PIDS = "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max"


def test_mem_limit_and_pids_limit(make_sandbox):
    sb = make_sandbox(mem_limit="64m", pids_limit=32)
    assert sb.execute(CGROUP_MEM).output == "67108864\n"
    assert sb.execute(CGROUP_PIDS).output == "32\n"
    hc = inspect(sb.container_id)["HostConfig"]
    assert (hc["Memory"], hc["PidsLimit"]) == (64 * 1024 * 1024, 32)


def test_mem_limit_as_bytes_and_other_units(make_sandbox):
    sb = make_sandbox(mem_limit=96 * 1024 * 1024)
    assert sb.execute(CGROUP_MEM).output == "100663296\n"
    # Parsed at construction (nothing starts): docker-py's forms.
    forms = {"8192k": 8192 * 1024, "0.5g": 512 * 1024 ** 2, "1GiB": 1024 ** 3,
             "128MB": 128 * 1024 ** 2, " 64 m ": 64 * 1024 ** 2, "7340032": 7340032}
    for value, expected in forms.items():
        assert make_sandbox(mem_limit=value)._options["memory"] == expected, value


@pytest.mark.parametrize("bad", ["12x", "abc", "", "-5m", "1.2.3g"])
def test_bad_mem_limit_raises_value_error(bad):
    with pytest.raises(ValueError, match="mem_limit"):
        sbx.DockerSandbox(image=BUSYBOX, mem_limit=bad)


def test_mem_limit_of_wrong_type_raises_type_error():
    with pytest.raises(TypeError):
        sbx.DockerSandbox(image=BUSYBOX, mem_limit=1.5)


# Options that libsbx refuses. Each is tried in a child interpreter: the
# refusal must be an SbxError (code invalid_argument), not a crash of the
# process that asked.
_CHILD = r"""
import sys
sys.path[:0] = %r
import sbx
try:
    sbx.DockerSandbox(image=%r, **%s)
    print("constructed")
except sbx.SbxError as e:
    print("SbxError", e.code)
except Exception as e:
    print(type(e).__name__)
"""


@pytest.mark.parametrize("options", [
    'dict(mem_limit="512k")',   # below the engine's 6 MiB
    'dict(pids_limit=-1)',
    'dict(env={"1BAD": "x"})',
    'dict(network_mode="host")',  # would share the host's network namespace
])
def test_refused_sandbox_option_raises_sbx_error_without_crashing(options):
    code = _CHILD % ([p for p in sys.path if p], BUSYBOX, options)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ))
    assert (p.returncode, p.stdout) == (0, "SbxError invalid_argument\n"), (
        "rc=%d stdout=%r stderr=%r" % (p.returncode, p.stdout, p.stderr[-300:]))


def test_network_off_by_default(make_sandbox):
    sb = make_sandbox()
    assert sb.execute("ls /sys/class/net").output == "lo\n"
    assert inspect(sb.container_id)["HostConfig"]["NetworkMode"] == "none"


def test_env_option(make_sandbox):
    sb = make_sandbox(env={"SBX_T": "v 1"})
    assert sb.execute("echo \"$SBX_T\"").output == "v 1\n"


def test_work_dir_option(make_sandbox):
    sb = make_sandbox(work_dir="/srv/w")
    assert sb.work_dir == "/srv/w"
    assert sb.execute("pwd").output == "/srv/w\n"
    assert sb.write("rel.txt", "r") == WriteResult("rel.txt", None)
    assert sb.read_bytes("/srv/w/rel.txt") == b"r"


# ============================================================ seed image stand-in

def test_default_image_stands_in_with_notice_and_warning():
    sb = sbx.DockerSandbox()
    try:
        with pytest.warns(RuntimeWarning) as record:
            sb.start()
        texts = [str(w.message) for w in record]
        assert len(texts) == 1, texts
        assert texts[0].startswith("sbx: python:3.12-slim is not here and could not be pulled: "
                                   "sbx's base image sbx/base:bookworm stands in")
        assert ("python:3.12-slim is not here and could not be pulled: sbx's base image "
                "sbx/base:bookworm stands in") in sb.notice
        assert texts[0] == "sbx: " + sb.notice
        assert sb.image == "sbx/base:bookworm"
        assert sb.execute("python3 -c 'print(6 * 7)'") == ExecuteResponse("42\n", 0, False)
        assert sb.execute("cat /etc/os-release").output.count("bookworm") >= 1
    finally:
        sb.remove()


def test_default_image_warns_on_first_operation_when_not_started():
    sb = sbx.DockerSandbox()
    try:
        with pytest.warns(RuntimeWarning, match="^sbx: python:3.12-slim is not here"):
            assert sb.execute("echo lazy").output == "lazy\n"
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # said once only
            assert sb.execute("echo again").output == "again\n"
    finally:
        sb.remove()
