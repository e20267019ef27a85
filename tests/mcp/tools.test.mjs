// The tools of `sbx mcp` through the official SDK client, in one real
// sandbox with the default permissions.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { call, connect, disconnect, sandboxId, sandboxes } from './helpers.mjs';

const FIBONACCI = `def fibonacci(n):
    if n <= 1:
        return n
    return fibonacci(n-1) + fibonacci(n-2)

for i in range(10):
    print(fibonacci(i), end=' ')
`;

describe('sbx mcp tools', () => {
  let server;
  let id;

  before(async () => {
    server = await connect();
  });

  after(async () => {
    if (server) await disconnect(server);
  });

  test('the client negotiates the latest protocol and lists every tool', async () => {
    const { client } = server;
    assert.equal(client.getServerVersion().name, 'sbx');
    assert.ok(client.getServerCapabilities().tools);
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    assert.deepEqual(names, [
      'edit_file', 'execute', 'glob', 'grep', 'kill_all', 'kill_shell', 'list_shells', 'ls',
      'read_file', 'read_output', 'run_in_background', 'write_file',
    ]);
    for (const t of tools) {
      assert.equal(t.inputSchema.type, 'object', `${t.name} has an object schema`);
      assert.ok(t.description.length > 40, `${t.name} has a description`);
      assert.equal(typeof t.annotations.readOnlyHint, 'boolean');
      assert.equal(typeof t.annotations.destructiveHint, 'boolean');
      assert.equal(typeof t.annotations.idempotentHint, 'boolean');
    }
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    assert.equal(byName.read_file.annotations.readOnlyHint, true);
    assert.equal(byName.write_file.annotations.destructiveHint, true);
    assert.equal(byName.execute.inputSchema.properties.timeout.default, 120);
    assert.deepEqual(byName.grep.inputSchema.properties.output_mode.enum,
      ['files_with_matches', 'content', 'count']);
  });

  test('no sandbox exists before the first tool call that needs one', async () => {
    assert.equal(sandboxId(server.log), null);
    const r = await call(server.client, 'list_shells');
    assert.equal(r.text.trim(), 'No background processes.');
    assert.equal(sandboxId(server.log), null);
  });

  test("the seed's fibonacci example through write_file and execute", async () => {
    const w = await call(server.client, 'write_file', { path: '/workspace/app.py', content: FIBONACCI });
    assert.equal(w.isError, false, w.text);
    assert.equal(w.text, 'Wrote 7 lines to /workspace/app.py');
    id = sandboxId(server.log);
    assert.ok(id, 'the log names the sandbox');
    assert.ok(sandboxes().includes(id));
    const r = await call(server.client, 'execute', { command: 'python3 app.py' });
    assert.equal(r.isError, false);
    assert.equal(r.text.trim(), '0 1 1 2 3 5 8 13 21 34');
  });

  test('ls shows directories and sizes', async () => {
    await call(server.client, 'execute', { command: 'mkdir -p pkg && printf abc > pkg/x.txt' });
    const r = await call(server.client, 'ls', {});
    assert.equal(r.text,
      `Contents of /workspace:\n  pkg/\n  app.py (${Buffer.byteLength(FIBONACCI)} bytes)\n`);
    const sub = await call(server.client, 'ls', { path: 'pkg' });
    assert.equal(sub.text, 'Contents of /workspace/pkg:\n  x.txt (3 bytes)\n');
  });

  test('read_file with offset and limit', async () => {
    const lines = Array.from({ length: 10 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
    await call(server.client, 'write_file', { path: 'ten.txt', content: lines });
    const r = await call(server.client, 'read_file', { path: 'ten.txt', offset: 2, limit: 3 });
    assert.equal(r.isError, false);
    assert.equal(r.text,
      '     3\tline 3\n     4\tline 4\n     5\tline 5\n... more lines follow; read on with offset=5\n');
    const all = await call(server.client, 'read_file', { path: 'ten.txt' });
    assert.equal(all.text, lines.split('\n').slice(0, 10).map((l, i) => `${String(i + 1).padStart(6)}\t${l}\n`).join(''));
    const missing = await call(server.client, 'read_file', { path: 'nope.txt' });
    assert.equal(missing.isError, true);
    assert.match(missing.text, /nope\.txt/);
  });

  test('edit_file: read first, ambiguity, staleness', async () => {
    const c = server.client;
    await call(c, 'write_file', { path: 'cfg.py', content: 'a = 1\nb = 1\n' });
    await call(c, 'execute', { command: 'cp cfg.py other.py' });
    const unread = await call(c, 'edit_file', { path: 'other.py', old_string: 'a = 1', new_string: 'a = 2' });
    assert.equal(unread.isError, true);
    assert.match(unread.text, /read .*other\.py with read_file before editing it/);

    // write_file counts as having seen the content.
    const ambiguous = await call(c, 'edit_file', { path: 'cfg.py', old_string: '= 1', new_string: '= 2' });
    assert.equal(ambiguous.isError, true);
    assert.match(ambiguous.text, /occurs 2 times/);
    assert.match(ambiguous.text, /replace_all/);

    const one = await call(c, 'edit_file', { path: 'cfg.py', old_string: 'a = 1', new_string: 'a = 3' });
    assert.equal(one.isError, false, one.text);
    assert.equal(one.text, 'Edited /workspace/cfg.py: replaced 1 occurrence(s)');

    // Changed behind the model's back: refused until read again.
    await call(c, 'execute', { command: 'echo "c = 1" >> cfg.py' });
    const stale = await call(c, 'edit_file', { path: 'cfg.py', old_string: 'b = 1', new_string: 'b = 4' });
    assert.equal(stale.isError, true);
    assert.match(stale.text, /changed since you last read it/);
    assert.match(stale.text, /read_file/);
    await call(c, 'read_file', { path: 'cfg.py' });
    const all = await call(c, 'edit_file', { path: './sub/../cfg.py', old_string: '= 1', new_string: '= 5', replace_all: true });
    assert.equal(all.text, 'Edited /workspace/cfg.py: replaced 2 occurrence(s)');
    const out = await call(c, 'execute', { command: 'cat cfg.py' });
    assert.equal(out.text, 'a = 3\nb = 5\nc = 5\n');

    const nomatch = await call(c, 'edit_file', { path: 'cfg.py', old_string: 'zzz', new_string: 'y' });
    assert.equal(nomatch.isError, true);
    assert.match(nomatch.text, /not found/);
  });

  test('grep in all three modes', async () => {
    const c = server.client;
    await call(c, 'execute', {
      command: 'mkdir -p src && printf "def f():\\n    return 1\\ndef g():\\n    pass\\n" > src/m.py'
        + ' && printf "def h(): pass\\n" > src/n.py && printf "nothing\\n" > src/o.txt',
    });
    const files = await call(c, 'grep', { pattern: '^def \\w+', path: 'src' });
    assert.equal(files.text, 'Found 2 file(s) with matches:\n/workspace/src/m.py\n/workspace/src/n.py\n');
    const content = await call(c, 'grep', { pattern: '^def \\w+', path: 'src', output_mode: 'content' });
    assert.equal(content.text,
      'Found 3 matching line(s) in 2 file(s):\n/workspace/src/m.py:1:def f():\n'
      + '/workspace/src/m.py:3:def g():\n/workspace/src/n.py:1:def h(): pass\n');
    const count = await call(c, 'grep', { pattern: 'def', path: 'src', output_mode: 'count', glob_pattern: '*.py' });
    assert.equal(count.text, 'Found 3 match(es) in 2 file(s):\n/workspace/src/m.py: 2\n/workspace/src/n.py: 1\n');
    const none = await call(c, 'grep', { pattern: 'absent_word', path: 'src' });
    assert.match(none.text, /^No matches for absent_word/);
    const bad = await call(c, 'grep', { pattern: '(unclosed' });
    assert.equal(bad.isError, true);
    assert.equal(bad.text, 'Error: invalid regular expression at offset 9: missing closing parenthesis');
  });

  test('grep cuts long lines at 100 characters and shows at most 50', async () => {
    const c = server.client;
    await call(c, 'execute', {
      command: 'mkdir -p many && for i in $(seq 1 60); do printf "hit %0120d\\n" $i > many/f$i.txt; done',
    });
    const r = await call(c, 'grep', { pattern: 'hit', path: 'many', output_mode: 'content' });
    const lines = r.text.trim().split('\n');
    assert.equal(lines[0], 'Found 60 matching line(s) in 60 file(s):');
    assert.equal(lines.length, 1 + 50 + 1);
    assert.equal(lines.at(-1), '... and 10 more');
    const shown = lines[1].split(':').slice(2).join(':');
    assert.equal(shown, 'hit ' + '0'.repeat(96) + '...');
  });

  test('glob', async () => {
    const c = server.client;
    const r = await call(c, 'glob', { pattern: '**/*.py' });
    assert.match(r.text, /^Found \d+ file\(s\) matching \*\*\/\*\.py:\n/);
    assert.ok(r.text.includes('/workspace/app.py\n'));
    assert.ok(r.text.includes('/workspace/src/m.py\n'));
    assert.ok(!r.text.includes('o.txt'));
    await call(c, 'execute', { command: 'mkdir -p lots && cd lots && touch $(seq -f "f%03g.c" 1 120)' });
    const lots = await call(c, 'glob', { pattern: '*.c', path: 'lots' });
    const lines = lots.text.trim().split('\n');
    assert.equal(lines[0], 'Found 120 file(s) matching *.c:');
    assert.equal(lines.length, 1 + 100 + 1);
    assert.equal(lines[1], '/workspace/lots/f001.c');
    assert.equal(lines.at(-1), '... and 20 more');
    const none = await call(c, 'glob', { pattern: '*.rs' });
    assert.match(none.text, /^No files found matching \*\.rs/);
  });

  test('execute: failure, timeout, invalid UTF-8', async () => {
    const c = server.client;
    const failed = await call(c, 'execute', { command: 'echo oops; exit 3' });
    assert.equal(failed.text, 'Command failed (exit code 3):\noops\n');
    const started = Date.now();
    const slow = await call(c, 'execute', { command: 'echo begun; sleep 30', timeout: 1 });
    assert.ok(Date.now() - started < 10000, 'the timeout cut the command short');
    assert.match(slow.text, /^Command timed out after 1 seconds/);
    assert.match(slow.text, /begun/);
    const bytes = await call(c, 'execute', { command: "printf 'caf\\351 \\000 ok'" });
    assert.equal(bytes.text, 'caf\uFFFD \uFFFD ok\n');
    const quiet = await call(c, 'execute', { command: 'true' });
    assert.equal(quiet.text, '(no output)\n');
    const badArgs = await call(c, 'execute', { command: 'true', timeout: 0 });
    assert.equal(badArgs.isError, true);
    assert.match(badArgs.text, /"timeout" must be at least 1/);
  });

  test('a background process started, read and killed', async () => {
    const c = server.client;
    const started = await call(c, 'run_in_background', {
      command: 'for i in 1 2 3; do echo tick $i; sleep 0.1; done; sleep 300',
    });
    assert.equal(started.isError, false, started.text);
    const sid = /Started background process (\S+):/.exec(started.text)[1];
    let seen = '';
    for (let i = 0; i < 50 && !seen.includes('tick 3'); i++) {
      await new Promise((res) => setTimeout(res, 100));
      seen += (await call(c, 'read_output', { shell_id: sid })).text;
    }
    assert.match(seen, /tick 1\n(.|\n)*tick 3/);
    assert.match(seen, /running \(pid \d+\)/);
    const list = await call(c, 'list_shells');
    assert.match(list.text, new RegExp(`^Background processes:\\n  ${sid}: .*\\(running`, 'm'));
    const killed = await call(c, 'kill_shell', { shell_id: sid });
    assert.equal(killed.text, `Killed background process ${sid}.`);
    let status = '';
    for (let i = 0; i < 50 && !/exited/.test(status); i++) {
      status = (await call(c, 'read_output', { shell_id: sid })).text;
      if (!/exited/.test(status)) await new Promise((res) => setTimeout(res, 100));
    }
    assert.match(status, /exited with code \d+/);
    const unknown = await call(c, 'read_output', { shell_id: '999' });
    assert.equal(unknown.isError, true);
  });

  test('a fork bomb fills the process limit; execute says so; kill_all is the way out', async () => {
    const bombed = await connect(['--pids', '64']);
    const c = bombed.client;
    try {
      const bomb = 'import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n';
      assert.equal((await call(c, 'write_file', { path: '/tmp/bomb.py', content: bomb })).isError, false);
      assert.equal((await call(c, 'run_in_background', { command: 'python3 /tmp/bomb.py' })).isError, false);
      let full = null;
      for (let i = 0; i < 100 && !full; i++) {
        const r = await call(c, 'execute', { command: 'true' });
        if (r.isError && /limit of \d+ processes/.test(r.text)) full = r;
        else await new Promise((res) => setTimeout(res, 100));
      }
      assert.ok(full, 'execute fails at the limit');
      assert.match(full.text, /pids limit\); end them all with `sbx kill ID` \(sbx_sandbox_kill_all, the MCP tool kill_all\)/);
      const listed = await call(c, 'ls', { path: '/tmp' });
      assert.match(listed.text, /bomb\.py/, 'file tools still work at the limit');
      const killed = await call(c, 'kill_all');
      assert.equal(killed.isError, false, killed.text);
      assert.match(killed.text, /^Killed \d+ processes; the sandbox and its files are kept\.$/);
      const after = await call(c, 'execute', { command: 'echo back' });
      assert.equal(after.text, 'back\n');
    } finally {
      await disconnect(bombed);
    }
  });

  test("the seed's secret paths are denied, also through .. and symlinks", async () => {
    const c = server.client;
    const w = await call(c, 'write_file', { path: '.env', content: 'TOKEN=x\n' });
    assert.equal(w.isError, true);
    assert.match(w.text, /Permission denied: write of \/workspace\/\.env is denied by the rule "\*\*\/\.env"/);
    // Commands may (the container is the boundary); the file tools may not.
    await call(c, 'execute', { command: 'echo TOKEN=x > .env && ln -sf .env innocent.txt && mkdir -p keys && echo k > keys/id.pem' });
    const dotdot = await call(c, 'read_file', { path: 'src/../.env' });
    assert.equal(dotdot.isError, true);
    assert.match(dotdot.text, /read of \/workspace\/\.env is denied/);
    const link = await call(c, 'read_file', { path: 'innocent.txt' });
    assert.equal(link.isError, true);
    assert.match(link.text, /leads to \/workspace\/\.env through a symbolic link/);
    const edit = await call(c, 'edit_file', { path: 'keys/id.pem', old_string: 'k', new_string: 'j' });
    assert.equal(edit.isError, true);
    assert.match(edit.text, /\*\*\/\*\.pem/);
    await call(c, 'execute', { command: 'printf "TOKEN=a\\nTOKEN=b\\n" > api_secret.txt && echo TOKEN_OK > zz.txt' });
    const grep = await call(c, 'grep', { pattern: 'TOKEN', output_mode: 'content' });
    assert.ok(!/TOKEN=[xab]/.test(grep.text), grep.text);
    assert.match(grep.text, /^\/workspace\/zz\.txt:1:TOKEN_OK$/m);
    assert.match(grep.text, /\(\d+ file\(s\) the permissions keep out were not searched\)/);
    const glob = await call(c, 'glob', { pattern: 'keys/*' });
    assert.equal(glob.text, 'No files found matching keys/* in /workspace\n(1 file(s) left out by the permissions)\n');
    const ls = await call(c, 'ls', { path: '/root/.ssh' });
    assert.equal(ls.isError, true);
    assert.match(ls.text, /^Permission denied: ls of \/root\/\.ssh is denied by the rule "\*\*\/\.ssh\/\*\*"/);
  });

  test('grep reveals nothing of a denied file: the output is the same whether it matches or not', async () => {
    const c = server.client;
    await call(c, 'execute', { command: 'mkdir -p oracle && echo public > oracle/readme.txt' });
    const outputs = [];
    for (const secret of ['KEY=abc', 'KEY=xyz']) {
      await call(c, 'execute', { command: `echo ${secret} > oracle/db_password.txt` });
      outputs.push((await call(c, 'grep', { pattern: 'KEY=a', path: 'oracle', output_mode: 'count' })).text);
      outputs.push((await call(c, 'grep', { pattern: 'KEY=a', path: 'oracle/db_password.txt' })).text);
    }
    assert.equal(outputs[0], outputs[2], 'the same output whatever the secret holds');
    assert.equal(outputs[1], outputs[3]);
    assert.match(outputs[0], /^No matches for KEY=a in \/workspace\/oracle\n\(1 file\(s\) the permissions keep out were not searched\)\n$/);
  });

  test('secret patterns match whatever the case of the name', async () => {
    const c = server.client;
    await call(c, 'execute', { command: 'echo x > .ENV && echo y > Credentials.json && echo z > My.PEM' });
    for (const path of ['.ENV', 'Credentials.json', 'My.PEM']) {
      const r = await call(c, 'read_file', { path });
      assert.equal(r.isError, true, `${path} is denied`);
      assert.match(r.text, /a secret file/);
    }
    const ls = await call(c, 'ls');
    assert.equal(ls.isError, false, ls.text);
    assert.match(ls.text, /^Contents of \/workspace:\n(.|\n)*\(\d+ entries left out by the permissions\)\n$/);
    assert.ok(!/\.ENV|Credentials|My\.PEM/.test(ls.text), ls.text);
  });

  test('the sandbox is gone once the client closes', async () => {
    assert.ok(id && sandboxes().includes(id));
    const closing = server;
    server = null;
    await disconnect(closing);
    assert.ok(!sandboxes().includes(id), `sandbox ${id} was removed`);
  });
});
