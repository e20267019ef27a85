// Permissions enforced by `sbx mcp`: presets and a rules file, through the
// official SDK client and real sandboxes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';

import {
  HTTP, IMAGE, SBX, SBXD, assertCleanExit, call, connect, disconnect, sbxdArgs,
} from './helpers.mjs';

async function withServer(args, fn) {
  const server = await connect(args);
  try {
    await fn(server.client);
  } finally {
    await disconnect(server);
  }
}

async function toolNames(client) {
  return (await client.listTools()).tools.map((t) => t.name);
}

test('readonly hides write_file, edit_file and execute, and refuses them', async () => {
  await withServer(['--permissions', 'readonly'], async (client) => {
    const names = await toolNames(client);
    for (const hidden of ['write_file', 'edit_file', 'execute', 'run_in_background', 'kill_shell', 'kill_all'])
      assert.ok(!names.includes(hidden), `${hidden} is not listed`);
    for (const shown of ['ls', 'read_file', 'glob', 'grep', 'read_output', 'list_shells'])
      assert.ok(names.includes(shown), `${shown} is listed`);
    await assert.rejects(
      client.callTool({ name: 'write_file', arguments: { path: 'a.txt', content: 'x' } }),
      (e) => e instanceof McpError && e.code === ErrorCode.InvalidParams && /readonly/.test(e.message),
    );
    const r = await call(client, 'read_file', { path: '/etc/os-release' });
    assert.equal(r.isError, false, r.text);
    assert.match(r.text, /^ {5}1\t/);
    const secret = await call(client, 'read_file', { path: '/root/.ssh/id_rsa' });
    assert.equal(secret.isError, true);
    assert.match(secret.text, /"\*\*\/\.ssh\/\*\*"/);
  });
});

test('strict reads inside the work dir only, and asks', async () => {
  await withServer(['--permissions', 'strict'], async (client) => {
    const { tools } = await client.listTools();
    const read = tools.find((t) => t.name === 'read_file');
    assert.equal(read.annotations.readOnlyHint, false);
    assert.equal(read.annotations.destructiveHint, true);
    assert.ok(!tools.some((t) => t.name === 'execute'));
    const outside = await call(client, 'read_file', { path: '/etc/hostname' });
    assert.equal(outside.isError, true);
    assert.match(outside.text, /read of \/etc\/hostname is denied by the strict permissions/);
    const inside = await call(client, 'ls', { path: '.' });
    assert.equal(inside.isError, false, inside.text);
  });
});

test('permissive allows the secret paths', async () => {
  await withServer(['--permissions', 'permissive'], async (client) => {
    const w = await call(client, 'write_file', { path: '.env', content: 'TOKEN=1\n' });
    assert.equal(w.isError, false, w.text);
    const r = await call(client, 'read_file', { path: '.env' });
    assert.equal(r.text, '     1\tTOKEN=1\n');
  });
});

test('a rules file: first match wins, the denying rule is named', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-mcp-'));
  const file = join(dir, 'rules.json');
  writeFileSync(file, JSON.stringify({
    default: 'deny',
    deny_secrets: true,
    read: { default: 'allow', rules: [{ pattern: 'private/**', action: 'deny', description: 'private notes' }] },
    write: { rules: [{ pattern: 'out/**', action: 'allow' }] },
    ls: 'allow',
  }));
  try {
    await withServer(['--permissions', file], async (client) => {
      const names = await toolNames(client);
      assert.ok(names.includes('write_file') && names.includes('read_file') && names.includes('ls'));
      assert.ok(!names.includes('execute') && !names.includes('edit_file') && !names.includes('glob'));
      assert.equal((await call(client, 'write_file', { path: 'out/a.txt', content: 'a\n' })).isError, false);
      const elsewhere = await call(client, 'write_file', { path: 'b.txt', content: 'b\n' });
      assert.equal(elsewhere.isError, true);
      assert.match(elsewhere.text, /write of \/workspace\/b\.txt is denied by the rules file .*no rule allows it/);
      const secret = await call(client, 'write_file', { path: 'out/.env', content: 'x' });
      assert.equal(secret.isError, true);
      assert.match(secret.text, /"\*\*\/\.env"/);
      const priv = await call(client, 'read_file', { path: 'private/notes.md' });
      assert.match(priv.text, /denied by the rule "private\/\*\*" \(private notes\)/);
      const ok = await call(client, 'read_file', { path: 'out/a.txt' });
      assert.equal(ok.text, '     1\ta\n');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a bad --permissions stops the server before it serves', () => {
  const r = HTTP
    ? spawnSync(SBXD, sbxdArgs(['--permissions', 'lenient']), {
      input: '', encoding: 'utf8', env: { ...process.env, SBXD_TOKEN: 'x'.repeat(32) },
    })
    : spawnSync(SBX, ['mcp', '--image', IMAGE, '--permissions', 'lenient'], { input: '', encoding: 'utf8' });
  assertCleanExit({ code: r.status, signal: r.signal }, r.stderr, HTTP ? 2 : 125);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /not a preset \(default, permissive, readonly, strict\) and no such rules file/);
});
