#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance
# 0.1.13, pinned by conformance/package-lock.json; newer ones need Node 22)
# against sbxd's /mcp on loopback with auth off. Each scenario that applies
# to a server of sbx's tools must pass. The others exercise capabilities
# sbxd does not declare (logging, completions, resources, prompts) or the
# suite's own test tools; each of those must fail only for that reason
# ("Method not found", "Unknown tool: test_...", a test tool not listed), so any other breakage shows.
set -uo pipefail
cd "$(dirname "$0")/conformance"
sbxd=$(realpath -m "../../../${SBXD_BIN:-build/sbxd}")
[ -x "$sbxd" ] || { echo "Bail out! $sbxd is missing; run make first"; exit 1; }
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error 1>&2 \
    || { echo "Bail out! npm ci failed (is the npm registry reachable?)"; exit 1; }
fi
tmp=$(mktemp -d /tmp/sbxd-conformance.XXXXXX)
name=conf$$
SBX_STATE_DIR=$tmp/state "$sbxd" --no-auth --listen 127.0.0.1:0 --name "$name" \
  --runtime default=sbx-test/busybox:1 >"$tmp/out" 2>"$tmp/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do grep -q listening "$tmp/out" && break; sleep 0.1; done
url="$(sed -n 's/^sbxd: listening on //p' "$tmp/out")/mcp"
[ "$url" != /mcp ] || { echo "Bail out! sbxd did not start: $(cat "$tmp/log")"; exit 1; }

applicable=(server-initialize ping tools-list server-sse-multiple-streams server-sse-polling
            dns-rebinding-protection)
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); failed=1; echo "not ok $n - $*"; }
for s in "${applicable[@]}"; do
  out=$(timeout 120 node_modules/.bin/conformance server --url "$url" --scenario "$s" 2>&1)
  if grep -q '^Passed: \([0-9]*\)/\1, 0 failed' <<<"$out"; then
    ok "$s: $(grep '^Passed:' <<<"$out")"
  else
    nok "$s"
    sed 's/^/# /' <<<"$out" | tail -20
  fi
done
others=$(node_modules/.bin/conformance list --server 2>/dev/null | sed -n 's/^  - //p')
for s in $others; do
  [[ " ${applicable[*]} " == *" $s "* ]] && continue
  out=$(timeout 120 node_modules/.bin/conformance server --url "$url" --scenario "$s" --verbose 2>&1)
  why=$(sed -n 's/.*"errorMessage": "\(.*\)",*$/\1/p' <<<"$out" | head -1)
  if grep -qE "Method not found|Unknown tool: test_|Tool '[a-z0-9_]+' not found. Available tools: ls, " <<<"$why"; then
    ok "$s does not apply: $why"
  else
    nok "$s: expected only a capability sbxd does not declare to be missing, got: ${why:-no error}"
    sed 's/^/# /' <<<"$out" | tail -20
  fi
done
kill -TERM $pid
wait $pid
rc=$?
[ $rc = 0 ] && ok "sbxd exited 0 on SIGTERM" || nok "sbxd exited $rc: $(cat "$tmp/log")"
echo "1..$n"
exit $failed
