# Shared TAP helpers for the CLI tests (sourced, not run).
set -uo pipefail
cd "$(dirname "$0")/../.."

# SBX_CLI runs the tests against another build (build-asan/sbx).
sbx=${SBX_CLI:-build/sbx}
n=0
failed=0
tmp=$(mktemp -d /tmp/sbx-cli-test.XXXXXX)
cleanup_ids=()
cleanup() {
  for id in "${cleanup_ids[@]}"; do "$sbx" rm "$id" >/dev/null 2>&1; done
  rm -rf "$tmp"
}
trap cleanup EXIT

if [ ! -x "$sbx" ]; then
  echo "Bail out! $sbx is missing; run make first"
  exit 1
fi

ok() { # ok STATUS DESCRIPTION: STATUS 0 passes
  n=$((n + 1))
  if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
diag() { sed 's/^/# /' <<<"$*"; }
# Runs the rest, keeping stdout, stderr and the exit code.
run() { "$@" >"$tmp/out" 2>"$tmp/err"; echo $? >"$tmp/rc"; }
rc() { cat "$tmp/rc"; }
out() { cat "$tmp/out"; }
err() { cat "$tmp/err"; }
has() { grep -qF -- "$2" "$tmp/$1"; }
# is GOT WANT DESCRIPTION
is() {
  if [ "$1" = "$2" ]; then ok 0 "$3"; else ok 1 "$3"; diag "got:      '$1'"; diag "expected: '$2'"; fi
}
done_testing() {
  echo "1..$n"
  [ "$failed" = 0 ]
}
