#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance
# 0.1.13, pinned by conformance/package-lock.json; newer ones need Node 22)
# against sbxd's /mcp on loopback with auth off, every scenario in one run
# (--suite all). Each scenario that applies to a server of sbx's tools must
# pass. The others exercise capabilities sbxd does not declare (logging,
# completions, resources, prompts) or the suite's own test tools; each of
# those must fail only for that reason ("Method not found", "Unknown tool:
# test_...", a test tool not listed), so any other breakage shows.
set -uo pipefail
cd "$(dirname "$0")/conformance"
sbxd=$(realpath -m "../../../${SBXD_BIN:-build/sbxd}")
[ -x "$sbxd" ] || { echo "Bail out! $sbxd is missing; run make first"; exit 1; }
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error 1>&2 \
    || { echo "Bail out! npm ci failed (is the npm registry reachable?)"; exit 1; }
fi
tmp=$(mktemp -d /tmp/sbxd-conformance.XXXXXX)
SBX_STATE_DIR=$tmp/state "$sbxd" --no-auth --listen 127.0.0.1:0 --name "conf$$" \
  --runtime default=sbx-test/busybox:1 >"$tmp/out" 2>"$tmp/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do grep -q listening "$tmp/out" && break; sleep 0.1; done
url="$(sed -n 's/^sbxd: listening on //p' "$tmp/out")/mcp"
[ "$url" != /mcp ] || { echo "Bail out! sbxd did not start: $(cat "$tmp/log")"; exit 1; }

timeout 300 node_modules/.bin/conformance server --url "$url" --suite all -o "$tmp/results" \
  >"$tmp/run" 2>&1
report=$(/usr/bin/python3 - "$tmp/results" "$(node_modules/.bin/conformance list --server | sed -n 's/^  - //p')" <<'PY'
import glob, json, os, re, sys
results, listed = sys.argv[1], sys.argv[2].split()
applicable = ["server-initialize", "ping", "tools-list", "server-sse-multiple-streams",
              "server-sse-polling", "dns-rebinding-protection"]
not_declared = re.compile(r"Method not found|Unknown tool: test_|"
                          r"Tool '[a-z0-9_]+' not found\. Available tools: ls, ")
found = {}
for path in glob.glob(os.path.join(results, "*", "checks.json")):
    name = re.sub(r"^server-|-\d{4}-\d\d-\d\dT[\d-]+Z$", "", os.path.basename(os.path.dirname(path)))
    found[name] = json.load(open(path))
n = failed = 0
def report(ok, text):
    global n, failed
    n += 1
    failed |= not ok
    print("%sok %d - %s" % ("" if ok else "not ", n, text))
for s in listed:
    checks = found.get(s)
    if checks is None:
        report(False, "%s: the suite left no result" % s)
        continue
    bad = [c for c in checks if c.get("status") not in ("SUCCESS", "INFO")]
    if s in applicable:
        ok = sum(c.get("status") == "SUCCESS" for c in checks)
        report(not bad, "%s: %d checks passed%s" % (s, ok, "; failed: %s" % [
            c.get("errorMessage") for c in bad] if bad else ""))
    else:
        why = [c.get("errorMessage") or "" for c in bad]
        report(bool(why) and all(not_declared.search(w) for w in why),
               "%s does not apply: %s" % (s, "; ".join(why) or "no failure, so it applies?"))
print("# %d scenarios" % len(listed))
sys.exit(failed)
PY
)
py=$?
echo "$report"
n=$(grep -c '^ok\|^not ok' <<<"$report")
[ "$n" -gt 0 ] || sed 's/^/# /' "$tmp/run" | tail -20
kill -TERM $pid
wait $pid
rc=$?
n=$((n + 1))
if [ $rc = 0 ]; then echo "ok $n - sbxd exited 0 on SIGTERM"; else echo "not ok $n - sbxd exited $rc: $(cat "$tmp/log")"; fi
echo "1..$n"
exit $(( py || rc ))
