import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { type FSWatcher, existsSync, watch } from 'node:fs';
import { mkdir, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { StoreError } from './errors.js';
import { Journal, type JournalObject, type JournalRefUpdate, syncFileSystem } from './journal.js';
import { type Commit, type Signature, encodeCommit, hashObject, isHash, parseCommit } from './objects.js';
import { GitObjectDb, MemoryObjectDb, type ObjectDb } from './odb.js';
import { applyDelta } from './pack.js';
import { encodePack } from './packwriter.js';
import { GitRefStore, MemoryRefStore, type RefStore } from './refs.js';
import { type DirValue, TreeStore, dirOfHash, emptyDir } from './tree.js';

export interface RepositoryOptions {
  /** fsync objects and refs before acknowledging (default true). */
  fsync?: boolean;
  /** Who commits. */
  author?: { name: string; email: string };
  /** Fixed commit time in seconds (tests); default: now. */
  clock?: () => number;
  /** How often to look for ref changes made by other processes (ms). */
  pollMs?: number;
  /** Size of the write-ahead journal file (default 8 MiB; a record may take a quarter of it). */
  journalBytes?: number;
}

export type HeadListener = (branch: string, head: string | undefined) => void;

/**
 * A branch whose acknowledged head may not be in the git directory yet. While we hold its
 * `<ref>.lock` (as git does for an update), nobody else can move it, so the updates that follow
 * need no file operation of their own; the publisher writes the newest value and gives the lock up.
 */
interface HeldRef {
  lock: FileHandle | undefined;
  /** The value in the git directory. */
  onDisk: string | undefined;
  /** The newest acknowledged value. */
  value: string | undefined;
  /** Reflog lines of the updates since `onDisk`. */
  log: string[];
  /** Objects the value needs: those up to this write sequence number. */
  needs: number;
  /** Journal record of the oldest update not in the git directory (Infinity: none). */
  firstUnpublished: number;
  /** Journal record of the newest update. */
  lastRecord: number;
  /** The newest update compared and queued for the journal (the next one's compare value). */
  queued: string | undefined;
  /** Updates queued and not yet durable (or refused). */
  inFlight: number;
  /**
   * The lock was given up to publish and someone else (git) took it before we could take it
   * again: the update in flight is refused, the next one starts from the git directory.
   */
  lost: boolean;
  publishing: Promise<void> | undefined;
}

/**
 * Acknowledged updates are published to the git directory once no update has come for
 * PUBLISH_IDLE_MS, or PUBLISH_MAX_DELAY_MS after the first unpublished one under a steady stream:
 * each publish costs a dozen file operations (pack, index, ref lock, rename, reflog) whatever
 * the number of commits it carries.
 */
const PUBLISH_IDLE_MS = 10;

/** An update compared and ordered: `durable` says whether it made it into history. */
export interface Queued {
  readonly durable: Promise<boolean>;
}
const PUBLISH_MAX_DELAY_MS = 100;

const HEADS = 'refs/heads/';

/**
 * A git repository: objects, trees, commits and branches. Knows nothing of 9P.
 * Branch changes (ours, and other processes' seen through fs.watch plus a bounded poll) are
 * reported to listeners.
 */
export class Repository {
  readonly trees: TreeStore;
  private readonly commitCache = new Map<string, Commit>();
  private readonly generations = new Map<string, number>();
  private readonly listeners = new Set<HeadListener>();
  private readonly known = new Map<string, string>();
  private watchers: FSWatcher[] = [];
  private poll: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescanWanted = false;
  /** Bumped by our own head updates, so a scan that raced with one is not applied. */
  private generation = 0;
  /** The same, per branch: a scan that raced with updates applies what it read of the others. */
  private readonly branchGenerations = new Map<string, number>();
  /** `known` mirrors the refs on disk (watching, and scanned since our last update). */
  private knownValid = false;
  private readonly author: { name: string; email: string };
  private readonly held = new Map<string, HeldRef>();
  private readonly refMutexes = new Map<string, Promise<unknown>>();
  private publishTimer: NodeJS.Timeout | undefined;
  private publishDue: number | undefined;
  private publishing: Promise<void> | undefined;
  private publishAgain = false;
  /** Publishes that failed in a row (an I/O error): the retry backs off. */
  private publishFailures = 0;
  private closing = false;
  private readonly clock: () => number;
  private readonly pollMs: number;

  private constructor(
    readonly db: ObjectDb,
    readonly refs: RefStore,
    readonly gitDir: string | undefined,
    options: RepositoryOptions,
    /** With fsync on: group commits are made durable by one journal fdatasync. */
    private readonly journal?: { log: Journal; db: GitObjectDb },
  ) {
    this.trees = new TreeStore(db);
    this.author = options.author ?? { name: 'datakit', email: 'datakit@localhost' };
    this.clock = options.clock ?? (() => Math.floor(Date.now() / 1000));
    this.pollMs = options.pollMs ?? 1000;
  }

  static memory(options: RepositoryOptions = {}): Repository {
    return new Repository(new MemoryObjectDb(), new MemoryRefStore(), undefined, options);
  }

  /**
   * Opens the repository at `path` (a work tree with `.git`, or a bare repository), creating a
   * bare-layout repository there if nothing exists yet.
   */
  static async open(path: string, options: RepositoryOptions = {}): Promise<Repository> {
    const abs = resolve(path);
    let gitDir: string;
    if (existsSync(join(abs, '.git', 'objects'))) gitDir = join(abs, '.git');
    else if (existsSync(join(abs, 'objects')) && existsSync(join(abs, 'HEAD'))) gitDir = abs;
    else {
      const isDir = await stat(abs).then(
        (s) => s.isDirectory(),
        () => false,
      );
      if (isDir && existsSync(join(abs, '.git')))
        throw new StoreError('ERR_NOT_A_REPO', `${abs}/.git exists but is not a git directory`);
      gitDir = join(abs, '.git');
      await initGitDir(gitDir);
    }
    const fsync = options.fsync ?? true;
    await removeCrashLeftovers(gitDir);
    await replayJournals(gitDir);
    await repairPackIndexes(gitDir);
    if (!fsync)
      return new Repository(
        new GitObjectDb(gitDir, { fsync }),
        new GitRefStore(gitDir, { fsync }),
        gitDir,
        options,
      );
    const log = Journal.open(gitDir, options.journalBytes);
    const db = new GitObjectDb(gitDir, { fsync, journal: log });
    // Refs are covered by the journal: written without waiting for the disk.
    const repo = new Repository(db, new GitRefStore(gitDir, { fsync: false }), gitDir, options, { log, db });
    log.onPressure = () => repo.publishNow();
    return repo;
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.poll) clearInterval(this.poll);
    this.poll = undefined;
    if (this.rescanTimer) clearTimeout(this.rescanTimer);
    this.rescanTimer = undefined;
    this.knownValid = false;
    this.listeners.clear();
    await this.scanning;
    if (this.journal) {
      let settled = true;
      try {
        await this.settle();
      } catch {
        // Publishing keeps failing: the held locks and the journal's unpublished records stay
        // for the next opener, whose replay applies them.
        settled = false;
      }
      this.closing = true;
      if (this.publishTimer) clearTimeout(this.publishTimer);
      this.publishTimer = undefined;
      if (settled) {
        await this.db.sync();
        await this.journal.db.installJournaled();
        this.journal.log.publishedThrough(this.journal.log.lastDurable);
      }
    }
    await this.db.close();
    await this.journal?.log.close();
  }

  private lastSignature: Signature | undefined;

  /** Who commits, now (the same object within a second: every commit and reflog line asks). */
  signature(): Signature {
    const time = this.clock();
    if (this.lastSignature?.time !== time)
      this.lastSignature = { name: this.author.name, email: this.author.email, time, tz: '+0000' };
    return this.lastSignature;
  }

  // ---- commits ----

  async readCommit(hash: string): Promise<Commit | undefined> {
    const cached = this.commitCache.get(hash);
    if (cached) return cached;
    if (!isHash(hash)) return undefined;
    const obj = await this.db.read(hash);
    if (!obj || obj.type !== 'commit') return undefined;
    const commit = parseCommit(obj.data, hash);
    this.rememberCommit(hash, commit);
    return commit;
  }

  async commitTree(hash: string | undefined): Promise<DirValue> {
    if (!hash) return emptyDir;
    const c = await this.readCommit(hash);
    if (!c) throw new StoreError('ERR_MISSING_OBJECT', `commit ${hash} is missing`);
    return dirOfHash(c.tree);
  }

  /** Writes the tree and a commit of it; the message gets git's trailing newline. */
  async commit(tree: DirValue, parents: readonly string[], message: string): Promise<string> {
    const treeHash = await this.trees.write(tree);
    const who = this.signature();
    const text = message.endsWith('\n') ? message : `${message}\n`;
    const commit: Commit = {
      tree: treeHash,
      parents: [...parents],
      author: who,
      committer: who,
      message: text,
    };
    const hash = await this.db.write('commit', encodeCommit(commit));
    // Read back at once (the merge into the head, `head`'s tree): no need to parse what we wrote.
    this.rememberCommit(hash, commit);
    return hash;
  }

  private rememberCommit(hash: string, commit: Commit): void {
    if (this.commitCache.has(hash)) return;
    if (this.commitCache.size >= 8192) {
      const oldest = this.commitCache.keys().next().value;
      if (oldest !== undefined) this.commitCache.delete(oldest);
    }
    this.commitCache.set(hash, commit);
  }

  /**
   * Generation number: 1 for a root commit, else 1 + the largest of its parents'. An ancestor
   * always has a smaller one, which bounds every walk below (git's commit-graph idea). Cached.
   */
  async generationOf(hash: string): Promise<number> {
    const known = this.generations.get(hash);
    if (known !== undefined) return known;
    const walk = this.generationWalk(hash);
    let step = walk.next();
    while (!step.done) step = walk.next((await this.readCommit(step.value))?.parents ?? []);
    return step.value;
  }

  /**
   * Computes generations down from `hash` by an iterative post-order walk (histories are far
   * deeper than the JS stack): yields each commit whose parents it needs and is handed them
   * (none for an unknown commit), so that one walk serves reads and the cache alone.
   */
  private *generationWalk(hash: string): Generator<string, number, readonly string[]> {
    const stack: string[] = [hash];
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as string;
      if (this.generations.has(top)) {
        stack.pop();
        continue;
      }
      const parents = yield top;
      let g = 0;
      let missing = false;
      for (const p of parents) {
        const pg = this.generations.get(p);
        if (pg === undefined) {
          stack.push(p);
          missing = true;
        } else if (pg > g) g = pg;
      }
      if (missing) continue;
      stack.pop();
      this.generations.set(top, g + 1);
    }
    return this.generations.get(hash) ?? 1;
  }

  /** Is `ancestor` reachable from `descendant` (or equal)? Walks only commits at or above `ancestor`'s generation. */
  isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    if (ancestor === descendant) return Promise.resolve(true);
    const now = this.isAncestorCached(ancestor, descendant);
    return now !== undefined ? Promise.resolve(now) : this.isAncestorRead(ancestor, descendant);
  }

  /** The generation number from cached commits alone; undefined when one is not cached. */
  private generationCached(hash: string): number | undefined {
    const known = this.generations.get(hash);
    if (known !== undefined) return known;
    const walk = this.generationWalk(hash);
    let step = walk.next();
    while (!step.done) {
      const commit = this.commitCache.get(step.value);
      if (!commit) return undefined;
      step = walk.next(commit.parents);
    }
    return step.value;
  }

  /**
   * `isAncestor` from cached commits alone (commits we wrote or read recently: a merge into the
   * head looks only at those), with no promise per step; undefined when one is not cached.
   */
  private isAncestorCached(ancestor: string, descendant: string): boolean | undefined {
    const floor = this.generationCached(ancestor);
    const top = this.generationCached(descendant);
    if (floor === undefined || top === undefined) return undefined;
    if (floor >= top) return false;
    const seen = new Set<string>([descendant]);
    const stack = [descendant];
    while (stack.length > 0) {
      const c = this.commitCache.get(stack.pop() as string);
      if (!c) return undefined;
      for (const p of c.parents) {
        if (p === ancestor) return true;
        if (seen.has(p)) continue;
        const g = this.generationCached(p);
        if (g === undefined) return undefined;
        if (g <= floor) continue;
        seen.add(p);
        stack.push(p);
      }
    }
    return false;
  }

  private async isAncestorRead(ancestor: string, descendant: string): Promise<boolean> {
    const floor = await this.generationOf(ancestor);
    if (floor >= (await this.generationOf(descendant))) return false;
    const seen = new Set<string>([descendant]);
    const stack = [descendant];
    while (stack.length > 0) {
      const c = await this.readCommit(stack.pop() as string);
      for (const p of c?.parents ?? []) {
        if (p === ancestor) return true;
        if (seen.has(p) || (await this.generationOf(p)) <= floor) continue;
        seen.add(p);
        stack.push(p);
      }
    }
    return false;
  }

  /** Best common ancestors, by git's "paint down to common" walk in generation order. */
  async mergeBases(a: string, b: string): Promise<string[]> {
    if (a === b) return [a];
    const P1 = 1;
    const P2 = 2;
    const STALE = 4;
    const RESULT = 8;
    const flags = new Map<string, number>();
    // Max-heap on generation: children are always handled before their parents.
    const heap: Array<{ hash: string; gen: number }> = [];
    const heapPush = (item: { hash: string; gen: number }) => {
      heap.push(item);
      for (let i = heap.length - 1; i > 0; ) {
        const parent = (i - 1) >> 1;
        if ((heap[parent]?.gen ?? 0) >= item.gen) break;
        heap[i] = heap[parent] as { hash: string; gen: number };
        heap[parent] = item;
        i = parent;
      }
    };
    const heapPop = () => {
      const top = heap[0];
      const last = heap.pop();
      if (heap.length > 0 && last) {
        heap[0] = last;
        for (let i = 0; ; ) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          if ((heap[l]?.gen ?? -1) > (heap[m]?.gen ?? -1)) m = l;
          if ((heap[r]?.gen ?? -1) > (heap[m]?.gen ?? -1)) m = r;
          if (m === i) break;
          const t = heap[i] as { hash: string; gen: number };
          heap[i] = heap[m] as { hash: string; gen: number };
          heap[m] = t;
          i = m;
        }
      }
      return top;
    };
    const push = async (hash: string, f: number) => {
      const old = flags.get(hash) ?? 0;
      if ((old & f) === f) return;
      flags.set(hash, old | f);
      heapPush({ hash, gen: await this.generationOf(hash) });
    };
    const anyLive = () => heap.some((h) => ((flags.get(h.hash) ?? 0) & STALE) === 0);
    await push(a, P1);
    await push(b, P2);
    const results: string[] = [];
    while (anyLive()) {
      const item = heapPop();
      if (!item) break;
      let f = flags.get(item.hash) ?? 0;
      let pf = f & (P1 | P2 | STALE);
      if ((f & (P1 | P2)) === (P1 | P2)) {
        if ((f & RESULT) === 0) {
          f |= RESULT;
          flags.set(item.hash, f);
          results.push(item.hash);
        }
        pf |= STALE;
      }
      const c = await this.readCommit(item.hash);
      for (const p of c?.parents ?? []) await push(p, pf);
    }
    const best = results.filter((h) => ((flags.get(h) ?? 0) & STALE) === 0);
    return best.length > 0 ? best : results.slice(0, 1);
  }

  // ---- branches ----

  async branches(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    // Acknowledged updates the git directory may not show yet (taken first: one published while
    // the directory is read is in either the listing or here).
    const held = [...this.held].map(([name, h]) => [name, h.value] as const);
    for (const [name, hash] of await this.refs.list(HEADS)) out.set(name.slice(HEADS.length), hash);
    for (const [name, value] of held) {
      if (!name.startsWith(HEADS)) continue;
      if (value === undefined) out.delete(name.slice(HEADS.length));
      else out.set(name.slice(HEADS.length), value);
    }
    return out;
  }

  /** The branch head; served from the watched mirror when it is valid (refs are re-read on every change event). */
  async head(branch: string): Promise<string | undefined> {
    if (this.knownValid) return this.known.get(branch);
    return this.readRef(HEADS + branch);
  }

  /** The value of ref `name`, including acknowledged updates not yet in the git directory. */
  private async readRef(name: string): Promise<string | undefined> {
    const h = this.held.get(name);
    if (h) return h.value;
    return this.refs.read(name);
  }

  /**
   * Compare-and-swap of a branch head; `value` undefined deletes the branch. Resolves true once
   * the update is durable. With the journal that is when its record is: the git directory gets
   * the objects and the ref a few milliseconds later (`settle()` waits for that).
   */
  async setHead(
    branch: string,
    value: string | undefined,
    expected: string | undefined,
    message: string,
  ): Promise<boolean> {
    const queued = await this.queueHead(branch, value, expected, message);
    return queued !== false && (await queued.durable);
  }

  /**
   * The head as the next update must expect it: the newest update queued (compared, not yet
   * durable), else the head.
   */
  async queuedHead(branch: string): Promise<string | undefined> {
    const h = this.held.get(HEADS + branch);
    if (h) return h.queued;
    return this.head(branch);
  }

  /**
   * The compare-and-swap of `setHead` in two steps: resolves once the update is compared and
   * ordered (false: the head is not `expected`), with a promise that resolves once it is durable
   * (true) or refused after all (false: the ref was lost to another writer meanwhile; the update
   * is not in history) and rejects on an I/O error. Further updates of the branch may be queued
   * on top of it meanwhile (they fail too if it fails), so a group commit can be merged while
   * the previous one is being written.
   */
  async queueHead(
    branch: string,
    value: string | undefined,
    expected: string | undefined,
    message: string,
  ): Promise<false | Queued> {
    const name = HEADS + branch;
    this.bump(branch);
    let queued: false | Queued;
    try {
      queued = await this.withRef(name, async (): Promise<false | Queued> => {
        if (this.journal && value !== undefined) return this.queueHeld(name, value, expected, message);
        return (await this.setDirect(name, value, expected, message))
          ? { durable: Promise.resolve(true) }
          : false;
      });
    } catch (err) {
      this.bump(branch);
      throw err;
    }
    if (queued === false) {
      this.bump(branch);
      this.knownValid = false; // someone else moved it: read the disk until the next scan
      return false;
    }
    const durable = queued.durable.then(
      (ok) => {
        this.bump(branch);
        if (ok) this.noteHead(branch, value);
        else this.knownValid = false;
        return ok;
      },
      (err) => {
        this.bump(branch);
        throw err;
      },
    );
    durable.catch(() => {}); // the caller gets it; not an unhandled rejection meanwhile
    return { durable };
  }

  /** Runs `fn` after every earlier call for the same ref has finished. */
  private async withRef<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const before = this.refMutexes.get(name) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.catch(() => {});
    this.refMutexes.set(name, tail);
    try {
      return await run;
    } finally {
      if (this.refMutexes.get(name) === tail) this.refMutexes.delete(name);
    }
  }

  /** Deletions, and every update without the journal: under the ref's lock, in the git directory at once. */
  private async setDirect(
    name: string,
    value: string | undefined,
    expected: string | undefined,
    message: string,
  ): Promise<boolean> {
    const journal = this.journal;
    if (journal) {
      // Any held update of this ref goes to the git directory first.
      await this.settle();
      const logged = async () => {
        await journal.log.append({ objects: [], refs: [{ name, old: expected, new: value, message }] });
      };
      return this.refs.update(name, value, expected, this.signature(), message, logged);
    }
    // Every object the new head reaches must be durable before the ref points at it.
    if (value !== undefined) await this.db.sync();
    return this.refs.update(name, value, expected, this.signature(), message);
  }

  /**
   * With the journal: one record (the objects written since the last one, and this ref update)
   * and one write to the journal make the update durable; the git directory follows in the
   * background. Resolves once the record is queued, with its durability.
   */
  private async queueHeld(
    name: string,
    value: string,
    expected: string | undefined,
    message: string,
  ): Promise<false | Queued> {
    const journal = this.journal as { log: Journal; db: GitObjectDb };
    const refs = this.refs as GitRefStore;
    let h = this.held.get(name);
    while (h?.publishing) {
      // Its failure (an I/O error) is the publisher's to retry: the lock is still ours.
      await h.publishing.catch(() => {});
      h = this.held.get(name);
    }
    if (h && !h.lock && h.value !== h.onDisk && !h.lost) {
      // Acknowledged updates a failed publish left behind: keep them if the ref is as we left it.
      await this.relock(name, h, h.onDisk);
    }
    if (!h?.lock || h.lost) {
      const lock = await refs.lock(name);
      let onDisk: string | undefined;
      try {
        onDisk = refs.readNow(name);
      } catch (err) {
        await refs.unlock(name, lock);
        throw err;
      }
      h = {
        lock,
        onDisk,
        value: onDisk,
        queued: onDisk,
        inFlight: 0,
        log: [],
        needs: 0,
        firstUnpublished: Number.POSITIVE_INFINITY,
        lastRecord: 0,
        lost: false,
        publishing: undefined,
      };
      this.held.set(name, h);
    }
    const held = h;
    if (held.queued !== expected) {
      this.schedulePublish(); // gives the lock up if nothing is pending
      return false;
    }
    let staged = journal.db.stage();
    if (staged && !journal.db.fitsJournal(staged)) {
      await journal.db.installDurably(staged.upTo);
      staged = undefined;
    }
    const old = held.queued;
    const line = GitRefStore.reflogLine(old, value, this.signature(), message);
    held.queued = value;
    held.inFlight++;
    const record = journal.log.append(
      { objects: staged?.objects ?? [], refs: [{ name, old, new: value, message }] },
      (seq) => {
        // Synchronously with durability: a checkpoint right after never misses this update.
        if (staged) journal.db.markJournaled(staged.upTo);
        held.value = value;
        held.log.push(line);
        held.needs = Math.max(held.needs, staged?.upTo ?? 0);
        held.lastRecord = seq;
        if (held.firstUnpublished === Number.POSITIVE_INFINITY) held.firstUnpublished = seq;
      },
      () => {
        // Synchronously with the failure, which fails every record queued after this one too:
        // the next update starts from what is durable.
        held.queued = held.value;
        if (staged) journal.db.markFailed(staged);
      },
    );
    const durable = record.then(
      async () => {
        // A publish meanwhile gave the lock up and takes it again: our compare stands only if
        // nobody moved the ref in between.
        // (Whether it succeeded or not: a failed publish keeps the lock, and this update is
        // durable in the journal either way.)
        while (held.publishing) await held.publishing.catch(() => {});
        held.inFlight--;
        this.schedulePublish();
        if (held.lost) {
          if (this.held.get(name) === held) this.held.delete(name);
          return false;
        }
        return true;
      },
      (err) => {
        held.inFlight--;
        this.schedulePublish();
        throw err;
      },
    );
    durable.catch(() => {});
    return { durable };
  }

  /**
   * Takes the lock of a held ref again, expecting the ref to have `expected`. If someone else
   * moved it (or holds it for too long), the hold is lost: updates in flight are refused.
   */
  private async relock(name: string, h: HeldRef, expected: string | undefined): Promise<boolean> {
    const refs = this.refs as GitRefStore;
    let again: FileHandle;
    try {
      again = await refs.lock(name);
    } catch {
      h.lost = true;
      return false;
    }
    let onDisk: string | undefined;
    try {
      onDisk = refs.readNow(name);
    } catch {
      onDisk = undefined;
    }
    if (onDisk === expected) {
      h.lock = again;
      return true;
    }
    h.lost = true;
    await refs.unlock(name, again);
    return false;
  }

  /** When the last update was scheduled for publishing (it restarts the idle wait). */
  private lastUpdateAt = 0;

  private schedulePublish(): void {
    if (!this.journal) return;
    const now = performance.now();
    this.publishDue ??= now + PUBLISH_MAX_DELAY_MS;
    this.lastUpdateAt = now;
    // One timer, moved on when it fires early (re-arming a timer on every commit cost more).
    if (!this.publishTimer) this.armPublish(Math.min(PUBLISH_IDLE_MS, this.publishDue - now));
  }

  private armPublish(ms: number): void {
    this.publishTimer = setTimeout(
      () => {
        this.publishTimer = undefined;
        const now = performance.now();
        const at = Math.min(this.lastUpdateAt + PUBLISH_IDLE_MS, this.publishDue ?? now);
        if (at - now >= 1) {
          this.armPublish(at - now);
          return;
        }
        this.publishDue = undefined;
        void this.publish().catch(() => {});
      },
      Math.max(0, ms),
    );
  }

  /**
   * Resolves once every acknowledged update (objects and refs) is in the git directory, so
   * `git` run now sees it. (It is durable already, through the journal.)
   */
  async settle(): Promise<void> {
    if (!this.journal) return;
    // Bounded: updates keep coming on a busy server; settle waits for those already made.
    const deadline = performance.now() + 30_000;
    let failure: unknown;
    while (performance.now() < deadline) {
      const held = [...this.held.values()];
      const pending = held.some((h) => h.lock || h.inFlight > 0) || this.publishTimer;
      if (!pending && !this.publishing) return;
      if (this.publishTimer) {
        clearTimeout(this.publishTimer);
        this.publishTimer = undefined;
        this.publishDue = undefined;
      }
      try {
        await this.publish();
        failure = undefined;
      } catch (err) {
        // An I/O error: held refs keep their locks; try again until the deadline.
        failure = err;
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      // Updates still being written to the journal: give them a moment rather than spin.
      if (held.some((h) => h.inFlight > 0)) await new Promise((r) => setTimeout(r, 1));
    }
    if (failure) throw failure;
  }

  private retryPublish(afterMs: number): void {
    if (this.publishTimer || this.closing) return;
    this.publishTimer = setTimeout(() => {
      this.publishTimer = undefined;
      this.publishDue = undefined;
      void this.publish().catch(() => {});
    }, afterMs);
  }

  /** Publishes at once (the journal is filling up). */
  private publishNow(): Promise<void> {
    if (this.publishTimer) {
      clearTimeout(this.publishTimer);
      this.publishTimer = undefined;
      this.publishDue = undefined;
    }
    return this.publish();
  }

  /** One publisher at a time; a call meanwhile makes it go round once more. */
  private publish(): Promise<void> {
    if (this.publishing) {
      this.publishAgain = true;
      return this.publishing;
    }
    this.publishing = (async () => {
      try {
        do {
          this.publishAgain = false;
          await this.publishRound();
        } while (this.publishAgain);
      } catch (err) {
        // Held refs keep their locks and acknowledged values: try again, backing off while the
        // error lasts (a full disk, a ref path in the way).
        this.publishFailures++;
        this.retryPublish(Math.min(1000, 10 * 2 ** Math.min(this.publishFailures, 7)));
        throw err;
      } finally {
        this.publishing = undefined;
      }
    })();
    return this.publishing;
  }

  private async publishRound(): Promise<void> {
    const journal = this.journal;
    if (!journal) return;
    const refs = this.refs as GitRefStore;
    // Every record up to here has been applied to `held` and the object staging.
    const durable = journal.log.lastDurable;
    let later = false;
    let failed = false;
    await journal.db.installJournaled();
    let lowest = durable;
    for (const [name, h] of [...this.held]) {
      if (h.publishing) continue;
      if (h.needs > journal.db.installed) {
        // Objects journaled since this round began: the next round (not at once: under a steady
        // stream that would make a pack per commit).
        lowest = Math.min(lowest, h.firstUnpublished - 1);
        later = true;
        continue;
      }
      h.publishing = (async () => {
        if (h.needs > journal.db.installed) {
          // It brought objects not in the git directory yet: the ref waits for the next round.
          later = true;
          return;
        }
        if (!h.lock && h.value !== h.onDisk) {
          // A publish failed (an I/O error) after acknowledgements: take the lock again and go
          // on if the ref is still as we left it.
          if (!(await this.relock(name, h, h.onDisk))) return;
        }
        const lock = h.lock;
        if (!lock) return;
        const value = h.value;
        const through = h.lastRecord;
        const busy = h.inFlight > 0;
        if (value === h.onDisk || value === undefined) {
          // Nothing to publish: give the lock up unless an update is on its way.
          if (busy) return;
          h.lock = undefined;
          await refs.unlock(name, lock);
          return;
        }
        const log = h.log;
        h.log = [];
        let logged: boolean;
        try {
          logged = await refs.commitLocked(name, lock, value, log);
        } catch (err) {
          // The ref is unchanged and its lock still ours (commitLocked never lets it go on a
          // failure): nobody can move the branch under the acknowledged updates before the retry.
          h.log = [...log, ...h.log];
          throw err;
        }
        h.lock = undefined;
        if (!logged) h.log = [...log, ...h.log]; // the ref moved; its reflog lines go with the next publish
        h.onDisk = value;
        h.firstUnpublished = h.value === value ? Number.POSITIVE_INFINITY : through + 1;
        if (name.startsWith(HEADS)) this.bump(name.slice(HEADS.length));
        else this.generation++;
        if (!busy && h.inFlight === 0 && h.value === value) return;
        // Updates on top of the published value are in flight or acknowledged: hold the ref again.
        await this.relock(name, h, value);
      })();
      try {
        await h.publishing;
      } catch {
        // An I/O error: the lock is still held, the journal keeps the records (not marked
        // published) for a replay, and the publish is tried again.
        lowest = Math.min(lowest, h.firstUnpublished - 1);
        failed = true;
      } finally {
        h.publishing = undefined;
        const done = !h.lock && h.inFlight === 0 && h.value === h.onDisk;
        if ((h.lost || done) && this.held.get(name) === h) this.held.delete(name);
      }
    }
    for (const h of this.held.values())
      if (h.firstUnpublished !== Number.POSITIVE_INFINITY) lowest = Math.min(lowest, h.firstUnpublished - 1);
    journal.log.publishedThrough(lowest);
    if (failed) throw new StoreError('ERR_IO', 'publishing to the git directory failed; retrying');
    this.publishFailures = 0;
    if (later) this.schedulePublish();
  }

  async reflog(branch: string) {
    return this.refs.reflog(HEADS + branch);
  }

  // ---- watching ----

  /** Calls `listener` on every branch head change; returns the unsubscribe function. */
  onHeadChange(listener: HeadListener): () => void {
    this.listeners.add(listener);
    this.startWatching();
    return () => {
      this.listeners.delete(listener);
    };
  }

  private noteHead(branch: string, value: string | undefined): void {
    if (this.known.get(branch) === value) return;
    if (value === undefined) this.known.delete(branch);
    else this.known.set(branch, value);
    for (const l of [...this.listeners]) l(branch, value);
  }

  private rescanTimer: NodeJS.Timeout | undefined;
  /** A scan a little later (one that raced with our updates left `known` unconfirmed). */
  private rescanSoon(): void {
    if (this.rescanTimer || !this.poll) return;
    this.rescanTimer = setTimeout(() => {
      this.rescanTimer = undefined;
      if (this.poll) void this.rescan();
    }, 50);
    this.rescanTimer.unref();
  }

  private startWatching(): void {
    if (this.poll || !this.gitDir) return;
    const gitDir = this.gitDir;
    void this.rescan();
    // refs/heads and the git dir itself (packed-refs); never objects/, which changes on every
    // commit. Not recursive: Node's recursive watch on Linux re-lists the whole tree in JS on every
    // event. Branches below a "/" (refs/heads/a/b) are seen by the poll. Events come in bursts
    // (lock, write, rename) and our own updates cause them too: one rescan per burst.
    let pending: NodeJS.Timeout | undefined;
    const onEvent = () => {
      pending ??= setTimeout(() => {
        pending = undefined;
        void this.rescan();
      }, 50);
    };
    this.watchers = [];
    for (const dir of [join(gitDir, 'refs', 'heads'), gitDir]) {
      try {
        const w = watch(dir, { persistent: false }, onEvent);
        w.on('error', () => {});
        this.watchers.push(w);
      } catch {
        // The poll below still sees changes.
      }
    }
    this.poll = setInterval(() => void this.rescan(), this.pollMs);
    this.poll.unref();
  }

  private bump(branch: string): void {
    this.generation++;
    this.branchGenerations.set(branch, (this.branchGenerations.get(branch) ?? 0) + 1);
  }

  /** Re-reads every branch and reports differences (coalesced: at most one scan at a time). */
  rescan(): Promise<void> {
    if (this.scanning) {
      this.rescanWanted = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      do {
        this.rescanWanted = false;
        try {
          const gen = this.generation;
          const before = new Map(this.branchGenerations);
          const now = await this.branches();
          // Our own updates of a branch meanwhile: what was read of it may predate them (and
          // they reported themselves). The other branches' values stand. (Looking again at once
          // re-listed every ref about once per commit while commits kept coming.)
          const raced = gen !== this.generation;
          const stands = (b: string) =>
            !raced || (this.branchGenerations.get(b) ?? 0) === (before.get(b) ?? 0);
          for (const [b, h] of now) if (stands(b)) this.noteHead(b, h);
          for (const b of [...this.known.keys()]) if (!now.has(b) && stands(b)) this.noteHead(b, undefined);
          if (!raced) this.knownValid = this.poll !== undefined;
          else if (!this.knownValid) this.rescanSoon();
        } catch {
          // A half-written ref: the next event or poll tick will see it whole.
        }
      } while (this.rescanWanted);
    })().finally(() => {
      this.scanning = undefined;
    });
    return this.scanning;
  }
}

/**
 * A process killed mid-update leaves `*.lock` files (which would block every later update of that
 * ref) and half-written `tmp_obj_*` files. Git holds a lock for milliseconds, so ones older than
 * a second are leftovers.
 */
async function removeCrashLeftovers(gitDir: string): Promise<void> {
  const cutoff = Date.now() - 1000;
  const sweep = async (dir: string, match: (name: string) => boolean, depth: number): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory() && depth > 0) await sweep(path, match, depth - 1);
      else if (e.isFile() && match(e.name)) {
        const st = await stat(path).catch(() => undefined);
        if (st && st.mtimeMs < cutoff) await unlink(path).catch(() => {});
      }
    }
  };
  await sweep(join(gitDir, 'refs'), (n) => n.endsWith('.lock'), 8);
  await sweep(gitDir, (n) => n === 'packed-refs.lock', 0);
  await sweep(join(gitDir, 'objects'), (n) => /^tmp_(obj|pack|idx)_/.test(n), 1);
}

/**
 * Journals of servers that died (kill -9, power loss): writes the journaled objects git does not
 * have as one pack, moves each ref along its journaled updates from the value it has (an update
 * applies when the ref still has the value it had before), then makes it all durable and removes
 * the journals.
 */
async function replayJournals(gitDir: string): Promise<void> {
  const orphans = Journal.orphans(gitDir);
  if (orphans.length === 0) return;
  const records = orphans.flatMap((o) => o.records);
  const db = new GitObjectDb(gitDir, { fsync: false });
  try {
    const missing = new Map<string, JournalObject>();
    for (const rec of records)
      for (const stored of rec.objects) {
        let o: JournalObject = stored;
        if (stored.base) {
          // A delta against an object earlier in the journal or already in git.
          const base = missing.get(stored.base)?.data ?? (await db.read(stored.base))?.data;
          if (!base)
            throw new StoreError(
              'ERR_MISSING_OBJECT',
              `journal replay: delta base ${stored.base} is missing`,
            );
          o = { type: stored.type, data: applyDelta(base, stored.data) };
        }
        const hash = hashObject(o.type, o.data);
        if (!missing.has(hash) && !(await db.has(hash))) missing.set(hash, o);
      }
    if (missing.size > 0) await restorePack(gitDir, missing);
  } finally {
    await db.close();
  }
  const refs = new GitRefStore(gitDir, { fsync: false });
  const updates = new Map<string, JournalRefUpdate[]>();
  for (const rec of records)
    for (const r of rec.refs) {
      const list = updates.get(r.name) ?? [];
      list.push(r);
      updates.set(r.name, list);
    }
  for (const [name, list] of updates) await replayRef(gitDir, refs, name, list);
  await syncFileSystem(gitDir);
  for (const { path } of orphans) await unlink(path).catch(() => {});
}

async function restorePack(gitDir: string, objects: ReadonlyMap<string, JournalObject>): Promise<void> {
  const dir = join(gitDir, 'objects', 'pack');
  await mkdir(dir, { recursive: true });
  const { pack, idx, name } = encodePack([...objects].map(([hash, o]) => ({ hash, ...o })));
  for (const [ext, bytes] of [
    ['pack', pack],
    ['idx', idx],
  ] as const) {
    const tmp = join(dir, `tmp_${ext}_replay`);
    await unlink(tmp).catch(() => {});
    await writeFile(tmp, bytes, { mode: 0o444 });
    await rename(tmp, join(dir, `${name}.${ext}`));
  }
}

async function replayRef(
  gitDir: string,
  refs: GitRefStore,
  name: string,
  list: readonly JournalRefUpdate[],
): Promise<void> {
  let onDisk: string | undefined;
  let torn = false;
  try {
    onDisk = await refs.read(name);
  } catch {
    // Torn by a power loss: the journal knows better.
    torn = true;
    await unlink(join(gitDir, name)).catch(() => {});
    onDisk = await refs.read(name).catch(() => undefined);
  }
  let value = torn ? list[0]?.old : onDisk;
  const applied: JournalRefUpdate[] = [];
  for (const r of list) {
    if (r.old !== value) continue;
    value = r.new;
    applied.push(r);
  }
  if (applied.length === 0 || (value === onDisk && !torn)) return;
  const message = `${applied.at(-1)?.message ?? ''} (journal replay of ${applied.length})`;
  const who = {
    name: 'datakit',
    email: 'datakit@localhost',
    time: Math.floor(Date.now() / 1000),
    tz: '+0000',
  };
  // The dead server held the lock while its updates were not yet in the git directory.
  await unlink(join(gitDir, `${name}.lock`)).catch(() => {});
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await refs.update(name, value, onDisk, who, message);
      return;
    } catch (err) {
      // The lock of the server that died with this ref held.
      if (!(err instanceof StoreError) || err.code !== 'ERR_REF_LOCKED' || attempt > 0) throw err;
      await unlink(join(gitDir, `${name}.lock`)).catch(() => {});
    }
  }
}

/**
 * We fsync a pack before publishing it but not its .idx (which `git index-pack` can always
 * rebuild from the pack): after a power loss, rebuild any index that is missing or torn.
 */
async function repairPackIndexes(gitDir: string): Promise<void> {
  const dir = join(gitDir, 'objects', 'pack');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.endsWith('.pack')) continue;
    const idxPath = join(dir, `${name.slice(0, -5)}.idx`);
    let ok = false;
    try {
      const idx = await readFile(idxPath);
      const body = idx.subarray(0, idx.length - 20);
      ok =
        idx.length >= 1072 &&
        createHash('sha1')
          .update(body)
          .digest()
          .equals(idx.subarray(idx.length - 20));
    } catch {
      ok = false;
    }
    if (ok) continue;
    await unlink(idxPath).catch(() => {});
    await new Promise<void>((resolve) => {
      execFile('git', ['--git-dir', gitDir, 'index-pack', join(dir, name)], { timeout: 600_000 }, () =>
        resolve(),
      );
    });
  }
}

async function initGitDir(gitDir: string): Promise<void> {
  for (const d of ['objects/info', 'objects/pack', 'refs/heads', 'refs/tags', 'info'])
    await mkdir(join(gitDir, d), { recursive: true });
  await writeFile(join(gitDir, 'HEAD'), 'ref: refs/heads/master\n', { flag: 'wx' }).catch(() => {});
  await writeFile(
    join(gitDir, 'config'),
    '[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n',
    { flag: 'wx' },
  ).catch(() => {});
  await writeFile(join(gitDir, 'description'), 'DataKit store\n', { flag: 'wx' }).catch(() => {});
}
