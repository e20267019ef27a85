// The sandbox's life under `sbx mcp`: removed on SIGTERM and SIGINT (also
// in the middle of a command), kept and re-used with --name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { INIT_PARAMS, call, connect, rawServer, removeSandbox, sandboxId, sandboxes } from './helpers.mjs';

async function waitFor(pred, ms = 30000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((res) => setTimeout(res, 50));
  }
}

for (const signal of ['SIGTERM', 'SIGINT']) {
  test(`${signal} in the middle of a command removes the sandbox at once`, async () => {
    const s = rawServer();
    await s.request(1, 'initialize', INIT_PARAMS);
    s.send(JSON.stringify({
      jsonrpc: '2.0', id: 2, method: 'tools/call',
      params: { name: 'execute', arguments: { command: 'sleep 600' } },
    }));
    await waitFor(() => /sandbox (\S+) is ready/.test(s.stderr()));
    const id = /sandbox (\S+) is ready/.exec(s.stderr())[1];
    assert.ok(sandboxes().includes(id));
    await new Promise((res) => setTimeout(res, 300)); // the command runs
    const t0 = Date.now();
    s.child.kill(signal);
    const { code } = await s.exited;
    assert.ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`);
    assert.equal(code, 0);
    assert.ok(!sandboxes().includes(id), `sandbox ${id} is gone`);
    assert.match(s.stderr(), /removed sandbox/);
  });
}

test('with --name the sandbox is kept and used again', async () => {
  const name = `sbx-mcp-test-${randomBytes(4).toString('hex')}`;
  try {
    let server = await connect(['--name', name]);
    const w = await call(server.client, 'write_file', { path: 'notes.txt', content: 'kept\n' });
    assert.equal(w.isError, false, w.text);
    assert.equal(sandboxId(server.log), name);
    await server.client.close();
    assert.ok(sandboxes().includes(name), 'kept after the client closed');
    assert.match(server.log.text, /stopped sandbox .* it is kept/);

    server = await connect(['--name', name]);
    const r = await call(server.client, 'read_file', { path: 'notes.txt' });
    assert.equal(r.text, '     1\tkept\n');
    await server.client.close();
  } finally {
    removeSandbox(name);
  }
  assert.ok(!sandboxes().includes(name));
});
