import { Errno } from '@kitset/ninep';
import {
  type DirValue,
  type EntriesDraft,
  type FileValue,
  type Perm,
  type TreeStore,
  type TreeValue,
  deriveEntries,
  emptyDir,
} from '../store/index.js';
import { VfsError } from './errors.js';

/** Serialises async critical sections. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.catch(() => {});
    return result;
  }
}

export type Path = readonly string[];

/**
 * A transaction's working tree: an immutable tree value replaced on each change, under a lock.
 * Unlike git, it keeps empty directories (they vanish at commit), so `mkdir` is just an update.
 */
export class View {
  private readonly lock = new Mutex();
  /** Bytes of file contents this transaction holds in memory (not yet in the store). */
  private heldBytes = 0;
  constructor(
    readonly trees: TreeStore,
    public root: DirValue,
    /** Most bytes of new contents one transaction may hold (a client cannot exhaust memory). */
    readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {}

  /** Replaces the whole tree (a merge result), after changes already under way. */
  replaceRoot(root: DirValue): Promise<void> {
    return this.lock.run(async () => {
      this.root = root;
    });
  }

  find(path: Path): Promise<TreeValue | undefined> {
    return this.trees.find(this.root, path);
  }

  /**
   * Applies `fn` to the directory at `dir` (created if missing) and rebuilds the parents. `fn`
   * sets or deletes only the names in `touches` (which lets the store splice the change into the
   * old tree's encoding rather than encode the whole directory again).
   */
  private change(
    dir: Path,
    touches: readonly string[],
    fn: (entries: EntriesDraft) => Promise<void> | void,
    force = false,
  ) {
    return this.lock.run(async () => {
      const rec = async (node: DirValue, rest: Path): Promise<DirValue> => {
        const from = await this.trees.entries(node);
        const entries = deriveEntries(from);
        const [step, ...more] = rest;
        this.trees.noteChanges(entries, from, step === undefined ? touches : [step]);
        if (step === undefined) {
          await fn(entries);
          return { kind: 'dir', entries };
        }
        const child = entries.get(step);
        let childDir: DirValue = emptyDir;
        if (child?.kind === 'dir') childDir = child;
        else if (child?.kind === 'file' && !force) throw VfsError.notDir();
        entries.set(step, await rec(childDir, more));
        return { kind: 'dir', entries };
      };
      this.root = await rec(this.root, dir);
    });
  }

  /** Sets file `leaf` of `dir`; `perm` 'keep' keeps an existing file's perm. */
  setFile(dir: Path, leaf: string, data: Uint8Array, perm: Perm | 'keep'): Promise<void> {
    return this.change(dir, [leaf], (entries) => {
      const old = entries.get(leaf);
      if (old?.kind === 'dir') throw VfsError.isDir();
      const held = this.heldBytes - (old?.data?.length ?? 0) + data.length;
      if (held > this.maxBytes)
        throw VfsError.other(`Transaction too large (limit ${this.maxBytes} bytes of new data)`, Errno.EFBIG);
      this.heldBytes = held;
      // Writing over a submodule entry turns it into an ordinary file.
      const kept = old?.perm === 'gitlink' ? 'normal' : old?.perm;
      const p = perm === 'keep' ? (kept ?? 'normal') : perm;
      entries.set(leaf, { kind: 'file', perm: p, data });
    });
  }

  /** Sets `leaf` to any value, replacing files in the way (merges). */
  force(dir: Path, leaf: string, value: TreeValue | undefined): Promise<void> {
    return this.change(
      dir,
      [leaf],
      (entries) => {
        if (value === undefined) entries.delete(leaf);
        else entries.set(leaf, value);
      },
      true,
    );
  }

  mkdir(dir: Path, leaf: string): Promise<void> {
    return this.change(dir, [leaf], (entries) => {
      if (entries.has(leaf)) throw VfsError.alreadyExists();
      entries.set(leaf, emptyDir);
    });
  }

  chmod(dir: Path, leaf: string, perm: Perm, linkTarget?: Uint8Array): Promise<void> {
    return this.change(dir, [leaf], async (entries) => {
      const old = entries.get(leaf);
      if (!old) throw VfsError.noEntry();
      if (old.kind === 'dir') {
        if (perm === 'exec') return;
        throw VfsError.isDir();
      }
      if (old.perm === 'gitlink') throw VfsError.perm();
      const next: FileValue =
        perm === 'link'
          ? { kind: 'file', perm, data: linkTarget ?? new Uint8Array(0) }
          : old.hash
            ? { kind: 'file', perm, hash: old.hash }
            : { kind: 'file', perm, data: old.data ?? new Uint8Array(0) };
      entries.set(leaf, next);
    });
  }

  remove(dir: Path, leaf: string): Promise<void> {
    return this.change(dir, [leaf], (entries) => {
      entries.delete(leaf);
    });
  }

  rename(dir: Path, oldName: string, newName: string): Promise<void> {
    return this.change(dir, [oldName, newName], async (entries) => {
      const value = entries.get(oldName);
      if (!value) throw VfsError.noEntry();
      if (oldName === newName) return;
      // Over an empty directory is allowed, as in the original (empty directories are not in
      // its trees); a directory with contents is not replaced.
      const target = entries.get(newName);
      if (target?.kind === 'dir' && (await this.trees.entries(target)).size > 0) throw VfsError.isDir();
      entries.delete(oldName);
      entries.set(newName, value);
    });
  }
}
