#!/usr/bin/env bash
# The MCP tool tests of `sbx mcp` (tests/mcp), run again over sbxd's /mcp
# with the official SDK's StreamableHTTPClientTransport and a bearer token.
cd "$(dirname "$0")/../.." && SBX_MCP_TRANSPORT=http exec tests/mcp/mcp.t
