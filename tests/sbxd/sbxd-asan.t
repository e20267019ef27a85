#!/usr/bin/env bash
# sbxd's REST suite against build-asan/sbxd (ASan and UBSan): every server
# must exit 0 with no sanitizer report in its log. The 50-client load test
# and the waits (idle reaping, a silent connection closed) run in sbxd.t
# and, the load, in sbxd-tsan.t.
cd "$(dirname "$0")/../.." && SBXD_BIN=build-asan/sbxd SBX_PYTEST_DIR=tests/sbxd \
  exec tests/python/pytest.t -k "not fifty and not idle_sessions and not silent" "$@"
