#!/usr/bin/env bash
# mcp-http.t against build-asan/sbxd: each server must end with status 0 and
# no sanitizer report (helpers.mjs checks its log).
cd "$(dirname "$0")/../.." && SBXD_BIN=build-asan/sbxd SBX_MCP_TRANSPORT=http exec tests/mcp/mcp.t
