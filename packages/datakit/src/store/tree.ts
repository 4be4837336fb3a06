import { StoreError } from './errors.js';
import {
  EMPTY_TREE,
  type EncodedTreeEntry,
  type TreeEntry,
  TreeMode,
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
      for (const e of parseTree(obj.data, hash)) {
        if (e.mode === TreeMode.DIR) out.set(e.name, { kind: 'dir', hash: e.hash, encoded: named(e) });
        else {
          const perm = permOfMode(e.mode);
          if (perm) out.set(e.name, { kind: 'file', perm, hash: e.hash, encoded: named(e) });
        }
      }
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
    const entries = new Map(await this.entries(root));
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
    // Each entry as the value reading the written tree back would give, carrying its encoding.
    const rows: Array<TreeValue & { readonly encoded: NamedTreeEntry }> = [];
    for (const [name, value] of await this.entries(dir)) {
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
    for (const row of ordered) {
      loaded.set(row.encoded.name, row);
      items.push(row.encoded);
    }
    const data = joinTreeEntries(items);
    const hash = await this.db.write('tree', data, this.lastWritten.get(path));
    this.lastWritten.delete(path);
    if (this.lastWritten.size >= 256) {
      const oldest = this.lastWritten.keys().next().value;
      if (oldest !== undefined) this.lastWritten.delete(oldest);
    }
    this.lastWritten.set(path, { hash, data });
    this.remember(hash, loaded);
    return hash;
  }

  private remember(hash: string, entries: ReadonlyMap<string, TreeValue>): void {
    if (this.treeCache.has(hash)) return;
    if (this.treeCache.size >= 4096) {
      const oldest = this.treeCache.keys().next().value;
      if (oldest !== undefined) this.treeCache.delete(oldest);
    }
    this.treeCache.set(hash, entries);
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

export class NotADirectory extends StoreError {
  constructor(readonly step: string) {
    super('ERR_BAD_OBJECT', `${step} is not a directory`);
  }
}
