/**
 * The contract between the 9P server and whatever it serves (a host directory, DataKit's tree,
 * VPNKit's control files). One backend serves every dialect: the server translates 9P2000,
 * 9P2000.u and 9P2000.L requests into these calls, and the backend never sees wire formats.
 *
 * Fid bookkeeping (which node a fid names, its parent and name, open state) lives in the server,
 * so backends only implement operations on nodes. Directory-relative operations (unlink, rename)
 * are called on the parent directory; the server knows each fid's parent from the walk.
 */

/** Qid type bits (the top byte of a 9P mode). */
export const QidType = {
  DIR: 0x80,
  APPEND: 0x40,
  EXCL: 0x20,
  MOUNT: 0x10,
  AUTH: 0x08,
  TMP: 0x04,
  SYMLINK: 0x02,
  LINK: 0x01,
  FILE: 0x00,
} as const;

/** A server-unique file identity. `path` must be stable for the life of the file (DataKit relies on this). */
export interface Qid {
  type: number;
  version: number;
  path: bigint;
}

/** POSIX file-type bits of `Attr.mode`. */
export const FileMode = {
  S_IFMT: 0o170000,
  S_IFSOCK: 0o140000,
  S_IFLNK: 0o120000,
  S_IFREG: 0o100000,
  S_IFBLK: 0o060000,
  S_IFDIR: 0o040000,
  S_IFCHR: 0o020000,
  S_IFIFO: 0o010000,
} as const;

/** Enough to answer Rstat (9P2000, .u) and Rgetattr (.L). Times are seconds + nanoseconds. */
export interface Attr {
  qid: Qid;
  /** POSIX st_mode including the S_IF* type bits. */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  rdev: number;
  size: number;
  blksize: number;
  blocks: number;
  atimeSec: number;
  atimeNsec: number;
  mtimeSec: number;
  mtimeNsec: number;
  ctimeSec: number;
  ctimeNsec: number;
}

/** Changes requested by Tsetattr or Twstat; absent fields are left alone. */
export interface SetAttr {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  /** `'now'` means the server's current time (SETATTR_ATIME without _SET). */
  atime?: { sec: number; nsec: number } | 'now';
  mtime?: { sec: number; nsec: number } | 'now';
}

export interface StatFs {
  type: number;
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  fsid: bigint;
  namelen: number;
}

/** One directory entry as Treaddir returns it. `offset` is the cookie that resumes after this entry. */
export interface DirEntry {
  name: string;
  qid: Qid;
  /** Linux DT_* type (DT_DIR = 4, DT_REG = 8, DT_LNK = 10, ...). */
  type: number;
  offset: number;
  /** Optional: saves the server a walk + getattr per entry when serving 9P2000/.u directory reads. */
  attr?: Attr;
}

/** Who is asking and how to give up: `signal` aborts when the request is flushed (Tflush) or the connection closes. */
export interface RequestContext {
  readonly signal: AbortSignal;
  readonly uid: number;
  readonly uname: string;
  readonly dialect: Dialect;
}

export type Dialect = '9P2000' | '9P2000.u' | '9P2000.L';

/**
 * Linux open(2) flag values. The server converts 9P2000 open modes (OREAD, OTRUNC, ...) into these,
 * so backends see one vocabulary.
 */
export const OpenFlags = {
  O_RDONLY: 0o0,
  O_WRONLY: 0o1,
  O_RDWR: 0o2,
  O_ACCMODE: 0o3,
  O_CREAT: 0o100,
  O_EXCL: 0o200,
  O_TRUNC: 0o1000,
  O_APPEND: 0o2000,
  O_DIRECTORY: 0o200000,
  O_NOFOLLOW: 0o400000,
} as const;

/** An open file. Reads of "stream" files may block until the value changes; they must reject when ctx.signal aborts. */
export interface FsOpenFile {
  /** Preferred maximum I/O size (0: let the server use msize). */
  readonly iounit?: number;
  read(offset: number, count: number, ctx: RequestContext): Promise<Uint8Array>;
  /**
   * Optional fast path for bulk reads: fill `target` (a view into the reply the server will send)
   * from `offset` and return how many bytes were read. Saves a copy and an allocation per Tread.
   */
  readInto?(offset: number, target: Uint8Array, ctx: RequestContext): Promise<number>;
  write(offset: number, data: Uint8Array, ctx: RequestContext): Promise<number>;
  /** Entries after cookie `offset` (0 = start), at most about `count` bytes' worth; [] at the end. */
  readdir(offset: number, count: number, ctx: RequestContext): Promise<DirEntry[]>;
  fsync?(ctx: RequestContext): Promise<void>;
  /** Called on Tclunk (and when the connection closes) — DataKit's per-fid resources end here. */
  close(): Promise<void>;
}

/**
 * A file, directory or symlink. Every method but `qid`/`getattr` is optional: a missing one answers
 * EOPNOTSUPP (or EPERM for mutations), so a read-only backend implements little.
 */
export interface FsNode {
  readonly qid: Qid;
  getattr(ctx: RequestContext): Promise<Attr>;
  /**
   * One path component; never "." or ".." (the server resolves those against the fid's parent
   * chain). May answer synchronously (and throw): a walk through nodes the backend has at hand
   * then costs no promise per step.
   */
  walk?(name: string, ctx: RequestContext): Promise<FsNode> | FsNode;
  open?(flags: number, ctx: RequestContext): Promise<FsOpenFile>;
  create?(
    name: string,
    flags: number,
    mode: number,
    gid: number,
    ctx: RequestContext,
  ): Promise<{ node: FsNode; file: FsOpenFile }>;
  mkdir?(name: string, mode: number, gid: number, ctx: RequestContext): Promise<FsNode>;
  symlink?(name: string, target: string, gid: number, ctx: RequestContext): Promise<FsNode>;
  mknod?(
    name: string,
    mode: number,
    major: number,
    minor: number,
    gid: number,
    ctx: RequestContext,
  ): Promise<FsNode>;
  link?(target: FsNode, name: string, ctx: RequestContext): Promise<void>;
  readlink?(ctx: RequestContext): Promise<string>;
  setattr?(changes: SetAttr, ctx: RequestContext): Promise<void>;
  /** Remove entry `name` of this directory; `isDir` is AT_REMOVEDIR (rmdir). */
  unlink?(name: string, isDir: boolean, ctx: RequestContext): Promise<void>;
  /** Rename entry `oldName` of this directory to `newName` in `newDir` (same backend). */
  rename?(oldName: string, newDir: FsNode, newName: string, ctx: RequestContext): Promise<void>;
  statfs?(ctx: RequestContext): Promise<StatFs>;
}

/** What the server attaches to. `aname` is the attach name the client asked for. */
export interface FsBackend {
  attach(uname: string, aname: string, ctx: RequestContext): Promise<FsNode>;
}

/**
 * The one error type backends throw. `errno` (Linux value) goes to 9P2000.u/.L clients;
 * `message` is the ename 9P2000 clients see (DataKit's original strings live here).
 */
export class NinePError extends Error {
  override readonly name = 'NinePError';
  constructor(
    readonly errno: number,
    message?: string,
  ) {
    super(message ?? errnoName(errno));
  }
}

/** Linux errno values used across the kits. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  EPROTO: 71,
  EBADMSG: 74,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  ECONNREFUSED: 111,
  ETIMEDOUT: 110,
  ECANCELED: 125,
} as const;

const errnoNames = new Map<number, string>(Object.entries(Errno).map(([name, value]) => [value, name]));

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}
