import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigRecord, DataKitClient, type DataKitError } from '../src/client.js';
import { DataKitServer } from '../src/server.js';
import { fsck, git, gitBytes, tempDir, utf8 } from './helpers.js';

const utf8Bytes = (s: string) => new TextEncoder().encode(s);

const cleanups: Array<() => void> = [];
after(() => {
  for (const c of cleanups) c();
});

async function start() {
  const dir = tempDir('client');
  cleanups.push(dir.remove);
  const server = await DataKitServer.start({ git: dir.path, listen: ['tcp://127.0.0.1:0'], pollMs: 200 });
  return { dir: dir.path, server, url: server.addresses[0] ?? '' };
}

describe('DataKit client library, CLI and concurrency over 9P', { timeout: 120_000 }, () => {
  test(
    'a single-file transaction is one round trip; a write that failed commits nothing',
    { timeout: 30_000 },
    async () => {
      const { dir, server, url } = await start();
      const c = await DataKitClient.connect(url);
      try {
        const master = c.branch('master');
        let chains = 0;
        const chain = c.chains.bind(c);
        c.chains = (steps) => {
          chains++;
          return chain(steps);
        };
        for (let i = 0; i < 3; i++) {
          const t = await master.transaction();
          await t.write(`dir/f${i}`, `${i}\n`);
          await t.commit(`c${i}`);
        }
        assert.equal(
          chains,
          3,
          'mkdir, write and commit (with its message) of each transaction in one chain',
        );
        // A message too long for one ctl write goes through the msg file, after the writes.
        const long = await master.transaction();
        await long.write('dir/long', 'long\n');
        await long.commit(`long\n\n${'x'.repeat(70_000)}`);
        assert.equal(chains, 5, 'the writes, then msg and ctl: two chains');
        const longHead = await master.head();
        assert.equal((await c.snapshot(longHead ?? '').message()).length, 70_006);
        // A name the command's lines cannot carry (a trailing space): the write is awaited first.
        const odd = await master.transaction();
        await odd.write('dir/odd ', 'odd\n');
        await odd.commit('odd');
        assert.equal(chains, 7, 'the write, then the commit');
        const head = await master.head();
        assert.ok(head);
        assert.equal(utf8(await master.read(['dir', 'odd '])), 'odd\n');

        // The write fails (dir/f0 is a file), after write() has resolved: commit reports its error
        // and commits nothing; the transaction is still open and can be aborted.
        const bad = await master.transaction('bad');
        await bad.write('dir/f0/under-a-file', 'x');
        await assert.rejects(bad.commit('bad'), (e: DataKitError) =>
          /create \/branch\/master\/transactions\/bad\/rw\/dir\/f0\/under-a-file: /.test(e.message),
        );
        assert.equal(await master.head(), head);
        await bad.abort();

        // The server's side, raw: `commit` with hash lines commits only if rw/ matches them.
        const raw = await master.transaction('raw');
        await raw.write('g', 'g\n');
        await raw.begin();
        const ctl = [...raw.path, 'ctl'];
        const blob = gitBytes(dir, ['hash-object', '--stdin'], utf8Bytes('g\n')).toString().trim();
        await assert.rejects(c.write(ctl, `commit\nF-${blob} dir/f0`), (e: DataKitError) =>
          new RegExp(`Not committed: rw/dir/f0 is F-[0-9a-f]{40}, not "F-${blob}"`).test(e.message),
        );
        await assert.rejects(c.write(ctl, `commit\nX-${blob} g`), /Not committed: rw\/g is F-/);
        assert.equal(await master.head(), head);
        await assert.rejects(c.write(ctl, 'commit\nmsg not-json'), /Invalid message "not-json"/);
        assert.equal(await master.head(), head);
        await c.write(ctl, `commit\nmsg ${JSON.stringify('raw\n\nbody')}\nF-${blob} g\nabsent nothing/here`);
        assert.notEqual(await master.head(), head);
        assert.equal(utf8(await master.read('g')), 'g\n');
        await server.settle();
        assert.equal(git(dir, 'log', '-1', '--format=%B', 'master').trim(), 'raw\n\nbody');
        assert.deepEqual(git(dir, 'log', '--format=%s', 'master').trim().split('\n'), [
          'raw',
          'odd',
          'long',
          'c2',
          'c1',
          'c0',
        ]);
        fsck(dir);
      } finally {
        c.close();
        await server.close();
      }
    },
  );

  test('branches, transactions, watch, snapshots, merge, fast-forward', { timeout: 30_000 }, async () => {
    const { dir, server, url } = await start();
    const c = await DataKitClient.connect(url);
    const abort = new AbortController();
    try {
      const master = c.branch('master');
      assert.equal(await master.head(), undefined);
      const watch = master.watch('config', abort.signal);
      assert.deepEqual(await watch.next(), { done: false, value: undefined });
      const t = await master.transaction();
      await t.write('config/name', 'kitset');
      await t.write('bin/run', '#!/bin/sh\n', { executable: true });
      await t.commit('first');
      const first = await master.head();
      assert.ok(first);
      const seen = await watch.next();
      assert.match(String(seen.value), /^D-[0-9a-f]{40}$/);
      await server.settle(); // git sees what was acknowledged
      assert.equal(seen.value, `D-${git(dir, 'rev-parse', 'master:config').trim()}`);
      assert.deepEqual(await c.branches(), ['master']);
      assert.equal(utf8(await master.read('config/name')), 'kitset');
      const snap = c.snapshot(first);
      assert.equal(await snap.message(), 'first');
      assert.deepEqual(await snap.parents(), []);
      assert.deepEqual((await snap.list()).sort(), ['bin', 'config']);

      // A side branch from master, changed, then merged back with a conflict resolved.
      const side = c.branch('side');
      await side.fastForward(first);
      const ts = await side.transaction();
      await ts.write('config/name', 'side');
      await ts.commit('side change');
      const tm = await master.transaction();
      await tm.write('config/name', 'master');
      const conflicts = await tm.merge((await side.head()) ?? '');
      assert.deepEqual(conflicts, ['config/name']);
      await tm.write('config/name', 'resolved');
      assert.deepEqual(await tm.conflicts(), []);
      await tm.commit('merge side');
      const merged = await master.head();
      assert.equal(utf8(await master.read('config/name')), 'resolved');
      assert.deepEqual((await c.snapshot(merged ?? '').parents()).length, 2);
      assert.deepEqual(await c.snapshot(merged ?? '').diff(first), ['* config/name']);

      // fast-forward refuses a non-descendant with the original's message.
      await assert.rejects(side.fastForward(first), (e: DataKitError) => /not-fast-forward/.test(e.message));
      await server.settle(); // git sees what was acknowledged
      assert.deepEqual(git(dir, 'log', '--format=%s', 'master').trim().split('\n').sort(), [
        'first',
        'merge side',
        'side change',
      ]);
      fsck(dir);
    } finally {
      abort.abort();
      c.close();
      await server.close();
    }
  });

  test('config records: typed fields with defaults, reloaded on change', { timeout: 30_000 }, async () => {
    const { dir, server, url } = await start();
    const c = await DataKitClient.connect(url);
    const other = await DataKitClient.connect(url);
    const abort = new AbortController();
    try {
      const record = new ConfigRecord(c, 'config', 'app');
      const name = record.stringField('name', 'anonymous');
      const debug = record.boolField('debug', false);
      const workers = record.intField('workers', 4);
      const updates = record.updates(abort.signal);
      assert.deepEqual((await updates.next()).value, []);
      assert.deepEqual([name.value, debug.value, workers.value], ['anonymous', false, 4]);
      // Another connection changes the config; this record sees it through the tree watch.
      await new ConfigRecord(other, 'config', 'app').set({ name: 'kitset', workers: 8 });
      assert.deepEqual(((await updates.next()).value ?? []).sort(), ['name', 'workers']);
      assert.deepEqual([name.value, debug.value, workers.value], ['kitset', false, 8]);
      assert.equal(name.version, 1);
      await record.set({ debug: true });
      assert.deepEqual((await updates.next()).value, ['debug']);
      assert.equal(debug.value, true);
      await server.settle(); // git sees what was acknowledged
      assert.equal(git(dir, 'show', 'config:app/workers'), '8\n');
    } finally {
      abort.abort();
      c.close();
      other.close();
      await server.close();
    }
  });

  test(
    '8 clients commit concurrently over 9P: every acknowledged commit is in git log',
    { timeout: 60_000 },
    async () => {
      const { dir, server, url } = await start();
      try {
        const writers = 8;
        const each = 8;
        await Promise.all(
          Array.from({ length: writers }, async (_, w) => {
            const c = await DataKitClient.connect(url);
            try {
              for (let i = 0; i < each; i++) {
                const t = await c.branch('master').transaction();
                await t.write(`w${w}/f${i}`, `${w}.${i}`);
                await t.commit(`w${w} i${i}`);
              }
            } finally {
              c.close();
            }
          }),
        );
        await server.settle(); // git sees what was acknowledged
        const subjects = new Set(git(dir, 'log', '--format=%s', 'master').trim().split('\n'));
        for (let w = 0; w < writers; w++)
          for (let i = 0; i < each; i++) assert.ok(subjects.has(`w${w} i${i}`));
        assert.equal(
          git(dir, 'ls-tree', '-r', '--name-only', 'master').trim().split('\n').length,
          writers * each,
        );
        fsck(dir);
      } finally {
        await server.close();
      }
    },
  );

  test('the datakit CLI against a running server', { timeout: 30_000 }, async () => {
    const { dir, server, url } = await start();
    const cli = fileURLToPath(new URL('../src/cli.js', import.meta.url));
    const run = (...args: string[]) =>
      new Promise<{ code: number; out: string; err: string }>((resolve) => {
        execFile(process.execPath, [cli, '--addr', url, ...args], { timeout: 10_000 }, (error, out, err) =>
          resolve({ code: error ? Number(error.code ?? 1) : 0, out, err }),
        );
      });
    try {
      const w = await run('write', 'master', 'docs/readme', 'hello', '-m', 'add readme');
      assert.equal(w.code, 0, w.err);
      assert.match(w.out, /^[0-9a-f]{40}\n$/);
      assert.equal((await run('commit', 'master', '-m', 'two files', 'a=1', 'b/c=2')).code, 0);
      assert.equal((await run('cat', 'branch/master/ro/docs/readme')).out, 'hello');
      assert.deepEqual((await run('ls', 'branch/master/ro')).out.split('\n').filter(Boolean).sort(), [
        'a',
        'b',
        'docs',
      ]);
      const log = (await run('log', 'master')).out.trim().split('\n');
      assert.deepEqual(
        log.map((l) => l.slice(41)),
        ['two files', 'add readme'],
      );
      const missing = await run('cat', 'branch/master/ro/nope');
      assert.notEqual(missing.code, 0);
      assert.match(missing.err, /^datakit: .*nope/);
      const down = await new Promise<string>((resolve) => {
        execFile(process.execPath, [cli, '--addr', 'tcp://127.0.0.1:1', 'ls'], (_e, _o, err) => resolve(err));
      });
      assert.match(down, /cannot reach a DataKit server at tcp:\/\/127\.0\.0\.1:1/);
      await server.settle(); // git sees what was acknowledged
      fsck(dir);
    } finally {
      await server.close();
    }
  });
});
