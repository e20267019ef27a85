// Shared by the tests of `sbx mcp`: a real server (build/sbx) driven by the
// official MCP TypeScript SDK client over its stdio transport, real sandboxes.
import { execFileSync, spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const here = dirname(fileURLToPath(import.meta.url));
// SBX_MCP_BIN runs the tests against another build (build-asan/sbx).
export const SBX = process.env.SBX_MCP_BIN || resolve(here, '../../build/sbx');

// The image the C integration tests use too: $SBX_TEST_IMAGE, else sbx's own.
export const IMAGE = process.env.SBX_TEST_IMAGE || 'sbx/base:bookworm';

// Starts `sbx mcp ARGS` and connects the SDK client to it. The server's
// stderr (its log) is kept: it names the sandbox.
export async function connect(args = []) {
  const transport = new StdioClientTransport({
    command: SBX,
    args: ['mcp', '--image', IMAGE, ...args],
    // The SDK passes only a few variables by default; DOCKER_HOST and the
    // sanitizers' options must reach the server.
    env: { ...process.env },
    stderr: 'pipe',
  });
  const log = { text: '' };
  transport.stderr.on('data', (chunk) => {
    log.text += chunk;
  });
  const client = new Client({ name: 'sbx-tests', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport, log };
}

// The text a tool result carries.
export function text(result) {
  return result.content.map((c) => c.text).join('');
}

// Calls a tool and returns { text, isError }.
export async function call(client, name, args = {}) {
  const result = await client.callTool({ name, arguments: args });
  return { text: text(result), isError: result.isError === true };
}

// The sandbox the server's log says it made.
export function sandboxId(log) {
  const m = /sandbox (\S+) is ready/.exec(log.text);
  return m ? m[1] : null;
}

// The sandboxes sbx knows (running or not).
export function sandboxes() {
  return JSON.parse(execFileSync(SBX, ['ps', '--json'], { encoding: 'utf8' })).map((s) => s.id);
}

export function removeSandbox(id) {
  try {
    execFileSync(SBX, ['rm', id], { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

// A server spoken to in raw JSON lines, for what the SDK never sends.
export function rawServer(args = []) {
  const child = spawn(SBX, ['mcp', '--image', IMAGE, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines = [];
  const waiting = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const w = waiting.shift();
    if (w) w(line);
    else lines.push(line);
  });
  let stderr = '';
  child.stderr.on('data', (c) => {
    stderr += c;
  });
  const exited = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal })));
  return {
    child,
    exited,
    stderr: () => stderr,
    send(text) {
      child.stdin.write(text.endsWith('\n') ? text : text + '\n');
    },
    // The next line the server writes, parsed.
    next(timeoutMs = 10000) {
      if (lines.length) return Promise.resolve(JSON.parse(lines.shift()));
      return new Promise((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`no reply within ${timeoutMs} ms; log:\n${stderr}`)), timeoutMs);
        waiting.push((line) => {
          clearTimeout(timer);
          res(JSON.parse(line));
        });
      });
    },
    async request(id, method, params) {
      const msg = { jsonrpc: '2.0', id, method };
      if (params !== undefined) msg.params = params;
      this.send(JSON.stringify(msg));
      return this.next();
    },
  };
}

export const INIT_PARAMS = {
  protocolVersion: '2025-11-25',
  capabilities: {},
  clientInfo: { name: 'raw-test', version: '1' },
};
