import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Repository } from '../src/store/index.js';
import { DataKit } from '../src/tree/datakit.js';
import { VfsNode } from '../src/tree/fsnode.js';
import { DirectFs } from './harness.js';
import { fsck, git, tempDir } from './helpers.js';

const cleanups: Array<() => void> = [];
after(() => {
  for (const c of cleanups) c();
});

describe('DataKit concurrency and external writers', { timeout: 120_000 }, () => {
  test('8 connections x 10 transactions on one branch: no commit is lost', { timeout: 60_000 }, async () => {
    const dir = tempDir('conc');
    cleanups.push(dir.remove);
    const repo = await Repository.open(dir.path, { pollMs: 200 });
    const dk = new DataKit(repo);
    try {
      const setup = new DirectFs(new VfsNode(dk.root()));
      await setup.mkdir(['branch'], 'master');
      const writers = 8;
      const each = 10;
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          const fs = new DirectFs(new VfsNode(dk.root())); // one root per connection
          // As in the original, an uncommitted branch made by mkdir is visible to its connection only.
          await fs.mkdir(['branch'], 'master');
          for (let i = 0; i < each; i++) {
            const t = ['branch', 'master', 'transactions', `t${i}`];
            await fs.mkdir(['branch', 'master', 'transactions'], `t${i}`);
            await fs.create([...t, 'rw'], `w${w}-${i}`, `writer ${w} txn ${i}`);
            await fs.write([...t, 'msg'], `w${w} t${i}`);
            await fs.write([...t, 'ctl'], 'commit');
          }
        }),
      );
      const files = await setup.readdir(['branch', 'master', 'ro']);
      assert.equal(files.length, writers * each);
      await repo.settle(); // git sees what was acknowledged
      const log = git(dir.path, 'log', '--format=%s', 'master').split('\n');
      for (let w = 0; w < writers; w++)
        for (let i = 0; i < each; i++)
          assert.ok(log.includes(`w${w} t${i}`), `commit w${w} t${i} in history`);
      fsck(dir.path);
    } finally {
      dk.close();
      await repo.close();
    }
  });

  test(
    'conflicting concurrent commits: one wins, the other gets Merge conflict',
    { timeout: 30_000 },
    async () => {
      const repo = Repository.memory();
      const dk = new DataKit(repo);
      try {
        const a = new DirectFs(new VfsNode(dk.root()));
        const b = new DirectFs(new VfsNode(dk.root()));
        await a.mkdir(['branch'], 'master');
        await b.mkdir(['branch'], 'master');
        const ta = ['branch', 'master', 'transactions', 'a'];
        const tb = ['branch', 'master', 'transactions', 'b'];
        await a.mkdir(['branch', 'master', 'transactions'], 'a');
        await b.mkdir(['branch', 'master', 'transactions'], 'b');
        await a.create([...ta, 'rw'], 'f', 'from a');
        await b.create([...tb, 'rw'], 'f', 'from b');
        await a.write([...ta, 'ctl'], 'commit');
        await assert.rejects(b.write([...tb, 'ctl'], 'commit'), (e: Error) =>
          e.message.startsWith('Merge conflict: f: '),
        );
        assert.equal(await a.read(['branch', 'master', 'ro', 'f']), 'from a');
      } finally {
        dk.close();
        await repo.close();
      }
    },
  );

  test(
    'a commit made by git while we run shows up in head.live (moby/datakit#610)',
    { timeout: 30_000 },
    async () => {
      const dir = tempDir('ext');
      cleanups.push(dir.remove);
      git(dir.path, 'init', '-q', '-b', 'master');
      writeFileSync(join(dir.path, 'f'), 'one');
      git(dir.path, 'add', 'f');
      git(dir.path, 'commit', '-q', '-m', 'one');
      const repo = await Repository.open(dir.path, { pollMs: 300 });
      const dk = new DataKit(repo);
      const fs = new DirectFs(new VfsNode(dk.root()));
      const live = await fs.stream(['branch', 'master', 'head.live']);
      const keepAlive = setTimeout(() => {}, 20_000);
      try {
        assert.equal(await live.line(), git(dir.path, 'rev-parse', 'HEAD').trim());
        writeFileSync(join(dir.path, 'f'), 'two');
        git(dir.path, 'commit', '-q', '-am', 'two');
        assert.equal(await live.line(), git(dir.path, 'rev-parse', 'HEAD').trim());
        assert.equal(await fs.read(['branch', 'master', 'ro', 'f']), 'two');
        // And our transaction on top of git's commit keeps git's history.
        await fs.mkdir(['branch', 'master', 'transactions'], 't');
        await fs.create(['branch', 'master', 'transactions', 't', 'rw'], 'g', 'ours');
        await fs.write(['branch', 'master', 'transactions', 't', 'ctl'], 'commit');
        await repo.settle(); // git sees what was acknowledged
        assert.equal(await live.line(), git(dir.path, 'rev-parse', 'HEAD').trim());
        assert.equal(git(dir.path, 'log', '--format=%s').trim().split('\n').length, 3);
        fsck(dir.path);
      } finally {
        clearTimeout(keepAlive);
        await live.close();
        dk.close();
        await repo.close();
      }
    },
  );

  test(
    'git gc while we serve: packed and pruned objects stay readable, commits go on',
    { timeout: 30_000 },
    async () => {
      const dir = tempDir('gc');
      cleanups.push(dir.remove);
      const repo = await Repository.open(dir.path, { pollMs: 200 });
      const dk = new DataKit(repo);
      const fs = new DirectFs(new VfsNode(dk.root()));
      try {
        await fs.mkdir(['branch'], 'master');
        for (let i = 0; i < 5; i++) {
          const t = ['branch', 'master', 'transactions', `t${i}`];
          await fs.mkdir(['branch', 'master', 'transactions'], `t${i}`);
          await fs.create([...t, 'rw'], `f${i}`, `file ${i}`);
          await fs.write([...t, 'ctl'], 'commit');
        }
        await repo.settle(); // git sees what was acknowledged
        git(dir.path, 'gc', '-q', '--prune=now');
        for (let i = 0; i < 5; i++)
          assert.equal(await fs.read(['branch', 'master', 'ro', `f${i}`]), `file ${i}`);
        // A second server process would only have git's new pack: read through a fresh store too.
        const fresh = await Repository.open(dir.path);
        const freshFs = new DirectFs(new VfsNode(new DataKit(fresh).root()));
        assert.equal(await freshFs.read(['branch', 'master', 'ro', 'f3']), 'file 3');
        await fresh.close();
        const head = await repo.head('master');
        assert.equal((await fs.read(['snapshots', head ?? '', 'parents'])).length, 41);
        await fs.mkdir(['branch', 'master', 'transactions'], 'after');
        await fs.create(['branch', 'master', 'transactions', 'after', 'rw'], 'g', 'after gc');
        await fs.write(['branch', 'master', 'transactions', 'after', 'ctl'], 'commit');
        await repo.settle(); // git sees what was acknowledged
        assert.equal(git(dir.path, 'show', 'master:g'), 'after gc');
        assert.equal(git(dir.path, 'rev-list', '--count', 'master').trim(), '6');
        fsck(dir.path);
      } finally {
        dk.close();
        await repo.close();
      }
    },
  );
});
