#!/bin/bash
# Runs every test with prove: unit and integration tests of the normal build,
# the same under ASan+UBSan, the CLI tests, the MCP server's tests (node,
# with the official SDK client) and the README's examples, run as written.
# Needs `make tests asan` first.
set -uo pipefail
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
tests=(build/tests/test_* build/tests/it_* tests/cli/*.t tests/mcp/*.t tests/readme/*.t)
for t in build-asan/tests/test_* build-asan/tests/it_*; do
  [ -x "$t" ] && tests+=("$t")
done
exec prove --exec '' --timer -v "${tests[@]}" 2>&1
