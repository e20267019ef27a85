#!/usr/bin/env python3
"""Runs the code blocks of README.md as written, and prints TAP.

Every fenced block runs by default, with the runner of its language (RUNNERS):
  c       compiled against build/ with the README's pkg-config line, run; its
          stdout must be what its /* prints `TEXT` */ comments say, in order
  sh      run by bash in order with `set -e -o pipefail`; a line whose comment
          says `exits N` (or `exit N`) must exit N, one whose comment says
          prints `TEXT` must print exactly TEXT
  json    parsed; a rules file is given to `sbx mcp --permissions`, a runtime
          definition to `sbx runtime show --runtime-file`, an MCP client's
          config (mcpServers) is started with /path/to/sbx as build/sbx; each
          server must answer initialize and tools/list
  python  run by python3 (with PYTHONPATH=build/python, where `make python`
          puts the package); stdout (not stderr, where warnings go) checked
          against `# prints `TEXT`` comments
An HTML comment on the line before a block changes that:
  <!-- test: skip (REASON) -->     not run
  <!-- test: compile (REASON) -->  compiled only (C), py_compile, bash -n
  <!-- test: fragment -->          C statements: wrapped in main(), compiled
  <!-- test: file NAME -->         also saved as NAME for the blocks after it
  <!-- test: synopsis -->          a usage line: its --options must be in the
                                   command's --help
Blocks run in a scratch folder holding links to the repository's top-level
entries (build/, examples/, ...), with a private SBX_STATE_DIR, so `sbx ps`
lists only the sandboxes the blocks made; those are removed after each block.

Usage: tests/readme/readme.t [README]
"""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "README.md"))
SBX = os.path.join(REPO, "build", "sbx")
TIMEOUT = 600
DIRECTIVE = re.compile(r"<!--\s*test:\s*(\w+)\s*(.*?)\s*-->$")
PRINTS = re.compile(r"prints `([^`]*)`")
EXITS = re.compile(r"\bexits? (\d+)\b")


class Fail(Exception):
    """A block failed: the README line, the command and its output."""

    def __init__(self, line, command, output=""):
        super().__init__(f"README line {line}: {command}")
        self.line, self.command, self.output = line, command, output


def blocks(path):
    """Yields (line of the opening fence, language, directive, argument, code)."""
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\S*)", lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        body = []
        i += 1
        while i < len(lines) and lines[i] != "```":
            body.append(lines[i])
            i += 1
        d = DIRECTIVE.match(lines[start - 1].strip()) if start > 0 else None
        yield start + 1, lang, d and d.group(1), d and d.group(2), "\n".join(body) + "\n"
        i += 1


def run(cmd, line, cwd, stdin=None, shell=True, merge=True):
    """Runs CMD (stdout and stderr merged unless not MERGE: then stdout, with
    stderr shown only on failure); a failure is a Fail naming it."""
    shown = cmd if shell else shlex.join(cmd)
    p = subprocess.Popen(cmd, shell=shell, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT if merge else subprocess.PIPE,
                         start_new_session=True)
    try:
        out, err = p.communicate(stdin or b"", timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # the block's children too
        out, err = p.communicate()
        raise Fail(line, f"{shown} (timed out after {TIMEOUT} s)",
                   (out + (err or b"")).decode(errors="replace"))
    out = out.decode(errors="replace")
    if p.returncode != 0:
        raise Fail(line, f"{shown} (exit {p.returncode})", out + (err or b"").decode(errors="replace"))
    return out


def expected_stdout(code):
    return "".join(t + "\n" for t in PRINTS.findall(code))


def check_stdout(line, command, code, out):
    want = expected_stdout(code)
    if want and out != want:
        raise Fail(line, f"{command}: printed {out!r}, the README says {want!r}", out)


def run_c(line, code, mode, work):
    if mode == "fragment":
        code = "#include <sbx.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n" \
               "int main (void) {\n" + f'#line {line + 1} "README.md"\n' + code + "}\n"
    else:
        code = f'#line {line + 1} "README.md"\n' + code
    src, exe = f"readme-{line}.c", f"./readme-{line}"
    with open(os.path.join(work, src), "w") as f:
        f.write(code)
    cc = (f"cc -Wall -Wextra -Werror -o {exe} {src} "
          f"$(PKG_CONFIG_PATH=build pkg-config --cflags --libs sbx) -Wl,-rpath,{REPO}/build")
    run(cc, line, work)
    if mode in ("fragment", "compile"):
        return "compiled only"
    out = run(exe, line, work)
    check_stdout(line, exe, code, out)
    return None


# Comments start at a '#' after a blank, outside quotes.
def split_comment(s):
    quote = None
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and quote != "'":
            i += 2
            continue
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or s[i - 1] in " \t"):
            return s[:i].rstrip(), s[i + 1:]
        i += 1
    return s, ""


SH_PREAMBLE = r"""set -eo pipefail
trap '__rc=$?; echo "README line $((LINENO + __off)): exit $__rc: $BASH_COMMAND" >&2' ERR
__exits() { [ "$1" = "$2" ] || { echo "README line $(($3 + __off)): exited $1, the README says $2" >&2; exit 1; }; }
__prints() { [ "$1" = "$2" ] || { printf 'README line %d: printed %q; the README says: %s\n' $(($3 + __off)) "$1" "$2" >&2; exit 1; }; }
"""


def run_sh(line, code, mode, work):
    if mode in ("compile", "fragment"):
        path = os.path.join(work, f"readme-{line}.sh")
        with open(path, "w") as f:
            f.write(code)
        run(["bash", "-n", path], line, work, shell=False)
        return "syntax-checked only"
    # Each line keeps its place, so that LINENO maps back to the README.
    script = []
    for text in code.split("\n"):
        cmd, comment = split_comment(text)
        prints, exits = PRINTS.search(comment), EXITS.search(comment)
        if not cmd.strip() or not (prints or exits):
            script.append(text)
            continue
        cap = f"__out=$({{ {cmd} ; }})" if prints else f"{{ {cmd} ; }}"
        s = f"{cap} && __rc=0 || __rc=$?; "
        if prints:
            s += 'printf "%s\\n" "$__out"; '
        s += f"__exits $__rc {exits.group(1) if exits else 0} $LINENO"
        if prints:
            s += f"; __prints \"$__out\" {shlex.quote(prints.group(1))} $LINENO"
        script.append(s)
    preamble = f"__off={line - SH_PREAMBLE.count(chr(10)) - 1}\n" + SH_PREAMBLE
    path = os.path.join(work, f"readme-{line}.sh")
    with open(path, "w") as f:
        f.write(preamble + "\n".join(script))
    try:
        run(["bash", path], line, work, shell=False)
    except Fail as e:
        # The ERR trap or an assertion named the README line that failed.
        where = re.findall(r"^README line (\d+): (.*)$", e.output, re.M)
        if where:
            e.line, e.command = int(where[-1][0]), where[-1][1]
        raise
    return None


def run_python(line, code, mode, work):
    path = os.path.join(work, f"readme-{line}.py")
    with open(path, "w") as f:
        f.write(code)
    if mode in ("compile", "fragment"):
        run(["/usr/bin/python3", "-m", "py_compile", path], line, work, shell=False)
        return "compiled only"
    # A library's warnings go to stderr, as Python's do: the README's
    # `prints` comments are about stdout.
    out = run(["/usr/bin/python3", path], line, work, shell=False, merge=False)
    check_stdout(line, f"python3 {path}", code, out)
    return None


MCP_HELLO = "".join(json.dumps(m) + "\n" for m in [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize",
     "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "readme-test", "version": "1"}}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
]).encode()


def mcp_tools(line, argv, work):
    """Starts `sbx mcp ARGV`, sends initialize and tools/list, closes stdin."""
    out = run(argv, line, work, stdin=MCP_HELLO, shell=False)
    for text in out.splitlines():
        try:
            msg = json.loads(text)
        except ValueError:
            continue
        if msg.get("id") == 2 and msg.get("result", {}).get("tools"):
            return
    raise Fail(line, " ".join(argv) + ": no tools/list answer", out)


RULE_KEYS = {"default", "deny_secrets", "read", "write", "edit", "execute", "glob", "grep", "ls"}


def run_json(line, code, mode, work):
    try:
        doc = json.loads(code)
    except ValueError as e:
        raise Fail(line, f"parse JSON: {e}", code)
    if mode in ("compile", "fragment"):
        return "parsed only"
    path = os.path.join(work, f"readme-{line}.json")
    with open(path, "w") as f:
        f.write(code)
    keys = set(doc) if isinstance(doc, dict) else set()
    if "mcpServers" in keys:
        for server in doc["mcpServers"].values():
            command = server["command"].replace("/path/to/sbx", SBX)
            mcp_tools(line, [command] + server.get("args", []), work)
    elif "name" in keys and keys & {"image", "base_image"}:
        run([SBX, "runtime", "show", "--runtime-file", path], line, work, shell=False)
    elif keys and keys <= RULE_KEYS:
        mcp_tools(line, [SBX, "mcp", "--permissions", path], work)
    else:
        return "parsed only: neither a rules file, a runtime nor an MCP config"
    return None


def check_synopsis(line, code, work):
    words = code.split()
    command = [SBX if w == "build/sbx" else w for w in
               words[:next(i for i, w in enumerate(words + ["["]) if w[0] in "[-")]]
    helptext = run(command + ["--help"], line, work, shell=False)
    for opt in sorted(set(re.findall(r"--[a-z][a-z-]*", code))):
        if not re.search(re.escape(opt) + r"\b", helptext):
            raise Fail(line, f"{' '.join(command)} --help does not list {opt}", helptext)
    return "options checked against --help"


RUNNERS = {"c": run_c, "sh": run_sh, "bash": run_sh, "shell": run_sh, "json": run_json,
           "python": run_python, "py": run_python}
MODES = {"skip", "compile", "fragment", "file", "synopsis"}


def sandboxes(work):
    out = subprocess.run([SBX, "ps", "-q"], cwd=work, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL).stdout.decode()
    return set(out.split())


def remove_sandboxes(work, keep):
    for sid in sandboxes(work) - keep:
        subprocess.run([SBX, "rm", sid], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_block(line, lang, mode, arg, code, work):
    """Returns what to add to the TAP line, or raises Fail."""
    if mode is not None and mode not in MODES:
        raise Fail(line, f"unknown directive '<!-- test: {mode} -->' (one of {', '.join(sorted(MODES))})")
    if mode in ("skip", "compile") and not re.fullmatch(r"\(.+\)", arg or ""):
        raise Fail(line, f"'<!-- test: {mode} -->' needs a reason in parentheses")
    if mode == "skip":
        return " # SKIP " + arg[1:-1]
    if mode == "file":
        if not re.fullmatch(r"[\w.-]+", arg):
            raise Fail(line, f"'<!-- test: file {arg} -->': give a plain file name")
        with open(os.path.join(work, arg), "w") as f:
            f.write(code)
    if mode == "synopsis":
        return f" ({check_synopsis(line, code, work)})"
    if lang not in RUNNERS:
        raise Fail(line, f"no runner for '{lang or 'a block without a language'}': "
                         "add one to RUNNERS or mark the block skip, with its reason")
    note = RUNNERS[lang](line, code, mode, work)
    if note and mode == "compile":
        note += ": " + arg[1:-1]
    return f" ({note})" if note else ""


def main():
    if not os.access(SBX, os.X_OK):
        print(f"Bail out! {SBX} is missing; run make first")
        return 1
    tmp = tempfile.mkdtemp(prefix="sbx-readme-")
    work, state = os.path.join(tmp, "work"), os.path.join(tmp, "state")
    os.mkdir(work)
    for name in os.listdir(REPO):
        if not name.startswith("."):
            os.symlink(os.path.join(REPO, name), os.path.join(work, name))
    os.environ["SBX_STATE_DIR"] = state
    # Python blocks import the package `make python` builds.
    os.environ["PYTHONPATH"] = os.path.join(REPO, "build", "python")
    n = failed = 0
    try:
        for line, lang, mode, arg, code in blocks(README):
            n += 1
            title = f"README line {line}: {lang or 'plain'} block"
            before = sandboxes(work)
            try:
                print(f"ok {n} - {title}{test_block(line, lang, mode, arg, code, work)}")
            except Fail as e:
                failed += 1
                print(f"not ok {n} - {title}")
                print(f"# README line {e.line}: {e.command}")
                for text in e.output.rstrip("\n").split("\n") if e.output else []:
                    print(f"#   {text}")
            finally:
                remove_sandboxes(work, before)
            sys.stdout.flush()
    finally:
        remove_sandboxes(work, set())
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"1..{n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
