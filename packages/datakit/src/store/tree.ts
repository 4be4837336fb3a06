import { type DeltaRun, deltaOfRuns } from './delta.js';
import { StoreError } from './errors.js';
import {
  EMPTY_TREE,
  type EncodedTreeEntry,
  type TreeEntry,
  TreeMode,
  compareKeys,
  encodeTree,
  encodeTreeEntry,
  hashObject,
  inTreeOrder,
  joinTreeEntries,
  parseTree,
} from './objects.js';
import type { DeltaBase, ObjectDb } from './odb.js';

/**
 * How a file is stored: a git tree mode, as DataKit names it. 'gitlink' is a submodule entry
 * (a commit of another repository): kept as it is, shown as an empty read-only file.
 */
export type Perm = 'normal' | 'exec' | 'link' | 'gitlink';

/**
 * Immutable tree values. A value loaded from git carries its `hash` and loads lazily; a value
 * built in memory carries `data`/`entries` and gets a hash when written. Updates copy the path
 * from the root down, so a snapshot taken before an update never changes.
 */
export interface FileValue {
  readonly kind: 'file';
  readonly perm: Perm;
  readonly hash?: string;
  readonly data?: Uint8Array;
  /** @internal Its tree entry, encoded when the value was made (a big directory re-encodes nothing). */
  readonly encoded?: NamedTreeEntry;
}

export interface DirValue {
  readonly kind: 'dir';
  readonly hash?: string;
  readonly entries?: ReadonlyMap<string, TreeValue>;
  /** @internal As FileValue's. */
  readonly encoded?: NamedTreeEntry;
}

/** A tree entry encoded for the name it had. */
export interface NamedTreeEntry extends EncodedTreeEntry {
  readonly name: string;
  readonly mode: number;
}

function named(entry: TreeEntry): NamedTreeEntry {
  return { ...encodeTreeEntry(entry), name: entry.name, mode: entry.mode };
}

export type TreeValue = FileValue | DirValue;

type Entries = ReadonlyMap<string, TreeValue>;

/** A directory's entries being made from another's: set and delete until it is handed out. */
export interface EntriesDraft extends ReadonlyMap<string, TreeValue> {
  set(name: string, value: TreeValue): this;
  delete(name: string): boolean;
}

/** Directories smaller than this are copied outright. */
const OVERLAY_MIN_BASE = 64;
/**
 * Changes an overlay carries before the next derivation copies it into a plain map: each
 * derivation copies the changes, and every this many a copy of all entries (about √(2n) is best
 * for n entries; directories of a few hundred to a few thousand).
 */
const OVERLAY_MAX_CHANGES = 32;

function copyMap<K, V>(from: ReadonlyMap<K, V>): Map<K, V> {
  // forEach: `new Map(map)` goes through the iterator protocol, an entry array per element.
  const out = new Map<K, V>();
  from.forEach((value, key) => out.set(key, value));
  return out;
}

/**
 * Entries as a few changes over a base map that is never modified: a change to a big directory
 * (a commit adds a name to it) costs a copy of the changes, not of every entry — copying a
 * 1,000-entry map took 30 µs and 100 KB of garbage per change. Iteration (listings, whole-tree
 * writes: not on a commit's path) goes through a plain map made on first use.
 */
class OverlayEntries implements EntriesDraft {
  private flat: Map<string, TreeValue> | undefined;
  constructor(
    readonly base: Entries,
    /** undefined: deleted. */
    readonly changes: Map<string, TreeValue | undefined>,
    public size: number,
  ) {}

  get(name: string): TreeValue | undefined {
    const changed = this.changes.get(name);
    if (changed !== undefined || this.changes.has(name)) return changed;
    return this.base.get(name);
  }

  has(name: string): boolean {
    if (this.changes.get(name) !== undefined) return true;
    return !this.changes.has(name) && this.base.has(name);
  }

  set(name: string, value: TreeValue): this {
    if (!this.has(name)) this.size++;
    this.changes.set(name, value);
    this.flat?.set(name, value);
    return this;
  }

  delete(name: string): boolean {
    if (!this.has(name)) return false;
    this.size--;
    if (this.base.has(name)) this.changes.set(name, undefined);
    else this.changes.delete(name);
    this.flat?.delete(name);
    return true;
  }

  /** A plain map of the same entries (base order, then the names added). */
  copy(): Map<string, TreeValue> {
    const out = new Map<string, TreeValue>();
    this.base.forEach((value, name) => {
      const changed = this.changes.get(name);
      if (changed !== undefined) out.set(name, changed);
      else if (!this.changes.has(name)) out.set(name, value);
    });
    this.changes.forEach((value, name) => {
      if (value !== undefined && !out.has(name)) out.set(name, value);
    });
    return out;
  }

  /** A plain map of the same entries, made once (kept up to date by `set` and `delete`). */
  plain(): Map<string, TreeValue> {
    this.flat ??= this.copy();
    return this.flat;
  }

  forEach(fn: (value: TreeValue, name: string, map: Entries) => void, thisArg?: unknown): void {
    this.plain().forEach((value, name) => fn.call(thisArg, value, name, this));
  }
  entries(): MapIterator<[string, TreeValue]> {
    return this.plain().entries();
  }
  keys(): MapIterator<string> {
    return this.plain().keys();
  }
  values(): MapIterator<TreeValue> {
    return this.plain().values();
  }
  [Symbol.iterator](): MapIterator<[string, TreeValue]> {
    return this.plain().entries();
  }
}

/** A draft of `from`'s entries to change (`from` itself is left as it is). */
export function deriveEntries(from: Entries): EntriesDraft {
  if (from instanceof OverlayEntries) {
    if (from.changes.size < OVERLAY_MAX_CHANGES)
      return new OverlayEntries(from.base, copyMap(from.changes), from.size);
    // Flattened once, however many drafts are made from it (concurrent transactions start from
    // the same head). Its flat map changes afterwards only where `from` is written (the same
    // values, encoded), so it serves as their base.
    return new OverlayEntries(from.plain(), new Map(), from.size);
  }
  if (from.size < OVERLAY_MIN_BASE) return copyMap(from);
  return new OverlayEntries(from, new Map(), from.size);
}

/** A written tree's encoding, kept so that the directory's next version is spliced, not rebuilt. */
interface EncodedDir {
  readonly hash: string;
  readonly data: Uint8Array;
  /** Sort keys of its entries, in git order. */
  readonly keys: readonly string[];
  /** Where each entry starts in `data`, then `data.length` (keys.length + 1 values). */
  readonly offsets: Uint32Array;
}

/** Edits that a splice applies at most; past that, a directory is encoded whole. */
const MAX_SPLICED_CHANGES = 64;

export const emptyDir: DirValue = { kind: 'dir', entries: new Map() };

export function dirOfHash(hash: string): DirValue {
  return { kind: 'dir', hash };
}

export function fileOfBytes(data: Uint8Array, perm: Perm = 'normal'): FileValue {
  return { kind: 'file', perm, data };
}

function permOfMode(mode: number): Perm | undefined {
  if (mode === TreeMode.LINK) return 'link';
  if (mode === TreeMode.GITLINK) return 'gitlink';
  if ((mode & 0o170000) === 0o100000) return mode & 0o111 ? 'exec' : 'normal';
  return undefined;
}

export function modeOfPerm(perm: Perm): number {
  if (perm === 'gitlink') return TreeMode.GITLINK;
  return perm === 'exec' ? TreeMode.EXEC : perm === 'link' ? TreeMode.LINK : TreeMode.FILE;
}

/** Reads and writes tree values through an object database, with a bounded cache of parsed trees. */
export class TreeStore {
  private readonly treeCache = new Map<string, ReadonlyMap<string, TreeValue>>();
  private treeCacheEntries = 0;
  private static readonly TREE_CACHE_ENTRIES = 1 << 17;
  /** Recently read blobs (immutable), bounded by total bytes. */
  private readonly blobCache = new Map<string, Uint8Array>();
  private blobCacheBytes = 0;
  private static readonly BLOB_CACHE_LIMIT = 64 << 20;

  constructor(readonly db: ObjectDb) {}

  async entries(dir: DirValue): Promise<ReadonlyMap<string, TreeValue>> {
    if (dir.entries) return dir.entries;
    const hash = dir.hash ?? EMPTY_TREE;
    const cached = this.treeCache.get(hash);
    if (cached) return cached;
    let out: Map<string, TreeValue>;
    if (hash === EMPTY_TREE) out = new Map();
    else {
      const obj = await this.db.read(hash);
      if (!obj || obj.type !== 'tree') throw new StoreError('ERR_MISSING_OBJECT', `tree ${hash} is missing`);
      out = new Map();
      const parsed = parseTree(obj.data, hash);
      const keys: string[] = new Array(parsed.length);
      const offsets = new Uint32Array(parsed.length + 1);
      let at = 0;
      let spliceable = true;
      for (let i = 0; i < parsed.length; i++) {
        const e = parsed[i] as TreeEntry;
        const encoded = named(e);
        keys[i] = encoded.key;
        offsets[i] = at;
        at += encoded.bytes.length;
        if (e.mode === TreeMode.DIR) out.set(e.name, { kind: 'dir', hash: e.hash, encoded });
        else {
          const perm = permOfMode(e.mode);
          if (perm) out.set(e.name, { kind: 'file', perm, hash: e.hash, encoded });
          else spliceable = false; // an entry we do not keep: write such a tree whole
        }
      }
      offsets[parsed.length] = at;
      if (spliceable && at === obj.data.length)
        this.keepEncoding(out, { hash, data: obj.data, keys, offsets });
    }
    this.remember(hash, out);
    return out;
  }

  async data(file: FileValue): Promise<Uint8Array> {
    if (file.data) return file.data;
    if (!file.hash || file.perm === 'gitlink') return new Uint8Array(0);
    const cached = this.blobCache.get(file.hash);
    if (cached) return cached;
    const obj = await this.db.read(file.hash);
    if (!obj || obj.type !== 'blob')
      throw new StoreError('ERR_MISSING_OBJECT', `blob ${file.hash} is missing`);
    // ro/ reads ask for the same blob once per Tread: keep recent ones (immutable) by hash.
    if (obj.data.length <= TreeStore.BLOB_CACHE_LIMIT / 8) {
      this.blobCache.set(file.hash, obj.data);
      this.blobCacheBytes += obj.data.length;
      for (const [hash, data] of this.blobCache) {
        if (this.blobCacheBytes <= TreeStore.BLOB_CACHE_LIMIT) break;
        this.blobCache.delete(hash);
        this.blobCacheBytes -= data.length;
      }
    }
    return obj.data;
  }

  async find(root: DirValue, path: readonly string[]): Promise<TreeValue | undefined> {
    let node: TreeValue = root;
    for (const step of path) {
      if (node.kind !== 'dir') return undefined;
      const next: TreeValue | undefined = (await this.entries(node)).get(step);
      if (!next) return undefined;
      node = next;
    }
    return node;
  }

  /**
   * `root` with `path` set to `value` (undefined removes it). Missing parents are created; a file in
   * the way of a parent is an error unless `force` (then it is replaced by a directory).
   */
  async update(
    root: DirValue,
    path: readonly string[],
    value: TreeValue | undefined,
    force = false,
  ): Promise<DirValue> {
    const [step, ...rest] = path;
    if (step === undefined) {
      if (value?.kind === 'dir') return value;
      throw new StoreError('ERR_BAD_OBJECT', 'cannot replace the root with a file');
    }
    const from = await this.entries(root);
    const entries = deriveEntries(from);
    this.noteChanges(entries, from, [step]);
    if (rest.length === 0) {
      if (value === undefined) {
        if (!entries.has(step)) return root;
        entries.delete(step);
      } else entries.set(step, value);
      return { kind: 'dir', entries };
    }
    const child = entries.get(step);
    let childDir: DirValue;
    if (child === undefined) {
      if (value === undefined) return root;
      childDir = emptyDir;
    } else if (child.kind === 'file') {
      if (!force) throw new NotADirectory(step);
      childDir = emptyDir;
    } else childDir = child;
    entries.set(step, await this.update(childDir, rest, value, force));
    return { kind: 'dir', entries };
  }

  fileHash(file: FileValue): string {
    return file.hash ?? hashObject('blob', file.data ?? new Uint8Array(0));
  }

  /** The tree last written at each path (a few): the next version there is stored as a delta. */
  private readonly lastWritten = new Map<string, DeltaBase>();

  /** Writes every unwritten blob and tree; returns the tree hash. Empty subdirectories vanish, as in git. */
  async write(dir: DirValue, path = ''): Promise<string> {
    if (dir.hash && !dir.entries) return dir.hash;
    const all = await this.entries(dir);
    const spliced = await this.writeSpliced(all, path);
    if (spliced !== undefined) return spliced;
    // Each entry as the value reading the written tree back would give, carrying its encoding.
    const rows: Array<TreeValue & { readonly encoded: NamedTreeEntry }> = [];
    for (const [name, value] of all) {
      const known = value.encoded;
      if (value.kind === 'file') {
        const mode = modeOfPerm(value.perm);
        if (value.hash && known !== undefined && known.name === name && known.mode === mode)
          rows.push(value as FileValue & { encoded: NamedTreeEntry });
        else {
          const hash = value.hash ?? (await this.db.write('blob', value.data ?? new Uint8Array(0)));
          rows.push({ kind: 'file', perm: value.perm, hash, encoded: named({ name, mode, hash }) });
        }
      } else {
        const hash = await this.write(value, `${path}/${name}`);
        if (hash === EMPTY_TREE) continue;
        if (value.hash === hash && !value.entries && known !== undefined && known.name === name)
          rows.push(value as DirValue & { encoded: NamedTreeEntry });
        else rows.push({ kind: 'dir', hash, encoded: named({ name, mode: TreeMode.DIR, hash }) });
      }
    }
    const ordered = inTreeOrder(rows);
    // In git's order: the next transaction starts from it, and its new names are the only ones
    // out of order.
    const loaded = new Map<string, TreeValue>();
    const items: NamedTreeEntry[] = [];
    const keys: string[] = new Array(ordered.length);
    const offsets = new Uint32Array(ordered.length + 1);
    let at = 0;
    for (let i = 0; i < ordered.length; i++) {
      const row = ordered[i] as TreeValue & { readonly encoded: NamedTreeEntry };
      loaded.set(row.encoded.name, row);
      items.push(row.encoded);
      keys[i] = row.encoded.key;
      offsets[i] = at;
      at += row.encoded.bytes.length;
    }
    offsets[ordered.length] = at;
    const data = joinTreeEntries(items);
    const hash = await this.storeTree(data, path);
    this.remember(hash, loaded);
    this.keepEncoding(loaded, { hash, data, keys, offsets });
    return hash;
  }

  /** Writes a tree object; `spliced`: the runs that made it from tree `from` (its delta against that tree). */
  private async storeTree(
    data: Uint8Array,
    path: string,
    spliced?: { from: EncodedDir; runs: readonly DeltaRun[] },
  ): Promise<string> {
    let base = this.lastWritten.get(path);
    if (spliced) {
      // Against the tree it was spliced from (the previous version here, or the side a merge
      // kept): the delta is the splice itself.
      const { from, runs } = spliced;
      const delta = deltaOfRuns(from.data.length, data.length, runs);
      if (delta) base = { hash: from.hash, data: from.data, delta };
    }
    const hash = await this.db.write('tree', data, base);
    this.lastWritten.delete(path);
    if (this.lastWritten.size >= 256) {
      const oldest = this.lastWritten.keys().next().value;
      if (oldest !== undefined) this.lastWritten.delete(oldest);
    }
    this.lastWritten.set(path, { hash, data });
    return hash;
  }

  /** Encodings of recently written (or read) directories, by their entries map (a few: they are big). */
  private readonly encodings = new Map<Entries, EncodedDir>();
  /** A written (spliced) entries map: the tree it was spliced from, and the names that differ. */
  private readonly writtenFrom = new WeakMap<Entries, { fromHash: string; changed: readonly string[] }>();

  /**
   * @internal The names whose entries may differ between `entries` (a tree's map) and the tree
   * `baseHash`, when `entries` descends from it by a few splices (any other name has the same
   * contents in both); undefined when that is not known cheaply.
   */
  changedSince(entries: Entries, baseHash: string): ReadonlySet<string> | undefined {
    const names = new Set<string>();
    let map: Entries | undefined = entries;
    for (let depth = 0; depth < 64 && map; depth++) {
      const w = this.writtenFrom.get(map);
      if (!w) return undefined;
      for (const name of w.changed) names.add(name);
      if (names.size > MAX_SPLICED_CHANGES) return undefined;
      if (w.fromHash === baseHash) return names;
      map = this.treeCache.get(w.fromHash);
    }
    return undefined;
  }

  /** How an entries map was made: `from` with the names `changed` set or deleted. */
  private readonly derivations = new WeakMap<Entries, { from: Entries; changed: readonly string[] }>();

  private keepEncoding(entries: Entries, encoded: EncodedDir): void {
    this.encodings.delete(entries);
    if (this.encodings.size >= 64) {
      const oldest = this.encodings.keys().next().value;
      if (oldest !== undefined) this.encodings.delete(oldest);
    }
    this.encodings.set(entries, encoded);
  }

  /**
   * @internal Records that `entries` is `from` with the values of the `changed` names set or
   * deleted (and nothing else), so writing it splices those few entries into `from`'s encoding.
   */
  noteChanges(entries: Entries, from: Entries, changed: readonly string[]): void {
    if (entries !== from) this.derivations.set(entries, { from, changed });
  }

  /**
   * Writes a directory derived by a few changes from one written recently: the changed entries
   * are encoded and spliced into the old tree's bytes (one copy, no per-entry work for the rest,
   * which is what made a commit into a big directory cost O(entries) in JS). Undefined when the
   * directory is not such a one.
   */
  private async writeSpliced(entries: Entries, path: string): Promise<string | undefined> {
    const changed = new Set<string>();
    let from = entries;
    let base: EncodedDir | undefined;
    for (let depth = 0; depth < 64; depth++) {
      base = this.encodings.get(from);
      if (base) break;
      const d = this.derivations.get(from);
      if (!d) return undefined;
      for (const name of d.changed) changed.add(name);
      if (changed.size > MAX_SPLICED_CHANGES) return undefined;
      from = d.from;
    }
    if (!base) return undefined;
    if (changed.size === 0) return base.hash;
    // The changed entries, encoded (blobs and subtrees written), and where they were.
    const removed: number[] = [];
    const added: Array<{ value: TreeValue & { readonly encoded: NamedTreeEntry }; at: number }> = [];
    for (const name of changed) {
      const old = findEntry(base.keys, name);
      if (old >= 0) removed.push(old);
      const value = entries.get(name);
      if (value === undefined) continue;
      let row: TreeValue & { readonly encoded: NamedTreeEntry };
      if (value.kind === 'file') {
        const mode = modeOfPerm(value.perm);
        const known = value.encoded;
        if (value.hash && known !== undefined && known.name === name && known.mode === mode)
          row = value as FileValue & { encoded: NamedTreeEntry };
        else {
          const hash = value.hash ?? (await this.db.write('blob', value.data ?? new Uint8Array(0)));
          row = { kind: 'file', perm: value.perm, hash, encoded: named({ name, mode, hash }) };
        }
      } else {
        const hash = await this.write(value, `${path}/${name}`);
        if (hash === EMPTY_TREE) continue;
        const known = value.encoded;
        row =
          value.hash === hash && !value.entries && known !== undefined && known.name === name
            ? (value as DirValue & { encoded: NamedTreeEntry })
            : { kind: 'dir', hash, encoded: named({ name, mode: TreeMode.DIR, hash }) };
      }
      added.push({ value: row, at: lowerBound(base.keys, row.encoded.key) });
    }
    removed.sort((a, b) => a - b);
    added.sort((a, b) => compareKeys(a.value.encoded.key, b.value.encoded.key));
    const { keys, offsets, data, runs } = splice(
      base,
      removed,
      added.map(({ value, at }) => ({ entry: value.encoded, at })),
    );
    const hash = await this.storeTree(data, path, { from: base, runs });
    // Reading the tree back gives these values: the written ones replace the changed names
    // (same contents, now with their hash and encoding), so the map serves as the tree's.
    // An empty directory left out of the tree stays in the map (a working tree keeps it): then
    // the map is not the tree's.
    if (changed.size !== added.length + countMissing(entries, changed)) return hash;
    const written = entries as EntriesDraft;
    for (const { value } of added) written.set(value.encoded.name, value);
    this.derivations.delete(entries);
    this.writtenFrom.set(entries, { fromHash: base.hash, changed: [...changed] });
    this.remember(hash, entries);
    this.keepEncoding(entries, { hash, data, keys, offsets });
    return hash;
  }

  /**
   * Parsed trees are kept up to a number of trees and of entries in all: every commit into a
   * big directory adds a version of it, and a heap of old versions made each garbage
   * collection slower (the major ones mark it all).
   */
  private remember(hash: string, entries: ReadonlyMap<string, TreeValue>): void {
    if (this.treeCache.has(hash)) return;
    while (
      this.treeCache.size > 0 &&
      (this.treeCache.size >= 4096 || this.treeCacheEntries + entries.size > TreeStore.TREE_CACHE_ENTRIES)
    ) {
      const [oldest, dropped] = this.treeCache.entries().next().value as [string, Entries];
      this.treeCache.delete(oldest);
      this.treeCacheEntries -= dropped.size;
    }
    this.treeCache.set(hash, entries);
    this.treeCacheEntries += entries.size;
  }

  /** The tree hash `write` would produce, without writing. */
  async hash(dir: DirValue): Promise<string> {
    if (dir.hash && !dir.entries) return dir.hash;
    const entries: TreeEntry[] = [];
    for (const [name, value] of await this.entries(dir)) {
      if (value.kind === 'file')
        entries.push({ name, mode: modeOfPerm(value.perm), hash: this.fileHash(value) });
      else {
        const hash = await this.hash(value);
        if (hash !== EMPTY_TREE) entries.push({ name, mode: TreeMode.DIR, hash });
      }
    }
    return hashObject('tree', encodeTree(entries));
  }

  async sameValue(a: TreeValue | undefined, b: TreeValue | undefined): Promise<boolean> {
    if (a === b) return true;
    if (!a || !b || a.kind !== b.kind) return false;
    if (a.kind === 'file' && b.kind === 'file')
      return a.perm === b.perm && this.fileHash(a) === this.fileHash(b);
    return (await this.hash(a as DirValue)) === (await this.hash(b as DirValue));
  }

  /** Changed file paths from `a` to `b`: "+" added, "-" removed, "*" updated; sorted by path. */
  async diff(a: DirValue, b: DirValue): Promise<Array<{ op: '+' | '-' | '*'; path: string }>> {
    const out: Array<{ op: '+' | '-' | '*'; path: string }> = [];
    const walk = async (
      x: TreeValue | undefined,
      y: TreeValue | undefined,
      prefix: string,
    ): Promise<void> => {
      if (await this.sameValue(x, y)) return;
      if (x?.kind === 'file' && y?.kind === 'file') {
        out.push({ op: '*', path: prefix });
        return;
      }
      if (x?.kind === 'file') out.push({ op: '-', path: prefix });
      if (y?.kind === 'file') out.push({ op: '+', path: prefix });
      const xe = x?.kind === 'dir' ? await this.entries(x) : new Map<string, TreeValue>();
      const ye = y?.kind === 'dir' ? await this.entries(y) : new Map<string, TreeValue>();
      const names = new Set([...xe.keys(), ...ye.keys()]);
      for (const name of names)
        await walk(xe.get(name), ye.get(name), prefix === '' ? name : `${prefix}/${name}`);
    };
    await walk(a, b, '');
    return out.sort((p, q) => (p.path < q.path ? -1 : p.path > q.path ? 1 : 0));
  }
}

/**
 * `base` with the entries at the indexes `removed` taken out and `added` put in before the
 * indexes `at` (both sorted): the runs of old entries between the edits are copied, in order.
 * Synchronous and apart from `writeSpliced`: its loop over every entry would otherwise have V8
 * optimize the whole async function (a costly compile in a short-lived server).
 */
function splice(
  base: EncodedDir,
  removed: readonly number[],
  added: ReadonlyArray<{ readonly entry: NamedTreeEntry; readonly at: number }>,
): { keys: string[]; offsets: Uint32Array; data: Uint8Array; runs: DeltaRun[] } {
  const count = base.keys.length - removed.length + added.length;
  const keys: string[] = new Array(count);
  const offsets = new Uint32Array(count + 1);
  const chunks: Uint8Array[] = [];
  const runs: DeltaRun[] = [];
  let out = 0;
  let size = 0;
  let next = 0; // the next old entry to copy
  const copyUpTo = (end: number) => {
    if (end <= next) return;
    const start = base.offsets[next] as number;
    chunks.push(base.data.subarray(start, base.offsets[end]));
    runs.push({ copyFrom: start, size: (base.offsets[end] as number) - start });
    for (let i = next; i < end; i++) {
      keys[out] = base.keys[i] as string;
      offsets[out++] = (base.offsets[i] as number) - start + size;
    }
    size += (base.offsets[end] as number) - start;
    next = end;
  };
  let r = 0;
  let a = 0;
  while (r < removed.length || a < added.length) {
    const rm = removed[r];
    const ad = added[a];
    if (ad !== undefined && (rm === undefined || ad.at <= rm)) {
      copyUpTo(ad.at);
      keys[out] = ad.entry.key;
      offsets[out++] = size;
      chunks.push(ad.entry.bytes);
      runs.push({ insert: ad.entry.bytes });
      size += ad.entry.bytes.length;
      a++;
    } else if (rm !== undefined) {
      copyUpTo(rm);
      next = rm + 1;
      r++;
    }
  }
  copyUpTo(base.keys.length);
  offsets[count] = size;
  return { keys, offsets, data: Buffer.concat(chunks, size), runs };
}

function countMissing(entries: Entries, names: ReadonlySet<string>): number {
  let n = 0;
  for (const name of names) if (!entries.has(name)) n++;
  return n;
}

/** First index whose key is not below `key` (git order). */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(keys[mid] as string, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the entry named `name` (a file's key is its name, a directory's its name and "/"), or -1. */
function findEntry(keys: readonly string[], name: string): number {
  const asFile = lowerBound(keys, name);
  if (keys[asFile] === name) return asFile;
  const dirKey = `${name}/`;
  const asDir = lowerBound(keys, dirKey);
  return keys[asDir] === dirKey ? asDir : -1;
}

export class NotADirectory extends StoreError {
  constructor(readonly step: string) {
    super('ERR_BAD_OBJECT', `${step} is not a directory`);
  }
}
