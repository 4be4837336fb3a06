import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Repository } from '../src/store/index.js';
import { DataKit } from '../src/tree/datakit.js';
import { VfsNode } from '../src/tree/fsnode.js';
import { overwrite } from '../src/tree/vfs.js';
import { DirectFs } from './harness.js';
import { fsck, git, tempDir } from './helpers.js';
import { scenarios } from './scenarios.js';

const cleanups: Array<() => void> = [];
after(() => {
  for (const c of cleanups) c();
});

describe('DataKit tree (direct FsNode calls, git store)', { timeout: 120_000 }, () => {
  for (const s of scenarios) {
    test(s.name, { timeout: 30_000 }, async () => {
      const dir = tempDir('tree');
      cleanups.push(dir.remove);
      const repo = await Repository.open(dir.path, { clock: () => 0, pollMs: 200 });
      const dk = new DataKit(repo);
      try {
        await s.run({ fs: new DirectFs(new VfsNode(dk.root())), repo });
      } finally {
        dk.close();
        await repo.close();
      }
      fsck(dir.path);
      for (const [branch] of await (await Repository.open(dir.path)).branches())
        assert.ok(git(dir.path, 'log', '--oneline', branch).length > 0);
    });
  }
});

describe('DataKit tree (in-memory store)', { timeout: 60_000 }, () => {
  for (const s of scenarios) {
    test(s.name, { timeout: 30_000 }, async () => {
      const repo = Repository.memory({ clock: () => 0 });
      const dk = new DataKit(repo);
      try {
        await s.run({ fs: new DirectFs(new VfsNode(dk.root())), repo });
      } finally {
        dk.close();
        await repo.close();
      }
    });
  }
});

describe('file contents written in chunks', () => {
  test('appends fill spare capacity in place without changing older values', () => {
    const a = overwrite(new Uint8Array(0), Buffer.from('hello'), 0);
    const b = overwrite(a, Buffer.from(' world'), 5);
    const c = overwrite(b, Buffer.from('!'), 11);
    // Extending an older value again must not touch what b and c see.
    const b2 = overwrite(a, Buffer.from(' there'), 5);
    const gap = overwrite(c, Buffer.from('x'), 14);
    assert.equal(Buffer.from(a).toString(), 'hello');
    assert.equal(Buffer.from(b).toString(), 'hello world');
    assert.equal(Buffer.from(c).toString(), 'hello world!');
    assert.equal(Buffer.from(b2).toString(), 'hello there');
    assert.deepEqual([...gap.subarray(12)], [0, 0, 120]);
    assert.equal(Buffer.from(overwrite(c, Buffer.from('J'), 0)).toString(), 'Jello world!');
    assert.equal(Buffer.from(c).toString(), 'hello world!');
  });

  test('a transaction may not hold more new data than its limit', async () => {
    const repo = Repository.memory();
    const dk = new DataKit(repo, { maxTransactionBytes: 1 << 20 });
    try {
      const fs = new DirectFs(new VfsNode(dk.root()));
      await fs.mkdir(['branch'], 'master');
      await fs.mkdir(['branch', 'master', 'transactions'], 't');
      const rw = ['branch', 'master', 'transactions', 't', 'rw'];
      const big = 'x'.repeat(600 << 10);
      await fs.create(rw, 'a', big);
      await assert.rejects(fs.create(rw, 'b', big), /Transaction too large/);
      await fs.remove([...rw, 'b']).catch(() => {});
      await fs.write([...rw, 'a'], 'small', { truncate: true });
      await fs.create(rw, 'c', big);
    } finally {
      dk.close();
      await repo.close();
    }
  });
});
