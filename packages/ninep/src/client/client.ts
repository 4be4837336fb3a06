import { type Socket, connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { parseListenUrl } from '../address.js';
import {
  type Attr,
  type Dialect,
  Errno,
  OpenFlags,
  type Qid,
  QidType,
  type SetAttr,
  type StatFs,
  errnoName,
} from '../backend.js';
import { NinePDecodeError, NinePEncodeError } from '../wire/buffer.js';
import {
  AT_REMOVEDIR,
  DirMode,
  GetattrMask,
  IOHDRSZ,
  MAXWELEM,
  MessageType,
  NOFID,
  NONUNAME,
  NOTAG,
  SetattrMask,
} from '../wire/constants.js';
import { attrFromStat, dontTouchStat, flagsToOpenMode } from '../wire/convert.js';
import { decodeDirents } from '../wire/dirent.js';
import { errnoFromText } from '../wire/errstr.js';
import { FrameSplitter } from '../wire/frame.js';
import {
  type Message,
  type MessageOf,
  type Stat,
  decodeMessage,
  decodeStat,
  encodeMessageInto,
  writeTwriteHeader,
} from '../wire/messages.js';

/** An error the server answered (errno and text), or a local failure (closed connection, protocol error). */
export class NinePClientError extends Error {
  override readonly name = 'NinePClientError';
  readonly code: string;
  constructor(
    readonly errno: number,
    message?: string,
  ) {
    super(message ?? errnoName(errno));
    this.code = `ERR_NINEP_${errnoName(errno).replace(/^errno /, 'E')}`;
  }
}

export interface ClientOptions {
  /** Requested msize (default 512 KiB + IOHDRSZ); the server may lower it. */
  msize?: number;
  /** Requested dialect (default 9P2000.L). */
  version?: Dialect;
}

/** A fid the client holds: its number on the wire, the qid it names, and the iounit once open. */
export interface Fid {
  readonly id: number;
  qid: Qid;
  iounit: number;
}

export interface ClientDirEntry {
  name: string;
  qid: Qid;
  /** Linux DT_* type. */
  type: number;
  offset: number;
  /** The full stat record (9P2000 and .u only). */
  stat?: Stat;
}

interface Pending {
  resolve: (m: Message) => void;
  reject: (e: Error) => void;
  /** The reply type that answers it (else EPROTO). */
  expect: Message['type'];
  /** Aborted by the caller: the tag stays reserved until Rflush arrives. */
  flushed: boolean;
}

function dtypeFromQid(q: Qid): number {
  if (q.type & QidType.DIR) return 4;
  if (q.type & QidType.SYMLINK) return 10;
  return 8;
}

/** Bytes of each buffer requests are encoded into (a new one when it is full). */
const SLAB_BYTES = 16384;
/** Write payloads up to this size are copied in with their header; larger ones are sent as they are. */
const INLINE_PAYLOAD_BYTES = 2048;
const TWRITE_HEADER_BYTES = 23;

/** A 9P client with tag multiplexing: any number of requests may be outstanding at once. */
export class NinePClient {
  private readonly pending = new Map<number, Pending>();
  private freeTags: number[] = [];
  private nextTag = 0;
  private freeFids: number[] = [];
  private nextFid = 1;
  private readonly splitter: FrameSplitter;
  private closedError: Error | undefined;
  /** The first fid attached; readFile/writeFile paths start here. */
  root: Fid | undefined;
  dialect: Dialect;
  msize: number;

  private constructor(
    private readonly stream: Duplex,
    options: ClientOptions,
  ) {
    this.dialect = options.version ?? '9P2000.L';
    this.msize = options.msize ?? 512 * 1024 + IOHDRSZ;
    this.splitter = new FrameSplitter(this.msize);
    stream.on('data', (chunk: Buffer) => {
      try {
        this.splitter.push(chunk, this.onFrame);
      } catch (e) {
        this.fail(new NinePClientError(Errno.EPROTO, `bad frame from server: ${(e as Error).message}`));
      }
    });
    stream.on('error', (e) => this.fail(new NinePClientError(Errno.EIO, `connection error: ${e.message}`)));
    stream.on('close', () => this.fail(new NinePClientError(Errno.EIO, 'connection closed')));
  }

  /** Connects to `tcp://HOST:PORT`, `unix:///path`, or over an already-open stream, and negotiates the version. */
  static async connect(target: string | Duplex, options: ClientOptions = {}): Promise<NinePClient> {
    let stream: Duplex;
    if (typeof target === 'string') {
      const where = parseListenUrl(target);
      const socket: Socket =
        where.kind === 'tcp'
          ? netConnect({ host: where.host, port: where.port, noDelay: true })
          : netConnect(where.path);
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('error', (e) =>
          reject(new NinePClientError(Errno.ECONNREFUSED, `cannot connect to ${target}: ${e.message}`)),
        );
      });
      stream = socket;
    } else stream = target;
    const client = new NinePClient(stream, options);
    try {
      await client.version();
    } catch (e) {
      client.close();
      throw e;
    }
    return client;
  }

  private async version(): Promise<void> {
    const requested = this.dialect;
    const r = await this.rpc(
      { type: 'Tversion', tag: NOTAG, msize: this.msize, version: requested },
      'Rversion',
    );
    if (r.version === 'unknown' || !r.version.startsWith('9P2000'))
      throw new NinePClientError(Errno.EPROTO, `server does not speak ${requested} (answered ${r.version})`);
    if (r.msize > this.msize || r.msize < 256)
      throw new NinePClientError(Errno.EPROTO, `bad msize ${r.msize} from server`);
    this.dialect = r.version === '9P2000.L' ? '9P2000.L' : r.version === '9P2000.u' ? '9P2000.u' : '9P2000';
    this.msize = r.msize;
    this.splitter.maxFrameSize = r.msize;
  }

  /** The largest read or write payload one message carries. */
  get maxIo(): number {
    return this.msize - IOHDRSZ;
  }

  private onFrame = (frame: Uint8Array): void => {
    let msg: Message;
    try {
      msg = decodeMessage(frame, this.dialect);
    } catch (e) {
      const tag = e instanceof NinePDecodeError ? e.tag : undefined;
      const p = tag !== undefined ? this.pending.get(tag) : undefined;
      if (p && tag !== undefined) {
        this.releaseTag(tag);
        p.reject(new NinePClientError(Errno.EPROTO, `undecodable reply: ${(e as Error).message}`));
      }
      return;
    }
    const p = this.pending.get(msg.tag);
    if (!p) return;
    if (p.flushed) return; // the Rflush handler frees this tag
    this.releaseTag(msg.tag);
    if (msg.type === 'Rlerror') p.reject(new NinePClientError(msg.ecode));
    else if (msg.type === 'Rerror')
      p.reject(new NinePClientError(msg.errno || errnoFromText(msg.ename) || Errno.EIO, msg.ename));
    else if (msg.type !== p.expect)
      p.reject(new NinePClientError(Errno.EPROTO, `expected ${p.expect}, got ${msg.type}`));
    else p.resolve(msg);
  };

  private fail(e: Error): void {
    if (this.closedError) return;
    this.closedError = e;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) if (!p.flushed) p.reject(e);
    if (!this.stream.destroyed) this.stream.destroy();
  }

  /**
   * Requests sent in the same tick (a pipelined chain) are encoded back to back into `slab` (from
   * `batchStart`) and leave in one write at the end of the tick. Bytes handed to the stream are
   * never written again: a full slab is left to the stream and a new one taken.
   */
  private slab: Buffer = Buffer.allocUnsafe(SLAB_BYTES);
  private slabUsed = 0;
  private batchStart = 0;
  /** This tick's earlier bytes when there is more than the slab's run: older runs, large payloads. */
  private batchParts: Uint8Array[] | undefined;
  private flushQueued = false;
  private readonly sendBatch = () => {
    this.flushQueued = false;
    const run = this.slab.subarray(this.batchStart, this.slabUsed);
    this.batchStart = this.slabUsed;
    const parts = this.batchParts;
    this.batchParts = undefined;
    if (this.stream.destroyed) return;
    if (!parts) {
      if (run.length > 0) this.stream.write(run);
      return;
    }
    if (run.length > 0) parts.push(run);
    this.stream.cork();
    for (const part of parts) this.stream.write(part);
    this.stream.uncork();
  };

  /** Ends the slab's run here (a payload goes next, or a new slab). */
  private cutRun(): void {
    if (this.slabUsed > this.batchStart) {
      this.batchParts ??= [];
      this.batchParts.push(this.slab.subarray(this.batchStart, this.slabUsed));
    }
    this.batchStart = this.slabUsed;
  }

  private newSlab(atLeast: number): void {
    this.cutRun();
    this.slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, atLeast));
    this.slabUsed = 0;
    this.batchStart = 0;
  }

  private queue(msg: Message, payload: Uint8Array | undefined): void {
    if (!this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(this.sendBatch);
    }
    if (payload) {
      const m = msg as MessageOf<'Twrite'>;
      const inline = payload.length <= INLINE_PAYLOAD_BYTES;
      const size = TWRITE_HEADER_BYTES + (inline ? payload.length : 0);
      if (this.slab.length - this.slabUsed < size) this.newSlab(size);
      writeTwriteHeader(this.slab, this.slabUsed, m.tag, m.fid, m.offset, payload.length);
      this.slabUsed += TWRITE_HEADER_BYTES;
      if (inline) {
        this.slab.set(payload, this.slabUsed);
        this.slabUsed += payload.length;
      } else {
        // Large data goes as it is, not copied.
        this.cutRun();
        (this.batchParts as Uint8Array[]).push(payload);
      }
      return;
    }
    for (let fresh = false; ; fresh = true) {
      try {
        this.slabUsed += encodeMessageInto(msg, this.dialect, this.slab, this.slabUsed);
        return;
      } catch (e) {
        if (!(e instanceof NinePEncodeError) || (fresh && this.slab.length >= this.msize)) throw e;
        this.newSlab(fresh ? this.slab.length * 4 : SLAB_BYTES);
      }
    }
  }

  private allocTag(): number {
    const t = this.freeTags.pop();
    if (t !== undefined) return t;
    if (this.nextTag >= NOTAG) throw new NinePClientError(Errno.EAGAIN, 'too many outstanding requests');
    return this.nextTag++;
  }

  private releaseTag(tag: number): void {
    this.pending.delete(tag);
    if (tag !== NOTAG) this.freeTags.push(tag);
  }

  private allocFid(): number {
    return this.freeFids.pop() ?? this.nextFid++;
  }

  /** Sends one request and resolves with its reply (of the expected type) or rejects with NinePClientError. */
  rpc<K extends Message['type']>(
    msg: Message,
    expect: K,
    signal?: AbortSignal,
    payload?: Uint8Array,
  ): Promise<MessageOf<K>> {
    let tag: number;
    try {
      if (this.closedError) throw this.closedError;
      signal?.throwIfAborted();
      tag = msg.type === 'Tversion' ? NOTAG : this.allocTag();
    } catch (e) {
      return Promise.reject(e);
    }
    msg.tag = tag;
    let onAbort: (() => void) | undefined;
    const reply = new Promise<Message>((resolve, reject) => {
      const p: Pending = { resolve, reject, expect, flushed: false };
      this.pending.set(tag, p);
      if (signal) {
        onAbort = () => {
          if (this.pending.get(tag) !== p || p.flushed) return;
          p.flushed = true;
          reject(
            signal.reason instanceof Error ? signal.reason : new NinePClientError(Errno.EINTR, 'aborted'),
          );
          // The old tag stays reserved until the server has answered the Tflush.
          this.rpc({ type: 'Tflush', tag: 0, oldtag: tag }, 'Rflush').then(
            () => this.releaseTag(tag),
            () => this.pending.delete(tag),
          );
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
    if (signal && onAbort) {
      const listener = onAbort;
      reply.then(
        () => signal.removeEventListener('abort', listener),
        () => signal.removeEventListener('abort', listener),
      );
    }
    try {
      this.queue(msg, payload);
    } catch (e) {
      this.releaseTag(tag);
      return Promise.reject(e);
    }
    return reply as Promise<MessageOf<K>>;
  }

  /** Sends Tflush for `oldtag` and waits for Rflush. */
  async flush(oldtag: number): Promise<void> {
    await this.rpc({ type: 'Tflush', tag: 0, oldtag }, 'Rflush');
  }

  async attach(uname = '', aname = '', nUname = NONUNAME): Promise<Fid> {
    const id = this.allocFid();
    try {
      const r = await this.rpc(
        { type: 'Tattach', tag: 0, fid: id, afid: NOFID, uname, aname, nUname },
        'Rattach',
      );
      const fid = { id, qid: r.qid, iounit: 0 };
      this.root ??= fid;
      return fid;
    } catch (e) {
      this.freeFids.push(id);
      throw e;
    }
  }

  /** Walks from `fid` to a new fid (names may exceed 16: the walk is split). Fails unless every name resolves. */
  async walk(fid: Fid, names: readonly string[]): Promise<Fid> {
    const id = this.allocFid();
    let from = fid.id;
    let qid = fid.qid;
    let i = 0;
    try {
      do {
        const part = names.slice(i, i + MAXWELEM);
        const r = await this.rpc({ type: 'Twalk', tag: 0, fid: from, newfid: id, names: [...part] }, 'Rwalk');
        if (r.qids.length < part.length) {
          if (from === id) await this.clunkId(id);
          throw new NinePClientError(Errno.ENOENT, `walk failed at ${JSON.stringify(part[r.qids.length])}`);
        }
        if (r.qids.length > 0) qid = r.qids[r.qids.length - 1]!;
        from = id;
        i += MAXWELEM;
      } while (i < names.length);
    } catch (e) {
      if (from !== id) this.freeFids.push(id);
      throw e;
    }
    return { id, qid, iounit: 0 };
  }

  /** Opens with Linux open(2) flags (converted to a 9P2000 mode for 9P2000/.u). */
  async open(fid: Fid, flags: number): Promise<Fid> {
    if (this.dialect === '9P2000.L') {
      const r = await this.rpc({ type: 'Tlopen', tag: 0, fid: fid.id, flags }, 'Rlopen');
      fid.qid = r.qid;
      fid.iounit = r.iounit;
    } else {
      const r = await this.rpc({ type: 'Topen', tag: 0, fid: fid.id, mode: flagsToOpenMode(flags) }, 'Ropen');
      fid.qid = r.qid;
      fid.iounit = r.iounit;
    }
    return fid;
  }

  /** Creates and opens `name` in directory `fid`; afterwards `fid` names the new open file. */
  async create(fid: Fid, name: string, flags: number, mode = 0o644, gid = NONUNAME): Promise<Fid> {
    if (this.dialect === '9P2000.L') {
      const r = await this.rpc(
        { type: 'Tlcreate', tag: 0, fid: fid.id, name, flags: flags | OpenFlags.O_CREAT, mode, gid },
        'Rlcreate',
      );
      fid.qid = r.qid;
      fid.iounit = r.iounit;
    } else {
      const r = await this.rpc(
        {
          type: 'Tcreate',
          tag: 0,
          fid: fid.id,
          name,
          perm: mode & 0o777,
          mode: flagsToOpenMode(flags),
          extension: '',
        },
        'Rcreate',
      );
      fid.qid = r.qid;
      fid.iounit = r.iounit;
    }
    return fid;
  }

  /** Reads up to `count` bytes (clamped to what one message carries). The result is a view of the reply. */
  async read(
    fid: Fid,
    offset: number,
    count: number,
    options: { signal?: AbortSignal } = {},
  ): Promise<Uint8Array> {
    const r = await this.rpc(
      { type: 'Tread', tag: 0, fid: fid.id, offset, count: Math.min(count, this.maxIo) },
      'Rread',
      options.signal,
    );
    return r.data;
  }

  /** Writes up to one message's worth of `data`; returns how many bytes the server took. */
  async write(fid: Fid, offset: number, data: Uint8Array): Promise<number> {
    const part = data.length > this.maxIo ? data.subarray(0, this.maxIo) : data;
    const r = await this.rpc(
      { type: 'Twrite', tag: 0, fid: fid.id, offset, data: part },
      'Rwrite',
      undefined,
      part,
    );
    return r.count;
  }

  /** All entries of an open directory (Treaddir for .L; stat records via Tread for 9P2000/.u). */
  async readdir(fid: Fid): Promise<ClientDirEntry[]> {
    const out: ClientDirEntry[] = [];
    let offset = 0;
    for (let rounds = 0; rounds < 1_000_000; rounds++) {
      if (this.dialect === '9P2000.L') {
        const r = await this.rpc(
          { type: 'Treaddir', tag: 0, fid: fid.id, offset, count: this.maxIo },
          'Rreaddir',
        );
        const ents = decodeDirents(r.data);
        if (ents.length === 0) break;
        for (const e of ents) out.push({ name: e.name, qid: e.qid, type: e.type, offset: e.offset });
        offset = ents[ents.length - 1]!.offset;
      } else {
        const data = await this.read(fid, offset, this.maxIo);
        if (data.length === 0) break;
        let p = 0;
        while (p < data.length) {
          const { stat, next } = decodeStat(data, p, this.dialect);
          p = next;
          out.push({
            name: stat.name,
            qid: stat.qid,
            type: dtypeFromQid(stat.qid),
            offset: offset + p,
            stat,
          });
        }
        offset += data.length;
      }
    }
    return out;
  }

  /** The 9P2000/.u stat record. */
  async stat(fid: Fid): Promise<Stat> {
    return (await this.rpc({ type: 'Tstat', tag: 0, fid: fid.id }, 'Rstat')).stat;
  }

  async wstat(fid: Fid, stat: Stat): Promise<void> {
    await this.rpc({ type: 'Twstat', tag: 0, fid: fid.id, stat }, 'Rwstat');
  }

  /** Attributes in every dialect (Tgetattr for .L, Tstat converted for 9P2000/.u). */
  async getattr(fid: Fid): Promise<Attr> {
    if (this.dialect !== '9P2000.L') return attrFromStat(await this.stat(fid));
    const r = await this.rpc(
      { type: 'Tgetattr', tag: 0, fid: fid.id, requestMask: GetattrMask.BASIC },
      'Rgetattr',
    );
    return {
      qid: r.qid,
      mode: r.mode,
      uid: r.uid,
      gid: r.gid,
      nlink: r.nlink,
      rdev: r.rdev,
      size: r.size,
      blksize: r.blksize,
      blocks: r.blocks,
      atimeSec: r.atimeSec,
      atimeNsec: r.atimeNsec,
      mtimeSec: r.mtimeSec,
      mtimeNsec: r.mtimeNsec,
      ctimeSec: r.ctimeSec,
      ctimeNsec: r.ctimeNsec,
    };
  }

  /** Changes attributes (Tsetattr for .L, Twstat for 9P2000/.u). */
  async setattr(fid: Fid, changes: SetAttr): Promise<void> {
    if (this.dialect !== '9P2000.L') {
      const s = dontTouchStat();
      if (changes.mode !== undefined) s.mode = changes.mode & 0o777;
      if (changes.size !== undefined) s.length = changes.size;
      const now = Math.floor(Date.now() / 1000);
      if (changes.mtime !== undefined) s.mtime = changes.mtime === 'now' ? now : changes.mtime.sec;
      if (changes.atime !== undefined) s.atime = changes.atime === 'now' ? now : changes.atime.sec;
      if (this.dialect === '9P2000.u') {
        if (changes.uid !== undefined) s.nUid = changes.uid;
        if (changes.gid !== undefined) s.nGid = changes.gid;
      }
      return this.wstat(fid, s);
    }
    let valid = 0;
    const t = (v: SetAttr['atime']) => (v && v !== 'now' ? v : { sec: 0, nsec: 0 });
    if (changes.mode !== undefined) valid |= SetattrMask.MODE;
    if (changes.uid !== undefined) valid |= SetattrMask.UID;
    if (changes.gid !== undefined) valid |= SetattrMask.GID;
    if (changes.size !== undefined) valid |= SetattrMask.SIZE;
    if (changes.atime !== undefined)
      valid |= SetattrMask.ATIME | (changes.atime === 'now' ? 0 : SetattrMask.ATIME_SET);
    if (changes.mtime !== undefined)
      valid |= SetattrMask.MTIME | (changes.mtime === 'now' ? 0 : SetattrMask.MTIME_SET);
    await this.rpc(
      {
        type: 'Tsetattr',
        tag: 0,
        fid: fid.id,
        valid,
        mode: changes.mode ?? 0,
        uid: changes.uid ?? 0,
        gid: changes.gid ?? 0,
        size: changes.size ?? 0,
        atimeSec: t(changes.atime).sec,
        atimeNsec: t(changes.atime).nsec,
        mtimeSec: t(changes.mtime).sec,
        mtimeNsec: t(changes.mtime).nsec,
      },
      'Rsetattr',
    );
  }

  /** Removes the file `fid` names; the fid is clunked either way. */
  async remove(fid: Fid): Promise<void> {
    try {
      await this.rpc({ type: 'Tremove', tag: 0, fid: fid.id }, 'Rremove');
    } finally {
      this.freeFids.push(fid.id);
    }
  }

  async clunk(fid: Fid): Promise<void> {
    await this.clunkId(fid.id);
  }

  private async clunkId(id: number): Promise<void> {
    try {
      await this.rpc({ type: 'Tclunk', tag: 0, fid: id }, 'Rclunk');
    } finally {
      this.freeFids.push(id);
    }
  }

  /** Makes directory `name` in directory `dir`. */
  async mkdir(dir: Fid, name: string, mode = 0o755, gid = NONUNAME): Promise<Qid> {
    if (this.dialect === '9P2000.L')
      return (await this.rpc({ type: 'Tmkdir', tag: 0, dfid: dir.id, name, mode, gid }, 'Rmkdir')).qid;
    const f = await this.walk(dir, []);
    try {
      const r = await this.rpc(
        {
          type: 'Tcreate',
          tag: 0,
          fid: f.id,
          name,
          perm: (DirMode.DMDIR | (mode & 0o777)) >>> 0,
          mode: 0,
          extension: '',
        },
        'Rcreate',
      );
      return r.qid;
    } finally {
      await this.clunk(f);
    }
  }

  /** Makes symlink `name` → `target` in directory `dir` (.L and .u only). */
  async symlink(dir: Fid, name: string, target: string, gid = NONUNAME): Promise<Qid> {
    if (this.dialect === '9P2000.L')
      return (await this.rpc({ type: 'Tsymlink', tag: 0, fid: dir.id, name, target, gid }, 'Rsymlink')).qid;
    if (this.dialect !== '9P2000.u')
      throw new NinePClientError(Errno.EOPNOTSUPP, 'symlinks need 9P2000.u or .L');
    const f = await this.walk(dir, []);
    try {
      const r = await this.rpc(
        {
          type: 'Tcreate',
          tag: 0,
          fid: f.id,
          name,
          perm: (DirMode.DMSYMLINK | 0o777) >>> 0,
          mode: 0,
          extension: target,
        },
        'Rcreate',
      );
      return r.qid;
    } finally {
      await this.clunk(f);
    }
  }

  async readlink(fid: Fid): Promise<string> {
    if (this.dialect === '9P2000.L')
      return (await this.rpc({ type: 'Treadlink', tag: 0, fid: fid.id }, 'Rreadlink')).target;
    const s = await this.stat(fid);
    if (!(s.mode & DirMode.DMSYMLINK)) throw new NinePClientError(Errno.EINVAL, 'not a symlink');
    return s.extension;
  }

  /**
   * Renames the file `fid` names to `newName` in `newDir`. 9P2000/.u can only rename within the
   * same directory (Twstat), so there `newDir` must be the file's own directory.
   */
  async rename(fid: Fid, newDir: Fid, newName: string): Promise<void> {
    if (this.dialect === '9P2000.L') {
      await this.rpc({ type: 'Trename', tag: 0, fid: fid.id, dfid: newDir.id, name: newName }, 'Rrename');
      return;
    }
    const s = dontTouchStat();
    s.name = newName;
    await this.wstat(fid, s);
  }

  /** .L: rename an entry of one directory into another. */
  async renameat(oldDir: Fid, oldName: string, newDir: Fid, newName: string): Promise<void> {
    await this.rpc(
      { type: 'Trenameat', tag: 0, oldDirFid: oldDir.id, oldName, newDirFid: newDir.id, newName },
      'Rrenameat',
    );
  }

  /** .L: remove entry `name` of directory `dir`. */
  async unlinkat(dir: Fid, name: string, isDir = false): Promise<void> {
    await this.rpc(
      { type: 'Tunlinkat', tag: 0, dirFid: dir.id, name, flags: isDir ? AT_REMOVEDIR : 0 },
      'Runlinkat',
    );
  }

  async link(dir: Fid, target: Fid, name: string): Promise<void> {
    await this.rpc({ type: 'Tlink', tag: 0, dfid: dir.id, fid: target.id, name }, 'Rlink');
  }

  async statfs(fid: Fid): Promise<StatFs> {
    const r = await this.rpc({ type: 'Tstatfs', tag: 0, fid: fid.id }, 'Rstatfs');
    return {
      type: r.fsType,
      bsize: r.bsize,
      blocks: r.blocks,
      bfree: r.bfree,
      bavail: r.bavail,
      files: r.files,
      ffree: r.ffree,
      fsid: r.fsid,
      namelen: r.namelen,
    };
  }

  async fsync(fid: Fid): Promise<void> {
    if (this.dialect === '9P2000.L')
      await this.rpc({ type: 'Tfsync', tag: 0, fid: fid.id, datasync: 0 }, 'Rfsync');
    else await this.wstat(fid, dontTouchStat());
  }

  private splitPath(path: string): string[] {
    return path.split('/').filter((p) => p !== '' && p !== '.');
  }

  private rootFid(root?: Fid): Fid {
    const r = root ?? this.root;
    if (!r) throw new NinePClientError(Errno.EBADF, 'attach first');
    return r;
  }

  /**
   * Reads a whole file: walk, open, read until a short read, clunk. Several reads are kept in flight
   * (`window`) so a large file streams rather than ping-pongs.
   */
  async readFile(path: string, options: { root?: Fid; window?: number } = {}): Promise<Uint8Array> {
    const fid = await this.walk(this.rootFid(options.root), this.splitPath(path));
    try {
      await this.open(fid, OpenFlags.O_RDONLY);
      const chunk = fid.iounit > 0 ? Math.min(fid.iounit, this.maxIo) : this.maxIo;
      const window = Math.max(1, options.window ?? 4);
      const parts: Uint8Array[] = [];
      let total = 0;
      let nextOffset = 0;
      const inflight: Promise<Uint8Array>[] = [];
      // The first read alone: small files (the common case) then cost one round trip.
      for (;;) {
        while (inflight.length < (parts.length === 0 ? 1 : window)) {
          inflight.push(this.read(fid, nextOffset, chunk));
          nextOffset += chunk;
        }
        const data = await inflight.shift()!;
        if (data.length > 0) {
          parts.push(data);
          total += data.length;
        }
        if (data.length < chunk) {
          await Promise.allSettled(inflight);
          break;
        }
      }
      if (parts.length === 1) return parts[0]!;
      return Buffer.concat(parts, total);
    } finally {
      // Nothing waits on the clunk (its fid number is reused only after Rclunk): one round trip saved.
      this.clunk(fid).catch(() => {});
    }
  }

  /** Writes a whole file, creating it (mode 0644) or truncating it; `append` adds to the end instead. */
  async writeFile(
    path: string,
    data: Uint8Array,
    options: { root?: Fid; append?: boolean } = {},
  ): Promise<void> {
    const names = this.splitPath(path);
    const name = names.pop();
    if (name === undefined) throw new NinePClientError(Errno.EISDIR, 'cannot write the root');
    const dir = await this.walk(this.rootFid(options.root), names);
    let fid: Fid;
    try {
      const existing = await this.walk(dir, [name]).catch((e: unknown) => {
        if (e instanceof NinePClientError && e.errno === Errno.ENOENT) return undefined;
        throw e;
      });
      fid = existing ?? (await this.walk(dir, []));
      const opened = fid;
      const flags = OpenFlags.O_WRONLY | (options.append ? OpenFlags.O_APPEND : OpenFlags.O_TRUNC);
      await (existing ? this.open(opened, flags) : this.create(opened, name, flags, 0o644)).catch(
        async (e: unknown) => {
          await this.clunk(opened).catch(() => {});
          throw e;
        },
      );
    } finally {
      await this.clunk(dir).catch(() => {});
    }
    try {
      // 9P2000 has no O_APPEND guarantee: write at the current size.
      const base = options.append && this.dialect !== '9P2000.L' ? (await this.getattr(fid)).size : 0;
      const chunk = fid.iounit > 0 ? Math.min(fid.iounit, this.maxIo) : this.maxIo;
      let done = 0;
      while (done < data.length) {
        const n = await this.write(fid, base + done, data.subarray(done, done + chunk));
        if (n === 0) throw new NinePClientError(Errno.EIO, 'short write');
        done += n;
      }
    } finally {
      await this.clunk(fid).catch(() => {});
    }
  }

  /** Fails every outstanding request and closes the connection. */
  close(): void {
    this.fail(new NinePClientError(Errno.EIO, 'client closed'));
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }
}
