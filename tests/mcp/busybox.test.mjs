// `sbx mcp` on an image without GNU coreutils (busybox's shell and a few
// applets, no realpath, stat or xargs; made by scripts/setup.sh): every tool
// works, permission checks included, because the agent resolves paths itself.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { call, connect, disconnect } from './helpers.mjs';

let server;
before(async () => {
  server = await connect(['--image', 'sbx-test/busybox:1']);
});
after(async () => {
  if (server) await disconnect(server);
});

test("the image has no GNU coreutils: busybox's realpath knows no -m", async () => {
  const r = await call(server.client, 'execute', { command: 'realpath -m -z /nonexistent/x' });
  assert.match(r.text, /^Command failed \(exit code 1\):/);
  assert.match(r.text, /realpath: -m: No such file or directory/);
});

test('the file tools work, with their permission checks', async () => {
  const c = server.client;
  assert.equal((await call(c, 'write_file', { path: 'src/app.txt', content: 'one\ntwo\n' })).text,
    'Wrote 2 lines to /workspace/src/app.txt');
  const read = await call(c, 'read_file', { path: 'src/../src/app.txt' });
  assert.equal(read.text, '     1\tone\n     2\ttwo\n');
  const edit = await call(c, 'edit_file', { path: 'src/app.txt', old_string: 'two', new_string: 'three' });
  assert.equal(edit.text, 'Edited /workspace/src/app.txt: replaced 1 occurrence(s)');
  assert.match((await call(c, 'glob', { pattern: '**/*.txt' })).text, /\/workspace\/src\/app\.txt/);
  assert.match((await call(c, 'grep', { pattern: 'three', output_mode: 'content' })).text,
    /^\/workspace\/src\/app\.txt:2:three$/m);
  assert.match((await call(c, 'ls', { path: 'src' })).text, /app\.txt \(10 bytes\)/);
  // A link to a secret is resolved by the agent, and refused.
  await call(c, 'execute', { command: 'echo TOKEN=x > .env && ln -s .env innocent.txt' });
  const link = await call(c, 'read_file', { path: 'innocent.txt' });
  assert.equal(link.isError, true);
  assert.match(link.text, /leads to \/workspace\/\.env through a symbolic link/);
});
