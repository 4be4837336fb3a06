/** Numeric 9P message types (9P2000, .u and .L share one number space). */
export const MessageType = {
  Tlerror: 6,
  Rlerror: 7,
  Tstatfs: 8,
  Rstatfs: 9,
  Tlopen: 12,
  Rlopen: 13,
  Tlcreate: 14,
  Rlcreate: 15,
  Tsymlink: 16,
  Rsymlink: 17,
  Tmknod: 18,
  Rmknod: 19,
  Trename: 20,
  Rrename: 21,
  Treadlink: 22,
  Rreadlink: 23,
  Tgetattr: 24,
  Rgetattr: 25,
  Tsetattr: 26,
  Rsetattr: 27,
  Txattrwalk: 30,
  Rxattrwalk: 31,
  Txattrcreate: 32,
  Rxattrcreate: 33,
  Treaddir: 40,
  Rreaddir: 41,
  Tfsync: 50,
  Rfsync: 51,
  Tlock: 52,
  Rlock: 53,
  Tgetlock: 54,
  Rgetlock: 55,
  Tlink: 70,
  Rlink: 71,
  Tmkdir: 72,
  Rmkdir: 73,
  Trenameat: 74,
  Rrenameat: 75,
  Tunlinkat: 76,
  Runlinkat: 77,
  Tversion: 100,
  Rversion: 101,
  Tauth: 102,
  Rauth: 103,
  Tattach: 104,
  Rattach: 105,
  Terror: 106,
  Rerror: 107,
  Tflush: 108,
  Rflush: 109,
  Twalk: 110,
  Rwalk: 111,
  Topen: 112,
  Ropen: 113,
  Tcreate: 114,
  Rcreate: 115,
  Tread: 116,
  Rread: 117,
  Twrite: 118,
  Rwrite: 119,
  Tclunk: 120,
  Rclunk: 121,
  Tremove: 122,
  Rremove: 123,
  Tstat: 124,
  Rstat: 125,
  Twstat: 126,
  Rwstat: 127,
} as const;

export type MessageName = keyof typeof MessageType;

/** size[4] type[1] tag[2] */
export const HEADER_SIZE = 7;
/** The Rread/Twrite overhead clients subtract from msize (Plan 9's IOHDRSZ). */
export const IOHDRSZ = 24;
/** size[4] type[1] tag[2] count[4]: what precedes the data of Rread and Rreaddir. */
export const RREAD_HEADER_SIZE = 11;
export const NOTAG = 0xffff;
export const NOFID = 0xffffffff;
export const NONUNAME = 0xffffffff;
/** The most names one Twalk may carry. */
export const MAXWELEM = 16;
export const QID_SIZE = 13;

/** 9P2000 Topen/Tcreate mode byte. */
export const OpenMode = {
  OREAD: 0,
  OWRITE: 1,
  ORDWR: 2,
  OEXEC: 3,
  OTRUNC: 0x10,
  OCEXEC: 0x20,
  ORCLOSE: 0x40,
  /** 9P2000.u / Linux */
  OAPPEND: 0x80,
} as const;

/** 9P2000(.u) mode bits in stat records and Tcreate perm. */
export const DirMode = {
  DMDIR: 0x80000000,
  DMAPPEND: 0x40000000,
  DMEXCL: 0x20000000,
  DMMOUNT: 0x10000000,
  DMAUTH: 0x08000000,
  DMTMP: 0x04000000,
  DMSYMLINK: 0x02000000,
  DMLINK: 0x01000000,
  DMDEVICE: 0x00800000,
  DMNAMEDPIPE: 0x00200000,
  DMSOCKET: 0x00100000,
  DMSETUID: 0x00080000,
  DMSETGID: 0x00040000,
  DMSETVTX: 0x00010000,
} as const;

/** Tgetattr request_mask / Rgetattr valid bits (9P2000.L). */
export const GetattrMask = {
  MODE: 0x1,
  NLINK: 0x2,
  UID: 0x4,
  GID: 0x8,
  RDEV: 0x10,
  ATIME: 0x20,
  MTIME: 0x40,
  CTIME: 0x80,
  INO: 0x100,
  SIZE: 0x200,
  BLOCKS: 0x400,
  BTIME: 0x800,
  GEN: 0x1000,
  DATA_VERSION: 0x2000,
  BASIC: 0x7ff,
  ALL: 0x3fff,
} as const;

/** Tsetattr valid bits (9P2000.L). */
export const SetattrMask = {
  MODE: 0x1,
  UID: 0x2,
  GID: 0x4,
  SIZE: 0x8,
  ATIME: 0x10,
  MTIME: 0x20,
  CTIME: 0x40,
  ATIME_SET: 0x80,
  MTIME_SET: 0x100,
} as const;

/** Tunlinkat flags. */
export const AT_REMOVEDIR = 0x200;

/** Tlock/Tgetlock lock types and Rlock status values. */
export const LockType = { RDLCK: 0, WRLCK: 1, UNLCK: 2 } as const;
export const LockStatus = { SUCCESS: 0, BLOCKED: 1, ERROR: 2, GRACE: 3 } as const;
