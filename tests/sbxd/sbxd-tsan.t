#!/usr/bin/env bash
# sbxd's concurrent paths against build-tsan/sbxd (ThreadSanitizer): 20
# clients at once, MCP sessions, hibernation, SIGTERM with a request in
# flight, streamed output, background processes, the bounds on MCP
# sessions and on a session's requests at once, hang-ups. A race aborts
# the server, which the suite sees as its exit status and its log.
cd "$(dirname "$0")/../.." && SBXD_BIN=build-tsan/sbxd SBXD_LOAD_SECONDS=3 SBXD_LOAD_CLIENTS=20 \
  SBX_PYTEST_DIR=tests/sbxd \
  exec tests/python/pytest.t -k "fifty or transport or binds or service_token or hibernation or sigterm or stream or background or per_token or lost or worker or waiting or hangs_up" "$@"
