import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '@kitset/testkit';
import { DataKitClient } from '../src/client.js';
import { fsck, git, tempDir } from './helpers.js';

const cleanups: Array<() => void> = [];
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const c of cleanups) c();
});

const cli = fileURLToPath(new URL('../src/cli.js', import.meta.url));

async function startServer(dir: string, url: string): Promise<ChildProcess> {
  const proc = spawn(process.execPath, [cli, '--git', dir, '--listen', url], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(proc);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start in 10 s')), 10_000);
    proc.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('serving')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return proc;
}

test(
  'kill -9 while 8 writers commit: git fsck is clean and every acknowledged commit survives',
  { timeout: 60_000 },
  async () => {
    const dir = tempDir('crash');
    cleanups.push(dir.remove);
    const url = `tcp://127.0.0.1:${await freePort()}`;
    const server = await startServer(dir.path, url);
    const acked: string[] = [];
    let stop = false;
    const writers = Array.from({ length: 8 }, async (_, w) => {
      const c = await DataKitClient.connect(url);
      try {
        for (let i = 0; i < 125 && !stop; i++) {
          const t = await c.branch('master').transaction(`w${w}`);
          await t.write(`w${w}/f${i}`, `${w}.${i}`);
          await t.commit(`w${w} i${i}`);
          acked.push(`w${w} i${i}`);
        }
      } catch {
        // The server died under us: everything not acknowledged may be lost.
      } finally {
        c.close();
      }
    });
    const deadline = Date.now() + 20_000;
    while (acked.length < 60 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGKILL');
    await exited;
    stop = true;
    await Promise.all(writers);
    assert.ok(acked.length >= 60, `only ${acked.length} commits acknowledged before the kill`);

    // What git sees right after the kill is consistent (the newest acknowledged commits may be
    // only in the journal until the restart replays it).
    fsck(dir.path);

    // A locked ref or half-written object left by the kill does not stop the restarted server.
    await new Promise((r) => setTimeout(r, 1100));
    const again = await startServer(dir.path, url);
    try {
      fsck(dir.path);
      const subjects = new Set(git(dir.path, 'log', '--format=%s', 'master').trim().split('\n'));
      const lost = acked.filter((m) => !subjects.has(m));
      assert.deepEqual(lost, [], 'acknowledged commits missing from history');
      const c = await DataKitClient.connect(url);
      const t = await c.branch('master').transaction();
      await t.write('after-restart', 'ok');
      await t.commit('after restart');
      // The server publishes to the git directory within milliseconds of going idle.
      const head = await c.branch('master').head();
      for (let i = 0; i < 200 && git(dir.path, 'rev-parse', 'master').trim() !== head; i++)
        await new Promise((r) => setTimeout(r, 10));
      assert.equal(git(dir.path, 'rev-parse', 'master').trim(), head);
      c.close();
      fsck(dir.path);
      assert.equal(git(dir.path, 'log', '-1', '--format=%s', 'master').trim(), 'after restart');
    } finally {
      again.kill('SIGTERM');
    }
  },
);
