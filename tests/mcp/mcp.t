#!/usr/bin/env bash
# End-to-end tests of `sbx mcp` with the official MCP TypeScript SDK client
# (@modelcontextprotocol/sdk 1.x, pinned by package-lock.json), run by node's
# test runner; its TAP output is read by prove (scripts/run-tests.sh).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "Bail out! node and npm are needed (scripts/setup.sh installs them)"
  exit 1
fi
# SBX_CLI (helpers.mjs) runs them against another build of sbx.
sbx=${SBX_CLI:-build/sbx}
if [ ! -x "$(cd ../.. && realpath -m "$sbx")" ]; then
  echo "Bail out! $sbx is missing; run make first"
  exit 1
fi
# Installed from the lock file when missing or older than it; npm's chatter
# goes to stderr, away from the TAP stream.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error 1>&2 \
    || { echo "Bail out! npm ci failed (is the npm registry reachable?)"; exit 1; }
fi
# SBX_MCP_TRANSPORT=http (tests/sbxd/mcp-http.t): the tool tests over
# sbxd's /mcp instead, with the SDK's Streamable HTTP client.
if [ "${SBX_MCP_TRANSPORT:-}" = http ]; then
  sbxd=${SBXD_BIN:-build/sbxd}
  if [ ! -x "$(cd ../.. && realpath -m "$sbxd")" ]; then
    echo "Bail out! $sbxd is missing; run make first"
    exit 1
  fi
  exec node --test --test-reporter=tap tools.test.mjs permissions.test.mjs busybox.test.mjs
fi
exec node --test --test-reporter=tap ./*.test.mjs
