#!/usr/bin/env bash
# `make bench` in brief (SBX_BENCH_QUICK=1: a few runs of each): every part
# measures, every figure and target is there, nothing is left behind. The
# figures themselves are the benchmark's business, not a test's.
. "$(dirname "$0")/../cli/lib.sh"

if [ ! -x build/sbx-bench ]; then
  echo "Bail out! build/sbx-bench is missing; run make tests first"
  exit 1
fi
# A state root of its own: whatever sbx leaves of a sandbox is in it.
state=$tmp/state
SBX_STATE_DIR=$state SBX_BENCH_QUICK=1 SBX_BENCH_JSON="$tmp/bench.json" \
  /usr/bin/python3 bench/bench.py >"$tmp/out" 2>"$tmp/err"
is "$?" 0 "the quick benchmark exits 0"
ok "$(! grep -q '^Errors:' "$tmp/out"; echo $?)" "it reports no error"
grep -q "^Errors:" "$tmp/out" && diag "$(grep -A5 "^Errors:" "$tmp/out")"
is "$(/usr/bin/python3 - "$tmp/bench.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
want = {"sbx": ["floor", "exec", "floor_cli", "cli_exec", "cli_help", "file_1k", "file_1m",
                "grep", "cold", "session_cold", "claim", "pool_first"],
        "mcp": ["floor", "read_file", "write_file", "execute"],
        "python": ["exec", "file_1k"],
        "sbxd": ["exec", "lib_exec", "file_1k", "lib_file_1k", "load"],
        "docker_py": ["exec", "file_1k", "file_1m", "cold", "grep"],
        "docker_cli": ["exec", "file_1k", "file_1m", "cold", "grep"]}
missing = [p + "." + k for p, keys in want.items() for k in keys
           if not (d.get(p) or {}).get(k)]
dens = (d.get("sbx") or {}).get("density") or {}
if dens.get("sandboxes") != 4:
    missing.append("sbx.density")
print(" ".join(missing) or "none")
PY
)" "none" "every measurement has samples, the density included"
for row in "session create, claimed from the pool" "host memory per idle sandbox" \
  "idle sandboxes this host's" "a pool claim <= 2x the exec round trip" \
  "a cold session create no slower than a plain cold create" "sbx exec ID -- true" \
  'Python exec `true` <= 1.5x the C library'"'"'s' \
  'through sbxd <= the library'"'"'s + 1 ms at p50' 'concurrent sessions, p99 exec <= 5x its p50' \
  "sbxd's memory after the load"; do
  ok "$(grep -qF -- "$row" "$tmp/out"; echo $?)" "the report shows: $row"
done
ok "$(! grep -qE '\[n/a\]' "$tmp/out"; echo $?)" "no target is left unmeasured"
left=$(docker ps -aq | xargs -r docker inspect -f '{{.Name}} {{range .Mounts}}{{.Source}} {{end}}' |
  grep -F "$state/" | cut -d' ' -f1)
is "$left$(docker ps -aq --filter label=io.sbx.bench=1)" "" "no container is left behind"
is "$(ls -A "$state/sandboxes" "$state/managers" 2>/dev/null | grep -v -e '^$' -e ':$')" "" \
  "nor a sandbox's host folder, nor a session manager's state"
done_testing
