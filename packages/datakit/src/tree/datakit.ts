import { execFile } from 'node:child_process';
import { Errno } from '@kitset/ninep';
import {
  type DirValue,
  EMPTY_TREE,
  type Perm,
  type Repository,
  type TreeValue,
  dirOfHash,
  isHash,
  isValidBranchName,
  mergeTrees,
} from '../store/index.js';
import { VfsError, quote } from './errors.js';
import {
  type FileStat,
  Inode,
  Session,
  type VDir,
  type VFile,
  type VPerm,
  commandFile,
  dirOnly,
  emptyDirNode,
  kvFile,
  kvroFile,
  listDir,
  overwrite,
  readOnlyDir,
  resize,
  roFile,
  rwString,
  sessionStream,
  statusFile,
  streamFile,
} from './vfs.js';
import { Mutex, type Path, View } from './view.js';

const encoder = new TextEncoder();
const text = (s: string) => encoder.encode(s);
const utf8 = (b: Uint8Array) => Buffer.from(b).toString('utf8');

interface MergeRequest {
  commit: string;
  message: string;
  resolve: (head: string) => void;
  reject: (err: Error) => void;
  attempts: number;
}

export interface DataKitOptions {
  /** Largest file a transaction may hold, in bytes (default 256 MiB). */
  maxFileSize?: number;
  /** Most bytes of new file contents one transaction may hold in memory (default 1 GiB). */
  maxTransactionBytes?: number;
}

function validName(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0'))
    throw VfsError.other(`Invalid name ${quote(name)}`);
}

function vpermOf(perm: Perm, data: Uint8Array): VPerm {
  if (perm === 'gitlink') return 'normal';
  return perm === 'link' ? { link: utf8(data) } : perm;
}

function comparePaths(a: string, b: string): number {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const p = x[i] ?? '';
    const q = y[i] ?? '';
    if (p !== q) return p < q ? -1 : 1;
  }
  return x.length - y.length;
}

/** Runs git on the store; resolves undefined on success, else git's last error line. */
export function runGit(gitDir: string, args: string[], timeoutMs = 120_000): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(
      'git',
      ['--git-dir', gitDir, ...args],
      { timeout: timeoutMs, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } },
      (err, _out, stderr) => {
        if (!err) resolve(undefined);
        else resolve(stderr.trim().split('\n').pop() || err.message);
      },
    );
  });
}

export function pushBranch(gitDir: string, url: string, branch: string): Promise<string | undefined> {
  return runGit(gitDir, ['push', '--quiet', url, `+refs/heads/${branch}:refs/heads/${branch}`]);
}

/**
 * DataKit's file system over a repository, as the original lays it out:
 * /branch, /trees, /commits, /snapshots, /remotes, /debug. State shared by every connection
 * (the repository, head sessions, branch locks) lives here; `root()` makes a fresh tree per
 * connection, so transactions and command-file results are per connection.
 */
export class DataKit {
  private readonly sessions = new Map<string, Session<string | undefined>>();
  private readonly locks = new Map<string, Mutex>();
  private readonly unsubscribe: () => void;
  private readonly remotes = new Map<string, Inode>();
  readonly maxFileSize: number;
  readonly maxTransactionBytes: number;
  private logLevel = 'quiet';

  constructor(
    readonly repo: Repository,
    options: DataKitOptions = {},
  ) {
    this.maxFileSize = options.maxFileSize ?? 256 << 20;
    this.maxTransactionBytes = options.maxTransactionBytes ?? 1024 << 20;
    this.unsubscribe = repo.onHeadChange((branch, head) => this.sessions.get(branch)?.publish(head));
  }

  close(): void {
    this.unsubscribe();
  }

  private lock(branch: string): Mutex {
    let m = this.locks.get(branch);
    if (!m) {
      m = new Mutex();
      this.locks.set(branch, m);
    }
    return m;
  }

  private async headSession(branch: string): Promise<Session<string | undefined>> {
    const head = await this.repo.head(branch);
    let s = this.sessions.get(branch);
    if (!s) {
      s = new Session(head);
      this.sessions.set(branch, s);
    } else if (s.value !== head) s.publish(head);
    return s;
  }

  /** A commit id the user typed: invalid hashes and unknown commits get the original's errors. */
  async commitOfId(id: string): Promise<string> {
    const h = id.trim();
    if (!isHash(h)) throw VfsError.other(`invalid-hash ${quote(h)}: Invalid_argument("invalid hex")`);
    if (!(await this.repo.readCommit(h))) throw VfsError.noEntry();
    return h;
  }

  /**
   * Merges `commit` into the branch head (fast-forward when possible) and moves the head; no
   * acknowledged commit is ever lost. Concurrent requests on a branch are group-committed: the
   * leader merges every queued commit in turn, then one compare-and-swap (and one fsync) moves
   * the head for the whole batch.
   */
  mergeIntoBranch(branch: string, commit: string, message: string): Promise<string> {
    return new Promise((resolve, reject) => {
      let queue = this.queues.get(branch);
      if (!queue) {
        queue = [];
        this.queues.set(branch, queue);
      }
      queue.push({ commit, message, resolve, reject, attempts: 0 });
      if (queue.length === 1 && !this.leaders.has(branch)) void this.lead(branch);
    });
  }

  private readonly queues = new Map<string, MergeRequest[]>();
  private readonly leaders = new Set<string>();

  private async lead(branch: string): Promise<void> {
    this.leaders.add(branch);
    try {
      for (;;) {
        const queue = this.queues.get(branch) ?? [];
        const batch = queue.splice(0);
        if (batch.length === 0) break;
        await this.lock(branch).run(async () => {
          // On top of updates still being written: the next group is merged meanwhile.
          const current = await this.repo.queuedHead(branch);
          let tip = current;
          const merged: MergeRequest[] = [];
          for (const req of batch) {
            try {
              tip = await this.mergeOne(tip, req.commit, req.message);
              merged.push(req);
            } catch (err) {
              req.reject(err as Error);
            }
          }
          if (merged.length === 0 || tip === undefined) return;
          const first = merged[0]?.message.split('\n')[0] ?? '';
          const settle = (durable: Promise<boolean>) => {
            this.lastQueued.set(branch, durable);
            durable.then(
              (ok) => {
                if (ok) for (const req of merged) req.resolve(tip ?? req.commit);
                else this.retry(branch, merged);
              },
              // Not durable (an I/O error): these commits fail, the server goes on.
              (err) => {
                for (const req of merged) req.reject(err as Error);
              },
            );
          };
          if (tip === current) {
            // Already in the head: acknowledged once the head is durable.
            settle((this.lastQueued.get(branch) ?? Promise.resolve(true)).catch(() => false));
            return;
          }
          let queued: Awaited<ReturnType<Repository['queueHead']>>;
          try {
            queued = await this.repo.queueHead(
              branch,
              tip,
              current,
              `commit: ${first}${merged.length > 1 ? ` (+${merged.length - 1})` : ''}`,
            );
          } catch (err) {
            for (const req of merged) req.reject(err as Error);
            return;
          }
          if (queued) settle(queued.durable);
          else this.retry(branch, merged, false);
        });
      }
    } finally {
      this.leaders.delete(branch);
      if ((this.queues.get(branch)?.length ?? 0) > 0) void this.lead(branch);
    }
  }

  /** The durability of the newest update queued per branch. */
  private readonly lastQueued = new Map<string, Promise<boolean>>();

  /** Someone else (maybe git itself) moved the head: merge these again against the new head. */
  private retry(branch: string, reqs: MergeRequest[], kick = true): void {
    let queue = this.queues.get(branch);
    if (!queue) {
      queue = [];
      this.queues.set(branch, queue);
    }
    for (const req of reqs) {
      if (++req.attempts >= 100)
        req.reject(VfsError.other('Merge conflict: branch head keeps changing', Errno.EAGAIN));
      else queue.push(req);
    }
    if (kick && queue.length > 0 && !this.leaders.has(branch)) void this.lead(branch);
  }

  /** The head after merging `commit` into `tip` (objects written, nothing published). */
  private async mergeOne(tip: string | undefined, commit: string, message: string): Promise<string> {
    if (tip === undefined || tip === commit) return commit;
    if (await this.repo.isAncestor(commit, tip)) return tip;
    if (await this.repo.isAncestor(tip, commit)) return commit;
    // A transaction's commit has one parent, the head it started from, which the tip descends
    // from: that parent is the best common ancestor (any other is an ancestor of it).
    const parents = (await this.repo.readCommit(commit))?.parents ?? [];
    const only = parents.length === 1 ? parents[0] : undefined;
    const [base] =
      only !== undefined && (await this.repo.isAncestor(only, tip))
        ? [only]
        : await this.repo.mergeBases(tip, commit);
    const result = await mergeTrees(
      this.repo.trees,
      await this.repo.commitTree(tip),
      await this.repo.commitTree(commit),
      base ? await this.repo.commitTree(base) : undefined,
    );
    const conflict = result.conflicts[0];
    if (conflict) throw VfsError.other(`Merge conflict: ${conflict.path}: ${conflict.reason}`, Errno.EIO);
    return this.repo.commit(result.tree, [tip, commit], message);
  }

  async fastForward(branch: string, commit: string): Promise<void> {
    await this.lock(branch).run(async () => {
      const current = await this.repo.queuedHead(branch);
      if (current === commit) {
        await this.lastQueued.get(branch); // acknowledged once it is durable
        return;
      }
      if (current !== undefined && !(await this.repo.isAncestor(current, commit)))
        throw VfsError.other('not-fast-forward');
      if (!(await this.repo.setHead(branch, commit, current, 'fast-forward')))
        throw VfsError.other('not-fast-forward');
    });
  }

  async hashLine(head: string | undefined, path: Path): Promise<string> {
    const root = await this.repo.commitTree(head);
    const v = await this.repo.trees.find(root, path);
    if (!v) return '\n';
    if (v.kind === 'dir') return `D-${await this.repo.trees.hash(v)}\n`;
    const letter = v.perm === 'exec' ? 'X' : v.perm === 'link' ? 'L' : 'F';
    return `${letter}-${this.repo.trees.fileHash(v)}\n`;
  }

  // ---------------------------------------------------------------- trees

  private async statOf(root: DirValue, path: Path): Promise<FileStat> {
    const v = await this.repo.trees.find(root, path);
    if (!v) throw VfsError.noEntry();
    if (v.kind === 'dir') throw VfsError.isDir();
    const data = await this.repo.trees.data(v);
    return { length: data.length, perm: vpermOf(v.perm, data) };
  }

  /** A read-only view of the tree `getRoot()` returns (re-read at each access). */
  roTree(name: string, getRoot: () => Promise<DirValue>): Inode {
    const nodes = new Map<string, Inode>();
    const get = (path: Path, kind: 'file' | 'dir'): Inode => {
      const key = `${kind}:${path.join('/')}`;
      let inode = nodes.get(key);
      if (!inode) {
        const leaf = path[path.length - 1] ?? name;
        inode = kind === 'dir' ? Inode.dir(leaf, dir(path)) : Inode.file(leaf, file(path));
        nodes.set(key, inode);
      }
      return inode;
    };
    const file = (path: Path): VFile =>
      kvroFile(
        async () => {
          const v = await this.repo.trees.find(await getRoot(), path);
          if (!v) return undefined;
          if (v.kind === 'dir') throw VfsError.isDir();
          return this.repo.trees.data(v);
        },
        async () => this.statOf(await getRoot(), path),
      );
    const entriesAt = async (path: Path) => {
      const v = await this.repo.trees.find(await getRoot(), path);
      if (!v || v.kind !== 'dir') throw VfsError.noEntry();
      return this.repo.trees.entries(v);
    };
    const dir = (path: Path): VDir =>
      readOnlyDir({
        ls: async () => [...(await entriesAt(path))].map(([n, v]) => get([...path, n], v.kind)),
        lookup: async (n) => {
          const v = (await entriesAt(path)).get(n);
          if (!v) throw VfsError.noEntry();
          return get([...path, n], v.kind);
        },
      });
    return get([], 'dir');
  }

  /** The read-write working tree of a transaction. Writing a path clears it from `conflicts`. */
  private rwTree(view: View, conflicts: Set<string>): Inode {
    const nodes = new Map<string, Inode>();
    const key = (kind: string, path: Path) => `${kind}:${path.join('/')}`;
    const get = (path: Path, kind: 'file' | 'dir'): Inode => {
      let inode = nodes.get(key(kind, path));
      if (!inode) {
        const leaf = path[path.length - 1] ?? 'rw';
        inode = kind === 'dir' ? Inode.dir(leaf, dir(path)) : Inode.file(leaf, file(path));
        nodes.set(key(kind, path), inode);
      }
      return inode;
    };
    const clearConflict = (path: Path) => conflicts.delete(path.join('/'));
    const limit = (size: number) => {
      if (size > this.maxFileSize) throw VfsError.tooBig(this.maxFileSize);
    };
    const file = (path: Path): VFile => {
      const parent = path.slice(0, -1);
      const leaf = path[path.length - 1] ?? '';
      const blob = async () => {
        const v = await view.find(path);
        if (!v) return undefined;
        if (v.kind === 'dir') throw VfsError.isDir();
        return this.repo.trees.data(v);
      };
      const update = async (data: Uint8Array) => {
        await view.setFile(parent, leaf, data, 'keep');
        clearConflict(path);
      };
      return {
        stat: () => this.statOf(view.root, path),
        open: async () => ({
          async read(offset, count) {
            const data = await blob();
            if (!data) throw VfsError.noEntry();
            if (offset < 0) throw VfsError.negativeOffset(offset);
            if (offset > data.length) throw VfsError.offsetTooLarge(offset, data.length);
            return data.subarray(offset, offset + Math.min(count, data.length - offset));
          },
          async write(offset, data) {
            if (offset < 0) throw VfsError.negativeOffset(offset);
            limit(offset + data.length);
            await update(overwrite((await blob()) ?? new Uint8Array(0), data, offset));
          },
        }),
        async truncate(length) {
          if (length < 0) throw VfsError.negativeOffset(length);
          limit(length);
          await update(resize((await blob()) ?? new Uint8Array(0), length));
        },
        async remove() {
          await view.remove(parent, leaf);
          clearConflict(path);
        },
        async chmod(perm) {
          if (typeof perm === 'object') await view.chmod(parent, leaf, 'link', text(perm.link));
          else await view.chmod(parent, leaf, perm);
        },
      };
    };
    const entriesAt = async (path: Path) => {
      const v = await view.find(path);
      if (!v || v.kind !== 'dir') return new Map<string, TreeValue>();
      return this.repo.trees.entries(v);
    };
    const dir = (path: Path): VDir => ({
      ls: async () => [...(await entriesAt(path))].map(([n, v]) => get([...path, n], v.kind)),
      async lookup(n) {
        const v = (await entriesAt(path)).get(n);
        if (!v) throw VfsError.noEntry();
        return get([...path, n], v.kind);
      },
      async mkfile(n, perm) {
        validName(n);
        if (typeof perm === 'object') await view.setFile(path, n, text(perm.link), 'link');
        else await view.setFile(path, n, new Uint8Array(0), perm);
        clearConflict([...path, n]);
        return get([...path, n], 'file');
      },
      async mkdir(n) {
        validName(n);
        await view.mkdir(path, n);
        clearConflict([...path, n]);
        return get([...path, n], 'dir');
      },
      async remove() {
        const leaf = path[path.length - 1];
        if (leaf === undefined) throw VfsError.readOnlyFile();
        await view.remove(path.slice(0, -1), leaf);
        const prefix = `${path.join('/')}/`;
        for (const c of [...conflicts]) if (c === path.join('/') || c.startsWith(prefix)) conflicts.delete(c);
      },
      async rename(inode, newName) {
        validName(newName);
        const oldName = inode.basename;
        await view.rename(path, oldName, newName);
        const kind = inode.node.kind;
        // Keep the inode (and so its qid) under its new name.
        nodes.delete(key(kind, [...path, oldName]));
        nodes.delete(key(kind === 'dir' ? 'file' : 'dir', [...path, newName]));
        inode.basename = newName;
        const fresh = kind === 'dir' ? dir([...path, newName]) : file([...path, newName]);
        if (inode.node.kind === 'file' && 'stat' in fresh) inode.node.file = fresh;
        else if (inode.node.kind === 'dir' && 'ls' in fresh) inode.node.dir = fresh;
        nodes.set(key(kind, [...path, newName]), inode);
      },
    });
    return get([], 'dir');
  }

  /** `diff/<commit>`: what changed from that commit to `head()`. */
  private diffDir(head: () => Promise<DirValue>): VDir {
    return readOnlyDir({
      ls: async () => [],
      lookup: async (name) => {
        const commit = await this.commitOfId(name);
        const lines = await this.repo.trees.diff(await this.repo.commitTree(commit), await head());
        return Inode.file(name, roFile(lines.map((l) => `${l.op} ${l.path}\n`).join('')));
      },
    });
  }

  // ---------------------------------------------------------------- transactions

  private async transaction(branch: () => string, name: string, remover: () => void): Promise<Inode> {
    const repo = this.repo;
    const head = await repo.head(branch());
    const view = new View(repo.trees, await repo.commitTree(head), this.maxTransactionBytes);
    const msg = rwString('');
    const parents = rwString(head ? `${head}\n` : '');
    const conflicts = new Set<string>();
    const readParents = async () => {
      const out: string[] = [];
      for (const line of parents.get().split('\n')) if (line !== '') out.push(await this.commitOfId(line));
      return out;
    };
    const commitOfView = async () => {
      if (conflicts.size > 0) throw VfsError.other('conflicts file is not empty');
      const ps = await readParents();
      const message = msg.get() === '' ? '(no commit message)' : msg.get();
      return { commit: await repo.commit(view.root, ps, message), parents: ps, message };
    };
    /**
     * Beyond the original: `commit` followed by lines `msg <JSON string>` (sets the message, as a
     * write of `msg` does) and `<F|X|L|D>-<hash> <path>` (the hash lines of tree.live; `absent
     * <path>`), which make the commit happen only if each path of `rw/` is as stated. A client
     * that sends its writes and the commit together, without waiting for the writes' replies, so
     * makes sure that a write that failed commits nothing, and needs no write of `msg`.
     */
    const commitOptions = async (lines: string) => {
      let message: string | undefined;
      for (const line of lines.split('\n')) {
        if (line.startsWith('msg ')) {
          let parsed: unknown;
          try {
            parsed = JSON.parse(line.slice(4));
          } catch {
            parsed = undefined;
          }
          if (typeof parsed !== 'string') throw VfsError.other(`Invalid message ${quote(line.slice(4))}`);
          message = parsed;
          continue;
        }
        const space = line.indexOf(' ');
        const expected = space > 0 ? line.slice(0, space) : line;
        const path = space > 0 ? line.slice(space + 1).split('/') : [];
        const v = await view.find(path);
        const found =
          v === undefined
            ? 'absent'
            : v.kind === 'dir'
              ? `D-${await repo.trees.hash(v)}`
              : `${v.perm === 'exec' ? 'X' : v.perm === 'link' ? 'L' : 'F'}-${repo.trees.fileHash(v)}`;
        if (found !== expected)
          throw VfsError.other(
            `Not committed: rw/${path.join('/')} is ${found}, not ${quote(expected)}`,
            Errno.EIO,
          );
      }
      if (message !== undefined) msg.set(message);
    };
    const ctl = commandFile(async (cmd) => {
      if (cmd === 'close') {
        remover();
        return '';
      }
      if (cmd === 'commit' || cmd.startsWith('commit\n')) {
        if (cmd !== 'commit') await commitOptions(cmd.slice('commit\n'.length));
        const { commit, message } = await commitOfView();
        await this.mergeIntoBranch(branch(), commit, message);
        remover();
        return '';
      }
      throw VfsError.other(`Unknown command ${quote(cmd)}`);
    });
    const conflictsFile = kvroFile(async () =>
      text(
        [...conflicts]
          .sort(comparePaths)
          .map((p) => `${p}\n`)
          .join(''),
      ),
    );
    const common = [
      this.rwTree(view, conflicts),
      Inode.file('msg', msg.file),
      Inode.file('parents', parents.file),
      Inode.file('ctl', ctl),
      Inode.file('origin', roFile('')),
      Inode.dir(
        'diff',
        this.diffDir(async () => view.root),
      ),
    ];
    let contents: Inode[] = [];
    const merge: Inode = Inode.file(
      'merge',
      commandFile(async (id) => {
        const theirs = await this.commitOfId(id);
        const ours = await commitOfView();
        let base: DirValue | undefined;
        let baseInode = Inode.dir('base', emptyDirNode());
        if (ours.parents.length > 0) {
          const [lca] = await repo.mergeBases(ours.commit, theirs);
          if (lca) {
            base = await repo.commitTree(lca);
            const b = base;
            baseInode = this.roTree('base', async () => b);
          }
        }
        parents.set(
          `${parents.get()}${parents.get() === '' || parents.get().endsWith('\n') ? '' : '\n'}${theirs}\n`,
        );
        const ourTree = await repo.commitTree(ours.commit);
        const theirTree = await repo.commitTree(theirs);
        const result = await mergeTrees(repo.trees, view.root, theirTree, base);
        await view.replaceRoot(result.tree);
        for (const c of result.conflicts) conflicts.add(c.path);
        contents = [
          ...common,
          merge,
          Inode.file('conflicts', conflictsFile),
          this.roTree('ours', async () => ourTree),
          baseInode,
          this.roTree('theirs', async () => theirTree),
        ];
        return 'ok';
      }),
    );
    contents = [...common, merge];
    return Inode.dir(
      name,
      listDir(() => contents),
    );
  }

  private transactionsDir(branch: () => string): VDir {
    const items = new Map<string, Inode>();
    const lock = new Mutex();
    return {
      ls: async () => [...items.values()],
      lookup(name) {
        const found = items.get(name);
        if (!found) throw VfsError.noEntry();
        return found;
      },
      mkdir: (name) =>
        lock.run(async () => {
          validName(name);
          if (items.has(name)) throw VfsError.alreadyExists();
          let removed = false;
          const inode = await this.transaction(branch, name, () => {
            removed = true;
            if (items.get(name) === inode) items.delete(name);
          });
          if (!removed) items.set(name, inode);
          return inode;
        }),
      mkfile: async () => {
        throw VfsError.dirOnly();
      },
      rename: async () => {
        throw VfsError.dirReadOnly();
      },
      remove: async () => {
        throw VfsError.dirReadOnly();
      },
    };
  }

  // ---------------------------------------------------------------- branches

  private watchDir(branch: () => string, path: Path): VDir {
    const live = Inode.file(
      'tree.live',
      streamFile(async () => {
        const name = branch();
        const session = new Session(await this.hashLine(await this.repo.head(name), path));
        let queue = Promise.resolve();
        const unsubscribe = this.repo.onHeadChange((b, head) => {
          if (b !== name) return;
          queue = queue
            .then(async () => {
              const line = await this.hashLine(head, path);
              if (line !== session.value) session.publish(line);
            })
            .catch(() => {});
        });
        session.settle = () => queue;
        return { stream: sessionStream(session, (s) => s), close: unsubscribe };
      }),
    );
    const cache = new Map<string, Inode>();
    const child = (name: string) => {
      let inode = cache.get(name);
      if (!inode) {
        inode = Inode.dir(`${name}.node`, this.watchDir(branch, [...path, name]));
        cache.set(name, inode);
      }
      return inode;
    };
    return readOnlyDir({
      ls: async () => {
        const v = await this.repo.trees.find(
          await this.repo.commitTree(await this.repo.head(branch())),
          path,
        );
        const names = v?.kind === 'dir' ? [...(await this.repo.trees.entries(v)).keys()] : [];
        return [live, ...names.map(child)];
      },
      lookup: async (name) => {
        if (name === 'tree.live') return live;
        if (name.endsWith('.node') && name.length > 5) return child(name.slice(0, -5));
        throw VfsError.noEntry();
      },
    });
  }

  private branchContents(name: string): Inode[] {
    const branch = () => name;
    const renderHead = (h: string | undefined) => (h ? `${h}\n` : '\n');
    return [
      this.roTree('ro', async () => this.repo.commitTree(await this.repo.head(name))),
      Inode.dir('transactions', this.transactionsDir(branch)),
      Inode.dir('watch', this.watchDir(branch, [])),
      Inode.file(
        'head.live',
        streamFile(async () => ({ stream: sessionStream(await this.headSession(name), renderHead) })),
      ),
      Inode.file(
        'fast-forward',
        commandFile(async (id) => {
          await this.fastForward(name, await this.commitOfId(id));
          return '';
        }),
      ),
      Inode.file(
        'reflog',
        streamFile(async () => {
          const session = new Session<string | undefined>(undefined);
          const unsubscribe = this.repo.onHeadChange((b, head) => {
            if (b === name) session.publish(head);
          });
          return { stream: sessionStream(session, renderHead), close: unsubscribe };
        }),
      ),
      Inode.file(
        'head',
        statusFile(async () => renderHead(await this.repo.head(name))),
      ),
    ];
  }

  private branchDir(): VDir {
    const cache = new Map<string, { inode: Inode; state: { contents: Inode[] } }>();
    const entry = (name: string) => {
      let e = cache.get(name);
      if (!e) {
        const state: { inode?: Inode; contents: Inode[] } = { contents: this.branchContents(name) };
        const dir: VDir = {
          ...readOnlyDir({
            ls: async () => state.contents,
            lookup: (n) => {
              const found = state.contents.find((i) => i.basename === n);
              if (!found) throw VfsError.noEntry();
              return found;
            },
          }),
          remove: async () => {
            const current = state.inode?.basename ?? name;
            await this.repo.settle(); // commits still being written land first
            const head = await this.repo.head(current);
            if (head !== undefined) await this.repo.setHead(current, undefined, head, 'delete');
            cache.delete(current);
          },
        };
        const inode = Inode.dir(name, dir);
        state.inode = inode;
        e = { inode, state };
        cache.set(name, e);
      }
      return e;
    };
    return dirOnly({
      ls: async () => {
        const names = new Set([...(await this.repo.branches()).keys(), ...cache.keys()]);
        return [...names]
          .filter((n) => !n.includes('/'))
          .sort()
          .map((n) => entry(n).inode);
      },
      lookup: (name) => {
        if (cache.has(name)) return entry(name).inode;
        return this.repo.head(name).then((head) => {
          if (head === undefined) throw VfsError.noEntry();
          return entry(name).inode;
        });
      },
      mkdir: async (name) => {
        if (!isValidBranchName(name) || name.includes('/'))
          throw VfsError.other(`Invalid branch name ${quote(name)}`);
        return entry(name).inode;
      },
      remove: async () => {
        throw VfsError.dirReadOnly();
      },
      rename: async (inode, newName) => {
        if (!isValidBranchName(newName) || newName.includes('/'))
          throw VfsError.other(`Invalid branch name ${quote(newName)}`);
        const oldName = inode.basename;
        await this.repo.settle(); // commits still being written land first
        if ((await this.repo.head(newName)) !== undefined) throw VfsError.isDir();
        const e = cache.get(oldName);
        const head = await this.repo.head(oldName);
        if (head !== undefined) {
          if (!(await this.repo.setHead(newName, head, undefined, `branch: renamed from ${oldName}`)))
            throw VfsError.isDir();
          await this.repo.setHead(oldName, undefined, head, `branch: renamed to ${newName}`);
        }
        if (!e) throw VfsError.noEntry();
        cache.delete(oldName);
        inode.basename = newName;
        e.state.contents = this.branchContents(newName);
        cache.set(newName, e);
      },
    });
  }

  // ---------------------------------------------------------------- /trees, /snapshots, /commits

  private treesDir(): VDir {
    const cache = new Map<string, Inode>();
    return readOnlyDir({
      ls: async () => [],
      lookup: async (name) => {
        const cached = cache.get(name);
        if (cached) return cached;
        const kind = name.slice(0, 2);
        const hash = name.slice(2).trim();
        if (!isHash(hash)) throw VfsError.noEntry();
        let inode: Inode;
        if (kind === 'D-') {
          const obj = hash === EMPTY_TREE ? { type: 'tree' } : await this.repo.db.read(hash);
          if (obj?.type !== 'tree') throw VfsError.noEntry();
          inode = this.roTree(name, async () => dirOfHash(hash));
        } else if (kind === 'F-' || kind === 'X-' || kind === 'L-') {
          const obj = await this.repo.db.read(hash);
          if (obj?.type !== 'blob') throw VfsError.noEntry();
          const perm: VPerm = kind === 'X-' ? 'exec' : kind === 'L-' ? { link: utf8(obj.data) } : 'normal';
          inode = Inode.file(name, roFile(obj.data, perm));
        } else throw VfsError.noEntry();
        if (cache.size > 1024) cache.clear();
        cache.set(name, inode);
        return inode;
      },
    });
  }

  private snapshotsDir(): VDir {
    const cache = new Map<string, Inode>();
    return readOnlyDir({
      ls: async () => [],
      lookup: async (name) => {
        const cached = cache.get(name);
        if (cached) return cached;
        const id = await this.commitOfId(name);
        const commit = await this.repo.readCommit(id);
        if (!commit) throw VfsError.noEntry();
        const tree = dirOfHash(commit.tree);
        const message = commit.message.endsWith('\n') ? commit.message : `${commit.message}\n`;
        const inode = Inode.dir(
          name,
          listDir(() => items),
        );
        const items = [
          this.roTree('ro', async () => tree),
          Inode.file('hash', roFile(name)),
          Inode.file('msg', roFile(message)),
          Inode.file('parents', roFile(commit.parents.map((p) => `${p}\n`).join(''))),
          Inode.dir(
            'diff',
            this.diffDir(async () => tree),
          ),
        ];
        if (cache.size > 1024) cache.clear();
        cache.set(name, inode);
        return inode;
      },
    });
  }

  private commitsDir(): VDir {
    return readOnlyDir({
      ls: async () => [],
      lookup: async (name) => {
        const id = await this.commitOfId(name);
        const c = await this.repo.readCommit(id);
        if (!c) throw VfsError.noEntry();
        const json = JSON.stringify({
          hash: id,
          node: c.tree,
          parents: c.parents,
          info: {
            date: c.committer.time,
            author: `${c.author.name} <${c.author.email}>`,
            message: c.message,
          },
        });
        return Inode.file(id, roFile(`${json}\n`));
      },
    });
  }

  // ---------------------------------------------------------------- /remotes, /debug

  private remote(name: string): Inode {
    const url = rwString('');
    const head = new Session<string | undefined>(undefined);
    const gitDir = this.repo.gitDir;
    const remoteUrl = () => {
      const u = url.get().trim();
      if (u === '') throw VfsError.other('error: remote url is not defined');
      return u;
    };
    const fetch = commandFile(async (branch) => {
      const u = remoteUrl();
      if (!gitDir)
        throw VfsError.other(
          `error: cannot fetch ${u} (the in-memory store has no git transport; use --git)`,
        );
      if (!isValidBranchName(branch))
        throw VfsError.other(`error: cannot fetch ${u}: bad branch name ${quote(branch)}`);
      const target = `refs/remotes/${name}/${branch}`;
      const failure = await runGit(gitDir, [
        'fetch',
        '--quiet',
        '--no-tags',
        u,
        `+refs/heads/${branch}:${target}`,
      ]);
      if (failure !== undefined) throw VfsError.other(`error: cannot fetch ${u}: ${failure}`);
      const fetched = await this.repo.refs.read(target);
      if (!fetched) throw VfsError.other('error: no head to fetch');
      head.publish(fetched);
      return '';
    });
    // Beyond the original: push a local branch to the remote's branch of the same name.
    const push = commandFile(async (branch) => {
      const u = remoteUrl();
      if (!gitDir)
        throw VfsError.other(
          `error: cannot push to ${u} (the in-memory store has no git transport; use --git)`,
        );
      if (!isValidBranchName(branch) || (await this.repo.head(branch)) === undefined)
        throw VfsError.other(`error: no local branch ${quote(branch)} to push`);
      await this.repo.settle(); // git pushes what the git directory has
      const failure = await pushBranch(gitDir, u, branch);
      if (failure !== undefined) throw VfsError.other(`error: cannot push to ${u}: ${failure}`);
      return '';
    });
    return Inode.dir(
      name,
      listDir(() => [
        Inode.file('url', url.file),
        Inode.file(
          'head',
          streamFile(async () => ({ stream: sessionStream(head, (h) => (h ? `${h}\n` : '')) })),
        ),
        Inode.file('fetch', fetch),
        Inode.file('push', push),
      ]),
    );
  }

  private remotesDir(): VDir {
    return dirOnly({
      ls: async () => [...this.remotes.values()],
      lookup: async (name) => {
        const r = this.remotes.get(name);
        if (!r) throw VfsError.noEntry();
        return r;
      },
      mkdir: async (name) => {
        validName(name);
        if (this.remotes.has(name)) throw VfsError.alreadyExists();
        const r = this.remote(name);
        this.remotes.set(name, r);
        return r;
      },
      remove: async () => {
        throw VfsError.dirOnly();
      },
      rename: async (inode, newName) => {
        validName(newName);
        this.remotes.delete(inode.basename);
        inode.basename = newName;
        this.remotes.set(newName, inode);
      },
    });
  }

  private debugDir(): Inode {
    const levels = ['quiet', 'app', 'error', 'warning', 'info', 'debug'];
    let emptyRead = false;
    const level = kvFile({
      read: async () => (emptyRead ? new Uint8Array(0) : text(`${this.logLevel}\n`)),
      write: async (data) => {
        const l = utf8(data).trim();
        if (l === '') {
          emptyRead = true;
          return;
        }
        emptyRead = false;
        if (!levels.includes(l)) throw VfsError.other(`invalid log level ${quote(l)}`);
        this.logLevel = l;
      },
      remove: async () => {
        throw VfsError.perm();
      },
      chmod: async () => {
        throw VfsError.perm();
      },
    });
    const src = Inode.dir(
      'datakit',
      listDir(() => [Inode.file('doc', roFile('DataKit server\n')), Inode.file('level', level)]),
    );
    return Inode.dir(
      'debug',
      listDir(() => [
        Inode.dir(
          'src',
          listDir(() => [src]),
        ),
      ]),
    );
  }

  /** A fresh root for one connection. */
  root(): Inode {
    const items = [
      Inode.dir('branch', this.branchDir()),
      Inode.dir('trees', this.treesDir()),
      Inode.dir('commits', this.commitsDir()),
      Inode.dir('snapshots', this.snapshotsDir()),
      Inode.dir('remotes', this.remotesDir()),
      this.debugDir(),
    ];
    return Inode.dir(
      '/',
      listDir(() => items),
    );
  }
}
