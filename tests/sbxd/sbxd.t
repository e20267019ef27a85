#!/usr/bin/env bash
# sbxd's REST suite (tests/sbxd/test_*.py: real sbxd processes, a real
# engine, a urllib client), as TAP. SBXD_BIN picks another build.
cd "$(dirname "$0")/../.." && SBX_PYTEST_DIR=tests/sbxd exec tests/python/pytest.t "$@"
