import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { open, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { encodeTreeDelta } from './delta.js';
import { StoreError } from './errors.js';
import type { Journal, JournalObject } from './journal.js';
import { type ObjectType, type RawObject, hashObject, parseLooseObject } from './objects.js';
import { PackFile, PackIndex } from './pack.js';
import { type PackInput, encodePack } from './packwriter.js';

/** Content-addressed object storage. Objects are immutable, so readers may cache freely. */
export interface ObjectDb {
  read(hash: string): Promise<RawObject | undefined>;
  /**
   * Stores an object; `base` names a similar object written before (the previous version of
   * a tree), which a journal may store this one as a delta against. The bytes of a tree or a
   * commit must not change afterwards (they may be kept without a copy).
   */
  write(type: ObjectType, data: Uint8Array, base?: DeltaBase): Promise<string>;
  has(hash: string): Promise<boolean>;
  /** Makes every object written so far durable (no-op in memory). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** An object another one may be stored as a delta against. */
export interface DeltaBase {
  readonly hash: string;
  readonly data: Uint8Array;
  /** The delta from `data` to the object written, when the writer knows it (else it is computed). */
  readonly delta?: Uint8Array;
}

export class MemoryObjectDb implements ObjectDb {
  private readonly objects = new Map<string, RawObject>();

  async read(hash: string): Promise<RawObject | undefined> {
    return this.objects.get(hash);
  }
  async write(type: ObjectType, data: Uint8Array): Promise<string> {
    const hash = hashObject(type, data);
    if (!this.objects.has(hash)) this.objects.set(hash, { type, data: Uint8Array.from(data) });
    return hash;
  }
  async has(hash: string): Promise<boolean> {
    return this.objects.has(hash);
  }
  async sync(): Promise<void> {}
  async close(): Promise<void> {}
}

export interface GitObjectDbOptions {
  /** fsync new packs before `sync` resolves (default true). */
  fsync?: boolean;
  /** Consolidate packs (`git repack --geometric=2 -d`) once there are more than this many (default 64). */
  maxPacks?: number;
  /**
   * Write-ahead journal: a pack is durable once its journal record is, so the pack file itself
   * is written without waiting for the disk (a checkpoint syncs it later).
   */
  journal?: Journal;
}

/** Pending objects not yet in any journal record, taken for one. */
export interface StagedObjects {
  readonly objects: readonly JournalObject[];
  readonly bytes: number;
  /** The objects written after this sequence number and up to `upTo`. */
  readonly from: number;
  /** Every object written up to this sequence number is staged now. */
  readonly upTo: number;
}

/**
 * Loose objects and packs of a git directory (`.git` or a bare repository).
 *
 * New objects are held in memory until `sync()`, which writes everything pending as one pack and
 * its index (fsynced) before resolving: a group commit, so concurrent transactions share the
 * fsyncs. Nothing on disk refers to an object before its pack is durable, because refs are only
 * updated after `sync()`.
 */
export class GitObjectDb implements ObjectDb {
  /** Packs up to this size stay in memory once written (there are at most `maxPacks`). */
  private static readonly MEMORY_PACK_LIMIT = 256 << 10;
  private packs: PackFile[] = [];
  private packNames = new Set<string>();
  private readonly fsync: boolean;
  private readonly maxPacks: number;
  /** Objects not in the git directory yet; `delta` is the one computed for the journal, if any. */
  private readonly pending = new Map<
    string,
    RawObject & { seq: number; base?: DeltaBase; delta?: Uint8Array | null }
  >();
  private writeSeq = 0;
  private durableSeq = 0;
  /** With the journal: objects up to here are in a record (journaled or being journaled)... */
  private stagedSeq = 0;
  /** While staging: objects after this one are in the record being built. */
  private stagedSeqBefore = 0;
  /** Objects up to here may be in a record that failed (never durable). */
  private failedSeq = 0;
  /** ...up to here in a durable one... */
  private journaledSeq = 0;
  /** ...and up to here in the git directory. */
  private installedSeq = 0;
  private flushing: Promise<void> | undefined;
  private installing: Promise<void> | undefined;
  private repacking: Promise<void> | undefined;
  private packDirMade = false;
  private readonly journal: Journal | undefined;

  constructor(
    readonly gitDir: string,
    options: GitObjectDbOptions = {},
  ) {
    this.fsync = options.fsync ?? true;
    this.maxPacks = options.maxPacks ?? 64;
    this.journal = options.journal;
  }

  private loosePath(hash: string): string {
    return join(this.gitDir, 'objects', hash.slice(0, 2), hash.slice(2));
  }

  async has(hash: string): Promise<boolean> {
    return (await this.read(hash)) !== undefined;
  }

  /** Pending, then the packs we know (an in-memory index lookup), then loose, then newly appeared packs. */
  async read(hash: string): Promise<RawObject | undefined> {
    const p = this.pending.get(hash);
    if (p) return p;
    const packed = await this.readFromPacks(hash);
    if (packed) return packed;
    let compressed: Buffer | undefined;
    try {
      compressed = await readFile(this.loosePath(hash));
    } catch {
      compressed = undefined;
    }
    if (compressed) return parseLooseObject(inflateSync(compressed), hash);
    // A miss may mean `git gc` or a fetch just wrote a new pack.
    if (await this.rescanPacks()) return this.readFromPacks(hash);
    return undefined;
  }

  private async readFromPacks(hash: string): Promise<RawObject | undefined> {
    const key = Buffer.from(hash, 'hex');
    for (const pack of this.packs) {
      const offset = pack.index.findKey(key);
      if (offset >= 0) return pack.readAt(offset, (h) => this.read(h));
    }
    return undefined;
  }

  /** Opens packs not seen before and drops ones that are gone (repacked); true when any was added. */
  private async rescanPacks(): Promise<boolean> {
    const dir = join(this.gitDir, 'objects', 'pack');
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return false;
    }
    const present = new Set(names);
    for (const pack of [...this.packs]) {
      const idxName = basename(pack.index.path);
      // The listing may predate a pack we installed while it was read: look again before dropping.
      if (present.has(idxName) || existsSync(pack.index.path)) continue;
      this.packs = this.packs.filter((p) => p !== pack);
      this.packNames.delete(idxName);
      // A read may still be using it: close a little later.
      setTimeout(() => void pack.close().catch(() => {}), 5000).unref();
    }
    let added = false;
    for (const name of names) {
      if (!name.endsWith('.idx') || this.packNames.has(name)) continue;
      const packPath = join(dir, `${name.slice(0, -4)}.pack`);
      try {
        const index = new PackIndex(await readFile(join(dir, name)), join(dir, name));
        this.packs.push(await PackFile.open(packPath, index));
        this.packNames.add(name);
        added = true;
      } catch (err) {
        if (err instanceof StoreError) throw err;
        // The .pack may not be in place yet (git writes .idx last, but be tolerant).
      }
    }
    return added;
  }

  async write(type: ObjectType, data: Uint8Array, base?: DeltaBase): Promise<string> {
    const hash = hashObject(type, data);
    if (this.pending.has(hash)) return hash;
    const key = Buffer.from(hash, 'hex');
    // Only the newest packs: a duplicate in a new pack is harmless (git keeps one), and looking
    // each new object up in hundreds of small packs cost more than it saved.
    for (let i = 0; i < Math.min(this.packs.length, 8); i++)
      if ((this.packs[i] as PackFile).index.findKey(key) >= 0) return hash;
    this.pending.set(hash, {
      type,
      // Trees and commits are the store's own fresh encodings (a tree of a big directory is tens
      // of KB per commit): kept as they are. Blob contents may be a caller's buffer: copied.
      data: type === 'blob' ? Uint8Array.from(data) : data,
      seq: ++this.writeSeq,
      ...(base && base.hash !== hash ? { base } : {}),
    });
    return hash;
  }

  /** Resolves once every object written before the call is durable (in a journal record or a synced pack). */
  async sync(): Promise<void> {
    const target = this.writeSeq;
    while (this.durableSeq < target) {
      if (!this.flushing) {
        this.flushing = this.flush().finally(() => {
          this.flushing = undefined;
        });
      }
      await this.flushing;
    }
  }

  private async flush(): Promise<void> {
    const upTo = this.writeSeq;
    const journal = this.journal;
    const staged = journal ? this.stage() : undefined;
    if (journal && staged && staged.bytes <= journal.maxRecordBytes) {
      await journal.append(
        { objects: staged.objects, refs: [] },
        () => this.markJournaled(staged.upTo),
        () => this.markFailed(staged),
      );
      await this.installJournaled();
    } else await this.installDurably(upTo);
    this.durableSeq = Math.max(this.durableSeq, upTo);
  }

  /**
   * Takes every pending object not yet in a journal record, for the caller's record (which must
   * be appended at once, so records hold objects in write order); undefined when there is none.
   */
  stage(): StagedObjects | undefined {
    const from = this.stagedSeq;
    const upTo = this.writeSeq;
    if (upTo === from) return undefined;
    this.stagedSeq = upTo;
    this.stagedSeqBefore = from;
    const objects: JournalObject[] = [];
    let bytes = 0;
    for (const o of this.pending.values()) {
      if (o.seq <= from || o.seq > upTo) continue;
      const delta =
        o.base && this.replayable(o.base.hash, o.seq)
          ? (o.base.delta ?? encodeTreeDelta(o.base.data, o.data))
          : undefined;
      o.delta = delta ?? null;
      if (delta && o.base) {
        objects.push({ type: o.type, data: delta, base: o.base.hash });
        bytes += delta.length + 25;
      } else {
        objects.push({ type: o.type, data: o.data });
        bytes += o.data.length + 5;
      }
    }
    return { objects, bytes, from, upTo };
  }

  /**
   * Will a replay of the record holding object number `seq` find `base`: in the git directory
   * (not pending) or earlier in the journal (durable, or earlier in the same record)?
   */
  private replayable(base: string, seq: number): boolean {
    const p = this.pending.get(base);
    if (!p) return true;
    // Records are written and replayed in the order they are staged, and a record that fails
    // fails every one queued after it: a base in an earlier record that has not failed (durable,
    // or still queued ahead of this one) is there when this one is.
    return (
      p.seq <= this.journaledSeq ||
      (p.seq <= this.stagedSeqBefore && p.seq > this.failedSeq) ||
      (p.seq > this.stagedSeqBefore && p.seq < seq)
    );
  }

  /**
   * The record holding these objects failed: none of them is in the journal, so the next record
   * takes them again. (A later write of the same object finds it pending and adds nothing: had it
   * stayed out of every record, a commit acknowledged after that one would lack it after a crash.)
   */
  markFailed(staged: StagedObjects): void {
    if (staged.upTo > this.failedSeq) this.failedSeq = staged.upTo;
    if (staged.from < this.stagedSeq) this.stagedSeq = staged.from;
  }

  /** The record holding objects up to `upTo` is durable (records become durable in order). */
  markJournaled(upTo: number): void {
    if (upTo > this.journaledSeq) this.journaledSeq = upTo;
    if (upTo > this.durableSeq) this.durableSeq = upTo;
  }

  /** Would a record of these objects fit in the journal (else `installDurably`)? */
  fitsJournal(staged: StagedObjects): boolean {
    return this.journal !== undefined && staged.bytes <= this.journal.maxRecordBytes;
  }

  /** Objects up to this sequence number are readable by git. */
  get installed(): number {
    return this.installedSeq;
  }

  /**
   * Writes every journaled object not yet in the git directory as one pack: plain writes and
   * renames (the page cache is enough for readers; the journal or a checkpoint covers the disk).
   */
  installJournaled(): Promise<void> {
    const run = async (): Promise<void> => {
      await this.installing;
      const upTo = this.journaledSeq;
      if (upTo <= this.installedSeq) return;
      await this.installPack(upTo, false);
      this.installedSeq = Math.max(this.installedSeq, upTo);
    };
    const p = run();
    this.installing = p.catch(() => {});
    return p;
  }

  /** Without a journal (or too big for it): the objects up to `upTo` as a pack fsynced before it is published. */
  async installDurably(upTo: number): Promise<void> {
    await this.installPack(upTo, this.fsync);
  }

  private async installPack(upTo: number, durably: boolean): Promise<void> {
    const batch: Array<PackInput & { seq: number }> = [];
    for (const [hash, o] of this.pending) {
      if (o.seq > upTo) continue;
      // Against the previous version when the pack holds it (encodePack checks): packs of many
      // commits of a big directory stay small.
      // (null: computed for the journal, and not worth it.)
      const delta =
        o.base && o.delta !== null
          ? (o.delta ?? o.base.delta ?? encodeTreeDelta(o.base.data, o.data))
          : undefined;
      batch.push({
        hash,
        type: o.type,
        data: o.data,
        seq: o.seq,
        ...(delta && o.base ? { delta: { base: o.base.hash, data: delta } } : {}),
      });
    }
    if (batch.length === 0) return;
    const { pack, idx, name } = encodePack(batch);
    const dir = this.packDir();
    if (!this.packNames.has(`${name}.idx`)) {
      const tag = randomBytes(6).toString('hex');
      const tmpPack = join(dir, `tmp_pack_${tag}`);
      const tmpIdx = join(dir, `tmp_idx_${tag}`);
      // In the thread pool: file creation and rename wait for the file system's journal when the
      // disk is busy, and the event loop keeps serving meanwhile.
      await Promise.all([this.writeFile(tmpPack, pack, durably), this.writeFile(tmpIdx, idx, false)]);
      // Like git: the .pack first, then the .idx that makes it visible. (The index is derived
      // data: Repository.open rebuilds a torn one with `git index-pack`.)
      await rename(tmpPack, join(dir, `${name}.pack`));
      await rename(tmpIdx, join(dir, `${name}.idx`));
      if (!this.packNames.has(`${name}.idx`)) {
        if (pack.length <= GitObjectDb.MEMORY_PACK_LIMIT) {
          // Served from memory: no open, stat or reads of the file just written.
          this.packs.unshift(PackFile.fromBytes(pack, new PackIndex(idx, join(dir, `${name}.idx`))));
          this.packNames.add(`${name}.idx`);
        } else await this.register(name, idx);
      }
    }
    // The objects are now in a pack: drop them from pending (unless rewritten since).
    for (const o of batch) if (this.pending.get(o.hash)?.seq === o.seq) this.pending.delete(o.hash);
    if (this.packs.length > this.maxPacks && !this.repacking) this.repacking = this.repack();
  }

  private packDir(): string {
    const dir = join(this.gitDir, 'objects', 'pack');
    if (!this.packDirMade) {
      mkdirSync(dir, { recursive: true });
      this.packDirMade = true;
    }
    return dir;
  }

  private async register(name: string, idx: Uint8Array): Promise<void> {
    const dir = this.packDir();
    const index = new PackIndex(idx, join(dir, `${name}.idx`));
    const file = await PackFile.open(join(dir, `${name}.pack`), index);
    if (this.packNames.has(`${name}.idx`)) {
      await file.close();
      return;
    }
    this.packs.unshift(file);
    this.packNames.add(`${name}.idx`);
  }

  private async writeFile(path: string, bytes: Uint8Array, fsync: boolean): Promise<void> {
    const fh = await open(path, 'wx', 0o444);
    try {
      await fh.writeFile(bytes);
      if (fsync) await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** Many small packs slow lookups and hold file descriptors: let git merge them in the background. */
  private async repack(): Promise<void> {
    await new Promise<void>((resolve) => {
      execFile(
        'git',
        ['--git-dir', this.gitDir, 'repack', '-q', '-d', '--geometric=2'],
        { timeout: 300_000 },
        () => resolve(),
      );
    });
    await this.rescanPacks().catch(() => false);
    this.repacking = undefined;
  }

  async close(): Promise<void> {
    await this.sync().catch(() => {});
    await this.repacking;
    for (const p of this.packs) await p.close();
    this.packs = [];
    this.packNames.clear();
  }
}
