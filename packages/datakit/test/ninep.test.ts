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

describe('stream reads and Tflush', { timeout: 30_000 }, () => {
  test(
    'a blocked head.live read is cancelled by Tflush and the stream goes on',
    { timeout: 20_000 },
    async () => {
      const server = await DataKitServer.start({ listen: ['tcp://127.0.0.1:0'] });
      const fs = await NineFs.connect(server.addresses[0] ?? '');
      const writer = await NineFs.connect(server.addresses[0] ?? '');
      try {
        await fs.mkdir(['branch'], 'master');
        const fid = await fs.walk(['branch', 'master', 'head.live']);
        await fs.client.open(fid, 0);
        assert.equal(new TextDecoder().decode(await fs.client.read(fid, 0, 100)), '\n');
        assert.equal((await fs.client.read(fid, 1, 100)).length, 0, 'an empty read follows each chunk');
        // Nothing changes: the next read blocks until flushed.
        const abort = new AbortController();
        const blocked = fs.client.read(fid, 1, 100, { signal: abort.signal });
        await new Promise((r) => setTimeout(r, 100));
        abort.abort();
        await assert.rejects(blocked);
        // The connection still answers, and the same stream delivers the next head.
        await writer.mkdir(['branch'], 'master');
        await writer.mkdir(['branch', 'master', 'transactions'], 't');
        await writer.create(['branch', 'master', 'transactions', 't', 'rw'], 'f', 'x');
        await writer.write(['branch', 'master', 'transactions', 't', 'ctl'], 'commit');
        const head = await server.repo.head('master');
        assert.equal(new TextDecoder().decode(await fs.client.read(fid, 1, 100)), `${head}\n`);
        await fs.client.clunk(fid);
      } finally {
        fs.close();
        writer.close();
        await server.close();
      }
    },
  );
});
