#!/usr/bin/env bash
# sbxd's REST suite against build-asan/sbxd (ASan and UBSan): every server
# must exit 0 with no sanitizer report in its log.
cd "$(dirname "$0")/../.." && SBXD_BIN=build-asan/sbxd SBX_PYTEST_DIR=tests/sbxd exec tests/python/pytest.t "$@"
