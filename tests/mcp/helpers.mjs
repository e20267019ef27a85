// Shared by the tests of `sbx mcp`: a real server (build/sbx) driven by the
// official MCP TypeScript SDK client over its stdio transport, real sandboxes.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

import { randomBytes } from 'node:crypto';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const here = dirname(fileURLToPath(import.meta.url));
// SBX_CLI runs the tests against another build (build-asan/sbx, build-tsan/sbx);
// a relative path is from the top of the tree.
export const SBX = resolve(here, '../..', process.env.SBX_CLI || 'build/sbx');

// The image the C integration tests use too: $SBX_TEST_IMAGE, else sbx's own.
export const IMAGE = process.env.SBX_TEST_IMAGE || 'sbx/base:bookworm';

// A promise of how CHILD ends, its output read to the end: { code, signal }.
function exitOf(child) {
  return new Promise((res) => child.once('close', (code, signal) => res({ code, signal })));
}

// A server must end by itself with status 0 and no sanitizer report: under
// ASan or TSan a report (a leak at exit included) is an abort or an exit
// status of its own.
export function assertCleanExit({ code, signal }, stderr, want = 0) {
  assert.equal(signal, null, `the server was killed by ${signal}; its log:\n${stderr}`);
  assert.equal(code, want, `the server exited with ${code}; its log:\n${stderr}`);
  assert.doesNotMatch(stderr, /Sanitizer|runtime error:/);
}

// SBX_MCP_TRANSPORT=http runs the same tests over MCP's Streamable HTTP
// transport: each connect() starts an sbxd (SBXD_BIN, else build/sbxd) on
// loopback with a service token, and the SDK's StreamableHTTPClientTransport
// sends it as Authorization: Bearer. sbx mcp's flags map to sbxd's.
export const HTTP = process.env.SBX_MCP_TRANSPORT === 'http';
export const SBXD = resolve(here, '../..', process.env.SBXD_BIN || 'build/sbxd');

export function sbxdArgs(args) {
  const out = ['--listen', '127.0.0.1:0', '--name', `mcp${process.pid}-${randomBytes(3).toString('hex')}`,
    '--runtime', `default=${IMAGE}`];
  for (let i = 0; i < args.length; i += 2) {
    const [flag, value] = [args[i], args[i + 1]];
    if (flag === '--image') out.splice(out.indexOf(`default=${IMAGE}`), 1, `default=${value}`);
    else if (flag === '--permissions') out.push('--mcp-permissions', value);
    else out.push(flag, value);
  }
  return out;
}

async function connectHttp(args) {
  const token = randomBytes(24).toString('hex');
  const child = spawn(SBXD, sbxdArgs(args), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SBXD_TOKEN: token },
  });
  const log = { text: '' };
  child.stderr.on('data', (chunk) => {
    log.text += chunk;
  });
  const exited = exitOf(child);
  const port = await new Promise((res, rej) => {
    createInterface({ input: child.stdout }).once('line', (line) => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)$/.exec(line);
      if (m) res(Number(m[1]));
      else rej(new Error(`sbxd said ${line}; its log:\n${log.text}`));
    });
    child.once('close', () => rej(new Error(`sbxd did not start; its log:\n${log.text}`)));
    child.once('error', rej);
  });
  const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: 'sbx-tests', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport, log, exited, child, port, token };
}

// Starts `sbx mcp ARGS` and connects the SDK client to it. The server's
// stderr (its log) is kept: it names the sandbox.
export async function connect(args = []) {
  if (HTTP) return connectHttp(args);
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
  // The SDK keeps the process to itself; its exit status is checked.
  const exited = exitOf(transport._process);
  return { client, transport, log, exited };
}

// Closes the client (the end of the server's stdin) and checks that the
// server ended well.
export async function disconnect(server) {
  if (HTTP) {
    // The MCP session ends (its sandbox with it), then sbxd, by SIGTERM.
    await server.transport.terminateSession();
    await server.client.close();
    server.child.kill('SIGTERM');
    assertCleanExit(await server.exited, server.log.text);
    return;
  }
  await server.client.close();
  assertCleanExit(await server.exited, server.log.text);
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
  const exited = exitOf(child);
  return {
    child,
    exited,
    stderr: () => stderr,
    // Ends stdin and checks that the server ended well.
    async finish() {
      child.stdin.end();
      assertCleanExit(await exited, stderr);
    },
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

// Polls PRED until it holds, for at most MS.
export async function waitFor(pred, ms = 30000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((res) => setTimeout(res, 50));
  }
}

export const INIT_PARAMS = {
  protocolVersion: '2025-11-25',
  capabilities: {},
  clientInfo: { name: 'raw-test', version: '1' },
};
