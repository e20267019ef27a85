// The MCP side of `make bench` (bench/bench.py runs it): `sbx mcp` driven by
// the official MCP TypeScript SDK client over stdio (the one tests/mcp
// installs), timing tool calls as a framework's agent makes them, and the
// floor in the same process: spawning `sh -c true` and waiting for it. Each
// call is taken by turns with a floor sample, so both see the same load.
// Prints one JSON line: {"floor":[ms...], "read_file":[...], "write_file":[...],
// "execute":[...], "errors":[...]}.
//
//   node bench/mcp.mjs SBX IMAGE RUNS WARMUP
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const sdk = (p) => import(pathToFileURL(resolve(root, 'tests/mcp/node_modules/@modelcontextprotocol/sdk/dist/esm', p)).href);
const { Client } = await sdk('client/index.js');
const { StdioClientTransport } = await sdk('client/stdio.js');

const [sbx, image, runsText, warmText] = process.argv.slice(2);
const runs = Number(runsText), warmup = Number(warmText);
const out = { floor: [], read_file: [], write_file: [], execute: [], errors: [] };

const transport = new StdioClientTransport({
  command: sbx, args: ['mcp', '--image', image], env: { ...process.env }, stderr: 'ignore',
});
const client = new Client({ name: 'sbx-bench', version: '1.0.0' });
await client.connect(transport);

const content = Array.from({ length: 20 }, (_, i) => `line ${i + 1} of a small source file`).join('\n') + '\n';
const calls = {
  read_file: ['read_file', { path: 'bench.txt' }, /^ {5}1\tline 1 of/],
  write_file: ['write_file', { path: 'bench.txt', content }, /^Wrote 20 lines to/],
  execute: ['execute', { command: 'true' }, /^$|no output/i],
};

function floor() {
  const r = spawnSync('/bin/sh', ['-c', 'true']);
  if (r.status !== 0) throw new Error('sh -c true failed');
}

async function call(name) {
  const [tool, args, expect] = calls[name];
  const res = await client.callTool({ name: tool, arguments: args });
  const text = res.content.map((c) => c.text).join('');
  if (res.isError || !expect.test(text)) throw new Error(`${tool}: ${text.slice(0, 200)}`);
}

try {
  await call('write_file'); // makes the sandbox
  for (const name of ['read_file', 'write_file', 'execute']) {
    for (let i = 0; i < warmup; i++) {
      floor();
      await call(name);
    }
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      floor();
      const t1 = performance.now();
      await call(name);
      out.floor.push(t1 - t0);
      out[name].push(performance.now() - t1);
    }
  }
} catch (e) {
  out.errors.push(String(e.message || e));
}
await client.close();
process.stdout.write(JSON.stringify(out) + '\n');
