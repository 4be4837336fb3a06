import { type Attr, type Dialect, FileMode, OpenFlags, type SetAttr } from '../backend.js';
import { DirMode, NONUNAME, OpenMode } from './constants.js';
import type { Stat } from './messages.js';

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_ISVTX = 0o1000;

/** The largest u64 as the codec returns it (a number): the "don't touch" value of Twstat fields. */
export const U64_DONT_TOUCH = 0xffffffff * 2 ** 32 + 0xffffffff;
export const U32_DONT_TOUCH = 0xffffffff;

export function deviceNumbers(rdev: number): { major: number; minor: number } {
  // Linux's new_encode_dev layout, limited to what fits in 32 bits.
  return { major: (rdev >>> 8) & 0xfff, minor: (rdev & 0xff) | ((rdev >>> 12) & 0xfff00) };
}

export function makeRdev(major: number, minor: number): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/** POSIX st_mode → 9P2000(.u) mode bits. */
export function unixModeTo9p(mode: number, dialect: Dialect): number {
  let m = mode & 0o777;
  const type = mode & FileMode.S_IFMT;
  if (type === FileMode.S_IFDIR) m |= DirMode.DMDIR;
  if (dialect === '9P2000.u') {
    if (type === FileMode.S_IFLNK) m |= DirMode.DMSYMLINK;
    else if (type === FileMode.S_IFCHR || type === FileMode.S_IFBLK) m |= DirMode.DMDEVICE;
    else if (type === FileMode.S_IFIFO) m |= DirMode.DMNAMEDPIPE;
    else if (type === FileMode.S_IFSOCK) m |= DirMode.DMSOCKET;
    if (mode & S_ISUID) m |= DirMode.DMSETUID;
    if (mode & S_ISGID) m |= DirMode.DMSETGID;
    if (mode & S_ISVTX) m |= DirMode.DMSETVTX;
  }
  return m >>> 0;
}

/** 9P2000(.u) mode bits → POSIX st_mode (type bits included). */
export function nineModeToUnix(mode: number): number {
  let m = mode & 0o777;
  if (mode & DirMode.DMSETUID) m |= S_ISUID;
  if (mode & DirMode.DMSETGID) m |= S_ISGID;
  if (mode & DirMode.DMSETVTX) m |= S_ISVTX;
  if (mode & DirMode.DMDIR) m |= FileMode.S_IFDIR;
  else if (mode & DirMode.DMSYMLINK) m |= FileMode.S_IFLNK;
  else if (mode & DirMode.DMSOCKET) m |= FileMode.S_IFSOCK;
  else if (mode & DirMode.DMNAMEDPIPE) m |= FileMode.S_IFIFO;
  else if (mode & DirMode.DMDEVICE) m |= FileMode.S_IFCHR;
  else m |= FileMode.S_IFREG;
  return m;
}

/** A stat record for 9P2000/.u from backend attributes. `extension` is the .u symlink target or device spec. */
export function statFromAttr(attr: Attr, name: string, dialect: Dialect, extension = ''): Stat {
  const isDir = (attr.mode & FileMode.S_IFMT) === FileMode.S_IFDIR;
  return {
    type: 0,
    dev: 0,
    qid: attr.qid,
    mode: unixModeTo9p(attr.mode, dialect),
    atime: attr.atimeSec >>> 0,
    mtime: attr.mtimeSec >>> 0,
    length: isDir ? 0 : attr.size,
    name,
    uid: String(attr.uid),
    gid: String(attr.gid),
    muid: '',
    extension: dialect === '9P2000.u' ? extension : '',
    nUid: dialect === '9P2000.u' ? attr.uid >>> 0 : NONUNAME,
    nGid: dialect === '9P2000.u' ? attr.gid >>> 0 : NONUNAME,
    nMuid: NONUNAME,
  };
}

/** Stat → the Attr a client wants (the inverse of statFromAttr, as far as 9P2000 carries it). */
export function attrFromStat(s: Stat): Attr {
  return {
    qid: s.qid,
    mode: nineModeToUnix(s.mode),
    uid: s.nUid !== NONUNAME ? s.nUid : Number.parseInt(s.uid, 10) || 0,
    gid: s.nGid !== NONUNAME ? s.nGid : Number.parseInt(s.gid, 10) || 0,
    nlink: 1,
    rdev: 0,
    size: s.length,
    blksize: 4096,
    blocks: Math.ceil(s.length / 512),
    atimeSec: s.atime,
    atimeNsec: 0,
    mtimeSec: s.mtime,
    mtimeNsec: 0,
    ctimeSec: s.mtime,
    ctimeNsec: 0,
  };
}

/** Twstat fields that are not "don't touch" → SetAttr (name changes are handled separately). */
export function setAttrFromWstat(s: Stat): SetAttr {
  const changes: SetAttr = {};
  if (s.mode !== U32_DONT_TOUCH) changes.mode = nineModeToUnix(s.mode) & 0o7777;
  if (s.length !== U64_DONT_TOUCH) changes.size = s.length;
  if (s.atime !== U32_DONT_TOUCH) changes.atime = { sec: s.atime, nsec: 0 };
  if (s.mtime !== U32_DONT_TOUCH) changes.mtime = { sec: s.mtime, nsec: 0 };
  if (s.nUid !== NONUNAME) changes.uid = s.nUid;
  if (s.nGid !== NONUNAME) changes.gid = s.nGid;
  return changes;
}

/** A Twstat record meaning "change nothing" (a client's sync request); fill in only what to change. */
export function dontTouchStat(): Stat {
  return {
    type: 0xffff,
    dev: U32_DONT_TOUCH,
    qid: { type: 0xff, version: U32_DONT_TOUCH, path: 0xffffffffffffffffn },
    mode: U32_DONT_TOUCH,
    atime: U32_DONT_TOUCH,
    mtime: U32_DONT_TOUCH,
    length: U64_DONT_TOUCH,
    name: '',
    uid: '',
    gid: '',
    muid: '',
    extension: '',
    nUid: NONUNAME,
    nGid: NONUNAME,
    nMuid: NONUNAME,
  };
}

/** 9P2000 Topen/Tcreate mode byte → Linux open flags. */
export function openModeToFlags(mode: number): number {
  let flags: number;
  switch (mode & 3) {
    case OpenMode.OWRITE:
      flags = OpenFlags.O_WRONLY;
      break;
    case OpenMode.ORDWR:
      flags = OpenFlags.O_RDWR;
      break;
    default:
      flags = OpenFlags.O_RDONLY; // OREAD and OEXEC
  }
  if (mode & OpenMode.OTRUNC) flags |= OpenFlags.O_TRUNC;
  if (mode & OpenMode.OAPPEND) flags |= OpenFlags.O_APPEND;
  return flags;
}

/** Linux open flags → 9P2000 mode byte (for the client). */
export function flagsToOpenMode(flags: number): number {
  let mode: number;
  switch (flags & OpenFlags.O_ACCMODE) {
    case OpenFlags.O_WRONLY:
      mode = OpenMode.OWRITE;
      break;
    case OpenFlags.O_RDWR:
      mode = OpenMode.ORDWR;
      break;
    default:
      mode = OpenMode.OREAD;
  }
  if (flags & OpenFlags.O_TRUNC) mode |= OpenMode.OTRUNC;
  if (flags & OpenFlags.O_APPEND) mode |= OpenMode.OAPPEND;
  return mode;
}

/** Linux DT_* from st_mode. */
export function direntType(mode: number): number {
  switch (mode & FileMode.S_IFMT) {
    case FileMode.S_IFDIR:
      return 4;
    case FileMode.S_IFREG:
      return 8;
    case FileMode.S_IFLNK:
      return 10;
    case FileMode.S_IFCHR:
      return 2;
    case FileMode.S_IFBLK:
      return 6;
    case FileMode.S_IFIFO:
      return 1;
    case FileMode.S_IFSOCK:
      return 12;
    default:
      return 0;
  }
}
