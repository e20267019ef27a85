// What the SDK never sends: malformed input, unknown methods, wrong params,
// requests before initialize, and version negotiation, in raw JSON lines.
// The server answers each with the right JSON-RPC error and keeps serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { INIT_PARAMS, rawServer, waitFor } from './helpers.mjs';

test('malformed and unknown requests get the right error codes, and the server keeps serving', async () => {
  const s = rawServer();
  try {
    let r = await s.request(1, 'tools/list');
    assert.equal(r.id, 1);
    assert.equal(r.error.code, -32002, 'a request before initialize');
    r = await s.request(2, 'ping');
    assert.deepEqual(r.result, {}, 'ping is answered before initialize');

    r = await s.request(3, 'initialize', INIT_PARAMS);
    assert.equal(r.result.protocolVersion, '2025-11-25');
    assert.equal(r.result.serverInfo.name, 'sbx');
    s.send('{"jsonrpc":"2.0","method":"notifications/initialized"}');

    s.send('{"jsonrpc":"2.0","id":4,"method":"tools/list"');
    r = await s.next();
    assert.equal(r.error.code, -32700, 'bad JSON');
    assert.equal(r.id, null);

    s.child.stdin.write(Buffer.concat([
      Buffer.from('{"jsonrpc":"2.0","id":5,"method":"tools/li'), Buffer.from([0xff]), Buffer.from('"}\n')]));
    r = await s.next();
    assert.equal(r.error.code, -32700, 'invalid UTF-8');

    r = await s.request(6, 'resources/list');
    assert.equal(r.error.code, -32601, 'an unknown method');
    assert.equal(r.id, 6);

    s.send('{"id":7,"method":"ping"}');
    r = await s.next();
    assert.equal(r.error.code, -32600, 'no "jsonrpc": "2.0"');
    assert.equal(r.id, 7);

    s.send('[{"jsonrpc":"2.0","id":8,"method":"ping"}]');
    r = await s.next();
    assert.equal(r.error.code, -32600, 'a batch');

    s.send('{"jsonrpc":"2.0","id":9,"method":"tools/call","params":[1,2]}');
    r = await s.next();
    assert.equal(r.error.code, -32602, 'params that are not an object');

    r = await s.request(10, 'tools/call', { arguments: {} });
    assert.equal(r.error.code, -32602, 'tools/call without a name');
    r = await s.request(11, 'tools/call', { name: 'rm_rf', arguments: {} });
    assert.equal(r.error.code, -32602, 'an unknown tool');
    assert.match(r.error.message, /rm_rf/);
    r = await s.request(12, 'initialize', INIT_PARAMS);
    assert.equal(r.error.code, -32600, 'a second initialize');

    // Arguments the model got wrong are a tool error it can act on.
    r = await s.request(13, 'tools/call', { name: 'read_file', arguments: { file: 'x' } });
    assert.equal(r.result.isError, true);
    assert.match(r.result.content[0].text, /unknown argument "file"; read_file takes path, offset, limit/);

    s.send('   ');
    s.send('{"jsonrpc":"2.0","id":"last","method":"ping"}');
    r = await s.next();
    assert.equal(r.id, 'last', 'still serving after all that (blank lines are skipped)');
    assert.deepEqual(r.result, {});
  } finally {
    await s.finish();
  }
});

for (const [asked, answered] of [
  ['2025-11-25', '2025-11-25'],
  ['2025-06-18', '2025-06-18'],
  ['2025-03-26', '2025-03-26'],
  ['2024-11-05', '2024-11-05'],
  ['2024-01-01', '2025-11-25'],
]) {
  test(`initialize asking for ${asked} is answered with ${answered}`, async () => {
    const s = rawServer();
    try {
      const r = await s.request(1, 'initialize', { ...INIT_PARAMS, protocolVersion: asked });
      assert.equal(r.result.protocolVersion, answered);
      const list = await s.request(2, 'tools/list');
      const ls = list.result.tools.find((t) => t.name === 'ls');
      assert.equal('annotations' in ls, answered >= '2025-03-26', 'annotations from 2025-03-26');
      assert.equal('title' in ls, answered >= '2025-06-18', 'titles from 2025-06-18');
    } finally {
      await s.finish();
    }
  });
}

// The reader thread answers while the tool worker runs a call (and, under
// TSan, the two threads are seen sharing stdout and the queue).
test('ping and tools/list are answered while a command runs', async () => {
  const s = rawServer();
  try {
    await s.request(1, 'initialize', INIT_PARAMS);
    s.send('{"jsonrpc":"2.0","method":"notifications/initialized"}');
    s.send(JSON.stringify({
      jsonrpc: '2.0', id: 2, method: 'tools/call',
      params: { name: 'execute', arguments: { command: 'echo begun; sleep 3; echo done' } },
    }));
    await waitFor(() => /sandbox \S+ is ready/.test(s.stderr()));
    for (let i = 0; i < 10; i++) {
      assert.deepEqual(await s.request(`ping-${i}`, 'ping'), { jsonrpc: '2.0', id: `ping-${i}`, result: {} });
      const list = await s.request(`list-${i}`, 'tools/list');
      assert.equal(list.id, `list-${i}`);
      assert.equal(list.result.tools.length, 12);
    }
    const reply = await s.next(30000);
    assert.equal(reply.id, 2, 'the call is answered after them');
    assert.equal(reply.result.content[0].text, 'begun\ndone\n');
  } finally {
    await s.finish();
  }
});

test('stdout carries nothing but protocol messages', async () => {
  const s = rawServer();
  s.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: INIT_PARAMS }));
  s.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'execute', arguments: { command: 'echo to-stdout; echo to-stderr >&2' } } }));
  const init = await s.next();
  const reply = await s.next(60000);
  await s.finish();
  assert.equal(init.id, 1);
  assert.equal(reply.id, 2);
  assert.equal(reply.result.content[0].text, 'to-stdout\nto-stderr\n');
  assert.match(s.stderr(), /sandbox \S+ is ready/, 'the log goes to stderr');
});
