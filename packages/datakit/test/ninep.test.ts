import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { DataKitServer } from '../src/server.js';
import { Repository } from '../src/store/index.js';
import { fsck, git, tempDir } from './helpers.js';
import { NineFs } from './ninefs.js';
import { scenarios } from './scenarios.js';

const cleanups: Array<() => void> = [];
after(() => {
  for (const c of cleanups) c();
});

describe('DataKit over 9P (our server, our client, git store)', { timeout: 120_000 }, () => {
  for (const s of scenarios) {
    test(s.name, { timeout: 30_000 }, async () => {
      const dir = tempDir('9p');
      cleanups.push(dir.remove);
      const server = await DataKitServer.start({
        git: dir.path,
        listen: ['tcp://127.0.0.1:0'],
        clock: () => 0,
        pollMs: 200,
      });
      const fs = await NineFs.connect(server.addresses[0] ?? '');
      try {
        await s.run({ fs, repo: server.repo });
      } finally {
        fs.close();
        await server.close();
      }
      fsck(dir.path);
      const repo = await Repository.open(dir.path);
      for (const [branch] of await repo.branches())
        assert.ok(git(dir.path, 'log', '--oneline', branch).length > 0);
      await repo.close();
    });
  }
});
