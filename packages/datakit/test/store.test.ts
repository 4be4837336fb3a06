import assert from 'node:assert/strict';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { inflateSync } from 'node:zlib';
import { encodeTreeDelta } from '../src/store/delta.js';
import {
  Repository,
  TreeStore,
  applyDelta,
  dirOfHash,
  encodeTree,
  fileOfBytes,
  hashObject,
  mergeTrees,
} from '../src/store/index.js';
import type { DirValue } from '../src/store/index.js';
import { Journal, decodeRecords, encodeRecord, stampRecord } from '../src/store/journal.js';
import { storedZlib } from '../src/store/packwriter.js';
import { bytes, fsck, git, gitBytes, tempDir, utf8 } from './helpers.js';

const dirs: Array<{ remove(): void }> = [];
after(() => {
  for (const d of dirs) d.remove();
});
function temp(name: string): string {
  const d = tempDir(name);
  dirs.push(d);
  return d.path;
}

async function build(repo: Repository, files: Record<string, string | [string, 'exec' | 'link']>) {
  let root: DirValue = { kind: 'dir', entries: new Map() };
  for (const [path, v] of Object.entries(files)) {
    const [text, perm] = typeof v === 'string' ? [v, 'normal' as const] : v;
    root = await repo.trees.update(root, path.split('/'), fileOfBytes(bytes(text), perm));
  }
  return root;
}

describe('git store', { timeout: 60_000 }, () => {
  test('objects, trees, commits and refs we write pass git fsck --strict and git log', async () => {
    const path = temp('ours');
    const repo = await Repository.open(path, { clock: () => 1_700_000_000 });
    // Names chosen so git's "directory sorts as name/" rule matters: "a" (dir) vs "a-b", "a.c", "a0".
    const tree = await build(repo, {
      'a/inner': 'inner',
      'a-b': 'dash',
      'a.c': 'dot',
      a0: 'zero',
      'run.sh': ['#!/bin/sh\necho hi\n', 'exec'],
      link: ['a/inner', 'link'],
      'deep/er/file': 'deep',
    });
    const c1 = await repo.commit(tree, [], 'first');
    assert.equal(await repo.setHead('master', c1, undefined, 'commit: first'), true);
    const tree2 = await repo.trees.update(await repo.commitTree(c1), ['a0'], fileOfBytes(bytes('changed')));
    const c2 = await repo.commit(tree2, [c1], 'second\n\nbody');
    assert.equal(await repo.setHead('master', c2, c1, 'commit: second'), true);
    // CAS: a stale expected value is refused and changes nothing.
    assert.equal(await repo.setHead('master', c1, c1, 'stale'), false);
    assert.equal(await repo.head('master'), c2);

    await repo.settle(); // the git directory follows the acknowledgement
    fsck(path);
    assert.equal(git(path, 'log', '--format=%H %s', 'master'), `${c2} second\n${c1} first\n`);
    assert.equal(git(path, 'cat-file', '-p', `${c2}:a0`), 'changed');
    const lsTree = git(path, 'ls-tree', '-r', 'master');
    assert.match(lsTree, /^100755 blob \S+\trun\.sh$/m);
    assert.match(lsTree, /^120000 blob \S+\tlink$/m);
    assert.match(lsTree, /^100644 blob \S+\tdeep\/er\/file$/m);
    assert.deepEqual(git(path, 'ls-tree', '--name-only', 'master').trim().split('\n'), [
      'a-b',
      'a.c',
      'a',
      'a0',
      'deep',
      'link',
      'run.sh',
    ]);
    assert.equal(git(path, 'rev-parse', 'master'), `${c2}\n`);
    const reflog = git(path, 'reflog', 'show', '--format=%H %gs', 'refs/heads/master');
    assert.equal(reflog, `${c2} commit: second\n${c1} commit: first\n`);
    // The tree hash we compute without writing equals what git computed from our objects.
    assert.equal(await repo.trees.hash(tree2), git(path, 'rev-parse', `${c2}^{tree}`).trim());
    await repo.close();
  });

  test('reads loose and packed objects git wrote (OFS_DELTA and REF_DELTA), and packed refs', async () => {
    const path = temp('theirs');
    git(path, 'init', '-q', '-b', 'master');
    let big = '';
    for (let i = 0; i < 2000; i++) big += `line ${i} of a file that deltas well\n`;
    for (let i = 0; i < 6; i++) {
      writeFileSync(join(path, 'big.txt'), `${big}change ${i}\n`);
      writeFileSync(join(path, `f${i}`), `file ${i}\n`);
      git(path, 'add', '-A');
      git(path, 'commit', '-q', '-m', `commit ${i}`);
    }
    git(path, 'branch', 'side', 'HEAD~2');
    const checkAll = async () => {
      const repo = await Repository.open(path);
      const listing = git(path, 'cat-file', '--batch-check', '--batch-all-objects').trim().split('\n');
      assert.ok(listing.length > 20);
      for (const line of listing) {
        const [hash, type] = line.split(' ');
        const obj = await repo.db.read(hash ?? '');
        assert.ok(obj, `object ${hash} readable`);
        assert.equal(obj.type, type);
        assert.equal(hashObject(obj.type, obj.data), hash);
      }
      const branches = await repo.branches();
      assert.equal(branches.get('master'), git(path, 'rev-parse', 'master').trim());
      assert.equal(branches.get('side'), git(path, 'rev-parse', 'side').trim());
      const head = await repo.readCommit(branches.get('master') ?? '');
      assert.equal(head?.message, 'commit 5\n');
      const file = await repo.trees.find(await repo.commitTree(branches.get('master')), ['big.txt']);
      assert.ok(file?.kind === 'file');
      assert.equal(utf8(await repo.trees.data(file)), `${big}change 5\n`);
      await repo.close();
    };
    await checkAll(); // loose
    git(path, 'gc', '-q', '--aggressive');
    assert.match(git(path, 'verify-pack', '-v', ...listPacks(path)), /chain length/);
    await checkAll(); // packed with OFS_DELTA, refs in packed-refs
    git(path, '-c', 'repack.useDeltaBaseOffset=false', 'repack', '-q', '-a', '-d', '-f');
    await checkAll(); // REF_DELTA

    // Updating and deleting a packed ref works the way git expects.
    const repo = await Repository.open(path);
    const side = await repo.head('side');
    const master = await repo.head('master');
    assert.ok(side && master);
    assert.equal(await repo.setHead('side', master, side, 'fast-forward'), true);
    await repo.settle(); // the git directory follows the acknowledgement
    assert.equal(git(path, 'rev-parse', 'side').trim(), master);
    assert.equal(await repo.setHead('side', undefined, master, 'delete'), true);
    await repo.settle(); // the git directory follows the acknowledgement
    assert.equal(git(path, 'branch', '--list', 'side'), '');
    assert.equal(await repo.head('side'), undefined);
    fsck(path);
    await repo.close();
  });

  test('merge bases agree with git merge-base; three-way merge', async () => {
    const path = temp('merge');
    const repo = await Repository.open(path, { clock: () => 1_700_000_000 });
    const base = await repo.commit(await build(repo, { a: 'a', b: 'b', c: 'c' }), [], 'base');
    const ours = await repo.commit(await build(repo, { a: 'A', b: 'b' }), [base], 'ours');
    const theirs = await repo.commit(await build(repo, { a: 'a', b: 'B', c: 'c', d: 'd' }), [base], 'theirs');
    await repo.setHead('ours', ours, undefined, 'x');
    await repo.setHead('theirs', theirs, undefined, 'x');
    await repo.settle(); // the git directory follows the acknowledgement
    assert.deepEqual(await repo.mergeBases(ours, theirs), [git(path, 'merge-base', ours, theirs).trim()]);
    assert.equal(await repo.isAncestor(base, ours), true);
    assert.equal(await repo.isAncestor(ours, theirs), false);
    const merged = await mergeTrees(
      repo.trees,
      await repo.commitTree(ours),
      await repo.commitTree(theirs),
      await repo.commitTree(base),
    );
    assert.deepEqual(merged.conflicts, []);
    const m = await repo.commit(merged.tree, [ours, theirs], 'merge');
    await repo.setHead('ours', m, ours, 'merge');
    await repo.settle(); // the git directory follows the acknowledgement
    fsck(path);
    assert.equal(git(path, 'ls-tree', '--name-only', 'ours').trim(), 'a\nb\nd');
    assert.equal(git(path, 'show', 'ours:a') + git(path, 'show', 'ours:b'), 'AB');
    await repo.close();
  });

  test('ancestry and merge bases on a random DAG agree with git', async () => {
    const path = temp('dag');
    let t = 1_700_000_000;
    const repo = await Repository.open(path, { clock: () => t++ });
    const commits: string[] = [];
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 40; i++) {
      const parents: string[] = [];
      if (i > 0) parents.push(commits[i - 1 - rand(Math.min(i, 5))] as string);
      if (i > 3 && rand(3) === 0) parents.push(commits[rand(i)] as string);
      const uniq = [...new Set(parents)];
      commits.push(await repo.commit(await build(repo, { [`f${i}`]: String(i) }), uniq, `c${i}`));
    }
    await repo.setHead('tip', commits[39], undefined, 'x');
    await repo.settle(); // the git directory follows the acknowledgement
    for (let k = 0; k < 30; k++) {
      const a = commits[rand(40)] as string;
      const b = commits[rand(40)] as string;
      let gitSays: boolean;
      try {
        git(path, 'merge-base', '--is-ancestor', a, b);
        gitSays = true;
      } catch {
        gitSays = false;
      }
      assert.equal(await repo.isAncestor(a, b), gitSays, `is ${a} an ancestor of ${b}`);
      const bases = git(path, 'merge-base', '--all', a, b).trim().split('\n').sort();
      assert.deepEqual((await repo.mergeBases(a, b)).sort(), bases, `merge bases of ${a} ${b}`);
    }
    await repo.close();
  });

  test('sees commits that git makes while we watch', async () => {
    const path = temp('watch');
    git(path, 'init', '-q', '-b', 'master');
    git(path, 'commit', '-q', '--allow-empty', '-m', 'one');
    const repo = await Repository.open(path, { pollMs: 200 });
    const seen: string[] = [];
    const got = new Promise<void>((resolve) => {
      repo.onHeadChange((branch, head) => {
        seen.push(`${branch}=${head}`);
        if (head === git(path, 'rev-parse', 'HEAD').trim() && seen.length >= 2) resolve();
      });
    });
    await repo.rescan();
    git(path, 'commit', '-q', '--allow-empty', '-m', 'two');
    // Our watcher and poll do not keep the process alive; this timer does, and bounds the wait.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no head change seen in 10 s')), 10_000);
    });
    await Promise.race([got, timeout]).finally(() => clearTimeout(timer));
    assert.equal(seen.at(-1), `master=${git(path, 'rev-parse', 'HEAD').trim()}`);
    await repo.close();
  });

  test('a scan of the refs racing with our own commits does not start over for each of them', async () => {
    const repo = await Repository.open(temp('scan-race'));
    try {
      let listings = 0;
      const refs = repo.refs;
      const list = refs.list.bind(refs);
      refs.list = (prefix: string) => {
        listings++;
        return list(prefix);
      };
      const other = await repo.commit({ kind: 'dir', entries: new Map() }, [], 'other');
      assert.equal(await repo.setHead('other', other, undefined, 'other'), true);
      repo.onHeadChange(() => {});
      await repo.rescan();
      listings = 0;
      let head: string | undefined;
      const scans: Array<Promise<void>> = [];
      for (let i = 0; i < 60; i++) {
        const c = await repo.commit(
          { kind: 'dir', entries: new Map([[`f${i}`, fileOfBytes(bytes(`${i}`))]]) },
          head ? [head] : [],
          `c${i}`,
        );
        if (i % 20 === 0) scans.push(repo.rescan());
        assert.equal(await repo.setHead('master', c, head, `c${i}`), true);
        head = c;
      }
      await Promise.all(scans);
      // Once per scan asked for (and a few more for watch events): not once per commit.
      assert.ok(listings < 20, `${listings} listings of the refs for 3 scans`);
      assert.equal(await repo.head('master'), head);
      assert.equal(await repo.head('other'), other);
    } finally {
      await repo.close();
    }
  });

  test('submodule entries survive a rewrite of their tree', async () => {
    const path = temp('gitlink');
    git(path, 'init', '-q', '-b', 'master');
    writeFileSync(join(path, 'a'), 'a');
    git(path, 'add', 'a');
    const sub = '1111111111111111111111111111111111111111';
    git(path, 'update-index', '--add', '--cacheinfo', `160000,${sub},vendor/lib`);
    git(path, 'commit', '-q', '-m', 'with submodule');
    const repo = await Repository.open(path);
    const head = await repo.head('master');
    const tree = await repo.trees.update(await repo.commitTree(head), ['b'], fileOfBytes(bytes('b')));
    const c = await repo.commit(tree, head ? [head] : [], 'add b');
    await repo.setHead('master', c, head, 'add b');
    await repo.settle(); // the git directory follows the acknowledgement
    await repo.close();
    assert.match(
      git(path, 'ls-tree', '-r', 'master'),
      new RegExp(`^160000 commit ${sub}\\tvendor/lib$`, 'm'),
    );
    fsck(path);
  });

  test('a torn pack index (power loss before it reached the disk) is rebuilt on open', async () => {
    const path = temp('torn');
    const repo = await Repository.open(path);
    const c = await repo.commit(await build(repo, { a: 'a', 'b/c': 'c' }), [], 'one');
    await repo.setHead('master', c, undefined, 'one');
    await repo.close();
    const packDir = join(path, '.git', 'objects', 'pack');
    const idx = readdirSync(packDir).find((n) => n.endsWith('.idx'));
    assert.ok(idx);
    writeFileSync(join(packDir, idx), new Uint8Array(0), { mode: 0o644 });
    const again = await Repository.open(path);
    assert.equal((await again.readCommit(c))?.message, 'one\n');
    await again.close();
    fsck(path);
  });

  test('power loss after the journal fdatasync: the next open rewrites lost packs and refs', async () => {
    const path = temp('journal');
    const repo = await Repository.open(path);
    const c1 = await repo.commit(await build(repo, { a: 'one' }), [], 'one');
    assert.equal(await repo.setHead('master', c1, undefined, 'one'), true);
    const c2 = await repo.commit(await build(repo, { a: 'two', 'b/c': 'c' }), [c1], 'two');
    assert.equal(await repo.setHead('master', c2, c1, 'two'), true);
    // What the disk holds at the power loss: the journal (fdatasynced before each ack), while the
    // packs and the ref, written without waiting for the disk, never made it.
    const journalDir = join(path, '.git', 'datakit');
    const [live] = readdirSync(journalDir);
    assert.ok(live);
    const saved = join(journalDir, 'journal-earlierboot-1-0badf00d');
    copyFileSync(join(journalDir, live), saved);
    assert.equal(decodeRecords(readFileSync(saved)).length, 2);
    await repo.close();
    const packDir = join(path, '.git', 'objects', 'pack');
    for (const n of readdirSync(packDir)) rmSync(join(packDir, n), { force: true });
    writeFileSync(join(path, '.git', 'refs', 'heads', 'master'), '');
    const again = await Repository.open(path);
    assert.equal(await again.head('master'), c2);
    assert.equal((await again.readCommit(c1))?.message, 'one\n');
    assert.ok(!readdirSync(journalDir).includes('journal-earlierboot-1-0badf00d'));
    await again.close();
    assert.equal(git(path, 'log', '--format=%s', 'master').trim(), 'two\none');
    fsck(path);
  });

  test('a full journal checkpoints and starts a new epoch; queued appends all complete', async () => {
    const gitDir = temp('journal-full');
    const journal = Journal.open(gitDir, 64 << 10);
    const objects = [{ type: 'blob' as const, data: new Uint8Array(3000).fill(7) }];
    const update = (i: number) => ({
      name: 'refs/heads/a',
      old: i === 0 ? undefined : (i - 1).toString(16).padStart(40, '0'),
      new: i.toString(16).padStart(40, '0'),
      message: `m${i}`,
    });
    // 60 records of ~3 KiB: several times the 64 KiB file, appended concurrently in bursts.
    for (let burst = 0; burst < 6; burst++)
      await Promise.all(
        Array.from({ length: 10 }, (_, k) =>
          // Published at once (as the repository's publisher would): a checkpoint may drop it.
          journal.append({ objects, refs: [update(burst * 10 + k)] }, (seq) => journal.publishedThrough(seq)),
        ),
      );
    const [name] = readdirSync(join(gitDir, 'datakit'));
    assert.ok(name);
    const live = decodeRecords(readFileSync(join(gitDir, 'datakit', name)));
    // Only what came after the last checkpoint counts, and it ends with the newest record.
    assert.ok(live.length > 0 && live.length < 60, `${live.length} records live`);
    assert.equal(live.at(-1)?.refs[0]?.message, 'm59');
    await journal.close();
    assert.deepEqual(readdirSync(join(gitDir, 'datakit')), []);
  });

  test(
    'the objects of a journal record that failed go into the next one (the same blob again is not lost)',
    { timeout: 30_000 },
    async () => {
      const path = temp('journal-failed-record');
      const repo = await Repository.open(path);
      // The journal's write of the first record fails (as EIO would); the second succeeds.
      const log = (repo as unknown as { journal: { log: { writeAt(...args: unknown[]): Promise<void> } } })
        .journal.log;
      const writeAt = log.writeAt;
      let writes = 0;
      log.writeAt = function (this: unknown, ...args: unknown[]) {
        if (writes++ === 0) return Promise.reject(new Error('injected journal write failure'));
        return writeAt.apply(this, args);
      };
      const content = bytes('kept through a failed journal write\n');
      const blob = hashObject('blob', content);
      const empty: DirValue = { kind: 'dir', entries: new Map() };
      const c1 = await repo.commit(await repo.trees.update(empty, ['f'], fileOfBytes(content)), [], 'one');
      await assert.rejects(repo.setHead('master', c1, undefined, 'one'), /injected journal write failure/);
      // The same content under another name: the object store already has the blob pending.
      const c2 = await repo.commit(await repo.trees.update(empty, ['g'], fileOfBytes(content)), [], 'two');
      assert.equal(await repo.setHead('master', c2, undefined, 'two'), true);
      // Acknowledged, so a crash now replays the journal: its records must hold the blob.
      const [name] = readdirSync(join(path, '.git', 'datakit'));
      assert.ok(name);
      const journaled = decodeRecords(readFileSync(join(path, '.git', 'datakit', name))).flatMap((r) =>
        r.objects.filter((o) => o.type === 'blob' && hashObject('blob', o.data) === blob),
      );
      assert.equal(journaled.length, 1, 'the blob is in a durable journal record');
      await repo.close();
      assert.equal(git(path, 'cat-file', '-p', `${c2}:g`), 'kept through a failed journal write\n');
      fsck(path);
    },
  );

  test('a checkpoint carries over the records not yet published to the git directory', async () => {
    const gitDir = temp('journal-carry');
    const journal = Journal.open(gitDir, 64 << 10);
    const objects = [{ type: 'blob' as const, data: new Uint8Array(3000).fill(1) }];
    const update = (i: number) => ({
      name: 'refs/heads/a',
      old: undefined,
      new: 'b'.repeat(40),
      message: `m${i}`,
    });
    const seqs: number[] = [];
    for (let i = 0; i < 15; i++) seqs.push(await journal.append({ objects, refs: [update(i)] }));
    journal.publishedThrough(seqs[9] ?? 0);
    // The file holds about 20 such records: these force a checkpoint, which keeps m10..m14.
    for (let i = 15; i < 25; i++) await journal.append({ objects, refs: [update(i)] });
    const [name] = readdirSync(join(gitDir, 'datakit'));
    assert.ok(name);
    const live = decodeRecords(readFileSync(join(gitDir, 'datakit', name))).map((r) => r.refs[0]?.message);
    assert.deepEqual(
      live,
      Array.from({ length: 15 }, (_, i) => `m${i + 10}`),
    );
    assert.equal(live.length, 15);
    journal.publishedThrough(journal.lastDurable);
    await journal.close();
    assert.deepEqual(readdirSync(join(gitDir, 'datakit')), []);
  });

  test('a small journal under 8 concurrent writers: checkpoints wait for the publisher, nothing is lost', async () => {
    const path = temp('journal-pressure');
    const repo = await Repository.open(path, { journalBytes: 128 << 10 });
    const filler = 'x'.repeat(3000);
    let made = 0;
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; i < 15; i++) {
          // Compare-and-swap in a loop, as DataKit's commit does (against the newest queued head).
          for (;;) {
            const head = await repo.queuedHead('master');
            const tree = await repo.trees.update(
              await repo.commitTree(head),
              [`w${w}-${i}`],
              fileOfBytes(bytes(`${w}.${i} ${filler}`)),
            );
            const c = await repo.commit(tree, head ? [head] : [], `w${w} ${i}`);
            if (await repo.setHead('master', c, head, `w${w} ${i}`)) break;
          }
          made++;
        }
      }),
    );
    assert.equal(made, 120);
    await repo.settle();
    assert.equal(git(path, 'rev-list', '--count', 'master').trim(), '120');
    fsck(path);
    await repo.close();
  });

  test('git and the server take turns on a ref: its lock is ours until the commit is in git', async () => {
    const path = temp('ref-lock');
    const repo = await Repository.open(path);
    try {
      const c1 = await repo.commit(await build(repo, { a: 'one' }), [], 'one');
      assert.equal(await repo.setHead('master', c1, undefined, 'one'), true);
      // Acknowledged (durable in the journal) but not yet in the git directory: we hold the
      // ref's lock, so git cannot move the branch under the acknowledged commit. (git runs
      // synchronously here: the server cannot publish meanwhile.)
      assert.throws(() => git(path, 'update-ref', 'refs/heads/master', c1), /lock/);
      await repo.settle();
      assert.equal(git(path, 'rev-parse', 'master').trim(), c1);
      assert.ok(!readdirSync(join(path, '.git', 'refs', 'heads')).includes('master.lock'));
      // Now git's turn: our next update compares against what git wrote.
      const byGit = git(path, 'commit-tree', '-m', 'by git', '-p', c1, `${c1}^{tree}`).trim();
      git(path, 'update-ref', 'refs/heads/master', byGit, c1);
      await repo.rescan();
      const c2 = await repo.commit(await build(repo, { a: 'two' }), [c1], 'two');
      assert.equal(await repo.setHead('master', c2, c1, 'two'), false);
      const c3 = await repo.commit(await build(repo, { a: 'two' }), [byGit], 'two');
      assert.equal(await repo.setHead('master', c3, byGit, 'two'), true);
      await repo.settle();
      assert.deepEqual(git(path, 'log', '--format=%s', 'master').trim().split('\n'), [
        'two',
        'by git',
        'one',
      ]);
      fsck(path);
    } finally {
      await repo.close();
    }
  });

  test('a publish that fails keeps the ref locked: git cannot move it under acknowledged commits', async () => {
    const path = temp('publish-error');
    const repo = await Repository.open(path);
    const heads = join(path, '.git', 'refs', 'heads');
    try {
      const c1 = await repo.commit(await build(repo, { a: 'one' }), [], 'one');
      assert.equal(await repo.setHead('master', c1, undefined, 'one'), true);
      // A real I/O error for the publisher: a directory where the ref file goes makes the
      // rename of master.lock over it fail (ENOTEMPTY/EISDIR) until it is removed.
      mkdirSync(join(heads, 'master', 'in-the-way'), { recursive: true });
      await new Promise((r) => setTimeout(r, 80)); // the background publish runs (and fails)
      const c2 = await repo.commit(await build(repo, { a: 'two' }), [c1], 'two');
      assert.equal(await repo.setHead('master', c2, c1, 'two'), true); // acknowledged meanwhile
      await new Promise((r) => setTimeout(r, 80));
      assert.ok(existsSync(join(heads, 'master.lock')), 'the lock outlives the failed publish');
      rmSync(join(heads, 'master'), { recursive: true });
      // git wants the branch now: it must not get it while c1 and c2 are only in our journal.
      const byGit = git(path, 'commit-tree', '-m', 'by git', `${c1}^{tree}`).trim();
      assert.throws(() => git(path, 'update-ref', 'refs/heads/master', byGit), /lock/);
      // The retry (backing off, at most a second apart) publishes without being asked.
      const deadline = Date.now() + 5000;
      while (!existsSync(join(heads, 'master')) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      await repo.settle();
      assert.equal(git(path, 'rev-parse', 'master').trim(), c2);
      assert.deepEqual(git(path, 'log', '--format=%s', 'master').trim().split('\n'), ['two', 'one']);
      assert.equal((await repo.reflog('master')).length, 2);
      fsck(path);
      // Now git's turn, as usual.
      git(path, 'update-ref', 'refs/heads/master', byGit, c2);
    } finally {
      await repo.close();
    }
  });

  test('trees spliced from their last version (a few changed entries) equal whole encodings; git agrees', async () => {
    const path = temp('splice');
    const repo = await Repository.open(path);
    try {
      let seed = 7;
      const pick = (n: number) => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return (seed >>> 12) % n; // the high bits: an LCG's low bits repeat with a short period
      };
      // Names that sort around each other in git's order ("a" < "a-b" < "a.b" < "a/" < "a0"),
      // directories that appear and vanish, a file replaced by a directory and back.
      const pool = ['a', 'a-b', 'a.b', 'a0', 'a/b', 'a/c', 'd/x', 'd/y/z', 'd', 'e/f/g', 'é', 'z', 'zz/1'];
      const model = new Map<string, string>();
      const expectedHash = (prefix: string): string => {
        const files = new Map<string, string>();
        const dirs = new Set<string>();
        for (const [p, text] of model) {
          if (!p.startsWith(prefix)) continue;
          const rest = p.slice(prefix.length);
          const slash = rest.indexOf('/');
          if (slash < 0) files.set(rest, text);
          else dirs.add(rest.slice(0, slash));
        }
        const entries = [...files].map(([name, text]) => ({
          name,
          mode: 0o100644,
          hash: hashObject('blob', bytes(text)),
        }));
        for (const d of dirs) entries.push({ name: d, mode: 0o40000, hash: expectedHash(`${prefix}${d}/`) });
        return hashObject('tree', encodeTree(entries));
      };
      let root: DirValue = { kind: 'dir', entries: new Map() };
      for (let step = 0; step < 400; step++) {
        const p = pool[pick(pool.length)] as string;
        if (pick(4) === 0) {
          if ([...model.keys()].some((k) => p.startsWith(`${k}/`))) continue; // a file in the way
          model.delete(p);
          for (const k of [...model.keys()]) if (k.startsWith(`${p}/`)) model.delete(k);
          root = await repo.trees.update(root, p.split('/'), undefined);
        } else {
          const text = `v${pick(5)}`;
          // A file replaces whatever is at its path and at its parents' paths.
          for (const k of [...model.keys()])
            if (k.startsWith(`${p}/`) || p.startsWith(`${k}/`)) model.delete(k);
          model.set(p, text);
          root = await repo.trees.update(root, p.split('/'), fileOfBytes(bytes(text)), true);
        }
        if (pick(3) === 0) {
          const hash = await repo.trees.write(root);
          assert.equal(hash, expectedHash(''), `after step ${step}`);
          // Go on from the written tree, or from the map just written.
          if (pick(2) === 0) root = { kind: 'dir', hash };
        }
      }
      const tree = await repo.trees.write(root);
      const c = await repo.commit({ kind: 'dir', hash: tree }, [], 'spliced');
      assert.equal(await repo.setHead('master', c, undefined, 'spliced'), true);
      await repo.settle();
      const listed = git(
        path,
        '-c',
        'core.quotePath=false',
        'ls-tree',
        '-r',
        '--format=%(path) %(objectname)',
        'master',
      )
        .trim()
        .split('\n')
        .filter((l) => l !== '');
      const want = [...model].map(([p, text]) => `${p} ${hashObject('blob', bytes(text))}`);
      assert.deepEqual(new Set(listed), new Set(want));
      fsck(path);
    } finally {
      await repo.close();
    }
  });

  test('big directories changed a few names at a time (overlays over a shared map) read and hash as plain maps', async () => {
    const repo = Repository.memory();
    let seed = 5;
    const pick = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return (seed >>> 12) % n; // the high bits: an LCG's low bits repeat with a short period
    };
    const model = new Map<string, string>();
    const hashOf = () =>
      hashObject(
        'tree',
        encodeTree(
          [...model].map(([name, text]) => ({ name, mode: 0o100644, hash: hashObject('blob', bytes(text)) })),
        ),
      );
    let root: DirValue = { kind: 'dir', entries: new Map() };
    // Past the size where changes are kept as an overlay, and past the changes one carries.
    for (let step = 0; step < 700; step++) {
      const name = `f${pick(300)}`;
      if (pick(5) === 0) {
        model.delete(name);
        root = await repo.trees.update(root, [name], undefined);
      } else {
        const text = `v${pick(1000)}`;
        model.set(name, text);
        root = await repo.trees.update(root, [name], fileOfBytes(bytes(text)));
      }
      const entries = await repo.trees.entries(root);
      assert.equal(entries.size, model.size, `size after step ${step}`);
      assert.equal(entries.has(name), model.has(name));
      if (pick(10) === 0) assert.deepEqual(new Set(entries.keys()), new Set(model.keys()), `step ${step}`);
      if (pick(4) === 0) {
        const hash = await repo.trees.write(root);
        assert.equal(hash, hashOf(), `after step ${step}`);
        if (pick(2) === 0) root = { kind: 'dir', hash };
      }
    }
    assert.equal(await repo.trees.write(root), hashOf());
  });

  test('merging spliced trees looks only at the names either side changed, with the same result', async () => {
    const repo = Repository.memory();
    let seed = 11;
    const pick = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return (seed >>> 12) % n; // the high bits: an LCG's low bits repeat with a short period
    };
    const pool = ['a', 'a-b', 'a.b', 'a0', 'a/b', 'a/c', 'd/x', 'd', 'e/f', 'z', 'zz/1', 'zz/2'];
    let made = 0;
    const change = async (from: string, n: number): Promise<string> => {
      let root: DirValue = { kind: 'dir', hash: from };
      for (let i = 0; i < n; i++) {
        const p = (pool[pick(pool.length)] as string).split('/');
        // Mostly new contents (trees seen before are served from the cache as first read).
        const text = pick(4) === 0 ? `v${pick(3)}` : `v${++made}`;
        const value = pick(4) === 0 ? undefined : fileOfBytes(bytes(text), pick(5) === 0 ? 'exec' : 'normal');
        try {
          root = await repo.trees.update(root, p, value, pick(2) === 0);
        } catch {
          // a file in the way, not forced
        }
      }
      return repo.trees.write(root);
    };
    let fast = 0;
    // Every other round in a directory big enough to be changed through overlays.
    const filler = new Map(Array.from({ length: 100 }, (_, i) => [`m${i}`, fileOfBytes(bytes(`${i}`))]));
    for (let round = 0; round < 60; round++) {
      const start = round % 2 === 0 ? new Map() : filler;
      const base = await change(await repo.trees.write({ kind: 'dir', entries: start }), 8);
      // Ours moves on by a few commits (as a branch head does), theirs by one.
      let ours = base;
      for (let k = 0; k < 1 + pick(3); k++) ours = await change(ours, 1 + pick(2));
      const theirs = await change(base, 1 + pick(2));
      const oursMap = await repo.trees.entries({ kind: 'dir', hash: ours });
      if (repo.trees.changedSince(oursMap, base) !== undefined) fast++;
      const spliced = await mergeTrees(repo.trees, dirOfHash(ours), dirOfHash(theirs), dirOfHash(base));
      // The same merge by a store that knows nothing of how the trees were made.
      const plain = new TreeStore(repo.db);
      const whole = await mergeTrees(plain, dirOfHash(ours), dirOfHash(theirs), dirOfHash(base));
      assert.equal(await repo.trees.write(spliced.tree), await plain.write(whole.tree), `round ${round}`);
      assert.deepEqual(spliced.conflicts, whole.conflicts, `round ${round}`);
    }
    assert.ok(fast > 20, `the splice path was taken in ${fast} of 60 rounds`);
  });

  test('journal records: a torn or stale tail is not replayed', () => {
    const file = Buffer.alloc(4096 + 1024);
    file.writeUInt32BE(0x444b4832, 0);
    file.writeUInt32BE(7, 4);
    const r1 = encodeRecord({
      objects: [],
      refs: [{ name: 'refs/heads/a', old: undefined, new: 'a'.repeat(40), message: 'm' }],
    });
    const r2 = encodeRecord({
      objects: [],
      refs: [{ name: 'refs/heads/a', old: 'a'.repeat(40), new: undefined, message: 'd' }],
    });
    stampRecord(r1, 7);
    stampRecord(r2, 7);
    r1.copy(file, 4096);
    r2.copy(file, 4096 + r1.length);
    assert.deepEqual(
      decodeRecords(file).map((r) => r.refs[0]?.new),
      ['a'.repeat(40), undefined],
    );
    // A record from before the last checkpoint (older epoch) ends the journal.
    stampRecord(r2, 6);
    r2.copy(file, 4096 + r1.length);
    assert.equal(decodeRecords(file).length, 1);
    // So does a torn one (only some of its sectors reached the disk).
    stampRecord(r2, 7);
    r2.copy(file, 4096 + r1.length);
    assert.equal(decodeRecords(file).length, 2);
    file.fill(0, 4096 + r1.length + 20, 4096 + r1.length + 30);
    assert.equal(decodeRecords(file).length, 1);
  });

  test('tree deltas (journal records, packs) apply back to the new tree, and are small', () => {
    let seed = 1;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return (seed >>> 12) % n; // the high bits: an LCG's low bits repeat with a short period
    };
    const h = (n: number) => hashObject('blob', bytes(String(n)));
    let deltas = 0;
    for (let round = 0; round < 200; round++) {
      const entries = new Map<string, { mode: number; hash: string }>();
      for (let i = rand(400); i > 0; i--)
        entries.set(`f${rand(3000)}`, { mode: rand(4) === 0 ? 0o40000 : 0o100644, hash: h(rand(1e9)) });
      const next = new Map(entries);
      for (let k = rand(8); k > 0; k--) {
        const name = `f${rand(3000)}`;
        if (rand(3) === 0) next.delete(name);
        else next.set(name, { mode: 0o100644, hash: h(rand(1e9)) });
      }
      const base = encodeTree([...entries].map(([name, e]) => ({ name, ...e })));
      const target = encodeTree([...next].map(([name, e]) => ({ name, ...e })));
      const delta = encodeTreeDelta(base, target);
      if (!delta) continue;
      deltas++;
      assert.ok(delta.length < target.length / 2);
      assert.deepEqual(Buffer.from(applyDelta(base, delta)), Buffer.from(target));
    }
    assert.ok(deltas > 150, `${deltas} deltas`);
  });

  test('stored (level 0) zlib streams inflate to their input, across block and Adler-32 bounds', () => {
    for (const n of [0, 1, 5552, 5553, 65535, 65536, 200_001]) {
      const data = Buffer.alloc(n);
      for (let i = 0; i < n; i++) data[i] = (i * 7919) & 0xff;
      assert.ok(inflateSync(storedZlib(data)).equals(data), `length ${n}`);
    }
  });

  test('in-memory store', async () => {
    const repo = Repository.memory({ clock: () => 0 });
    const c = await repo.commit(await build(repo, { x: 'y' }), [], 'm');
    assert.equal(await repo.setHead('b', c, undefined, 'm'), true);
    assert.deepEqual([...(await repo.branches())], [['b', c]]);
    const f = await repo.trees.find(await repo.commitTree(c), ['x']);
    assert.ok(f?.kind === 'file');
    assert.equal(utf8(await repo.trees.data(f)), 'y');
    // The same bytes give the same commit hash as git would (objects are real git objects).
    const raw = await repo.db.read(c);
    assert.ok(raw);
    const dir = temp('mem');
    git(dir, 'init', '-q');
    const written = gitBytes(dir, ['hash-object', '-t', 'commit', '--stdin'], raw.data).toString().trim();
    assert.equal(written, c);
    await repo.close();
  });
});

function listPacks(path: string): string[] {
  const dir = join(path, '.git', 'objects', 'pack');
  return readdirSync(dir)
    .filter((n) => n.endsWith('.idx'))
    .map((n) => join(dir, n));
}
