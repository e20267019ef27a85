#!/usr/bin/env bash
# Runs a CLI or MCP test against a sanitized sbx. It is reached through a
# link named after both (scripts/run-tests.sh makes them):
# build-asan/tests/cli/core.t runs tests/cli/core.t with SBX_CLI=build-asan/sbx.
# The sanitizers write their reports to files, so that a report from any sbx
# process the test starts (a leak at exit included) fails the test, whatever
# the test itself checked.
set -uo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

if ! [[ $0 =~ (build-[a-z]+)/tests/(.+)$ ]]; then
  echo "Bail out! $0 is not named build-SAN/tests/TEST"
  exit 1
fi
build=${BASH_REMATCH[1]}
test=tests/${BASH_REMATCH[2]}
if [ ! -x "$build/sbx" ] || [ ! -x "$test" ]; then
  echo "Bail out! $build/sbx or $test is missing (make asan tsan)"
  exit 1
fi
logs=$(mktemp -d /tmp/sbx-san-logs.XXXXXX)
trap 'rm -rf "$logs"' EXIT
export SBX_CLI=$PWD/$build/sbx
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:disable_coredump=1:log_path=$logs/asan
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan
export TSAN_OPTIONS=halt_on_error=1:abort_on_error=1:disable_coredump=1:log_path=$logs/tsan
"$test"
rc=$?
for f in "$logs"/*; do
  [ -e "$f" ] || continue
  echo "# a sanitizer report ($f):"
  sed 's/^/#   /' "$f"
  rc=1
done
exit "$rc"
