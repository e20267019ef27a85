#!/usr/bin/python3
"""sbx benchmark: sbx side by side with docker-py and the docker CLI.

Run by `make bench` after build/sbx-bench is built. Measures, in one run, on
the same image and the same container options:

  0. the host's floor: spawning `sh -c true` and waiting for it (from C,
     by turns with sbx_exec, and from node, by turns with the MCP calls);
  1. exec `true` in a running container (sbx library, sbx CLI, docker-py,
     docker CLI), and `sbx --help` as a new process;
  2. write then read a 1 KiB and a 1 MiB file;
  3. cold create to first exec;
  4. grep a pattern over 5,000 files;
  5. the resident memory of sbx's agent (the container's PID 1);
  6. MCP tool calls (read_file, write_file, execute) through the official SDK
     client over stdio, against `sbx mcp`;
  7. sbxd: exec and write + read through its REST routes (keep-alive HTTP on
     loopback) by turns with the library, p50 and p99; 50 concurrent sessions
     looping exec for a fixed time (throughput, p50, p99); sbxd's memory.

Progress goes to stderr, the table to stdout. Every container this script or
sbx-bench creates is removed, also on failure. The benchmark only reports: it
exits 0 whether targets are met or not (non-zero only when it could not
measure at all).

Environment:
  SBX_BENCH_IMAGE   image to use (default python:3.12-slim if present, else
                    sbx/base:bookworm)
  SBX_BENCH_QUICK=1 a few runs of each, for a smoke test
  SBX_BENCH_ONLY    comma list among sbx,mcp,python,sbxd,dockerpy,cli (default: all six)
  SBX_BENCH_JSON    path: also write every sample as JSON there
"""

import hashlib
import io
import json
import os
import platform
import posixpath
import secrets
import signal
import statistics
import subprocess
import sys
import tarfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
QUICK = os.environ.get("SBX_BENCH_QUICK") == "1"
ONLY = set((os.environ.get("SBX_BENCH_ONLY") or "sbx,mcp,python,sbxd,dockerpy,cli").split(","))

# Runs of each measurement (after warm-up).
RUNS = {
    "exec": 300,         # sbx library
    "cli_exec": 50,      # sbx CLI, one process per exec (and --help)
    "mcp": 200,          # each MCP tool call
    "dpy_exec": 50,      # docker-py exec_run
    "docker_exec": 30,   # docker exec
    "file_1k": 100,      # sbx write+read 1 KiB
    "file_1m": 30,       # sbx write+read 1 MiB
    "dpy_file_1k": 30,
    "dpy_file_1m": 20,
    "docker_file_1k": 20,
    "docker_file_1m": 15,
    "cold": 10,          # all three
    "session": 10,       # sbx sessions: cold, and claimed from the warm pool
    "py_exec": 300,      # the Python binding's execute
    "py_file_1k": 100,   # the Python binding's write + read_bytes
    "sbxd_exec": 300,    # sbxd exec, by turns with the binding's
    "sbxd_file_1k": 100, # sbxd write + read_bytes, by turns with the binding's
    "grep": 20,          # sbx
    "dpy_grep": 10,
    "docker_grep": 10,
}
WARMUP = {"exec": 20, "file": 3, "cold": 1, "grep": 2, "mcp": 10}
# Idle sandboxes started at once to measure the host's memory per sandbox.
DENSITY = 100
if QUICK:
    RUNS = {k: min(v, 3) for k, v in RUNS.items()}
    WARMUP = {k: 1 for k in WARMUP}
    DENSITY = 4
# sbxd under load: clients, each with a session, looping exec for this long.
LOAD_CLIENTS = 4 if QUICK else 50
LOAD_SECONDS = 2 if QUICK else 15

# The container options sbx uses by default (src/lib/sandbox.c), applied to
# the docker-py and docker CLI containers too so that only the mechanism
# differs: network none, capabilities dropped but a few, no-new-privileges,
# 512 pids, 1 GiB memory without swap, 1 CPU, /workspace as work dir.
KEPT_CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
             "NET_BIND_SERVICE"]
MEMORY = 1 << 30
WORKDIR = "/workspace"
BENCH_LABEL = "io.sbx.bench"

CONTAINER_OPTS_TEXT = ("same image, network none, all capabilities dropped but %d, "
                       "no-new-privileges, pids 512, memory 1 GiB without swap, 1 CPU, "
                       "work dir /workspace" % len(KEPT_CAPS))
METHODS = [
    "exec: sbx_exec(sb, \"true\") (the agent runs sh -c true) | docker-py container.exec_run("
    "\"true\") (exec create + start + inspect) | `docker exec C true`",
    "floor: `sh -c true` spawned and waited for (posix_spawn from C, by turns with sbx_exec, and again by turns with the CLI's runs; "
    "spawnSync from node, by turns with each MCP call): what any command costs on this host",
    "sbx CLI: `build/sbx exec ID -- true` and `build/sbx --help`, a new process each time "
    "(posix_spawn from C)",
    "MCP: `build/sbx mcp` driven by the official TypeScript SDK client over stdio "
    "(tests/mcp's), client.callTool as an agent framework makes it: read_file of a 20-line "
    "file, write_file of it, execute `true`",
    "files: sbx_write + sbx_read_bytes | docker-py put_archive + get_archive with the tar built "
    "and read in memory, as the seed does | `docker exec -i C sh -c 'cat > F'` + `docker exec C "
    "cat F` (no host file needed, unlike docker cp); every read is checked against what was "
    "written",
    "cold: sbx_sandbox_new + first sbx_exec (lazy start) | containers.run(IMAGE, sleep infinity, "
    "detach) + exec_run(\"true\") | `docker run -d ... sleep infinity` + `docker exec C true`; "
    "removal not timed",
    "grep: sbx_grep (PCRE2 in the agent) | exec_run([grep, -rn, PATTERN, DIR]) | `docker exec C "
    "grep -rn PATTERN DIR`, over the same 5,000 files",
    "agent memory: /proc/<State.Pid>/status on the host, read after all the sbx operations",
]
SESSION_METHODS = [
    "cold session: sbx_manager_create_session (no pool, a workspace mounted) + get_session + "
    "first sbx_exec, by turns with the plain cold create; ending it is not timed",
    "pool claim: sbx_manager_create_session + get_session from a warm pool of 2, refilled "
    "(untimed) before each run; then the first exec",
    "density: N sandboxes started 4 at a time and left idle 3 s; the host's used memory "
    "(MemTotal - MemAvailable in /proc/meminfo: the engine, containerd's shims, the agents, "
    "kernel objects) before and after, divided by N",
]

# The grep corpus: 5,000 files of 4 lines in /workspace/tree/dNN/fNNNN.txt;
# every 7th file holds one matching line (715 matches). The pattern is valid
# both as a GNU grep basic regex and as a PCRE2 pattern.
TREE_DIR = WORKDIR + "/tree"
GREP_PATTERN = "NEEDLE_[0-9]"
EXPECTED_MATCHES = len(range(0, 5000, 7))
TREE_SCRIPT = (
    "import os\n"
    "for d in range(50):\n"
    "    p = \"%s/d%%02d\" %% d\n"
    "    os.makedirs(p, exist_ok=True)\n"
    "    for f in range(100):\n"
    "        n = d * 100 + f\n"
    "        with open(\"%%s/f%%04d.txt\" %% (p, n), \"w\") as h:\n"
    "            h.write(\"file %%d of the grep corpus\\nalpha beta gamma delta\\n\" %% n)\n"
    "            h.write(\"here is NEEDLE_%%d in a line\\n\" %% (n %% 10) if n %% 7 == 0\n"
    "                    else \"nothing to see here\\n\")\n"
    "            h.write(\"last line\\n\")\n" % TREE_DIR
)
# One shell command, the same for sbx_exec and for docker exec (sh -c).
TREE_CMD = "python3 -c '%s'" % TREE_SCRIPT


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def percentile(samples, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    s = sorted(samples)
    if not s:
        return None
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summary(samples):
    if not samples:
        return None
    return {"n": len(samples), "p50": statistics.median(samples), "p90": percentile(samples, 0.9),
            "min": min(samples), "mean": statistics.fmean(samples)}


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def measure(name, fn, runs, warmup):
    for _ in range(warmup):
        fn()
    samples = [timed(fn) for _ in range(runs)]
    s = summary(samples)
    log("  %-28s p50 %8.2f ms  p90 %8.2f ms  (n=%d)" % (name, s["p50"], s["p90"], s["n"]))
    return samples


def payload(size, seed):
    """Deterministic binary content (all byte values), different per seed."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(b"%d:%d" % (seed, i)).digest()
        i += 1
    return bytes(out[:size])


def pick_image():
    env = os.environ.get("SBX_BENCH_IMAGE")
    if env:
        return env
    for image in ("python:3.12-slim", "sbx/base:bookworm"):
        if subprocess.run(["docker", "image", "inspect", image], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0:
            return image
    raise SystemExit("bench: neither python:3.12-slim nor sbx/base:bookworm is present; "
                     "run scripts/setup.sh (or `build/sbx image bootstrap`) first")


def bench_name(kind):
    return "sbx-bench-%s-%s" % (kind, secrets.token_hex(4))


# ------------------------------------------------------------------ sbx

class SbxRun:
    """build/sbx-bench as a child process: it measures, prints one JSON line,
    then keeps its sandbox until we close its stdin (so we can read the
    agent's memory), then removes the sandbox."""

    def __init__(self, image):
        self.image = image
        self.proc = None
        self.doc = None

    def start(self):
        exe = os.path.join(BUILD, "sbx-bench")
        if not os.access(exe, os.X_OK):
            raise RuntimeError("%s is missing; run `make bench`" % exe)
        argv = [exe, "--image", self.image, "--cli", os.path.join(BUILD, "sbx"),
                "--tree-cmd", TREE_CMD, "--pattern", GREP_PATTERN, "--grep-path", TREE_DIR,
                "--hold"]
        for key in ("exec", "cli_exec", "file_1k", "file_1m", "cold", "grep", "session"):
            argv += ["--runs-" + key.replace("_", "-"), str(RUNS[key])]
        argv += ["--density", str(DENSITY)]
        for key in ("exec", "file", "cold", "grep"):
            argv += ["--warmup-" + key, str(WARMUP[key])]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line:
            rc = self.proc.wait()
            raise RuntimeError("sbx-bench exited (status %s) without a result" % rc)
        self.doc = json.loads(line)
        return self.doc

    def finish(self):
        """Lets sbx-bench remove its sandbox; waits for it."""
        if self.proc is None:
            return
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            log("sbx-bench did not exit; sending SIGINT so it cleans up")
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.returncode not in (0, None):
            log("sbx-bench exited with status %d" % self.proc.returncode)
        self.proc = None


def run_mcp(image):
    """bench/mcp.mjs with node: MCP tool calls and node's own floor."""
    mcp_dir = os.path.join(ROOT, "tests", "mcp")
    if not os.path.isdir(os.path.join(mcp_dir, "node_modules", "@modelcontextprotocol")):
        log("installing the MCP SDK client (npm ci in tests/mcp)")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=mcp_dir,
                       check=True, stdout=sys.stderr)
    r = subprocess.run(["node", os.path.join(ROOT, "bench", "mcp.mjs"), os.path.join(BUILD, "sbx"),
                        image, str(RUNS["mcp"]), str(WARMUP["mcp"])],
                       stdout=subprocess.PIPE, check=True)
    doc = json.loads(r.stdout.decode().strip().splitlines()[-1])
    for key in ("floor", "read_file", "write_file", "execute"):
        s = summary(doc.get(key))
        if s:
            log("  %-28s p50 %8.3f ms  p90 %8.3f ms  (n=%d)" % ("mcp " + key, s["p50"], s["p90"],
                                                                 s["n"]))
    return doc


def agent_memory(client, container_id):
    """VmRSS and VmHWM (KiB) of the container's PID 1, from the host's /proc."""
    info = client.api.inspect_container(container_id)
    pid = info["State"]["Pid"]
    fields = {"pid": pid}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Name", "VmRSS", "VmHWM", "RssAnon", "RssFile"):
                fields[key] = value.strip()
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        fields["cmdline"] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    return fields


def kib(text):
    return int(text.split()[0]) if text else None


# ------------------------------------------------------------ docker-py

def dpy_run_kwargs(name):
    return dict(command=["sleep", "infinity"], detach=True, name=name, network_mode="none",
                working_dir=WORKDIR, cap_drop=["ALL"], cap_add=KEPT_CAPS,
                security_opt=["no-new-privileges"], pids_limit=512, mem_limit=MEMORY,
                memswap_limit=MEMORY, nano_cpus=10**9, labels={BENCH_LABEL: "1"})


def docker_run_argv(name, image):
    argv = ["docker", "run", "-d", "--name", name, "--network", "none", "-w", WORKDIR,
            "--cap-drop", "ALL"]
    for cap in KEPT_CAPS:
        argv += ["--cap-add", cap]
    argv += ["--security-opt", "no-new-privileges", "--pids-limit", "512",
             "--memory", str(MEMORY), "--memory-swap", str(MEMORY), "--cpus", "1",
             "--label", BENCH_LABEL + "=1", image, "sleep", "infinity"]
    return argv


def tar_one(name, data):
    """A tar holding one file, built in memory as the seed's write() does."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        ti.mode = 0o644
        ti.mtime = int(time.time())
        tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def dpy_write_read(container, path, data):
    parent, base = posixpath.split(path)
    if not container.put_archive(parent, tar_one(base, data)):
        raise RuntimeError("put_archive failed")
    stream, _stat = container.get_archive(path)
    raw = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        got = tf.extractfile(tf.getmembers()[0]).read()
    if got != data:
        raise RuntimeError("docker-py read back different bytes for %s" % path)


def dpy_exec_ok(container, cmd):
    r = container.exec_run(cmd)
    if r.exit_code != 0:
        raise RuntimeError("exec %r exited %s: %r" % (cmd, r.exit_code, r.output[:200]))
    return r.output


def bench_dockerpy(client, image, container, created):
    res = {}
    log("docker-py: exec_run('true')")
    res["exec"] = measure("exec_run true", lambda: dpy_exec_ok(container, "true"),
                          RUNS["dpy_exec"], WARMUP["exec"] // 4 or 1)

    for label, size, key in (("1 KiB", 1024, "file_1k"), ("1 MiB", 1 << 20, "file_1m")):
        log("docker-py: put_archive + get_archive %s" % label)
        data = payload(size, size)
        path = "%s/dpy_%s.bin" % (WORKDIR, key)
        res[key] = measure("put+get_archive " + label,
                           lambda: dpy_write_read(container, path, data),
                           RUNS["dpy_" + key], WARMUP["file"])

    log("docker-py: cold containers.run + exec_run('true')")
    samples = []
    for i in range(WARMUP["cold"] + RUNS["cold"]):
        name = bench_name("dpy-cold")
        created.add(name)
        t0 = time.perf_counter()
        c = client.containers.run(image, **dpy_run_kwargs(name))
        dpy_exec_ok(c, "true")
        ms = (time.perf_counter() - t0) * 1000.0
        c.remove(force=True)
        created.discard(name)
        if i >= WARMUP["cold"]:
            samples.append(ms)
    s = summary(samples)
    log("  %-28s p50 %8.2f ms  p90 %8.2f ms  (n=%d)" % ("run + exec_run", s["p50"], s["p90"],
                                                         s["n"]))
    res["cold"] = samples

    log("docker-py: grep -rn over 5,000 files")
    argv = ["grep", "-rn", GREP_PATTERN, TREE_DIR]
    out = dpy_exec_ok(container, argv)
    res["grep_matches"] = len(out.splitlines())
    res["grep"] = measure("exec_run grep -rn", lambda: dpy_exec_ok(container, argv),
                          RUNS["dpy_grep"], WARMUP["grep"])
    return res


# ----------------------------------------------------------- docker CLI

def run_ok(argv, data=None, capture=False):
    r = subprocess.run(argv, input=data, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(argv[:4]), r.returncode,
                                                 r.stderr.decode(errors="replace").strip()))
    return r.stdout


def cli_write_read(cid, path, data):
    # What a shell user does without a host file: pipe into `cat >` and `cat`
    # it back, both through `docker exec` (binary-safe without -t).
    run_ok(["docker", "exec", "-i", cid, "sh", "-c", "cat > '%s'" % path], data=data)
    got = run_ok(["docker", "exec", cid, "cat", path], capture=True)
    if got != data:
        raise RuntimeError("docker exec cat read back different bytes for %s" % path)


def bench_cli(image, cid, created):
    res = {}
    log("docker CLI: docker exec C true")
    res["exec"] = measure("docker exec true", lambda: run_ok(["docker", "exec", cid, "true"]),
                          RUNS["docker_exec"], WARMUP["exec"] // 4 or 1)

    for label, size, key in (("1 KiB", 1024, "file_1k"), ("1 MiB", 1 << 20, "file_1m")):
        log("docker CLI: exec -i cat > f, exec cat f (%s)" % label)
        data = payload(size, size + 1)
        path = "%s/cli_%s.bin" % (WORKDIR, key)
        res[key] = measure("exec cat>f + cat f " + label, lambda: cli_write_read(cid, path, data),
                           RUNS["docker_" + key], WARMUP["file"])

    log("docker CLI: cold docker run -d + docker exec true")
    samples = []
    for i in range(WARMUP["cold"] + RUNS["cold"]):
        name = bench_name("cli-cold")
        created.add(name)
        t0 = time.perf_counter()
        run_ok(docker_run_argv(name, image))
        run_ok(["docker", "exec", name, "true"])
        ms = (time.perf_counter() - t0) * 1000.0
        run_ok(["docker", "rm", "-f", name])
        created.discard(name)
        if i >= WARMUP["cold"]:
            samples.append(ms)
    s = summary(samples)
    log("  %-28s p50 %8.2f ms  p90 %8.2f ms  (n=%d)" % ("docker run + exec", s["p50"], s["p90"],
                                                         s["n"]))
    res["cold"] = samples

    log("docker CLI: docker exec C grep -rn over 5,000 files")
    argv = ["docker", "exec", cid, "grep", "-rn", GREP_PATTERN, TREE_DIR]
    res["grep_matches"] = len(run_ok(argv, capture=True).splitlines())
    res["grep"] = measure("docker exec grep -rn", lambda: run_ok(argv, capture=True),
                          RUNS["docker_grep"], WARMUP["grep"])
    return res


# ----------------------------------------------------------------- table

def fmt_ms(s, p90=True):
    if s is None:
        return "n/a"
    if s["p50"] >= 100:
        text = "%.0f" % s["p50"]
        tail = " (p90 %.0f)" % s["p90"]
    elif s["p50"] >= 10:
        text = "%.1f" % s["p50"]
        tail = " (p90 %.1f)" % s["p90"]
    else:
        text = "%.2f" % s["p50"]
        tail = " (p90 %.2f)" % s["p90"]
    return text + (tail if p90 else "") + " n=%d" % s["n"]


def ratio(other, base):
    if other is None or base is None or base["p50"] <= 0:
        return "n/a"
    r = other["p50"] / base["p50"]
    return ("%.0fx" % r) if r >= 10 else ("%.1fx" % r)


def vs_floor(x, fl):
    if x is None or fl is None or fl["p50"] <= 0:
        return "n/a"
    return "%.2fx" % (x["p50"] / fl["p50"])


def print_floor_table(sbx, mcp):
    """sbx's costs beside the host's floor, measured by turns in the same process."""
    def g(res, key):
        return summary(res.get(key)) if res and res.get(key) else None

    cfl, cli_fl, nfl = g(sbx, "floor"), g(sbx, "floor_cli"), g(mcp, "floor")
    rows = [
        ("the floor: spawn `sh -c true` and wait (C)", cfl, cfl),
        ("sbx_exec `true` (library)", g(sbx, "exec"), cfl),
        ("the floor again, by turns with the CLI (C)", cli_fl, cli_fl),
        ("`sbx exec ID -- true` (a new process)", g(sbx, "cli_exec"), cli_fl),
        ("`sbx --help` (a new process)", g(sbx, "cli_help"), cli_fl),
        ("the floor: spawn `sh -c true` and wait (node)", nfl, nfl),
        ("MCP read_file (SDK client, stdio)", g(mcp, "read_file"), nfl),
        ("MCP write_file", g(mcp, "write_file"), nfl),
        ("MCP execute `true`", g(mcp, "execute"), nfl),
    ]
    head = ["beside the host's floor", "time", "/ floor"]
    body = [[name, fmt_ms(x), vs_floor(x, fl)] for name, x, fl in rows]
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(r[i].ljust(widths[i]) for i in range(len(r))) + " |"
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in body]
    out.append("Each ratio divides by the floor measured in the same process, by turns with it "
               "(C for the library and the CLI, node for MCP).")
    print("\n".join(out) + "\n", flush=True)


def print_table(ctx, sbx, dpy, cli, rss, targets):
    def g(res, key):
        return summary(res.get(key)) if res and res.get(key) else None

    rows = [
        ("exec `true`, running container (library / exec_run / docker exec)",
         g(sbx, "exec"), g(dpy, "exec"), g(cli, "exec")),
        ("exec `true`, sbx CLI process (`sbx exec ID -- true`)",
         g(sbx, "cli_exec"), g(dpy, "exec"), g(cli, "exec")),
        ("write + read 1 KiB", g(sbx, "file_1k"), g(dpy, "file_1k"), g(cli, "file_1k")),
        ("write + read 1 MiB", g(sbx, "file_1m"), g(dpy, "file_1m"), g(cli, "file_1m")),
        ("cold create -> first exec returns", g(sbx, "cold"), g(dpy, "cold"), g(cli, "cold")),
        ("grep pattern over 5,000 files", g(sbx, "grep"), g(dpy, "grep"), g(cli, "grep")),
    ]
    out = []
    out.append("")
    out.append("sbx benchmark: %s" % ctx)
    out.append("Times in ms: median (p90) over n timed runs after warm-up; ratio = other median "
               "/ sbx median (higher = sbx faster).")
    out.append("")
    head = ["operation", "sbx", "docker-py", "docker CLI", "docker-py/sbx", "CLI/sbx"]
    body = []
    for name, a, b, c in rows:
        body.append([name, fmt_ms(a), fmt_ms(b), fmt_ms(c), ratio(b, a), ratio(c, a)])
    if rss:
        body.append(["agent resident memory, VmRSS of PID 1 (anon + file; peak)",
                     "%d KiB (%d + %d; peak %d)" % (rss["rss_kib"], rss["anon_kib"],
                                                    rss["file_kib"], rss["hwm_kib"]),
                     "-", "-", "", ""])
    else:
        body.append(["agent resident memory, VmRSS of PID 1", "n/a", "-", "-", "", ""])
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(r[i].ljust(widths[i]) for i in range(len(r))) + " |"
    out.append(line(head))
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in body:
        out.append(line(r))
    out.append("")
    counts = [res.get("grep_matches") if res else None for res in (sbx, dpy, cli)]
    agree = all(m in (None, EXPECTED_MATCHES) for m in counts)
    out.append("grep matches (pattern %r in %s): sbx %s, docker-py %s, docker CLI %s; expected "
               "%d: %s" % ((GREP_PATTERN, TREE_DIR) + tuple("-" if m is None else str(m)
                                                             for m in counts)
                           + (EXPECTED_MATCHES, "all agree" if agree else "MISMATCH")))
    out.append("")
    out.append("How each is measured (every container: %s):" % CONTAINER_OPTS_TEXT)
    for line in METHODS:
        out.append("  " + line)
    out.append("")
    out.append("Targets:")
    for text, ok, detail in targets:
        out.append("  [%s] %s: %s" % ({True: "met", False: "NOT MET", None: "n/a"}[ok], text,
                                      detail))
    out.append("")
    print("\n".join(out), flush=True)


def evaluate(sbx, dpy, rss, mcp):
    def g(res, key):
        return summary(res.get(key)) if res and res.get(key) else None

    t = []
    for key, name, fl, limit in (("exec", "sbx_exec", g(sbx, "floor"), 1.2),
                                 ("cli_exec", "`sbx exec ID -- true`", g(sbx, "floor_cli"), 2.5),
                                 ("cli_help", "`sbx --help`", g(sbx, "floor_cli"), 1.5),
                                 ("read_file", "MCP read_file", g(mcp, "floor"), 0.5),
                                 ("write_file", "MCP write_file", g(mcp, "floor"), 0.5),
                                 ("execute", "MCP execute", g(mcp, "floor"), 1.5)):
        x = g(mcp if key in ("read_file", "write_file", "execute") else sbx, key)
        text = "%s <= %.1fx the floor" % (name, limit)
        if x and fl:
            t.append((text, x["p50"] <= limit * fl["p50"], "%.2fx (%.3f ms / %.3f ms)" % (
                x["p50"] / fl["p50"], x["p50"], fl["p50"])))
        else:
            t.append((text, None, "not measured"))
    ex, dex = g(sbx, "exec"), g(dpy, "exec")
    if ex:
        t.append(("exec p50 <= 2 ms", ex["p50"] <= 2.0, "%.2f ms" % ex["p50"]))
    else:
        t.append(("exec p50 <= 2 ms", None, "not measured"))
    if ex and dex:
        r = dex["p50"] / ex["p50"]
        t.append(("exec >= 15x faster than docker-py", r >= 15, "%.1fx" % r))
    else:
        t.append(("exec >= 15x faster than docker-py", None, "not measured"))
    f, df = g(sbx, "file_1k"), g(dpy, "file_1k")
    if f and df:
        r = df["p50"] / f["p50"]
        t.append(("1 KiB write+read >= 20x faster than docker-py", r >= 20, "%.1fx" % r))
    else:
        t.append(("1 KiB write+read >= 20x faster than docker-py", None, "not measured"))
    c, dc = g(sbx, "cold"), g(dpy, "cold")
    if c and dc:
        t.append(("cold create-to-first-exec no slower than docker-py", c["p50"] <= dc["p50"],
                  "sbx %.0f ms vs docker-py %.0f ms" % (c["p50"], dc["p50"])))
    else:
        t.append(("cold create-to-first-exec no slower than docker-py", None, "not measured"))
    if rss:
        t.append(("agent RSS <= 1 MiB", rss["rss_kib"] <= 1024, "%d KiB" % rss["rss_kib"]))
    else:
        t.append(("agent RSS <= 1 MiB", None, "not measured"))
    return t

def print_session_table(sbx):
    """Sessions: cold, from the pool, and the host memory each idle sandbox costs."""
    def g(key):
        return summary(sbx.get(key)) if sbx and sbx.get(key) else None

    ex, cold, scold, claim, first = (g("exec"), g("cold"), g("session_cold"), g("claim"),
                                     g("pool_first"))
    rows = [
        ("plain cold create -> first exec", cold, cold),
        ("session create, cold -> first exec", scold, cold),
        ("sbx_exec `true` on a started sandbox", ex, ex),
        ("session create, claimed from the pool", claim, ex),
        ("session claimed -> first exec", first, ex),
    ]
    head = ["sessions", "time", "ratio", "to"]
    body = [[name, fmt_ms(x), vs_floor(x, base), "-" if x is base else
             ("plain cold" if base is cold else "sbx_exec")] for name, x, base in rows]
    d = sbx.get("density") if sbx else None
    per = None
    if d and d.get("sandboxes"):
        per = (d["used_after_kib"] - d["used_before_kib"]) / 1024.0 / d["sandboxes"]
        body.append(["host memory per idle sandbox (%d started in %.1f s)" % (
            d["sandboxes"], d["start_ms"] / 1000.0), "%.1f MiB" % per, "", ""])
        body.append(["idle sandboxes this host's %.1f GiB could hold" % (
            d["mem_total_kib"] / 1048576.0), "%d" % (d["mem_total_kib"] / 1024.0 / per)
            if per > 0 else "n/a (the host's memory use fell meanwhile: measure again)", "", ""])
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(r[i].ljust(widths[i]) for i in range(len(r))) + " |"
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in body]
    out.append("How each is measured:")
    out += ["  " + m for m in SESSION_METHODS]
    out.append("Targets:")
    targets = []
    if claim and ex:
        targets.append(("a pool claim <= 2x the exec round trip", claim["p50"] <= 2 * ex["p50"],
                        "%.2fx (%.2f ms / %.2f ms)" % (claim["p50"] / ex["p50"], claim["p50"],
                                                       ex["p50"])))
    else:
        targets.append(("a pool claim <= 2x the exec round trip", None, "not measured"))
    # Medians of cold starts taken by turns differ by a few percent from noise alone.
    if scold and cold:
        r = scold["p50"] / cold["p50"]
        targets.append(("a cold session create no slower than a plain cold create (within 3%)",
                        r <= 1.03, "%.3fx (%.0f ms / %.0f ms)" % (r, scold["p50"], cold["p50"])))
    else:
        targets.append(("a cold session create no slower than a plain cold create", None,
                        "not measured"))
    for text, ok, detail in targets:
        out.append("  [%s] %s: %s" % ({True: "met", False: "NOT MET", None: "n/a"}[ok], text,
                                      detail))
    print("\n".join(out) + "\n", flush=True)


# ------------------------------------------------------------ Python

def bench_python(image):
    """The Python binding (build/python) in this process: execute("true")
    and write + read_bytes of 1 KiB, as seed-style code calls them."""
    import warnings
    sys.path.insert(0, os.path.join(BUILD, "python"))
    import sbx as sbxpy
    warnings.simplefilter("ignore", RuntimeWarning)  # the machine's disk notice
    res = {}
    sb = sbxpy.DockerSandbox(image=image)
    try:
        sb.start()

        def execute():
            r = sb.execute("true")
            if r.exit_code != 0:
                raise RuntimeError("execute(true) gave %r" % (r,))
        log("Python: DockerSandbox.execute('true')")
        res["exec"] = measure("execute true", execute, RUNS["py_exec"], WARMUP["exec"])
        data = payload(1024, 11)

        def write_read():
            w = sb.write("/workspace/py_file_1k.bin", data)
            if w.error or sb.read_bytes("/workspace/py_file_1k.bin") != data:
                raise RuntimeError("write+read_bytes 1 KiB mismatch: %r" % (w,))
        log("Python: write + read_bytes 1 KiB")
        res["file_1k"] = measure("write+read_bytes 1 KiB", write_read, RUNS["py_file_1k"],
                                 WARMUP["file"])
    finally:
        sb.stop()
    return res


def print_python_table(py, sbx, dpy):
    def g(res, key):
        return summary(res.get(key)) if res and res.get(key) else None

    rows = [("exec `true` (execute / sbx_exec / exec_run)", "exec"),
            ("write + read 1 KiB", "file_1k")]
    head = ["Python binding", "sbx (Python)", "sbx (C)", "docker-py", "Python/C", "docker-py/Python"]
    body = []
    targets = []
    for name, key in rows:
        p, c, d = g(py, key), g(sbx, key), g(dpy, key)
        body.append([name, fmt_ms(p), fmt_ms(c), fmt_ms(d),
                     "%.2fx" % (p["p50"] / c["p50"]) if p and c else "n/a", ratio(d, p)])
        text = "Python %s <= 1.5x the C library's" % name.split(" (")[0]
        targets.append((text, p["p50"] <= 1.5 * c["p50"] if p and c else None,
                        "%.2fx" % (p["p50"] / c["p50"]) if p and c else "not measured"))
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(r[i].ljust(widths[i]) for i in range(len(r))) + " |"
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in body]
    out.append("Targets:")
    for text, ok, detail in targets:
        out.append("  [%s] %s: %s" % ({True: "met", False: "NOT MET", None: "n/a"}[ok], text,
                                      detail))
    print("\n".join(out) + "\n", flush=True)


# ------------------------------------------------------------------ sbxd

class Sbxd:
    """build/sbxd on loopback, its state in a private folder."""

    def __init__(self, image):
        import tempfile
        self.dir = tempfile.mkdtemp(prefix="sbx-bench-sbxd-")
        self.token = secrets.token_hex(24)
        env = dict(os.environ, SBXD_TOKEN=self.token, SBX_STATE_DIR=os.path.join(self.dir, "state"))
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "sbxd"), "--listen", "127.0.0.1:0", "--name", "bench",
             "--runtime", "default=" + image, "--max-sessions", str(LOAD_CLIENTS + 10),
             "--workers", "64"], stdout=subprocess.PIPE, stderr=self.log, env=env)
        line = self.proc.stdout.readline().decode()
        if "listening on" not in line:
            raise RuntimeError("sbxd did not start: %r" % line)
        self.port = int(line.rsplit(":", 1)[1])

    def client(self, token=None):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        tok = token or self.token

        def call(method, path, body=None):
            conn.request(method, path, None if body is None else json.dumps(body),
                         {"X-Sandbox-Token": tok, "Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            if r.status >= 300:
                raise RuntimeError("%s %s: %d %r" % (method, path, r.status, data[:300]))
            return json.loads(data) if data else None
        return call

    def open_session(self, sid):
        doc = self.client()("POST", "/sessions", {"session_id": sid})
        return sid, doc["token"]

    def memory(self):
        m = {}
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads"):
                    m[k] = v.strip()
        return m

    def stop(self):
        import shutil
        try:
            call = self.client()
            for s in call("GET", "/sessions")["sessions"]:
                call("DELETE", "/sessions/%s" % s["session_id"])
        finally:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(120)
            self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            if rc != 0:
                raise RuntimeError("sbxd exited %d" % rc)


def by_turns(name_a, fa, name_b, fb, runs, warmup):
    for _ in range(warmup):
        fa()
        fb()
    a, b = [], []
    for _ in range(runs):
        a.append(timed(fa))
        b.append(timed(fb))
    for name, s in ((name_a, summary(a)), (name_b, summary(b))):
        log("  %-28s p50 %8.2f ms  p99 %8.2f ms  (n=%d)" % (name, s["p50"],
                                                         percentile(a if name == name_a else b,
                                                                    0.99), s["n"]))
    return a, b


def bench_sbxd(image):
    """sbxd's REST routes by turns with the Python binding on a sandbox of
    its own (the library's time, in the same process), then 50 sessions at
    once."""
    import threading
    import warnings
    sys.path.insert(0, os.path.join(BUILD, "python"))
    import sbx as sbxpy
    warnings.simplefilter("ignore", RuntimeWarning)
    res = {}
    d = Sbxd(image)
    lib = sbxpy.DockerSandbox(image=image)
    try:
        lib.start()
        sid, tok = d.open_session("bench-0")
        call = d.client(tok)
        data = payload(1024, 12)
        b64 = __import__("base64").b64encode(data).decode()

        def sbxd_exec():
            if call("POST", "/sessions/%s/exec" % sid, {"command": "true"})["exit_code"] != 0:
                raise RuntimeError("exec true failed")

        def lib_exec():
            if lib.execute("true").exit_code != 0:
                raise RuntimeError("execute(true) failed")

        def sbxd_file():
            call("POST", "/sessions/%s/write" % sid, {"path": "f.bin", "content_b64": b64})
            got = call("POST", "/sessions/%s/read_bytes" % sid, {"path": "f.bin"})["content_b64"]
            if got != b64:
                raise RuntimeError("sbxd read back other bytes")

        def lib_file():
            lib.write("/workspace/f.bin", data)
            if lib.read_bytes("/workspace/f.bin") != data:
                raise RuntimeError("read back other bytes")

        log("sbxd: exec true, by turns with the binding's execute")
        res["exec"], res["lib_exec"] = by_turns("sbxd exec true", sbxd_exec, "library execute true",
                                                lib_exec, RUNS["sbxd_exec"], WARMUP["exec"])
        log("sbxd: write + read_bytes 1 KiB, by turns with the binding's")
        res["file_1k"], res["lib_file_1k"] = by_turns("sbxd write+read 1 KiB", sbxd_file,
                                                      "library write+read 1 KiB", lib_file,
                                                      RUNS["sbxd_file_1k"], WARMUP["file"])
        log("sbxd: %d sessions, each looping exec true for %d s" % (LOAD_CLIENTS, LOAD_SECONDS))
        sessions = [d.open_session("load-%d" % i) for i in range(LOAD_CLIENTS)]
        lat = [[] for _ in sessions]
        errors = []
        barrier = threading.Barrier(LOAD_CLIENTS)

        def loop(i):
            s_id, s_tok = sessions[i]
            c = d.client(s_tok)
            barrier.wait()
            end = time.perf_counter() + LOAD_SECONDS
            try:
                while time.perf_counter() < end:
                    t0 = time.perf_counter()
                    c("POST", "/sessions/%s/exec" % s_id, {"command": "true"})
                    lat[i].append((time.perf_counter() - t0) * 1000)
            except Exception as e:  # reported
                errors.append(str(e))

        threads = [threading.Thread(target=loop, args=(i,)) for i in range(LOAD_CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError("under load: %s" % errors[0])
        res["load"] = [x for l in lat for x in l]
        res["load_ops_per_s"] = len(res["load"]) / LOAD_SECONDS
        res["memory"] = d.memory()
        log("  %d ops in %d s: %.0f exec/s, p50 %.2f ms, p99 %.2f ms; sbxd %s" % (
            len(res["load"]), LOAD_SECONDS, res["load_ops_per_s"],
            percentile(res["load"], 0.5), percentile(res["load"], 0.99), res["memory"]))
    finally:
        lib.stop()
        d.stop()
    return res


def print_sbxd_table(sd):
    if not sd:
        return

    def pct(key, q):
        return percentile(sd[key], q) if sd.get(key) else None

    rows = [("exec `true`", "exec", "lib_exec"), ("write + read 1 KiB", "file_1k", "lib_file_1k")]
    head = ["sbxd (REST, keep-alive, loopback)", "sbxd p50", "sbxd p99", "library p50",
            "sbxd - library (p50)"]
    body, targets = [], []
    for name, key, lib in rows:
        a, b = pct(key, 0.5), pct(lib, 0.5)
        body.append([name, "%.2f ms" % a, "%.2f ms" % pct(key, 0.99), "%.2f ms" % b,
                     "%+.2f ms" % (a - b)])
        targets.append(("%s through sbxd <= the library's + 1 ms at p50" % name, a <= b + 1.0,
                        "%.2f ms vs %.2f ms" % (a, b)))
    p50, p99 = pct("load", 0.5), pct("load", 0.99)
    body.append(["exec `true`, %d sessions at once" % LOAD_CLIENTS, "%.2f ms" % p50,
                 "%.2f ms" % p99, "", "%.0f exec/s" % sd["load_ops_per_s"]])
    targets.append(("with %d concurrent sessions, p99 exec <= 5x its p50" % LOAD_CLIENTS,
                    p99 <= 5 * p50, "%.2fx" % (p99 / p50)))
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(r[i].ljust(widths[i]) for i in range(len(r))) + " |"
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in body]
    mem = sd.get("memory") or {}
    out.append("sbxd's memory after the load: VmRSS %s, VmHWM %s, %s threads" % (
        mem.get("VmRSS"), mem.get("VmHWM"), mem.get("Threads")))
    out.append("Targets:")
    for text, ok, detail in targets:
        out.append("  [%s] %s: %s" % ({True: "met", False: "NOT MET", None: "n/a"}[ok], text,
                                      detail))
    print("\n".join(out) + "\n", flush=True)


# ------------------------------------------------------------------ main

def cleanup_containers(client, names):
    for name in list(names):
        try:
            client.containers.get(name).remove(force=True)
        except Exception as e:  # already gone, or the engine is unhappy
            if "404" not in str(e) and "No such container" not in str(e):
                log("could not remove %s: %s" % (name, e))
        names.discard(name)


def main():
    import docker  # Debian's python3-docker

    started = time.perf_counter()
    client = docker.from_env()
    image = pick_image()
    engine = client.version()
    ctx = "image %s, Docker Engine %s (API %s), docker-py %s, Python %s, %d CPUs, kernel %s%s" % (
        image, engine.get("Version"), engine.get("ApiVersion"), docker.__version__,
        platform.python_version(), os.cpu_count(), platform.release(),
        " [QUICK smoke run]" if QUICK else "")
    log(ctx)

    # Containers left by an interrupted earlier run of this benchmark.
    for c in client.containers.list(all=True, filters={"label": BENCH_LABEL + "=1"}):
        log("removing a leftover benchmark container %s" % c.name)
        c.remove(force=True)

    created = set()
    sbx = dpy = cli = rss = mcp = py = sd = None
    errors = []
    sbx_run = SbxRun(image)
    try:
        if "sbx" in ONLY:
            log("sbx: running build/sbx-bench (library, CLI, cold starts, grep)")
            try:
                sbx = sbx_run.start()
                for op, msg in (sbx.get("errors") or {}).items():
                    errors.append("sbx %s: %s" % (op, msg))
                if sbx.get("sandbox_id"):
                    m = agent_memory(client, sbx["sandbox_id"])
                    log("agent: pid %s (%s) %s VmRSS %s VmHWM %s" % (
                        m["pid"], m.get("Name"), m["cmdline"], m.get("VmRSS"), m.get("VmHWM")))
                    rss = {"rss_kib": kib(m.get("VmRSS")), "hwm_kib": kib(m.get("VmHWM")),
                           "anon_kib": kib(m.get("RssAnon")), "file_kib": kib(m.get("RssFile")),
                           "detail": m}
            except Exception as e:
                errors.append("sbx: %s" % e)
                log("sbx part failed: %s" % e)
            finally:
                sbx_run.finish()

        if "mcp" in ONLY:
            log("MCP: tool calls through the SDK client over stdio (bench/mcp.mjs)")
            try:
                mcp = run_mcp(image)
                for e in mcp.get("errors") or []:
                    errors.append("MCP: %s" % e)
            except Exception as e:
                errors.append("MCP: %s" % e)
                log("MCP part failed: %s" % e)

        if "python" in ONLY:
            log("Python: the binding (build/python), in this process")
            try:
                py = bench_python(image)
            except Exception as e:
                errors.append("Python: %s" % e)
                log("Python part failed: %s" % e)

        if "sbxd" in ONLY:
            log("sbxd: REST through build/sbxd on loopback")
            try:
                sd = bench_sbxd(image)
            except Exception as e:
                errors.append("sbxd: %s" % e)
                log("sbxd part failed: %s" % e)

        if "dockerpy" in ONLY or "cli" in ONLY:
            name = bench_name("warm")
            created.add(name)
            log("docker: starting container %s (%s, sleep infinity, network none)" % (name, image))
            container = client.containers.run(image, **dpy_run_kwargs(name))
            log("docker: creating the grep corpus (5,000 files)")
            r = container.exec_run(["sh", "-c", TREE_CMD])
            if r.exit_code != 0:
                raise RuntimeError("creating the corpus failed: %r" % r.output[:500])
            if "dockerpy" in ONLY:
                try:
                    dpy = bench_dockerpy(client, image, container, created)
                except Exception as e:
                    errors.append("docker-py: %s" % e)
                    log("docker-py part failed: %s" % e)
            if "cli" in ONLY:
                try:
                    cli = bench_cli(image, container.id, created)
                except Exception as e:
                    errors.append("docker CLI: %s" % e)
                    log("docker CLI part failed: %s" % e)
    finally:
        sbx_run.finish()
        cleanup_containers(client, created)

    elapsed = time.perf_counter() - started
    print_table(ctx, sbx, dpy, cli, rss, evaluate(sbx, dpy, rss, mcp))
    print_floor_table(sbx, mcp)
    print_session_table(sbx)
    print_python_table(py, sbx, dpy)
    print_sbxd_table(sd)
    if errors:
        print("Errors:")
        for e in errors:
            print("  " + e)
        print()
    print("Total benchmark time: %.0f s" % elapsed, flush=True)

    if os.environ.get("SBX_BENCH_JSON"):
        with open(os.environ["SBX_BENCH_JSON"], "w") as f:
            json.dump({"context": ctx, "sbx": sbx, "mcp": mcp, "python": py, "docker_py": dpy,
                       "docker_cli": cli, "agent_memory": rss, "sbxd": sd, "errors": errors}, f,
                      indent=1)
    measured = any(isinstance(v, list) and v for res in (sbx, mcp, dpy, cli, py, sd) if res
                   for v in res.values())
    return 0 if measured else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
