// The sandbox's life under `sbx mcp`: removed on SIGTERM and SIGINT (also
// in the middle of a command), kept and re-used with --name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

import {
  INIT_PARAMS, SBX, assertCleanExit, call, connect, disconnect, rawServer, removeSandbox, sandboxId,
  sandboxes, waitFor,
} from './helpers.mjs';

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
    // Asked through the CLI, which has a connection of its own.
    const running = () => execFileSync(SBX, ['exec', id, '--',
      "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done 2>/dev/null | grep -c '^sleep 60[0]'; true"],
    { encoding: 'utf8' }) === '1\n';
    await waitFor(running);
    const t0 = Date.now();
    s.child.kill(signal);
    assertCleanExit(await s.exited, s.stderr());
    assert.ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`);
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
    await disconnect(server);
    assert.ok(sandboxes().includes(name), 'kept after the client closed');
    assert.match(server.log.text, /stopped sandbox .* it is kept/);

    server = await connect(['--name', name]);
    const r = await call(server.client, 'read_file', { path: 'notes.txt' });
    assert.equal(r.text, '     1\tkept\n');
    await disconnect(server);
  } finally {
    removeSandbox(name);
  }
  assert.ok(!sandboxes().includes(name));
});
