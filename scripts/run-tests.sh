#!/bin/bash
# Runs every test with prove: the layout check (clang-format), unit and
# integration tests of the normal build,
# the same under ASan+UBSan, the CLI tests, the MCP server's tests (node,
# with the official SDK client) and the README's examples, run as written;
# then the CLI and MCP tests again against build-asan/sbx, and the MCP tests
# against build-tsan/sbx (the server's reader and worker threads under
# TSan), the session manager's tests under TSan, sbxd's suites (tests/sbxd:
# REST, MCP over HTTP with the SDK, the MCP conformance suite; again under
# ASan and, for its concurrent paths, TSan), and the benchmark in brief.
# Needs `make tests asan tsan` first.
set -uo pipefail
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:abort_on_error=1:disable_coredump=1
for f in build/sbx build/sbxd build-asan/sbx build-asan/sbxd build-asan/tests/it_exec build-tsan/sbx build-tsan/sbxd build-tsan/tests/it_session; do
  [ -x "$f" ] || { echo "run-tests: $f is missing; run make tests asan tsan first" >&2; exit 1; }
done
tests=(scripts/check-format.sh build/tests/test_* build/tests/it_* tests/cli/*.t tests/mcp/*.t
       tests/readme/*.t tests/python/*.t tests/sbxd/*.t tests/bench/*.t build-asan/tests/test_* build-asan/tests/it_*
       build-tsan/tests/it_session)
# build-SAN/tests/T is a link to tests/sanitized.sh, which runs tests/T with
# build-SAN/sbx and fails it on any sanitizer report.
san=()
# (install.t builds and tests an installed copy: nothing of build-asan.)
for t in tests/cli/*.t tests/mcp/mcp.t; do
  [ "$t" = tests/cli/install.t ] || san+=("build-asan/$t")
done
san+=(build-tsan/tests/mcp/mcp.t)
for link in "${san[@]}"; do
  mkdir -p "$(dirname "$link")" && ln -sfn "$PWD/tests/sanitized.sh" "$link" || exit 1
done
exec prove --exec '' --timer -v "${tests[@]}" "${san[@]}" 2>&1
