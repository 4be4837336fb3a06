import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  TestkitError,
  findRepoRoot,
  freePort,
  gitFsck,
  hasCommand,
  runCommand,
  startDaemon,
  withNetns,
} from '../src/index.js';

const temps: string[] = [];
after(async () => {
  for (const t of temps) await rm(t, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kitset-testkit-'));
  temps.push(dir);
  return dir;
}

test('findRepoRoot finds the folder holding .ci/', () => {
  const root = findRepoRoot();
  assert.ok(existsSync(join(root, '.ci')));
  assert.ok(existsSync(join(root, 'packages', 'testkit', 'package.json')));
  assert.equal(findRepoRoot(join(root, 'packages', 'testkit')), root);
});

test('hasCommand sees real executables, including sbin ones, and nothing else', () => {
  assert.equal(hasCommand('sh'), true);
  assert.equal(hasCommand('/bin/sh'), true);
  assert.equal(hasCommand('no-such-command-kitset'), false);
  if (existsSync('/usr/sbin/diod')) assert.equal(hasCommand('diod'), true);
});

test(
  'runCommand returns status and output, and kills a command at its deadline',
  { timeout: 20_000 },
  async () => {
    const r = await runCommand('sh', ['-c', 'read x; echo "got $x"; echo oops >&2; exit 3'], {
      timeoutMs: 5000,
      input: 'line\n',
    });
    assert.deepEqual([r.code, r.stdout, r.stderr], [3, 'got line\n', 'oops\n']);
    await assert.rejects(
      runCommand('sleep', ['30'], { timeoutMs: 300 }),
      (e: unknown) => e instanceof TestkitError && e.code === 'COMMAND_TIMEOUT',
    );
  },
);

test('startDaemon waits for readiness and stop() ends the process', { timeout: 20_000 }, async () => {
  const port = await freePort();
  const d = await startDaemon(
    process.execPath,
    [
      '-e',
      `require('net').createServer(s=>s.end('hi')).listen(${port},'127.0.0.1',()=>console.log('listening'))`,
    ],
    { readyPattern: /listening/, readyTimeoutMs: 10_000 },
  );
  try {
    assert.match(d.output(), /listening/);
    const r = await runCommand(
      process.execPath,
      ['-e', `require('net').connect(${port},'127.0.0.1').pipe(process.stdout)`],
      {
        timeoutMs: 5000,
      },
    );
    assert.equal(r.stdout, 'hi');
  } finally {
    await d.stop();
  }
  assert.notEqual(d.child.exitCode ?? d.child.signalCode, null);
  await assert.rejects(
    startDaemon('sh', ['-c', 'echo dying; exit 1'], { readyPattern: /never/, readyTimeoutMs: 5000 }),
    (e: unknown) => e instanceof TestkitError && e.code === 'PROCESS_NOT_READY' && /dying/.test(e.output),
  );
});

test(
  'gitFsck passes a sound repository and reports a corrupted one',
  { skip: !hasCommand('git') && 'git missing', timeout: 30_000 },
  async () => {
    const repo = await tempDir();
    const git = (...args: string[]) =>
      runCommand('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.invalid', ...args], {
        timeoutMs: 10_000,
      });
    await git('init', '-q');
    await writeFile(join(repo, 'a.txt'), 'hello\n');
    await git('add', 'a.txt');
    assert.equal((await git('commit', '-q', '-m', 'one')).code, 0);
    const good = await gitFsck(repo);
    assert.equal(good.ok, true, good.output);

    // Remove the blob's loose object: the commit now points at a missing object.
    const blob = (await git('rev-parse', 'HEAD:a.txt')).stdout.trim();
    const objectPath = join(repo, '.git', 'objects', blob.slice(0, 2), blob.slice(2));
    await unlink(objectPath);
    const bad = await gitFsck(repo);
    assert.equal(bad.ok, false);
    assert.match(bad.output, new RegExp(`missing blob ${blob}`));
  },
);

const canNetns = process.getuid?.() === 0 && hasCommand('ip');
test(
  'withNetns creates a namespace and deletes it even when the callback throws',
  { skip: !canNetns && 'needs root and ip', timeout: 30_000 },
  async () => {
    const name = `kt${process.pid}`;
    const inside = await withNetns(name, async (ns) => {
      assert.ok((await readdir('/run/netns')).includes(ns));
      const r = await runCommand('ip', ['netns', 'exec', ns, 'ip', '-o', 'link'], { timeoutMs: 5000 });
      return r.stdout;
    });
    assert.match(inside, /lo:/);
    assert.doesNotMatch(inside, /eth0|ens/);
    assert.ok(!(await readdir('/run/netns')).includes(name));

    await assert.rejects(
      withNetns(name, async () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.ok(!(await readdir('/run/netns')).includes(name));
  },
);
