import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Repository } from '../src/store/index.js';
import { DataKit } from '../src/tree/datakit.js';
import { VfsNode } from '../src/tree/fsnode.js';
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
