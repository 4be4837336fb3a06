import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import {
  type Attr,
  type DirEntry,
  Errno,
  FileMode,
  type FsBackend,
  type FsNode,
  type FsOpenFile,
  NinePError,
  OpenFlags,
  type Qid,
  QidType,
  type RequestContext,
  type SetAttr,
  type StatFs,
} from '../backend.js';
import { direntType } from '../wire/convert.js';

export interface HostFsOptions {
  /** Refuse every change (EROFS). */
  readOnly?: boolean;
}

const errnoByCode = osConstants.errno as Record<string, number>;

/** A Node fs error → NinePError with the same errno; anything else → EIO. */
export function toNinePError(e: unknown): NinePError {
  if (e instanceof NinePError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    const errno = errnoByCode[code];
    if (errno !== undefined) return new NinePError(errno);
  }
  return new NinePError(Errno.EIO, e instanceof Error ? e.message : String(e));
}

async function wrap<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw toNinePError(e);
  }
}

const NS_PER_S = 1_000_000_000n;
/** NONUNAME: "no user given" in attach and create messages. */
const NONUNAME_VALUE = 0xffffffff;

function qidOf(st: fs.BigIntStats): Qid {
  const mode = Number(st.mode);
  const type = mode & FileMode.S_IFMT;
  const qtype =
    type === FileMode.S_IFDIR ? QidType.DIR : type === FileMode.S_IFLNK ? QidType.SYMLINK : QidType.FILE;
  // The version changes when the file does, so caching clients notice.
  const version = Number((st.mtimeNs ^ (st.size << 8n)) & 0xffffffffn);
  return { type: qtype, version, path: st.ino };
}

function attrOf(st: fs.BigIntStats): Attr {
  return {
    qid: qidOf(st),
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    nlink: Number(st.nlink),
    rdev: Number(st.rdev),
    size: Number(st.size),
    blksize: Number(st.blksize),
    blocks: Number(st.blocks),
    atimeSec: Number(st.atimeNs / NS_PER_S),
    atimeNsec: Number(st.atimeNs % NS_PER_S),
    mtimeSec: Number(st.mtimeNs / NS_PER_S),
    mtimeNsec: Number(st.mtimeNs % NS_PER_S),
    ctimeSec: Number(st.ctimeNs / NS_PER_S),
    ctimeNsec: Number(st.ctimeNs % NS_PER_S),
  };
}

/*
 * Metadata calls (lstat, realpath, open, close) run inline: on a local file system they take a few
 * microseconds, far less than a round trip through libuv's thread pool, and small-file workloads are
 * made of nothing else. Bulk reads and writes stay asynchronous.
 */
function lstatNow(path: string): fs.BigIntStats {
  try {
    return fs.lstatSync(path, { bigint: true });
  } catch (e) {
    throw toNinePError(e);
  }
}

async function lstat(path: string): Promise<fs.BigIntStats> {
  return lstatNow(path);
}

function checkEntryName(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0'))
    throw new NinePError(Errno.EINVAL);
}

/** Flags we pass to open(2): the access mode and the few that mean something here; never following symlinks. */
const PASSED_FLAGS = OpenFlags.O_ACCMODE | OpenFlags.O_TRUNC | OpenFlags.O_APPEND | OpenFlags.O_DIRECTORY;
const O_NOFOLLOW = fs.constants.O_NOFOLLOW;
const O_CLOEXEC = 0o2000000;

/**
 * Where a node lives, as a chain of names up to the root. Nodes share entries, so a rename moves
 * every fid below the renamed name at once (Linux keeps using its fids after a rename).
 */
class PathEntry {
  private children: Map<string, WeakRef<PathEntry>> | undefined;
  /** Set once the name was unlinked or replaced: the node's path no longer names it. */
  gone = false;

  constructor(
    public name: string,
    public parent: PathEntry | undefined,
    private readonly rootPath?: string,
  ) {}

  get path(): string {
    if (!this.parent) return this.rootPath!;
    return `${this.parent.path}/${this.name}`;
  }

  child(name: string): PathEntry {
    this.children ??= new Map();
    const existing = this.children.get(name)?.deref();
    if (existing) return existing;
    const entry = new PathEntry(name, this);
    this.children.set(name, new WeakRef(entry));
    if (this.children.size > this.pruneAt) this.prune();
    return entry;
  }

  peek(name: string): PathEntry | undefined {
    return this.children?.get(name)?.deref();
  }

  detach(name: string): void {
    const e = this.peek(name);
    this.children?.delete(name);
    if (e) e.gone = true;
  }

  moveTo(newParent: PathEntry, newName: string): void {
    this.parent?.children?.delete(this.name);
    newParent.detach(newName);
    this.parent = newParent;
    this.name = newName;
    newParent.children ??= new Map();
    newParent.children.set(newName, new WeakRef(this));
  }

  /** Dead WeakRefs are swept when the map doubles, so a big directory costs amortised O(1) per walk. */
  private pruneAt = 64;

  private prune(): void {
    for (const [k, v] of this.children!) if (!v.deref()) this.children!.delete(k);
    this.pruneAt = Math.max(64, this.children!.size * 2);
  }
}

/**
 * Exports a host directory read-write, like diod. Nothing escapes the root: every node is a real
 * path under the (canonical) root, walks never follow symlinks (lstat), opens use O_NOFOLLOW, and
 * before touching anything the parent directory's canonical path must be the path we think it is
 * (so a directory swapped for a symlink behind our back is refused).
 */
export class HostFsBackend implements FsBackend {
  readonly root: string;
  readonly readOnly: boolean;

  constructor(rootDir: string, options: HostFsOptions = {}) {
    this.root = fs.realpathSync(rootDir);
    if (!fs.statSync(this.root).isDirectory()) throw new TypeError(`not a directory: ${rootDir}`);
    this.readOnly = options.readOnly ?? false;
    this.rootEntry = new PathEntry('', undefined, this.root);
  }

  private readonly rootEntry: PathEntry;

  async attach(): Promise<FsNode> {
    const st = await lstat(this.root);
    return new HostNode(this, this.rootEntry, qidOf(st));
  }

  /** Throws unless `dir` (a path we built under the root) is canonical: no symlink anywhere on it. */
  async confirmDir(dir: string): Promise<void> {
    let real: string;
    try {
      real = fs.realpathSync.native(dir);
    } catch (e) {
      throw toNinePError(e);
    }
    if (real !== dir) throw new NinePError(Errno.EACCES);
    if (real !== this.root && !real.startsWith(`${this.root}/`)) throw new NinePError(Errno.EACCES);
  }

  /**
   * A server running as root makes new files belong to the client's user (and the group it asked
   * for), as diod does, so the client's own permission checks let that user use them.
   */
  giveToClient(path: string, gid: number, ctx: RequestContext): void {
    if (!this.runsAsRoot) return;
    const uid = ctx.uid >= 0 && ctx.uid < NONUNAME_VALUE ? ctx.uid : -1;
    const g = gid >= 0 && gid < NONUNAME_VALUE ? gid : -1;
    if (uid === -1 && g === -1) return;
    try {
      fs.lchownSync(path, uid, g);
    } catch {
      // Ownership is a courtesy; the file exists either way.
    }
  }

  private readonly runsAsRoot = process.getuid?.() === 0;

  writable(): void {
    if (this.readOnly) throw new NinePError(Errno.EROFS);
  }
}

class HostNode implements FsNode {
  constructor(
    private readonly fsb: HostFsBackend,
    readonly entry: PathEntry,
    public qid: Qid,
  ) {}

  get path(): string {
    if (this.entry.gone) throw new NinePError(Errno.ENOENT);
    return this.entry.path;
  }

  private get isDir(): boolean {
    return (this.qid.type & QidType.DIR) !== 0;
  }

  private child(name: string): string {
    checkEntryName(name);
    if (!this.isDir) throw new NinePError(Errno.ENOTDIR);
    return join(this.path, name);
  }

  async getattr(): Promise<Attr> {
    const st = await lstat(this.path);
    const attr = attrOf(st);
    this.qid = attr.qid;
    return attr;
  }

  async walk(name: string): Promise<FsNode> {
    const path = this.child(name);
    await this.fsb.confirmDir(this.path);
    const st = await lstat(path);
    return new HostNode(this.fsb, this.entry.child(name), qidOf(st));
  }

  async open(flags: number): Promise<FsOpenFile> {
    if ((flags & OpenFlags.O_ACCMODE) !== OpenFlags.O_RDONLY || flags & OpenFlags.O_TRUNC)
      this.fsb.writable();
    if ((this.qid.type & QidType.SYMLINK) !== 0) throw new NinePError(Errno.ELOOP);
    await this.fsb.confirmDir(this.isDir ? this.path : parentOf(this.path));
    if (this.isDir) return new HostDir(this.fsb, this.path);
    const openFlags = (flags & PASSED_FLAGS) | O_NOFOLLOW | O_CLOEXEC;
    const append = (flags & OpenFlags.O_APPEND) !== 0;
    if ((Number(lstatNow(this.path).mode) & FileMode.S_IFMT) === FileMode.S_IFREG)
      return new HostFile(await openFd(this.path, openFlags), append, true);
    // FIFOs, devices and sockets may block: open and use them off the event loop, never waiting for a peer.
    const fd = await new Promise<number>((resolve, reject) =>
      fs.open(this.path, openFlags | fs.constants.O_NONBLOCK, (err, fd) =>
        err ? reject(toNinePError(err)) : resolve(fd),
      ),
    );
    return new HostFile(fd, append, false);
  }

  async create(
    name: string,
    flags: number,
    mode: number,
    gid: number,
    ctx: RequestContext,
  ): Promise<{ node: FsNode; file: FsOpenFile }> {
    this.fsb.writable();
    const path = this.child(name);
    await this.fsb.confirmDir(this.path);
    const fd = await openFd(
      path,
      (flags & PASSED_FLAGS & ~OpenFlags.O_DIRECTORY) |
        OpenFlags.O_CREAT |
        OpenFlags.O_EXCL |
        O_NOFOLLOW |
        O_CLOEXEC,
      mode & 0o7777,
    );
    this.fsb.giveToClient(path, gid, ctx);
    const st = await new Promise<fs.BigIntStats>((resolve, reject) =>
      fs.fstat(fd, { bigint: true }, (err, s) => (err ? reject(toNinePError(err)) : resolve(s))),
    );
    return {
      node: new HostNode(this.fsb, this.entry.child(name), qidOf(st)),
      file: new HostFile(fd, (flags & OpenFlags.O_APPEND) !== 0, true),
    };
  }

  async mkdir(name: string, mode: number, gid: number, ctx: RequestContext): Promise<FsNode> {
    this.fsb.writable();
    const path = this.child(name);
    await this.fsb.confirmDir(this.path);
    await wrap(fs.promises.mkdir(path, { mode: mode & 0o7777 }));
    this.fsb.giveToClient(path, gid, ctx);
    return new HostNode(this.fsb, this.entry.child(name), qidOf(await lstat(path)));
  }

  async symlink(name: string, target: string, gid: number, ctx: RequestContext): Promise<FsNode> {
    this.fsb.writable();
    const path = this.child(name);
    await this.fsb.confirmDir(this.path);
    // The target is only text to us: walks and opens never follow it.
    await wrap(fs.promises.symlink(target, path));
    this.fsb.giveToClient(path, gid, ctx);
    return new HostNode(this.fsb, this.entry.child(name), qidOf(await lstat(path)));
  }

  /**
   * Named pipes only. Device nodes are refused: a client able to make one (say, of the host's disk)
   * inside the export could read the whole machine through it.
   */
  async mknod(
    name: string,
    mode: number,
    _major: number,
    _minor: number,
    gid: number,
    ctx: RequestContext,
  ): Promise<FsNode> {
    this.fsb.writable();
    if ((mode & FileMode.S_IFMT) !== FileMode.S_IFIFO) throw new NinePError(Errno.EPERM);
    const path = this.child(name);
    await this.fsb.confirmDir(this.path);
    // Node has no mknod(2); coreutils' mkfifo, given an argument vector (no shell), does the same.
    await new Promise<void>((resolve, reject) =>
      execFile('mkfifo', ['-m', (mode & 0o777).toString(8), '--', path], (err, _out, stderr) => {
        if (!err) resolve();
        else if (/exists/i.test(String(stderr))) reject(new NinePError(Errno.EEXIST));
        else reject(new NinePError(Errno.EIO, `mkfifo failed: ${String(stderr).trim() || err.message}`));
      }),
    );
    this.fsb.giveToClient(path, gid, ctx);
    return new HostNode(this.fsb, this.entry.child(name), qidOf(await lstat(path)));
  }

  async link(target: FsNode, name: string): Promise<void> {
    this.fsb.writable();
    if (!(target instanceof HostNode)) throw new NinePError(Errno.EXDEV);
    const path = this.child(name);
    await this.fsb.confirmDir(this.path);
    await this.fsb.confirmDir(parentOf(target.path));
    await wrap(fs.promises.link(target.path, path));
  }

  async readlink(): Promise<string> {
    if ((this.qid.type & QidType.SYMLINK) === 0) throw new NinePError(Errno.EINVAL);
    return wrap(fs.promises.readlink(this.path));
  }

  async setattr(changes: SetAttr): Promise<void> {
    this.fsb.writable();
    await this.fsb.confirmDir(this.isDir ? this.path : parentOf(this.path));
    const isLink = (this.qid.type & QidType.SYMLINK) !== 0;
    if (isLink) {
      // Never through the link: only ownership and times of the link itself.
      if (changes.uid !== undefined || changes.gid !== undefined)
        await wrap(fs.promises.lchown(this.path, changes.uid ?? -1, changes.gid ?? -1));
      if (changes.atime !== undefined || changes.mtime !== undefined) {
        const st = await lstat(this.path);
        await wrap(fs.promises.lutimes(this.path, ...times(changes, st)));
      }
      return;
    }
    const accmode = changes.size !== undefined ? OpenFlags.O_WRONLY : OpenFlags.O_RDONLY;
    const fd = await openFd(
      this.path,
      // O_NONBLOCK: opening a FIFO must not wait for a peer.
      accmode | O_NOFOLLOW | O_CLOEXEC | fs.constants.O_NONBLOCK | (this.isDir ? OpenFlags.O_DIRECTORY : 0),
    );
    try {
      if (changes.mode !== undefined) await wrap(fdCall((cb) => fs.fchmod(fd, changes.mode! & 0o7777, cb)));
      if (changes.uid !== undefined || changes.gid !== undefined)
        await wrap(fdCall((cb) => fs.fchown(fd, changes.uid ?? -1, changes.gid ?? -1, cb)));
      if (changes.size !== undefined) await wrap(fdCall((cb) => fs.ftruncate(fd, changes.size, cb)));
      if (changes.atime !== undefined || changes.mtime !== undefined) {
        const st = await lstat(this.path);
        const [a, m] = times(changes, st);
        await wrap(fdCall((cb) => fs.futimes(fd, a, m, cb)));
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  async unlink(name: string, isDir: boolean): Promise<void> {
    this.fsb.writable();
    const path = this.child(name);
    await this.fsb.confirmDir(this.path);
    await wrap(isDir ? fs.promises.rmdir(path) : fs.promises.unlink(path));
    this.entry.detach(name);
  }

  async rename(oldName: string, newDir: FsNode, newName: string): Promise<void> {
    this.fsb.writable();
    if (!(newDir instanceof HostNode)) throw new NinePError(Errno.EXDEV);
    const from = this.child(oldName);
    const to = newDir.child(newName);
    await this.fsb.confirmDir(this.path);
    await this.fsb.confirmDir(newDir.path);
    await wrap(fs.promises.rename(from, to));
    const moved = this.entry.peek(oldName);
    if (moved) moved.moveTo(newDir.entry, newName);
    else newDir.entry.detach(newName);
  }

  async statfs(): Promise<StatFs> {
    const s = await wrap(fs.promises.statfs(this.path));
    return {
      type: s.type,
      bsize: s.bsize,
      blocks: s.blocks,
      bfree: s.bfree,
      bavail: s.bavail,
      files: s.files,
      ffree: s.ffree,
      fsid: 0n,
      namelen: 255,
    };
  }
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function times(changes: SetAttr, st: fs.BigIntStats): [number, number] {
  const now = Date.now() / 1000;
  const pick = (t: SetAttr['atime'], ns: bigint): number =>
    t === undefined ? Number(ns) / 1e9 : t === 'now' ? now : t.sec + t.nsec / 1e9;
  return [pick(changes.atime, st.atimeNs), pick(changes.mtime, st.mtimeNs)];
}

function fdCall(f: (cb: (err: NodeJS.ErrnoException | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => f((err) => (err ? reject(err) : resolve())));
}

async function openFd(path: string, flags: number, mode = 0): Promise<number> {
  try {
    return fs.openSync(path, flags, mode);
  } catch (e) {
    throw toNinePError(e);
  }
}

/** Reads up to this size run inline (see the note on metadata calls above). */
const INLINE_READ_MAX = 256 * 1024;

/** An open regular file: reads and writes go straight to its fd at the requested offset. */
class HostFile implements FsOpenFile {
  private closing = false;
  /** Thread-pool operations on the fd still running: the fd is closed only after the last one, so its number cannot be reused under them. */
  private busy = 0;

  constructor(
    private readonly fd: number,
    private readonly append: boolean,
    /** Regular files are read inline; anything else might block. */
    private readonly inline: boolean,
  ) {}

  private usable(): void {
    if (this.closing) throw new NinePError(Errno.EBADF);
  }

  /** Runs an asynchronous fd operation, keeping the fd open until it ends. */
  private async pooled<T>(
    op: (done: (err: NodeJS.ErrnoException | null, value: T) => void) => void,
  ): Promise<T> {
    this.usable();
    this.busy++;
    try {
      return await new Promise<T>((resolve, reject) =>
        op((err, v) => (err ? reject(toNinePError(err)) : resolve(v))),
      );
    } finally {
      if (--this.busy === 0 && this.closing) this.closeNow();
    }
  }

  readInto(offset: number, target: Uint8Array): Promise<number> {
    if (this.inline && target.length <= INLINE_READ_MAX) {
      // One pread from the page cache costs less than a hop through the thread pool.
      try {
        this.usable();
        return Promise.resolve(fs.readSync(this.fd, target, 0, target.length, offset));
      } catch (e) {
        return Promise.reject(toNinePError(e));
      }
    }
    return this.pooled<number>((done) =>
      fs.read(this.fd, target, 0, target.length, this.inline ? offset : null, done),
    );
  }

  async read(offset: number, count: number): Promise<Uint8Array> {
    const buf = Buffer.allocUnsafe(count);
    const n = await this.readInto(offset, buf);
    return buf.subarray(0, n);
  }

  async write(offset: number, data: Uint8Array): Promise<number> {
    let done = 0;
    while (done < data.length) {
      // With O_APPEND the kernel puts every write at the end, whatever position we pass.
      const pos = this.append || !this.inline ? null : offset + done;
      const n = await this.pooled<number>((cb) => fs.write(this.fd, data, done, data.length - done, pos, cb));
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  async readdir(): Promise<DirEntry[]> {
    throw new NinePError(Errno.ENOTDIR);
  }

  fsync(): Promise<void> {
    return this.pooled<void>((cb) => fs.fsync(this.fd, (err) => cb(err, undefined)));
  }

  close(): Promise<void> {
    if (this.closing) return Promise.resolve();
    this.closing = true;
    if (this.busy === 0) this.closeNow();
    return Promise.resolve();
  }

  private closeNow(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // Already gone; nothing a client can do about it.
    }
  }
}

/** An open directory: the listing is taken once when first read, and cookies index into it. */
class HostDir implements FsOpenFile {
  private names: string[] | undefined;

  constructor(
    private readonly fsb: HostFsBackend,
    private readonly path: string,
  ) {}

  async read(): Promise<Uint8Array> {
    throw new NinePError(Errno.EISDIR);
  }

  async write(): Promise<number> {
    throw new NinePError(Errno.EISDIR);
  }

  async readdir(offset: number, count: number): Promise<DirEntry[]> {
    if (offset === 0 || !this.names) {
      await this.fsb.confirmDir(this.path);
      this.names = ['.', '..', ...(await wrap(fs.promises.readdir(this.path))).sort()];
    }
    const names = this.names;
    const out: DirEntry[] = [];
    let bytes = 0;
    const batch: string[] = [];
    for (let i = offset; i < names.length; i++) {
      const name = names[i]!;
      bytes += 24 + Buffer.byteLength(name);
      if (bytes > count && batch.length > 0) break;
      batch.push(name);
      if (batch.length >= 512) break;
    }
    const stats = await Promise.all(
      batch.map((name) =>
        lstat(
          name === '..'
            ? this.path === this.fsb.root
              ? this.path
              : parentOf(this.path)
            : join(this.path, name),
        ).catch(() => undefined),
      ),
    );
    batch.forEach((name, i) => {
      const st = stats[i];
      if (!st) return; // vanished since the listing
      const attr = attrOf(st);
      out.push({ name, qid: attr.qid, type: direntType(attr.mode), offset: offset + i + 1, attr });
    });
    // Every entry of the batch vanished: skip past them rather than report the end.
    if (out.length === 0 && batch.length > 0 && offset + batch.length < names.length)
      return this.readdir(offset + batch.length, count);
    return out;
  }

  async close(): Promise<void> {
    this.names = undefined;
  }
}
