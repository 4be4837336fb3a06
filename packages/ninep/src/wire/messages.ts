import type { Dialect, Qid } from '../backend.js';
import { NinePDecodeError, NinePEncodeError, WireReader, WireWriter } from './buffer.js';
import { HEADER_SIZE, MAXWELEM, type MessageName, MessageType, NONUNAME } from './constants.js';

/** A 9P2000 / 9P2000.u stat record. The .u fields default to '' and NONUNAME under plain 9P2000. */
export interface Stat {
  type: number;
  dev: number;
  qid: Qid;
  mode: number;
  atime: number;
  mtime: number;
  length: number;
  name: string;
  uid: string;
  gid: string;
  muid: string;
  extension: string;
  nUid: number;
  nGid: number;
  nMuid: number;
}

/**
 * Field kinds. `ustr`/`uu32` exist only in 9P2000.u; `nuname` exists in .u and .L; `optu32` may be
 * absent (Tfsync's datasync, which older clients omit). `data` is count[4] followed by that many bytes.
 */
interface KindTypes {
  u8: number;
  u16: number;
  u32: number;
  u64: number;
  u64n: bigint;
  str: string;
  qid: Qid;
  data: Uint8Array;
  strs: string[];
  qids: Qid[];
  stat: Stat;
  ustr: string;
  uu32: number;
  nuname: number;
  optu32: number;
}
export type FieldKind = keyof KindTypes;
type Kind = FieldKind;
type FieldList = readonly (readonly [string, Kind])[];

/** The layout of every message body (after size[4] type[1] tag[2]), per the 9P manuals and Linux net/9p. */
const schemas = {
  Tlerror: [],
  Rlerror: [['ecode', 'u32']],
  Tstatfs: [['fid', 'u32']],
  Rstatfs: [
    ['fsType', 'u32'],
    ['bsize', 'u32'],
    ['blocks', 'u64'],
    ['bfree', 'u64'],
    ['bavail', 'u64'],
    ['files', 'u64'],
    ['ffree', 'u64'],
    ['fsid', 'u64n'],
    ['namelen', 'u32'],
  ],
  Tlopen: [
    ['fid', 'u32'],
    ['flags', 'u32'],
  ],
  Rlopen: [
    ['qid', 'qid'],
    ['iounit', 'u32'],
  ],
  Tlcreate: [
    ['fid', 'u32'],
    ['name', 'str'],
    ['flags', 'u32'],
    ['mode', 'u32'],
    ['gid', 'u32'],
  ],
  Rlcreate: [
    ['qid', 'qid'],
    ['iounit', 'u32'],
  ],
  Tsymlink: [
    ['fid', 'u32'],
    ['name', 'str'],
    ['target', 'str'],
    ['gid', 'u32'],
  ],
  Rsymlink: [['qid', 'qid']],
  Tmknod: [
    ['dfid', 'u32'],
    ['name', 'str'],
    ['mode', 'u32'],
    ['major', 'u32'],
    ['minor', 'u32'],
    ['gid', 'u32'],
  ],
  Rmknod: [['qid', 'qid']],
  Trename: [
    ['fid', 'u32'],
    ['dfid', 'u32'],
    ['name', 'str'],
  ],
  Rrename: [],
  Treadlink: [['fid', 'u32']],
  Rreadlink: [['target', 'str']],
  Tgetattr: [
    ['fid', 'u32'],
    ['requestMask', 'u64'],
  ],
  Rgetattr: [
    ['valid', 'u64'],
    ['qid', 'qid'],
    ['mode', 'u32'],
    ['uid', 'u32'],
    ['gid', 'u32'],
    ['nlink', 'u64'],
    ['rdev', 'u64'],
    ['size', 'u64'],
    ['blksize', 'u64'],
    ['blocks', 'u64'],
    ['atimeSec', 'u64'],
    ['atimeNsec', 'u64'],
    ['mtimeSec', 'u64'],
    ['mtimeNsec', 'u64'],
    ['ctimeSec', 'u64'],
    ['ctimeNsec', 'u64'],
    ['btimeSec', 'u64'],
    ['btimeNsec', 'u64'],
    ['gen', 'u64'],
    ['dataVersion', 'u64'],
  ],
  Tsetattr: [
    ['fid', 'u32'],
    ['valid', 'u32'],
    ['mode', 'u32'],
    ['uid', 'u32'],
    ['gid', 'u32'],
    ['size', 'u64'],
    ['atimeSec', 'u64'],
    ['atimeNsec', 'u64'],
    ['mtimeSec', 'u64'],
    ['mtimeNsec', 'u64'],
  ],
  Rsetattr: [],
  Txattrwalk: [
    ['fid', 'u32'],
    ['newfid', 'u32'],
    ['name', 'str'],
  ],
  Rxattrwalk: [['size', 'u64']],
  Txattrcreate: [
    ['fid', 'u32'],
    ['name', 'str'],
    ['attrSize', 'u64'],
    ['flags', 'u32'],
  ],
  Rxattrcreate: [],
  Treaddir: [
    ['fid', 'u32'],
    ['offset', 'u64'],
    ['count', 'u32'],
  ],
  Rreaddir: [['data', 'data']],
  Tfsync: [
    ['fid', 'u32'],
    ['datasync', 'optu32'],
  ],
  Rfsync: [],
  Tlock: [
    ['fid', 'u32'],
    ['lockType', 'u8'],
    ['flags', 'u32'],
    ['start', 'u64'],
    ['length', 'u64'],
    ['procId', 'u32'],
    ['clientId', 'str'],
  ],
  Rlock: [['status', 'u8']],
  Tgetlock: [
    ['fid', 'u32'],
    ['lockType', 'u8'],
    ['start', 'u64'],
    ['length', 'u64'],
    ['procId', 'u32'],
    ['clientId', 'str'],
  ],
  Rgetlock: [
    ['lockType', 'u8'],
    ['start', 'u64'],
    ['length', 'u64'],
    ['procId', 'u32'],
    ['clientId', 'str'],
  ],
  Tlink: [
    ['dfid', 'u32'],
    ['fid', 'u32'],
    ['name', 'str'],
  ],
  Rlink: [],
  Tmkdir: [
    ['dfid', 'u32'],
    ['name', 'str'],
    ['mode', 'u32'],
    ['gid', 'u32'],
  ],
  Rmkdir: [['qid', 'qid']],
  Trenameat: [
    ['oldDirFid', 'u32'],
    ['oldName', 'str'],
    ['newDirFid', 'u32'],
    ['newName', 'str'],
  ],
  Rrenameat: [],
  Tunlinkat: [
    ['dirFid', 'u32'],
    ['name', 'str'],
    ['flags', 'u32'],
  ],
  Runlinkat: [],
  Tversion: [
    ['msize', 'u32'],
    ['version', 'str'],
  ],
  Rversion: [
    ['msize', 'u32'],
    ['version', 'str'],
  ],
  Tauth: [
    ['afid', 'u32'],
    ['uname', 'str'],
    ['aname', 'str'],
    ['nUname', 'nuname'],
  ],
  Rauth: [['aqid', 'qid']],
  Tattach: [
    ['fid', 'u32'],
    ['afid', 'u32'],
    ['uname', 'str'],
    ['aname', 'str'],
    ['nUname', 'nuname'],
  ],
  Rattach: [['qid', 'qid']],
  Terror: [],
  Rerror: [
    ['ename', 'str'],
    ['errno', 'uu32'],
  ],
  Tflush: [['oldtag', 'u16']],
  Rflush: [],
  Twalk: [
    ['fid', 'u32'],
    ['newfid', 'u32'],
    ['names', 'strs'],
  ],
  Rwalk: [['qids', 'qids']],
  Topen: [
    ['fid', 'u32'],
    ['mode', 'u8'],
  ],
  Ropen: [
    ['qid', 'qid'],
    ['iounit', 'u32'],
  ],
  Tcreate: [
    ['fid', 'u32'],
    ['name', 'str'],
    ['perm', 'u32'],
    ['mode', 'u8'],
    ['extension', 'ustr'],
  ],
  Rcreate: [
    ['qid', 'qid'],
    ['iounit', 'u32'],
  ],
  Tread: [
    ['fid', 'u32'],
    ['offset', 'u64'],
    ['count', 'u32'],
  ],
  Rread: [['data', 'data']],
  Twrite: [
    ['fid', 'u32'],
    ['offset', 'u64'],
    ['data', 'data'],
  ],
  Rwrite: [['count', 'u32']],
  Tclunk: [['fid', 'u32']],
  Rclunk: [],
  Tremove: [['fid', 'u32']],
  Rremove: [],
  Tstat: [['fid', 'u32']],
  Rstat: [['stat', 'stat']],
  Twstat: [
    ['fid', 'u32'],
    ['stat', 'stat'],
  ],
  Rwstat: [],
} as const satisfies { [K in MessageName]: FieldList };

type Schemas = typeof schemas;
type FieldsOf<F extends FieldList> = { -readonly [E in F[number] as E[0]]: KindTypes[E[1]] };

/** One decoded (or to-be-encoded) message: `{ type: 'Tread', tag, fid, offset, count }` and so on. */
export type MessageOf<K extends MessageName> = { type: K; tag: number } & FieldsOf<Schemas[K]>;
export type Message = { [K in MessageName]: MessageOf<K> }[MessageName];
/** The fields of message K without type and tag. */
export type BodyOf<K extends MessageName> = FieldsOf<Schemas[K]>;

const namesByNumber: (MessageName | undefined)[] = new Array(256).fill(undefined);
const fieldsByNumber: (FieldList | undefined)[] = new Array(256).fill(undefined);
for (const [name, number] of Object.entries(MessageType) as [MessageName, number][]) {
  namesByNumber[number] = name;
  fieldsByNumber[number] = schemas[name];
}

export function messageName(type: number): MessageName | undefined {
  return namesByNumber[type];
}

function isDotu(d: Dialect): boolean {
  return d === '9P2000.u';
}

function readStat(r: WireReader, dialect: Dialect): Stat {
  const size = r.u16();
  r.need(size);
  const end = r.pos + size;
  const sub = new WireReader(r.buf, r.pos, end);
  const stat: Stat = {
    type: sub.u16(),
    dev: sub.u32(),
    qid: sub.qid(),
    mode: sub.u32(),
    atime: sub.u32(),
    mtime: sub.u32(),
    length: sub.u64(),
    name: sub.str(),
    uid: sub.str(),
    gid: sub.str(),
    muid: sub.str(),
    extension: '',
    nUid: NONUNAME,
    nGid: NONUNAME,
    nMuid: NONUNAME,
  };
  if (isDotu(dialect) && sub.remaining > 0) {
    stat.extension = sub.str();
    stat.nUid = sub.u32();
    stat.nGid = sub.u32();
    stat.nMuid = sub.u32();
  }
  r.pos = end;
  return stat;
}

/** Reads one stat record (as found in Rstat, Twstat and 9P2000 directory reads) at `r.pos`. */
export function decodeStat(buf: Uint8Array, offset: number, dialect: Dialect): { stat: Stat; next: number } {
  const r = new WireReader(buf, offset, buf.length);
  const stat = readStat(r, dialect);
  return { stat, next: r.pos };
}

/** Writes one stat record (size[2] first) and returns the position after it. */
export function writeStat(w: WireWriter, s: Stat, dialect: Dialect): void {
  w.room(2);
  const start = w.pos;
  w.pos += 2;
  w.u16(s.type);
  w.u32(s.dev);
  w.qid(s.qid);
  w.u32(s.mode);
  w.u32(s.atime);
  w.u32(s.mtime);
  w.u64(s.length);
  w.str(s.name);
  w.str(s.uid);
  w.str(s.gid);
  w.str(s.muid);
  if (isDotu(dialect)) {
    w.str(s.extension);
    w.u32(s.nUid);
    w.u32(s.nGid);
    w.u32(s.nMuid);
  }
  const size = w.pos - start - 2;
  w.buf[start] = size;
  w.buf[start + 1] = size >>> 8;
}

function readField(r: WireReader, kind: Kind, dialect: Dialect): unknown {
  switch (kind) {
    case 'u8':
      return r.u8();
    case 'u16':
      return r.u16();
    case 'u32':
      return r.u32();
    case 'u64':
      return r.u64();
    case 'u64n':
      return r.u64big();
    case 'str':
      return r.str();
    case 'qid':
      return r.qid();
    case 'data':
      return r.bytes(r.u32());
    case 'strs': {
      const n = r.u16();
      if (n > MAXWELEM) throw new NinePDecodeError(`too many walk names: ${n}`);
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push(r.str());
      return out;
    }
    case 'qids': {
      const n = r.u16();
      if (n > MAXWELEM) throw new NinePDecodeError(`too many walk qids: ${n}`);
      const out: Qid[] = [];
      for (let i = 0; i < n; i++) out.push(r.qid());
      return out;
    }
    case 'stat': {
      // Rstat/Twstat wrap the stat record in another size[2].
      const n = r.u16();
      r.need(n);
      const sub = new WireReader(r.buf, r.pos, r.pos + n);
      const stat = readStat(sub, dialect);
      r.pos += n;
      return stat;
    }
    case 'ustr':
      return isDotu(dialect) ? r.str() : '';
    case 'uu32':
      return isDotu(dialect) ? r.u32() : 0;
    case 'nuname':
      return dialect !== '9P2000' ? r.u32() : NONUNAME;
    case 'optu32':
      return r.remaining >= 4 ? r.u32() : 0;
  }
}

function writeField(w: WireWriter, kind: Kind, value: unknown, dialect: Dialect): void {
  switch (kind) {
    case 'u8':
      w.u8(value as number);
      return;
    case 'u16':
      w.u16(value as number);
      return;
    case 'u32':
    case 'optu32':
      w.u32(value as number);
      return;
    case 'u64':
      w.u64(value as number);
      return;
    case 'u64n':
      w.u64big(value as bigint);
      return;
    case 'str':
      w.str(value as string);
      return;
    case 'qid':
      w.qid(value as Qid);
      return;
    case 'data': {
      const data = value as Uint8Array;
      w.u32(data.length);
      w.bytes(data);
      return;
    }
    case 'strs': {
      const names = value as string[];
      w.u16(names.length);
      for (const n of names) w.str(n);
      return;
    }
    case 'qids': {
      const qids = value as Qid[];
      w.u16(qids.length);
      for (const q of qids) w.qid(q);
      return;
    }
    case 'stat': {
      w.room(2);
      const start = w.pos;
      w.pos += 2;
      writeStat(w, value as Stat, dialect);
      const n = w.pos - start - 2;
      w.buf[start] = n;
      w.buf[start + 1] = n >>> 8;
      return;
    }
    case 'ustr':
      if (isDotu(dialect)) w.str(value as string);
      return;
    case 'uu32':
      if (isDotu(dialect)) w.u32(value as number);
      return;
    case 'nuname':
      if (dialect !== '9P2000') w.u32(value as number);
      return;
  }
}

function u32at(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16)) + b[p + 3]! * 0x1000000;
}

function u64at(b: Uint8Array, p: number): number {
  return u32at(b, p) + u32at(b, p + 4) * 0x1_0000_0000;
}

/** Reads size[4] type[1] tag[2] at `offset`, or undefined if fewer than 7 bytes are there. */
export function peekHeader(
  buf: Uint8Array,
  offset = 0,
): { size: number; type: number; tag: number } | undefined {
  if (buf.length - offset < HEADER_SIZE) return undefined;
  const size =
    (buf[offset]! | (buf[offset + 1]! << 8) | (buf[offset + 2]! << 16)) + buf[offset + 3]! * 0x1000000;
  return { size, type: buf[offset + 4]!, tag: buf[offset + 5]! | (buf[offset + 6]! << 8) };
}

/**
 * Decodes one complete frame (size field included). Byte payloads (Rread/Twrite/Rreaddir data) are
 * views into `frame`, not copies. Throws NinePDecodeError (with `tag` when known) on malformed input.
 */
export function decodeMessage(frame: Uint8Array, dialect: Dialect): Message {
  const header = peekHeader(frame);
  if (!header) throw new NinePDecodeError(`frame too short: ${frame.length} bytes`);
  const { size, type, tag } = header;
  if (size !== frame.length)
    throw new NinePDecodeError(`size field ${size} does not match frame length ${frame.length}`, tag);
  // The hot messages of bulk I/O, decoded without the generic field walk.
  if (type === MessageType.Tread && size === 23) {
    return { type: 'Tread', tag, fid: u32at(frame, 7), offset: u64at(frame, 11), count: u32at(frame, 19) };
  }
  if (type === MessageType.Rread && size >= 11 && u32at(frame, 7) === size - 11) {
    return { type: 'Rread', tag, data: frame.subarray(11, size) };
  }
  const name = namesByNumber[type];
  const fields = fieldsByNumber[type];
  if (name === undefined || fields === undefined)
    throw new NinePDecodeError(`unknown message type ${type}`, tag);
  const r = new WireReader(frame, HEADER_SIZE, size);
  const msg: Record<string, unknown> = { type: name, tag };
  try {
    for (const [field, kind] of fields) msg[field] = readField(r, kind, dialect);
  } catch (e) {
    if (e instanceof NinePDecodeError) throw new NinePDecodeError(`${name}: ${e.message}`, tag);
    throw e;
  }
  return msg as Message;
}

/**
 * Encodes `msg` into `out` at `offset` (a preallocated buffer) and returns the number of bytes
 * written. Throws NinePEncodeError if it does not fit.
 */
export function encodeMessageInto(msg: Message, dialect: Dialect, out: Uint8Array, offset = 0): number {
  const fields = schemas[msg.type] as FieldList;
  const w = new WireWriter(out, offset);
  w.room(HEADER_SIZE);
  w.pos += 4;
  w.u8(MessageType[msg.type]);
  w.u16(msg.tag);
  const values = msg as unknown as Record<string, unknown>;
  for (const [field, kind] of fields) {
    const v = values[field];
    if (v === undefined) throw new TypeError(`${msg.type}: missing field ${field}`);
    writeField(w, kind, v, dialect);
  }
  const size = w.pos - offset;
  out[offset] = size;
  out[offset + 1] = size >>> 8;
  out[offset + 2] = size >>> 16;
  out[offset + 3] = size >>> 24;
  return size;
}

let scratch = new Uint8Array(64 * 1024);

/** Encodes `msg` into a new exactly-sized buffer (convenience; hot paths use encodeMessageInto). */
export function encodeMessage(msg: Message, dialect: Dialect): Uint8Array {
  for (;;) {
    try {
      const n = encodeMessageInto(msg, dialect, scratch);
      return scratch.slice(0, n);
    } catch (e) {
      if (!(e instanceof NinePEncodeError) || scratch.length >= 64 * 1024 * 1024) throw e;
      scratch = new Uint8Array(scratch.length * 4);
    }
  }
}

/** Writes the 11-byte header of an Rread (or Rreaddir) carrying `count` data bytes. */
export function writeRreadHeader(
  out: Uint8Array,
  offset: number,
  tag: number,
  count: number,
  type = 117,
): void {
  const size = count + 11;
  out[offset] = size;
  out[offset + 1] = size >>> 8;
  out[offset + 2] = size >>> 16;
  out[offset + 3] = size >>> 24;
  out[offset + 4] = type;
  out[offset + 5] = tag;
  out[offset + 6] = tag >>> 8;
  out[offset + 7] = count;
  out[offset + 8] = count >>> 8;
  out[offset + 9] = count >>> 16;
  out[offset + 10] = count >>> 24;
}

/** Writes the 23-byte header of a Twrite carrying `count` data bytes. */
export function writeTwriteHeader(
  out: Uint8Array,
  offset: number,
  tag: number,
  fid: number,
  fileOffset: number,
  count: number,
): void {
  const w = new WireWriter(out, offset);
  w.u32(count + 23);
  w.u8(MessageType.Twrite);
  w.u16(tag);
  w.u32(fid);
  w.u64(fileOffset);
  w.u32(count);
}

/** The wire layout of a message body: [field, kind] pairs in order (used by tests and tools). */
export function messageLayout(name: MessageName): readonly (readonly [string, Kind])[] {
  return schemas[name];
}
