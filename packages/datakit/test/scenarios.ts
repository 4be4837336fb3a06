/**
 * Black-box scenarios ported from moby/datakit tests/datakit-9p/test.ml. Each runs against a
 * TestFs (direct FsNode calls, or our 9P client over our 9P server) on a fresh store.
 */
import assert from 'node:assert/strict';
import { type Repository, fileOfBytes } from '../src/store/index.js';
import type { LineStream, TestFs } from './harness.js';
import { bytes } from './helpers.js';

export interface ScenarioEnv {
  fs: TestFs;
  repo: Repository;
}

export interface Scenario {
  name: string;
  run(env: ScenarioEnv): Promise<void>;
}

const rootEntries = ['branch', 'debug', 'snapshots', 'trees', 'commits', 'remotes'];

async function checkDir(fs: TestFs, path: string[], expected: string[], msg?: string) {
  assert.deepEqual((await fs.readdir(path)).sort(), [...expected].sort(), msg);
}

async function rejectsWith(p: Promise<unknown>, message: string | RegExp) {
  await assert.rejects(p, (err: Error) => {
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

async function withTransaction<T>(
  fs: TestFs,
  branch: string,
  name: string,
  fn: (t: string[]) => Promise<T>,
): Promise<T> {
  const path = ['branch', branch, 'transactions'];
  await fs.mkdir(path, name);
  const t = [...path, name];
  await fs.write([...t, 'msg'], name);
  let result: T;
  try {
    result = await fn(t);
  } catch (err) {
    await fs.write([...t, 'ctl'], 'close').catch(() => {});
    throw err;
  }
  await fs.write([...t, 'ctl'], 'commit');
  return result;
}

async function head(fs: TestFs, branch: string) {
  return (await fs.read(['branch', branch, 'head'])).trim();
}

async function makeBranch(fs: TestFs, name: string, src?: string) {
  await fs.mkdir(['branch'], name);
  if (src) await fs.write(['branch', name, 'fast-forward'], src);
}

async function populate(fs: TestFs, branch: string, files: Array<[string, string]>) {
  await withTransaction(fs, branch, 'init', async (t) => {
    for (const name of await fs.readdir([...t, 'rw'])) await fs.remove([...t, 'rw', name]);
    assert.deepEqual(await fs.readdir([...t, 'rw']), [], 'rw is empty');
    const made = new Set<string>();
    for (const [path, value] of files) {
      const parts = path.split('/');
      const name = parts.pop() ?? '';
      for (let i = 0; i < parts.length; i++) {
        const d = parts.slice(0, i + 1).join('/');
        if (made.has(d)) continue;
        made.add(d);
        await fs.mkdir([...t, 'rw', ...parts.slice(0, i)], parts[i] ?? '');
      }
      await fs.create([...t, 'rw', ...parts], name, value);
    }
  });
}

async function tryMerge(
  fs: TestFs,
  base: Array<[string, string]>,
  ours: Array<[string, string]>,
  theirs: Array<[string, string]>,
  fn: (t: string[]) => Promise<void>,
) {
  await makeBranch(fs, 'master');
  await populate(fs, 'master', base);
  const baseHead = await head(fs, 'master');
  await makeBranch(fs, 'theirs', baseHead);
  await populate(fs, 'master', ours);
  await populate(fs, 'theirs', theirs);
  await withTransaction(fs, 'master', 'merge', async (t) => {
    await fs.write([...t, 'merge'], await head(fs, 'theirs'));
    await fn(t);
  });
}

/** Commits `content` at `path` directly through the store (the original test uses Irmin's Store.set). */
async function storeSet(repo: Repository, branch: string, path: string[], content: string) {
  const current = await repo.head(branch);
  const tree = await repo.trees.update(await repo.commitTree(current), path, fileOfBytes(bytes(content)));
  const c = await repo.commit(tree, current ? [current] : [], 'set');
  assert.equal(await repo.setHead(branch, c, current, 'set'), true);
}

async function permOf(fs: TestFs, path: string[]): Promise<'normal' | 'exec' | 'link'> {
  const { mode } = await fs.stat(path);
  if ((mode & 0o170000) === 0o120000) return 'link';
  return mode & 0o100 ? 'exec' : 'normal';
}

async function isPending(p: Promise<unknown>, ms = 100): Promise<boolean> {
  let settled = false;
  p.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await new Promise((r) => setTimeout(r, ms));
  return !settled;
}

interface HistoryNode {
  id: string;
  msg: string;
  parents: HistoryNode[];
}

async function history(fs: TestFs, id: string): Promise<HistoryNode> {
  const parents = (await fs.read(['snapshots', id, 'parents'])).split('\n').filter((l) => l !== '');
  const msg = (await fs.read(['snapshots', id, 'msg'])).trim();
  const nodes = [];
  for (const p of parents) nodes.push(await history(fs, p));
  nodes.sort((a, b) => (a.msg < b.msg ? -1 : a.msg > b.msg ? 1 : 0));
  return { id, msg, parents: nodes };
}

export const scenarios: Scenario[] = [
  {
    name: 'Transaction',
    async run({ fs, repo }) {
      await checkDir(fs, [], rootEntries, 'Root entries');
      await fs.mkdir(['branch'], 'master');
      await checkDir(fs, ['branch'], ['master'], 'Check master exists');
      await checkDir(fs, ['branch', 'master', '..', '..'], rootEntries, 'Check .. works');
      const t = ['branch', 'master', 'transactions', 'init'];
      await fs.mkdir(['branch', 'master', 'transactions'], 'init');
      await fs.mkdir([...t, 'rw'], 'src');
      await fs.create([...t, 'rw', 'src'], 'Makefile', 'all: build test');
      await fs.write([...t, 'msg'], 'My commit');
      assert.equal(await fs.read([...t, 'parents']), '', 'Parents');
      await fs.write([...t, 'ctl'], 'commit\n', { truncate: true });
      const { size } = await fs.stat(['branch', 'master', 'ro', 'src', 'Makefile']);
      assert.equal(size, 15, 'File size');
      const commit = await repo.readCommit((await repo.head('master')) ?? '');
      assert.equal(commit?.message.trim(), 'My commit', 'Message');
    },
  },
  {
    name: 'Qids',
    async run({ fs }) {
      await fs.mkdir(['branch'], 'master');
      const types = await fs.walkQidTypes(['branch', 'master', 'head']);
      assert.deepEqual(
        types.map((t) => (t & 0x80) !== 0),
        [true, true, false],
        'Correct Qid flags',
      );
    },
  },
  {
    name: 'Watch',
    async run({ fs, repo }) {
      await fs.mkdir(['branch'], 'master');
      const streams: LineStream[] = [];
      try {
        const top = await fs.stream(['branch', 'master', 'watch', 'tree.live']);
        streams.push(top);
        assert.equal(
          await top.line(),
          'D-4b825dc642cb6eb9a060e54bf8d69288fbee4904',
          'Root tree initially empty',
        );
        const doc = await fs.stream(['branch', 'master', 'watch', 'doc.node', 'tree.live']);
        streams.push(doc);
        assert.equal(await doc.line(), '', 'Doc tree hash initially empty');
        await storeSet(repo, 'master', ['src', 'Makefile'], 'all: build');
        const makefile = await fs.stream([
          'branch',
          'master',
          'watch',
          'src.node',
          'Makefile.node',
          'tree.live',
        ]);
        streams.push(makefile);
        assert.equal(await makefile.line(), 'F-d81e367f87ee314bcd3e449b1c6641efda5bc269', 'Makefile hash');
        const nextMake = makefile.line();
        nextMake.catch(() => {});
        await storeSet(repo, 'master', ['doc', 'README'], 'Instructions');
        assert.equal(await doc.line(), 'D-a3e8adf6d194bfbdec2ca73aebe0990edee2ddbf', 'Doc update');
        await checkDir(
          fs,
          ['trees', 'D-a3e8adf6d194bfbdec2ca73aebe0990edee2ddbf'],
          ['README'],
          'Check /trees/D...',
        );
        assert.equal(await top.line(), 'D-acaa8ac97706d94e012da475e8a63d647011a72c', 'Top update');
        assert.equal(await isPending(nextMake), true, 'No Makefile update');
      } finally {
        for (const s of streams) await s.close();
      }
    },
  },
  {
    name: 'Range',
    async run({ fs }) {
      await fs.mkdir(['branch'], 'master');
      await fs.mkdir(['branch', 'master', 'transactions'], 'init');
      await rejectsWith(
        fs.readAt(['branch', 'master', 'transactions', 'init', 'origin'], 100, 10),
        'Offset 100 beyond end-of-file (len = 0)',
      );
    },
  },
  {
    name: 'Rename branch',
    async run({ fs, repo }) {
      await storeSet(repo, 'old', ['key'], 'value');
      await fs.mkdir(['branch'], 'old');
      await fs.rename(['branch', 'old'], 'new');
      await checkDir(fs, ['branch'], ['new'], 'New branches');
      assert.equal(await repo.head('old'), undefined, 'Old gone');
      assert.notEqual(await repo.head('new'), undefined, 'New appeared');
      await fs.remove(['branch', 'new']);
      assert.equal(await repo.head('new'), undefined, 'New gone');
    },
  },
  {
    name: 'Rename file',
    async run({ fs }) {
      await makeBranch(fs, 'master');
      await withTransaction(fs, 'master', 'rename', async (t) => {
        await fs.create([...t, 'rw'], 'old', 'data');
        const held = await fs.hold([...t, 'rw', 'old']);
        try {
          await held.rename('new');
          await checkDir(fs, [...t, 'rw'], ['new'], 'New files');
          await fs.mkdir([...t, 'rw'], 'dir');
          await fs.create([...t, 'rw', 'dir'], 'precious', 'data');
          await rejectsWith(held.rename('dir'), 'Is a directory');
          // Over an empty directory, the original replaces it.
          await fs.mkdir([...t, 'rw'], 'empty');
          await held.rename('empty');
          await checkDir(fs, [...t, 'rw'], ['dir', 'empty'], 'Renamed over an empty directory');
          assert.equal(await fs.read([...t, 'rw', 'empty']), 'data');
          // Rename when the source has been deleted.
          await fs.remove([...t, 'rw', 'empty']);
          await rejectsWith(held.rename('reborn'), 'No such file or directory');
        } finally {
          await held.close();
        }
      });
      await checkDir(fs, ['branch', 'master', 'ro'], ['dir'], 'New files');
    },
  },
  {
    name: 'Truncate',
    async run({ fs }) {
      const path = ['branch', 'master', 'transactions', 'init', 'rw', 'file'];
      await fs.mkdir(['branch'], 'master');
      await fs.mkdir(['branch', 'master', 'transactions'], 'init');
      await fs.create(['branch', 'master', 'transactions', 'init', 'rw'], 'file', '', 'exec');
      await fs.write(path, 'Hello');
      await fs.truncate(path, 4);
      assert.equal(await fs.read(path), 'Hell', 'Truncate to 4');
      await fs.truncate(path, 4);
      assert.equal(await fs.read(path), 'Hell', 'Truncate to 4 again');
      await fs.truncate(path, 6);
      assert.equal(await fs.read(path), 'Hell\0\0', 'Extend to 6');
      await fs.truncate(path, 0);
      assert.equal(await fs.read(path), '', 'Truncate to 0');
    },
  },
  {
    name: 'Parents',
    async run({ fs }) {
      const checkParents = async (branch: string, expected: string) => {
        const h = await fs.read(['branch', branch, 'head']);
        if (h === '\n') assert.equal('no-commit', expected, 'Parents');
        else assert.equal(await fs.read(['snapshots', h.trim(), 'parents']), expected, 'Parents');
      };
      const checkFails = async (name: string, parents: string) => {
        await assert.rejects(
          withTransaction(fs, 'dev', name, (dir) => fs.write([...dir, 'parents'], parents)),
          'Should have been rejected',
        );
      };
      await fs.mkdir(['branch'], 'master');
      await checkParents('master', 'no-commit');
      await withTransaction(fs, 'master', 'commit1', (d) => fs.create([...d, 'rw'], 'file', 'data'));
      await checkParents('master', '');
      let masterHead = await fs.read(['branch', 'master', 'head']);
      await withTransaction(fs, 'master', 'commit2', (d) => fs.create([...d, 'rw'], 'file', 'data2'));
      await checkParents('master', masterHead);
      masterHead = await fs.read(['branch', 'master', 'head']);
      await fs.mkdir(['branch'], 'dev');
      await withTransaction(fs, 'dev', 'commit3', async (d) => {
        await fs.create([...d, 'rw'], 'file', 'dev');
        await fs.write([...d, 'parents'], masterHead);
      });
      await checkParents('dev', masterHead);
      await checkFails('Invalid hash', 'hello');
      await checkFails('Missing hash', 'a3827c5d1a2ba8c6a40eded5598dba8d3835fb35');
      const devHead = await fs.read(['branch', 'dev', 'head']);
      const [origParent, afterInner] = await withTransaction(fs, 'master', 'From outer', async (t1) => {
        await withTransaction(fs, 'master', 'From inner', (t2) =>
          fs.create([...t2, 'rw'], 'from_inner', 'inner'),
        );
        const after = await fs.read(['branch', 'master', 'head']);
        await fs.create([...t1, 'rw'], 'from_outer', 'outer');
        const realParent = await fs.read([...t1, 'parents']);
        await fs.write([...t1, 'parents'], realParent + devHead);
        return [realParent, after];
      });
      const newHead = (await fs.read(['branch', 'master', 'head'])).trim();
      const h = await history(fs, newHead);
      const [inner, outer] = h.parents;
      assert.equal(inner?.msg, 'From inner', 'Bad history');
      assert.equal(inner?.parents.length, 1);
      assert.equal(outer?.msg, 'From outer', 'Bad history');
      const [c2, c3] = outer?.parents ?? [];
      assert.equal(c2?.msg, 'commit2');
      assert.equal(c3?.msg, 'commit3');
      assert.equal(afterInner, `${inner?.id}\n`, 'First parent');
      assert.equal(devHead, `${c3?.id}\n`, 'Dev parent');
      assert.equal(origParent, `${c2?.id}\n`, 'Orig parent');
    },
  },
  {
    name: 'Merge',
    async run({ fs }) {
      await fs.mkdir(['branch'], 'master');
      await withTransaction(fs, 'master', 'init', (t) => fs.create([...t, 'rw'], 'file', 'from-master'));
      await fs.mkdir(['branch'], 'pr');
      const mergeA = await head(fs, 'master');
      await rejectsWith(
        fs.write(['branch', 'pr', 'fast-forward'], 'a3827c5d1a2ba8c6a40eded5598dba8d3835fb35'),
        'No such file or directory',
      );
      await fs.write(['branch', 'pr', 'fast-forward'], mergeA);
      await withTransaction(fs, 'pr', 'mod', async (t) => {
        const old = await fs.read([...t, 'rw', 'file']);
        await fs.write([...t, 'rw', 'file'], `${old}+pr`);
      });
      const mergeB = await head(fs, 'pr');
      await withTransaction(fs, 'master', 'merge', async (t) => {
        await fs.create([...t, 'rw'], 'mine', 'pre-merge');
        await fs.write([...t, 'merge'], mergeB);
        assert.equal(await fs.read([...t, 'ours', 'mine']), 'pre-merge', 'Ours');
        assert.equal(await fs.read([...t, 'theirs', 'file']), 'from-master+pr', 'Theirs');
        assert.equal(await fs.read([...t, 'base', 'file']), 'from-master', 'Base');
      });
      const mergeCommit = await head(fs, 'master');
      const parents = (await fs.read(['snapshots', mergeCommit, 'parents'])).split('\n').filter((l) => l);
      assert.deepEqual(parents.sort(), [mergeA, mergeB].sort(), 'Merge parents');
      assert.equal(await fs.read(['branch', 'master', 'ro', 'file']), 'from-master+pr', 'Merge result');
    },
  },
  {
    name: 'Merge_metadata',
    async run({ fs }) {
      await fs.mkdir(['branch'], 'master');
      await withTransaction(fs, 'master', 'init', async (t) => {
        await fs.create([...t, 'rw'], 'a', 'from-master', 'exec');
        assert.equal(await permOf(fs, [...t, 'rw', 'a']), 'exec', 'Create a');
        await fs.create([...t, 'rw'], 'b', 'from-master', 'link');
        await fs.create([...t, 'rw'], 'c', 'from-master', 'exec');
      });
      await fs.mkdir(['branch'], 'pr');
      const mergeA = await head(fs, 'master');
      await withTransaction(fs, 'pr', 'mod', async (t) => {
        await fs.write([...t, 'merge'], mergeA);
        assert.equal(await permOf(fs, [...t, 'rw', 'a']), 'exec', 'pr/rw/a');
        await fs.chmod([...t, 'rw', 'b'], 'exec');
        await fs.remove([...t, 'rw', 'c']);
        await fs.create([...t, 'rw'], 'c', 'foo', 'link');
      });
      const mergeB = await head(fs, 'pr');
      await withTransaction(fs, 'master', 'merge', async (t) => {
        await fs.chmod([...t, 'rw', 'c'], 'normal');
        await fs.write([...t, 'merge'], mergeB);
        assert.equal(await permOf(fs, [...t, 'ours', 'a']), 'exec', 'ours/a');
        assert.equal(await permOf(fs, [...t, 'ours', 'b']), 'link', 'ours/b');
        assert.equal(await permOf(fs, [...t, 'theirs', 'b']), 'exec', 'theirs/b');
        assert.equal(await permOf(fs, [...t, 'rw', 'b']), 'exec', 'rw/b');
        assert.equal(await permOf(fs, [...t, 'rw', 'c']), 'normal', 'rw/c');
        assert.equal(
          await fs.read([...t, 'rw', 'c']),
          '** Conflict **\nChanged on both branches\n',
          'Conflict',
        );
        await fs.write([...t, 'rw', 'c'], 'Resolved');
        await fs.chmod([...t, 'rw', 'c'], 'exec');
      });
      assert.equal(await permOf(fs, ['branch', 'master', 'ro', 'c']), 'exec', 'ro/c');
    },
  },
  {
    name: 'Merge empty',
    async run({ fs }) {
      await fs.mkdir(['branch'], 'master');
      await withTransaction(fs, 'master', 'init', (t) => fs.create([...t, 'rw'], 'file', 'from-master'));
      const h = await fs.read(['branch', 'master', 'head']);
      await fs.mkdir(['branch'], 'new');
      await withTransaction(fs, 'new', 'init', (t) => fs.write([...t, 'merge'], h));
      await checkDir(fs, ['branch', 'new', 'ro'], ['file'], 'Final result');
    },
  },
  {
    name: 'Conflicts',
    async run({ fs }) {
      await tryMerge(
        fs,
        [
          ['a', 'a-from-base'],
          ['b', 'b-from-base'],
          ['c', 'c-from-base'],
          ['d', 'd-from-base'],
          ['e', 'e-from-base'],
          ['f', 'f-from-base'],
          ['dir/a', 'a-from-base'],
          ['dir2/b', 'b-from-base'],
        ],
        [
          ['a', 'a-ours'],
          ['b', 'b-from-base'],
          ['c', 'c-ours'],
          ['e', 'e-from-base'],
          ['g', 'g-same'],
          ['h', 'h-ours'],
          ['dir', 'ours-now-file'],
          ['dir2/b', 'b-theirs'],
        ],
        [
          ['a', 'a-theirs'],
          ['b', 'b-theirs'],
          ['c', 'c-from-base'],
          ['d', 'd-from-base'],
          ['f', 'f-theirs'],
          ['g', 'g-same'],
          ['h', 'h-theirs'],
          ['dir/a', 'a-theirs'],
          ['dir2', 'theirs-now-file'],
        ],
        async (t) => {
          await rejectsWith(fs.write([...t, 'ctl'], 'commit'), 'conflicts file is not empty');
          await checkDir(fs, [...t, 'rw'], ['a', 'b', 'c', 'dir', 'dir2', 'f', 'g', 'h'], 'Resolved files');
          assert.equal(await fs.read([...t, 'rw', 'a']), '** Conflict **\nChanged on both branches\n');
          assert.equal(await fs.read([...t, 'rw', 'b']), 'b-theirs');
          assert.equal(await fs.read([...t, 'rw', 'c']), 'c-ours');
          assert.equal(await fs.read([...t, 'rw', 'f']), '** Conflict **\noption: add/del\n');
          assert.equal(await fs.read([...t, 'rw', 'g']), 'g-same');
          assert.equal(
            await fs.read([...t, 'rw', 'h']),
            '** Conflict **\ndefault: add/add and no common ancestor\n',
          );
          assert.equal(await fs.read([...t, 'rw', 'dir']), '** Conflict **\nFile vs dir\n');
          assert.equal(await fs.read([...t, 'conflicts']), 'a\ndir\ndir2\nf\nh\n');
          await fs.remove([...t, 'rw', 'a']);
          await fs.remove([...t, 'rw', 'dir']);
          await fs.remove([...t, 'rw', 'dir2']);
          await fs.write([...t, 'rw', 'f'], await fs.read([...t, 'theirs', 'f']), { truncate: true });
          assert.equal(await fs.read([...t, 'conflicts']), 'h\n');
          await fs.remove([...t, 'rw', 'h']);
        },
      );
      await checkDir(fs, ['branch', 'master', 'ro'], ['b', 'c', 'f', 'g'], 'Final merge result');
      assert.equal(await fs.read(['branch', 'master', 'ro', 'f']), 'f-theirs');
    },
  },
  {
    name: 'Stable inodes',
    async run({ fs }) {
      await makeBranch(fs, 'master');
      await withTransaction(fs, 'master', 'stable', async (t) => {
        await fs.create([...t, 'rw'], 'file', 'data');
        const a = await fs.stat(['branch', 'master', 'transactions', 'stable', 'rw', 'file']);
        const b = await fs.stat(['branch', 'master', 'transactions', 'stable', 'rw', 'file']);
        assert.equal(a.qidPath, b.qidPath, 'Inode same');
      });
    },
  },
  {
    name: 'Debug',
    async run({ fs }) {
      const level = ['debug', 'src', 'datakit', 'level'];
      assert.equal(await fs.readAt(level, 0, 100), 'quiet\n', 'Initially quiet');
      await fs.write(level, 'debug\n', { truncate: true });
      assert.equal(await fs.readAt(level, 0, 100), 'debug\n', 'Now debug');
      await fs.write(level, 'info', { truncate: true });
      assert.equal(await fs.readAt(level, 0, 100), 'info\n', 'Now info');
      await fs.write(level, 'quiet', { truncate: true });
      assert.equal(await fs.readAt(level, 0, 100), 'quiet\n', 'None again');
    },
  },
  {
    name: 'Command files, streams and errors',
    async run({ fs }) {
      await fs.mkdir(['branch'], 'master');
      const t = ['branch', 'master', 'transactions', 'x'];
      await fs.mkdir(['branch', 'master', 'transactions'], 'x');
      await rejectsWith(fs.write([...t, 'ctl'], 'frobnicate'), 'Unknown command "frobnicate"');
      await rejectsWith(fs.truncate([...t, 'ctl'], 5), "Can't extend command file");
      // Over 9P the walk itself fails (client-side message); directly, the lookup's error.
      await rejectsWith(
        fs.write([...t, 'rw', 'missing-dir', 'f'], 'x'),
        /No such file or directory|walk failed/,
      );
      await rejectsWith(fs.write(['branch', 'master', 'fast-forward'], 'hello'), /^invalid-hash "hello"/);
      await rejectsWith(fs.readAt(['branch', 'master', 'head.live'], 5, 10), 'Attempt to seek in stream');
      // The 9P server refuses ".." itself; the tree refuses it when called directly.
      await rejectsWith(fs.mkdir([...t, 'rw'], '..'), /^Invalid name "\.\."$|^[Ii]nvalid/);
      await fs
        .write([...t, 'merge'], await fs.read(['branch', 'master', 'head']).then(() => '0'.repeat(40)))
        .then(
          () => assert.fail('merge of a missing commit must fail'),
          (e: Error) => assert.equal(e.message, 'No such file or directory'),
        );
      await fs.write([...t, 'ctl'], 'close');
      await checkDir(fs, ['branch', 'master', 'transactions'], []);
    },
  },
  {
    name: 'Reflog, watches of every kind, diffs, trees and snapshots',
    async run({ fs, repo }) {
      await fs.mkdir(['branch'], 'b');
      const reflog = await fs.stream(['branch', 'b', 'reflog']);
      const exec = await fs.stream(['branch', 'b', 'watch', 'run.node', 'tree.live']);
      const link = await fs.stream(['branch', 'b', 'watch', 'ln.node', 'tree.live']);
      try {
        assert.equal(await reflog.line(), '', 'reflog starts with a blank line');
        assert.equal(await exec.line(), '', 'absent');
        assert.equal(await link.line(), '', 'absent');
        await withTransaction(fs, 'b', 'one', async (t) => {
          await fs.create([...t, 'rw'], 'run', '#!/bin/sh\n', 'exec');
          await fs.create([...t, 'rw'], 'gone', 'soon');
          await fs.create([...t, 'rw'], 'ln', 'run', 'link');
        });
        const one = await head(fs, 'b');
        assert.equal(await reflog.line(), one);
        const run = await repo.trees.find(await repo.commitTree(one), ['run']);
        assert.ok(run?.kind === 'file');
        const runHash = repo.trees.fileHash(run);
        assert.equal(await exec.line(), `X-${runHash}`);
        assert.match(await link.line(), /^L-[0-9a-f]{40}$/);
        assert.equal(await fs.read(['trees', `X-${runHash}`]), '#!/bin/sh\n');
        assert.equal((await fs.stat(['trees', `X-${runHash}`])).mode & 0o111, 0o111);
        await withTransaction(fs, 'b', 'two', async (t) => {
          await fs.remove([...t, 'rw', 'gone']);
          await fs.create([...t, 'rw'], 'new', 'file');
          await fs.write([...t, 'rw', 'run'], '#!/bin/bash\n', { truncate: true });
        });
        const two = await head(fs, 'b');
        assert.equal(await reflog.line(), two);
        assert.match(await exec.line(), /^X-[0-9a-f]{40}$/);
        assert.equal(await fs.read(['snapshots', two, 'diff', one]), '- gone\n+ new\n* run\n');
        assert.equal(await fs.read(['snapshots', two, 'hash']), two);
        assert.equal(await fs.read(['snapshots', two, 'msg']), 'two\n');
        assert.equal(await fs.read(['snapshots', two, 'parents']), `${one}\n`);
        const commit = JSON.parse(await fs.read(['commits', two])) as {
          parents: string[];
          info: { message: string };
        };
        assert.deepEqual(commit.parents, [one]);
        assert.equal(commit.info.message, 'two\n');
        await fs.remove(['branch', 'b']);
        assert.equal(await reflog.line(), '', 'a blank line when the branch is deleted');
        await rejectsWith(
          fs.read(['trees', 'F-0000000000000000000000000000000000000000']),
          /No such file or directory|walk failed/,
        );
      } finally {
        await reflog.close();
        await exec.close();
        await link.close();
      }
    },
  },
];
