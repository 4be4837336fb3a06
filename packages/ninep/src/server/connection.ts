import {
  type Attr,
  type Dialect,
  Errno,
  FileMode,
  type FsBackend,
  type FsNode,
  type FsOpenFile,
  NinePError,
  OpenFlags,
  QidType,
  type RequestContext,
  type SetAttr,
} from '../backend.js';
import { NinePDecodeError, NinePEncodeError, WireWriter } from '../wire/buffer.js';
import {
  AT_REMOVEDIR,
  DirMode,
  GetattrMask,
  IOHDRSZ,
  LockStatus,
  LockType,
  MessageType,
  NOFID,
  NONUNAME,
  OpenMode,
  RREAD_HEADER_SIZE,
  SetattrMask,
} from '../wire/constants.js';
import { deviceNumbers, openModeToFlags, setAttrFromWstat, statFromAttr } from '../wire/convert.js';
import { writeDirent } from '../wire/dirent.js';
import { errorText } from '../wire/errstr.js';
import { FrameSplitter } from '../wire/frame.js';
import {
  type Message,
  type MessageOf,
  type Stat,
  decodeMessage,
  encodeMessageInto,
  writeRreadHeader,
  writeStat,
} from '../wire/messages.js';

export interface ServerOptions {
  /** The largest msize the server agrees to (default 1 MiB). */
  maxMsize?: number;
  /** Requests processed at once per connection before the server stops reading (default 256). */
  maxOutstanding?: number;
  /** How long a flushed request may take to stop before it is dropped and Rflush sent (default 5000 ms). */
  flushGraceMs?: number;
  /** Bytes of Tread replies being prepared at once per connection before the server stops reading (default 32 MiB). */
  maxOutstandingReadBytes?: number;
  /** Fids per connection (default 131072); more are refused with EMFILE. */
  maxFids?: number;
  /** Where reasons for closed connections and backend failures go (default console.error with a `ninep:` prefix). */
  logger?: (message: string) => void;
}

/** Rread buffers (msize each) kept per connection for reuse once the transport has sent them. */
const READ_POOL_SIZE = 4;

export const defaultLogger = (message: string): void => console.error(`ninep: ${message}`);

/** What the server knows about one fid: the chain of nodes walked from the attach root, and open state. */
interface FidState {
  nodes: FsNode[];
  names: string[];
  uid: number;
  uname: string;
  file: FsOpenFile | undefined;
  /** True once Topen/Tlopen/Tcreate succeeded (even for nodes opened without a file, e.g. .u symlinks). */
  opened: boolean;
  openFlags: number;
  removeOnClunk: boolean;
  /** 9P2000/.u directory reads: stat records are served at byte offsets the server tracks. */
  dirRead: DirReadState | undefined;
}

interface DirReadState {
  byteOffset: number;
  cookie: number;
  pending: Uint8Array[];
  eof: boolean;
}

/** One in-flight request; it is also the RequestContext backends see (signal created on demand). */
class Request implements RequestContext {
  controller: AbortController | undefined;
  flushed = false;
  /** Tflush requests waiting for this one to finish. */
  waiters: (() => void)[] | undefined;
  /** Fid ordering (see `ordered`): the fid it is on (-1: none), the other fid it makes (-1: none). */
  fid = -1;
  newfid = -1;
  /** It makes or opens `fid` (attach, open, create; a walk to itself). */
  makesFid = false;
  /** It ends `fid` (clunk, remove): it waits until nothing else runs on it. */
  endsFid = false;
  /** The traffic it counts in while it runs; released once, when it is answered or dropped. */
  own: FidTraffic | undefined;
  made: FidTraffic | undefined;
  uid = -1;
  uname = '';
  /** For Tread/Treaddir: the reply size this request may need. */
  readBytes = 0;
  dropTimer: ReturnType<typeof setTimeout> | undefined;
  constructor(
    readonly tag: number,
    readonly dialect: Dialect,
    readonly msg: Message,
  ) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.flushed) this.controller.abort(new NinePError(Errno.EINTR, 'request flushed'));
    }
    return this.controller.signal;
  }

  abort(): void {
    this.flushed = true;
    this.controller?.abort(new NinePError(Errno.EINTR, 'request flushed'));
  }
}

/** A reply that is already bytes (Rread/Rreaddir built in place), optionally with a buffer to give back. */
interface RawReply {
  raw: Uint8Array[];
  release?: () => void;
}
type Reply = Message | RawReply;

function isRaw(r: Reply): r is RawReply {
  return (r as RawReply).raw !== undefined;
}

function validName(name: string): boolean {
  return name.length > 0 && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

function checkName(name: string): void {
  if (!validName(name)) throw new NinePError(Errno.EINVAL);
}

function isDirNode(node: FsNode): boolean {
  return (node.qid.type & QidType.DIR) !== 0;
}

/*
 * Errors the server raises itself carry no text of their own: a plain 9P2000 client (Linux) turns
 * the Rerror text back into an errno, which only works for the standard strerror texts.
 */
function unsupported(): NinePError {
  return new NinePError(Errno.EOPNOTSUPP);
}

/**
 * One 9P connection as a sans-I/O state machine: feed it the client's bytes with `receive`, and it
 * calls `onSend` with reply bytes (the parts form one write). `release`, when given, may be called
 * once the bytes have been copied out or written to the kernel, so the buffer is reused for a later
 * reply; never call it while anything still refers to the parts. Transports (TCP, Unix sockets,
 * virtio-9p) sit outside.
 *
 * `receive` takes ownership of the bytes: the caller must not reuse the buffer (Twrite data is passed
 * to the backend as a view of it).
 */
interface FidTraffic {
  /** Requests running on this fid. */
  busy: number;
  /** Of those, ones that make or open it. */
  making: number;
  /** Requests that arrived while this fid was not ready for them, in arrival order. */
  waiting: Request[];
}

export class ServerConnection {
  onSend: (parts: Uint8Array[], release?: () => void) => void = () => {};
  onClose: (reason: string | undefined) => void = () => {};
  /** Asked to stop (true) or resume (false) reading input, as requests pile up. */
  onPause: (paused: boolean) => void = () => {};

  readonly maxMsize: number;
  private readonly maxOutstanding: number;
  private readonly maxReadBytes: number;
  private readonly flushGraceMs: number;
  /** Sum of the (clamped) counts of Treads in flight: their reply buffers are what costs memory. */
  private readBytes = 0;
  private readonly maxFids: number;
  private readonly log: (message: string) => void;
  private readonly splitter: FrameSplitter;

  private dialect: Dialect | undefined;
  private msize: number;
  private fids = new Map<number, FidState>();
  private inflight = new Map<number, Request>();
  /** Fids with requests in flight, so a pipelining client's later requests on them wait their turn. */
  private fidTraffic = new Map<number, FidTraffic>();
  /** Frames received while too many requests are in flight. */
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private paused = false;
  private scratch: Uint8Array;
  private readPool: Uint8Array[] = [];
  private isClosed = false;

  constructor(
    private readonly backend: FsBackend,
    options: ServerOptions = {},
  ) {
    this.maxMsize = Math.max(4096, options.maxMsize ?? 1024 * 1024);
    this.maxOutstanding = Math.max(1, options.maxOutstanding ?? 256);
    this.maxReadBytes = Math.max(1, options.maxOutstandingReadBytes ?? 32 * 1024 * 1024);
    this.flushGraceMs = Math.max(0, options.flushGraceMs ?? 5000);
    this.maxFids = options.maxFids ?? 131072;
    this.log = options.logger ?? defaultLogger;
    this.msize = this.maxMsize;
    this.splitter = new FrameSplitter(this.maxMsize);
    // Most replies are tiny; grown to msize only if one does not fit.
    this.scratch = new Uint8Array(8192);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get negotiatedDialect(): Dialect | undefined {
    return this.dialect;
  }

  get negotiatedMsize(): number {
    return this.msize;
  }

  /** Requests currently being processed. */
  get outstanding(): number {
    return this.inflight.size;
  }

  get fidCount(): number {
    return this.fids.size;
  }

  receive(bytes: Uint8Array): void {
    if (this.isClosed) return;
    try {
      this.splitter.push(bytes, this.onFrame);
    } catch (e) {
      // Only framing errors reach here: the stream cannot be resynchronised.
      this.close(e instanceof Error ? e.message : String(e));
    }
  }

  /** Aborts everything in flight, closes every open file and forgets every fid. */
  close(reason?: string): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (reason) this.log(`closing connection: ${reason}`);
    this.reset();
    this.queue = [];
    this.queuedBytes = 0;
    this.onClose(reason);
  }

  private onFrame = (frame: Uint8Array): void => {
    if (this.isClosed) return;
    if (this.paused || this.queue.length > 0) {
      // Tflush must get through, or a client at the cap could never cancel a blocked request.
      if (frame.length >= 9 && frame[4] === MessageType.Tflush && this.flushQueued(frame)) return;
      this.queue.push(frame);
      this.queuedBytes += frame.length;
      if (this.queuedBytes > 4 * this.maxMsize + 65536)
        this.close(`client sent too much while ${this.inflight.size} requests were outstanding`);
      return;
    }
    this.dispatch(frame);
  };

  /** Handles a Tflush that arrived while paused; false if it should just wait its turn. */
  private flushQueued(frame: Uint8Array): boolean {
    const oldtag = frame[7]! | (frame[8]! << 8);
    const i = this.queue.findIndex((f) => (f[5]! | (f[6]! << 8)) === oldtag);
    if (i >= 0) {
      // The flushed request never started: drop it, and answer the flush.
      const [dropped] = this.queue.splice(i, 1);
      this.queuedBytes -= dropped!.length;
    }
    this.dispatch(frame);
    return true;
  }

  private dispatch(frame: Uint8Array): void {
    const dialect = this.dialect ?? '9P2000';
    let msg: Message;
    try {
      msg = decodeMessage(frame, dialect);
    } catch (e) {
      const tag = e instanceof NinePDecodeError ? e.tag : undefined;
      if (tag === undefined || this.inflight.has(tag)) {
        this.close(`undecodable message: ${e instanceof Error ? e.message : String(e)}`);
        return;
      }
      this.sendError(
        tag,
        dialect,
        new NinePError(Errno.EPROTO, e instanceof Error ? e.message : 'bad message'),
      );
      return;
    }
    if (msg.type === 'Tversion') {
      this.version(msg);
      return;
    }
    if (this.inflight.has(msg.tag)) {
      this.close(`tag ${msg.tag} reused while still in flight`);
      return;
    }
    if (this.dialect === undefined) {
      this.sendError(msg.tag, dialect, new NinePError(Errno.EPROTO, 'Tversion must come first'));
      return;
    }
    const req = new Request(msg.tag, this.dialect, msg);
    this.inflight.set(msg.tag, req);
    if (msg.type === 'Tread' || msg.type === 'Treaddir') {
      req.readBytes = Math.min(msg.count, this.msize);
      this.readBytes += req.readBytes;
    }
    if ((this.inflight.size >= this.maxOutstanding || this.readBytes >= this.maxReadBytes) && !this.paused) {
      this.paused = true;
      this.onPause(true);
    }
    this.ordered(req);
  }

  private start(req: Request): void {
    let promise: Promise<Reply>;
    try {
      promise = this.handle(req, req.msg);
    } catch (e) {
      promise = Promise.reject(e);
    }
    promise.then(
      (reply) => this.finish(req, reply),
      (err: unknown) => this.finish(req, undefined, err),
    );
  }

  /**
   * Runs `req` now, or once earlier requests it depends on have finished: a request on a fid
   * waits for the walk/attach that makes the fid and the open/create that opens it; a clunk or
   * remove waits for everything on its fid. So a client may send walk+open+write+clunk back to
   * back (one round trip) and they run in order; clients that wait for each reply (Linux) never
   * wait here, and reads or writes on an open fid still run concurrently.
   */
  private ordered(req: Request): void {
    const msg = req.msg;
    if (!('fid' in msg)) {
      this.start(req);
      return;
    }
    const fid = msg.fid;
    const makes =
      msg.type === 'Twalk' || msg.type === 'Txattrwalk'
        ? msg.newfid
        : msg.type === 'Tattach' ||
            msg.type === 'Topen' ||
            msg.type === 'Tlopen' ||
            msg.type === 'Tcreate' ||
            msg.type === 'Tlcreate'
          ? fid
          : -1;
    req.fid = fid;
    req.makesFid = makes === fid;
    req.newfid = makes !== -1 && makes !== fid ? makes : -1;
    req.endsFid = msg.type === 'Tclunk' || msg.type === 'Tremove';
    const blocker = this.blockedBy(req, undefined);
    if (blocker) blocker.waiting.push(req);
    else this.run(req);
  }

  /**
   * What keeps `req` from starting (ignoring the queue `head`, which it heads, if any): requests
   * on a fid start in arrival order once the fid is made/opened (a clunk: once it is idle), and a
   * walk to a fid number waits until that number's earlier requests (its clunk) are done.
   */
  private blockedBy(req: Request, head: FidTraffic | undefined): FidTraffic | undefined {
    const own = this.fidTraffic.get(req.fid);
    if (own && ((own !== head && own.waiting.length > 0) || (req.endsFid ? own.busy > 0 : own.making > 0)))
      return own;
    if (req.newfid === -1) return undefined;
    const target = this.fidTraffic.get(req.newfid);
    if (target && ((target !== head && target.waiting.length > 0) || target.busy > 0)) return target;
    return undefined;
  }

  private traffic(id: number): FidTraffic {
    let t = this.fidTraffic.get(id);
    if (!t) {
      t = { busy: 0, making: 0, waiting: [] };
      this.fidTraffic.set(id, t);
    }
    return t;
  }

  private run(req: Request): void {
    const a = this.traffic(req.fid);
    a.busy++;
    if (req.makesFid) a.making++;
    req.own = a;
    if (req.newfid !== -1) {
      const b = this.traffic(req.newfid);
      b.busy++;
      b.making++;
      req.made = b;
    }
    this.start(req);
  }

  /** The request is answered or dropped: what waited on its fids may start. */
  private release(req: Request): void {
    const a = req.own;
    const b = req.made;
    req.own = undefined;
    req.made = undefined;
    if (a) this.leave(req.fid, a, req.makesFid);
    if (b) this.leave(req.newfid, b, true);
  }

  private leave(id: number, t: FidTraffic, making: boolean): void {
    t.busy--;
    if (making) t.making--;
    // Start waiters, in arrival order, while the head may start; one still blocked elsewhere
    // moves to that fid's queue. Each started one may make the fid busy again.
    while (t.waiting.length > 0) {
      const next = t.waiting[0]!;
      const blocker = this.blockedBy(next, t);
      if (blocker === t) break;
      t.waiting.shift();
      if (blocker) blocker.waiting.push(next);
      else this.run(next);
    }
    if (t.busy === 0 && t.waiting.length === 0 && this.fidTraffic.get(id) === t) this.fidTraffic.delete(id);
  }

  private finish(req: Request, reply: Reply | undefined, err?: unknown): void {
    if (this.isClosed || this.inflight.get(req.tag) !== req) {
      if (reply && isRaw(reply)) reply.release?.();
      return;
    }
    this.inflight.delete(req.tag);
    this.readBytes -= req.readBytes;
    if (req.dropTimer) clearTimeout(req.dropTimer);
    // A flushed request that failed (usually because it was aborted) gets no reply; Rflush says it all.
    if (reply === undefined) {
      if (!req.flushed) this.sendError(req.tag, req.dialect, err);
    } else if (isRaw(reply)) {
      this.onSend(reply.raw, reply.release);
    } else {
      this.sendMessage(reply, req.dialect);
    }
    this.release(req);
    if (req.waiters) for (const w of req.waiters) w();
    this.maybeResume();
  }

  private maybeResume(): void {
    if (
      !this.paused ||
      this.inflight.size > this.maxOutstanding / 2 ||
      this.readBytes > this.maxReadBytes / 2
    )
      return;
    this.paused = false;
    // Drain queued frames until the cap is hit again.
    while (!this.paused && !this.isClosed && this.queue.length > 0) {
      const frame = this.queue.shift()!;
      this.queuedBytes -= frame.length;
      this.dispatch(frame);
    }
    if (!this.paused && !this.isClosed) this.onPause(false);
  }

  private sendMessage(msg: Message, dialect: Dialect): void {
    let n = -1;
    for (let attempt = 0; attempt < 2 && n < 0; attempt++) {
      try {
        n = encodeMessageInto(msg, dialect, this.scratch);
      } catch (e) {
        if (attempt === 0 && e instanceof NinePEncodeError && this.scratch.length < this.msize) {
          this.scratch = new Uint8Array(this.msize);
          continue;
        }
        this.log(`cannot encode ${msg.type}: ${e instanceof Error ? e.message : String(e)}`);
        break;
      }
    }
    if (n < 0 || n > this.msize) {
      if (msg.type !== 'Rerror' && msg.type !== 'Rlerror')
        this.sendError(msg.tag, dialect, new NinePError(Errno.EIO, 'reply too large'));
      return;
    }
    this.onSend([this.scratch.slice(0, n)]);
  }

  private sendError(tag: number, dialect: Dialect, err: unknown): void {
    let errno: number;
    let message: string;
    if (err instanceof NinePError) {
      errno = err.errno;
      message = errorText(err.errno, err.message);
    } else {
      errno = Errno.EIO;
      message = err instanceof Error ? err.message : String(err);
      this.log(
        `backend error (answered EIO): ${err instanceof Error ? (err.stack ?? err.message) : message}`,
      );
    }
    if (dialect === '9P2000.L') this.sendMessage({ type: 'Rlerror', tag, ecode: errno }, dialect);
    else this.sendMessage({ type: 'Rerror', tag, ename: message.slice(0, 1024), errno }, dialect);
  }

  private version(msg: MessageOf<'Tversion'>): void {
    const v = msg.version;
    let dialect: Dialect | undefined;
    if (v === '9P2000.L') dialect = '9P2000.L';
    else if (v === '9P2000.u') dialect = '9P2000.u';
    else if (v.startsWith('9P2000')) dialect = '9P2000';
    if (msg.msize < 256) {
      this.sendError(msg.tag, '9P2000', new NinePError(Errno.EINVAL));
      return;
    }
    // A Tversion aborts every outstanding request and clunks every fid.
    this.reset();
    this.dialect = dialect;
    this.msize = Math.min(msg.msize, this.maxMsize);
    this.splitter.maxFrameSize = this.msize;
    this.readPool = [];
    this.sendMessage(
      { type: 'Rversion', tag: msg.tag, msize: this.msize, version: dialect ?? 'unknown' },
      '9P2000',
    );
  }

  private reset(): void {
    for (const req of this.inflight.values()) {
      req.abort();
      if (req.dropTimer) clearTimeout(req.dropTimer);
    }
    this.inflight.clear();
    // Requests waiting their turn go with them; ones still running are never answered.
    this.fidTraffic.clear();
    this.readBytes = 0;
    const fids = [...this.fids.values()];
    this.fids.clear();
    for (const f of fids) this.closeFile(f);
    if (this.paused) {
      this.paused = false;
      if (!this.isClosed) this.onPause(false);
    }
  }

  private closeFile(f: FidState): void {
    const file = f.file;
    f.file = undefined;
    if (file)
      file
        .close()
        .catch((e: unknown) => this.log(`close failed: ${e instanceof Error ? e.message : String(e)}`));
  }

  // ---- fid helpers ------------------------------------------------------------------------

  private fid(req: Request, fid: number): FidState {
    const f = this.fids.get(fid);
    if (!f) throw new NinePError(Errno.EBADF);
    if (req.uid === -1 && req.uname === '') {
      req.uid = f.uid;
      req.uname = f.uname;
    }
    return f;
  }

  private node(f: FidState): FsNode {
    return f.nodes[f.nodes.length - 1]!;
  }

  private newFidCheck(fid: number): void {
    if (fid === NOFID) throw new NinePError(Errno.EBADF);
    if (this.fids.has(fid)) throw new NinePError(Errno.EBADF);
    if (this.fids.size >= this.maxFids) throw new NinePError(Errno.EMFILE);
  }

  private openFile(f: FidState): FsOpenFile {
    if (!f.file) throw new NinePError(Errno.EBADF);
    return f.file;
  }

  private unopened(f: FidState): void {
    if (f.opened) throw new NinePError(Errno.EBADF);
  }

  /** Parent directory node and entry name of a fid (for remove and rename). */
  private parentOf(f: FidState): { parent: FsNode; name: string } {
    const n = f.nodes.length;
    if (n < 2) throw new NinePError(Errno.EBUSY);
    return { parent: f.nodes[n - 2]!, name: f.names[n - 2]! };
  }

  // ---- dispatch ---------------------------------------------------------------------------

  private handle(req: Request, msg: Message): Promise<Reply> {
    const dotl = req.dialect === '9P2000.L';
    switch (msg.type) {
      case 'Tread':
        return this.read(req, msg);
      case 'Twrite':
        return this.write(req, msg);
      case 'Twalk':
        return this.walk(req, msg);
      case 'Tclunk':
        return this.clunk(req, msg);
      case 'Tflush':
        return this.flush(req, msg);
      case 'Tattach':
        return this.attach(req, msg);
      case 'Tauth':
        // ENOENT is how 9P servers say "no authentication needed" (diod's client relies on it).
        return Promise.reject(new NinePError(Errno.ENOENT, 'authentication not required'));
      case 'Tremove':
        return this.remove(req, msg);
      case 'Tgetattr':
        if (dotl) return this.getattr(req, msg);
        break;
      case 'Tlopen':
        if (dotl) return this.open(req, msg.tag, msg.fid, msg.flags, false);
        break;
      case 'Treaddir':
        if (dotl) return this.readdir(req, msg);
        break;
      case 'Tlcreate':
        if (dotl) return this.lcreate(req, msg);
        break;
      case 'Tsetattr':
        if (dotl) return this.setattr(req, msg);
        break;
      case 'Tmkdir':
        if (dotl) return this.mkdir(req, msg);
        break;
      case 'Tsymlink':
        if (dotl) return this.symlink(req, msg);
        break;
      case 'Tmknod':
        if (dotl) return this.mknod(req, msg);
        break;
      case 'Treadlink':
        if (dotl) return this.readlink(req, msg);
        break;
      case 'Trename':
        if (dotl) return this.rename(req, msg);
        break;
      case 'Trenameat':
        if (dotl) return this.renameat(req, msg);
        break;
      case 'Tunlinkat':
        if (dotl) return this.unlinkat(req, msg);
        break;
      case 'Tlink':
        if (dotl) return this.link(req, msg);
        break;
      case 'Tstatfs':
        if (dotl) return this.statfs(req, msg);
        break;
      case 'Tfsync':
        if (dotl) return this.fsync(req, msg);
        break;
      case 'Tlock':
        if (dotl) {
          this.fid(req, msg.fid);
          return Promise.resolve({ type: 'Rlock', tag: msg.tag, status: LockStatus.SUCCESS });
        }
        break;
      case 'Tgetlock':
        if (dotl) {
          this.fid(req, msg.fid);
          return Promise.resolve({ ...msg, type: 'Rgetlock', lockType: LockType.UNLCK });
        }
        break;
      case 'Txattrwalk':
      case 'Txattrcreate':
        if (dotl) {
          this.fid(req, msg.fid);
          return Promise.reject(new NinePError(Errno.EOPNOTSUPP));
        }
        break;
      case 'Topen':
        if (!dotl) return this.open(req, msg.tag, msg.fid, openModeToFlags(msg.mode), true, msg.mode);
        break;
      case 'Tcreate':
        if (!dotl) return this.create(req, msg);
        break;
      case 'Tstat':
        if (!dotl) return this.stat(req, msg);
        break;
      case 'Twstat':
        if (!dotl) return this.wstat(req, msg);
        break;
      default:
        break;
    }
    if ((MessageType[msg.type] & 1) === 1)
      return Promise.reject(new NinePError(Errno.EPROTO, `${msg.type} is a reply, not a request`));
    return Promise.reject(new NinePError(Errno.EOPNOTSUPP));
  }

  private flush(req: Request, msg: MessageOf<'Tflush'>): Promise<Reply> {
    const target = this.inflight.get(msg.oldtag);
    const reply: Message = { type: 'Rflush', tag: msg.tag };
    if (!target || target === req) return Promise.resolve(reply);
    target.abort();
    if (!target.dropTimer) {
      // A backend that ignores the abort must not hold the client's Tflush forever: drop the request.
      target.dropTimer = setTimeout(() => this.drop(target), this.flushGraceMs);
      target.dropTimer.unref?.();
    }
    return new Promise((resolve) => {
      target.waiters ??= [];
      target.waiters.push(() => resolve(reply));
    });
  }

  /** Forgets a flushed request whose backend call did not stop; its result, if any, is discarded. */
  private drop(req: Request): void {
    if (this.isClosed || this.inflight.get(req.tag) !== req) return;
    this.log(`tag ${req.tag}: backend did not stop ${this.flushGraceMs} ms after Tflush; request dropped`);
    this.inflight.delete(req.tag);
    this.readBytes -= req.readBytes;
    this.release(req);
    if (req.waiters) for (const w of req.waiters) w();
    this.maybeResume();
  }

  private async attach(req: Request, msg: MessageOf<'Tattach'>): Promise<Reply> {
    if (msg.afid !== NOFID)
      throw new NinePError(Errno.EINVAL, 'authentication not required; afid must be NOFID');
    this.newFidCheck(msg.fid);
    const uid = msg.nUname !== NONUNAME ? msg.nUname : /^\d+$/.test(msg.uname) ? Number(msg.uname) : -1;
    req.uid = uid;
    req.uname = msg.uname;
    const node = await this.backend.attach(msg.uname, msg.aname, req);
    this.newFidCheck(msg.fid);
    this.fids.set(msg.fid, {
      nodes: [node],
      names: [],
      uid,
      uname: msg.uname,
      file: undefined,
      opened: false,
      openFlags: 0,
      removeOnClunk: false,
      dirRead: undefined,
    });
    return { type: 'Rattach', tag: msg.tag, qid: node.qid };
  }

  private async walk(req: Request, msg: MessageOf<'Twalk'>): Promise<Reply> {
    const f = this.fid(req, msg.fid);
    // Walking from an open fid to a new one is harmless and diod's tools do it (diodls).
    if (msg.newfid === msg.fid) this.unopened(f);
    else this.newFidCheck(msg.newfid);
    const nodes = f.nodes.slice();
    const names = f.names.slice();
    const qids = [];
    for (let i = 0; i < msg.names.length; i++) {
      const name = msg.names[i]!;
      const cur = nodes[nodes.length - 1]!;
      try {
        if (name === '..') {
          // Resolved from the fid's own path: never above the attach root.
          if (nodes.length > 1) {
            nodes.pop();
            names.pop();
          }
        } else if (name !== '.') {
          if (!validName(name)) throw new NinePError(Errno.ENOENT);
          if (!isDirNode(cur) || !cur.walk) throw new NinePError(Errno.ENOTDIR);
          const found = cur.walk(name, req);
          const child = found instanceof Promise ? await found : found;
          nodes.push(child);
          names.push(name);
        }
      } catch (e) {
        if (i === 0) throw e;
        return { type: 'Rwalk', tag: msg.tag, qids };
      }
      qids.push(nodes[nodes.length - 1]!.qid);
    }
    if (msg.newfid !== msg.fid) {
      this.newFidCheck(msg.newfid);
    } else if (this.fids.get(msg.fid) !== f) {
      throw new NinePError(Errno.EBADF);
    }
    this.fids.set(msg.newfid, {
      nodes,
      names,
      uid: f.uid,
      uname: f.uname,
      file: undefined,
      opened: false,
      openFlags: 0,
      removeOnClunk: false,
      dirRead: undefined,
    });
    return { type: 'Rwalk', tag: msg.tag, qids };
  }

  private async open(
    req: Request,
    tag: number,
    fid: number,
    flags: number,
    classic: boolean,
    mode = 0,
  ): Promise<Reply> {
    const f = this.fid(req, fid);
    this.unopened(f);
    const node = this.node(f);
    if (!node.open) throw unsupported();
    if (isDirNode(node) && (flags & OpenFlags.O_ACCMODE) !== OpenFlags.O_RDONLY)
      throw new NinePError(Errno.EISDIR);
    // Creation goes through Tlcreate/Tcreate; a stray O_CREAT on open must not make files.
    const file = await node.open(flags & ~(OpenFlags.O_CREAT | OpenFlags.O_EXCL), req);
    if (this.fids.get(fid) !== f || f.opened) {
      await file.close();
      throw new NinePError(Errno.EBADF);
    }
    f.file = file;
    f.opened = true;
    f.openFlags = flags;
    if (classic && mode & OpenMode.ORCLOSE) f.removeOnClunk = true;
    const iounit = file.iounit ?? 0;
    return classic
      ? { type: 'Ropen', tag, qid: node.qid, iounit }
      : { type: 'Rlopen', tag, qid: node.qid, iounit };
  }

  private async read(req: Request, msg: MessageOf<'Tread'>): Promise<Reply> {
    const f = this.fid(req, msg.fid);
    const file = this.openFile(f);
    const count = Math.min(msg.count, this.msize - IOHDRSZ);
    if (isDirNode(this.node(f))) {
      if (req.dialect === '9P2000.L') throw new NinePError(Errno.EISDIR);
      return this.readDirStats(req, f, file, msg.tag, msg.offset, count);
    }
    if ((f.openFlags & OpenFlags.O_ACCMODE) === OpenFlags.O_WRONLY) throw new NinePError(Errno.EBADF);
    if (file.readInto) {
      const size = RREAD_HEADER_SIZE + count;
      let buf = this.readPool.pop();
      // Unzeroed: only the header and the bytes read are ever sent.
      if (!buf || buf.length < size) buf = Buffer.allocUnsafeSlow(Math.max(size, this.msize));
      let n: number;
      try {
        n = await file.readInto(msg.offset, buf.subarray(RREAD_HEADER_SIZE, size), req);
      } catch (e) {
        this.readPool.push(buf);
        throw e;
      }
      if (!(n >= 0 && n <= count)) throw new NinePError(Errno.EIO, 'backend read returned a bad count');
      writeRreadHeader(buf, 0, msg.tag, n);
      const owned = buf;
      return {
        raw: [buf.subarray(0, RREAD_HEADER_SIZE + n)],
        release: () => {
          if (this.readPool.length < READ_POOL_SIZE && owned.length === this.msize) this.readPool.push(owned);
        },
      };
    }
    let data = await file.read(msg.offset, count, req);
    if (data.length > count) data = data.subarray(0, count);
    const header = new Uint8Array(RREAD_HEADER_SIZE);
    writeRreadHeader(header, 0, msg.tag, data.length);
    return { raw: data.length > 0 ? [header, data] : [header] };
  }

  /** 9P2000/.u directory read: stat records at byte offsets, resumable only where the last read ended. */
  private async readDirStats(
    req: Request,
    f: FidState,
    file: FsOpenFile,
    tag: number,
    offset: number,
    count: number,
  ): Promise<Reply> {
    if (offset === 0 || !f.dirRead) f.dirRead = { byteOffset: 0, cookie: 0, pending: [], eof: false };
    const st = f.dirRead;
    if (offset !== st.byteOffset) throw new NinePError(Errno.EINVAL);
    const out = new Uint8Array(RREAD_HEADER_SIZE + count);
    let used = 0;
    const dir = this.node(f);
    for (let rounds = 0; rounds < 1000; rounds++) {
      while (st.pending.length > 0) {
        const rec = st.pending[0]!;
        if (used + rec.length > count) break;
        out.set(rec, RREAD_HEADER_SIZE + used);
        used += rec.length;
        st.pending.shift();
      }
      if (st.pending.length > 0 || st.eof) break;
      const entries = await file.readdir(st.cookie, count, req);
      if (entries.length === 0) {
        st.eof = true;
        break;
      }
      for (const e of entries) {
        st.cookie = e.offset;
        if (e.name === '.' || e.name === '..') continue;
        let attr: Attr | undefined = e.attr;
        let node: FsNode | undefined;
        try {
          if (!attr) {
            if (!dir.walk) continue;
            node = await dir.walk(e.name, req);
            attr = await node.getattr(req);
          }
          const ext = await this.extensionOf(req, attr, node, dir, e.name);
          st.pending.push(this.encodeStat(statFromAttr(attr, e.name, req.dialect, ext), req.dialect));
        } catch {
          // The entry vanished between readdir and stat: leave it out.
        }
      }
    }
    if (used === 0 && st.pending.length > 0) throw new NinePError(Errno.EINVAL);
    st.byteOffset += used;
    writeRreadHeader(out, 0, tag, used);
    return { raw: [out.subarray(0, RREAD_HEADER_SIZE + used)] };
  }

  private encodeStat(stat: Stat, dialect: Dialect): Uint8Array {
    if (this.scratch.length < this.msize) this.scratch = new Uint8Array(this.msize);
    const w = new WireWriter(this.scratch);
    writeStat(w, stat, dialect);
    return this.scratch.slice(0, w.pos);
  }

  /** The 9P2000.u stat extension: a symlink's target or a device's "c major minor". */
  private async extensionOf(
    req: Request,
    attr: Attr,
    node: FsNode | undefined,
    dir: FsNode | undefined,
    name: string,
  ): Promise<string> {
    if (req.dialect !== '9P2000.u') return '';
    const type = attr.mode & FileMode.S_IFMT;
    if (type === FileMode.S_IFLNK) {
      let n = node;
      if (!n && dir?.walk) n = await dir.walk(name, req);
      return (await n?.readlink?.(req)) ?? '';
    }
    if (type === FileMode.S_IFCHR || type === FileMode.S_IFBLK) {
      const { major, minor } = deviceNumbers(attr.rdev);
      return `${type === FileMode.S_IFCHR ? 'c' : 'b'} ${major} ${minor}`;
    }
    return '';
  }

  private async write(req: Request, msg: MessageOf<'Twrite'>): Promise<Reply> {
    const f = this.fid(req, msg.fid);
    const file = this.openFile(f);
    if ((f.openFlags & OpenFlags.O_ACCMODE) === OpenFlags.O_RDONLY) throw new NinePError(Errno.EBADF);
    const n = await file.write(msg.offset, msg.data, req);
    return { type: 'Rwrite', tag: msg.tag, count: Math.min(n, msg.data.length) };
  }

  private async clunk(req: Request, msg: MessageOf<'Tclunk'>): Promise<Reply> {
    const f = this.fid(req, msg.fid);
    this.fids.delete(msg.fid);
    const file = f.file;
    f.file = undefined;
    if (file) await file.close().catch((e: unknown) => this.log(`close failed: ${String(e)}`));
    if (f.removeOnClunk && f.nodes.length >= 2) {
      const { parent, name } = this.parentOf(f);
      await parent.unlink?.(name, isDirNode(this.node(f)), req);
    }
    return { type: 'Rclunk', tag: msg.tag };
  }

  private async remove(req: Request, msg: MessageOf<'Tremove'>): Promise<Reply> {
    const f = this.fid(req, msg.fid);
    // Tremove clunks the fid whether or not the remove succeeds.
    this.fids.delete(msg.fid);
    this.closeFile(f);
    const { parent, name } = this.parentOf(f);
    if (!parent.unlink) throw new NinePError(Errno.EPERM);
    await parent.unlink(name, isDirNode(this.node(f)), req);
    return { type: 'Rremove', tag: msg.tag };
  }

  private async getattr(req: Request, msg: MessageOf<'Tgetattr'>): Promise<Reply> {
    const f = this.fid(req, msg.fid);
    const a = await this.node(f).getattr(req);
    return {
      type: 'Rgetattr',
      tag: msg.tag,
      valid: GetattrMask.BASIC,
      qid: a.qid,
      mode: a.mode >>> 0,
      uid: a.uid >>> 0,
      gid: a.gid >>> 0,
      nlink: a.nlink,
      rdev: a.rdev,
      size: a.size,
      blksize: a.blksize,
      blocks: a.blocks,
      atimeSec: a.atimeSec,
      atimeNsec: a.atimeNsec,
      mtimeSec: a.mtimeSec,
      mtimeNsec: a.mtimeNsec,
      ctimeSec: a.ctimeSec,
      ctimeNsec: a.ctimeNsec,
      btimeSec: 0,
      btimeNsec: 0,
      gen: 0,
      dataVersion: 0,
    };
  }

  private async setattr(req: Request, msg: MessageOf<'Tsetattr'>): Promise<Reply> {
    const f = this.fid(req, msg.fid);
    const node = this.node(f);
    const changes: SetAttr = {};
    const v = msg.valid;
    if (v & SetattrMask.MODE) changes.mode = msg.mode & 0o7777;
    if (v & SetattrMask.UID) changes.uid = msg.uid;
    if (v & SetattrMask.GID) changes.gid = msg.gid;
    if (v & SetattrMask.SIZE) changes.size = msg.size;
    if (v & SetattrMask.ATIME)
      changes.atime = v & SetattrMask.ATIME_SET ? { sec: msg.atimeSec, nsec: msg.atimeNsec } : 'now';
    if (v & SetattrMask.MTIME)
      changes.mtime = v & SetattrMask.MTIME_SET ? { sec: msg.mtimeSec, nsec: msg.mtimeNsec } : 'now';
    if (Object.keys(changes).length > 0) {
      if (!node.setattr) throw new NinePError(Errno.EPERM);
      await node.setattr(changes, req);
    }
    return { type: 'Rsetattr', tag: msg.tag };
  }

  private async readdir(req: Request, msg: MessageOf<'Treaddir'>): Promise<Reply> {
    const f = this.fid(req, msg.fid);
    const file = this.openFile(f);
    if (!isDirNode(this.node(f))) throw new NinePError(Errno.ENOTDIR);
    const count = Math.min(msg.count, this.msize - IOHDRSZ);
    const entries = await file.readdir(msg.offset, count, req);
    const out = new Uint8Array(RREAD_HEADER_SIZE + count);
    const w = new WireWriter(out, RREAD_HEADER_SIZE);
    for (const e of entries) {
      const start = w.pos;
      try {
        writeDirent(w, e.qid, e.offset, e.type, e.name);
      } catch {
        w.pos = start;
        break;
      }
    }
    const used = w.pos - RREAD_HEADER_SIZE;
    if (used === 0 && entries.length > 0) throw new NinePError(Errno.EINVAL);
    writeRreadHeader(out, 0, msg.tag, used, MessageType.Rreaddir);
    return { raw: [out.subarray(0, RREAD_HEADER_SIZE + used)] };
  }

  /** Makes fid `f` name the new child `node` called `name` (after create). */
  private descend(f: FidState, node: FsNode, name: string): void {
    f.nodes = [...f.nodes, node];
    f.names = [...f.names, name];
  }

  private async lcreate(req: Request, msg: MessageOf<'Tlcreate'>): Promise<Reply> {
    const f = this.fid(req, msg.fid);
    this.unopened(f);
    checkName(msg.name);
    const dir = this.node(f);
    if (!dir.create) throw new NinePError(Errno.EPERM);
    const { node, file } = await dir.create(msg.name, msg.flags, msg.mode & 0o7777, msg.gid, req);
    if (this.fids.get(msg.fid) !== f || f.opened) {
      await file.close();
      throw new NinePError(Errno.EBADF);
    }
    this.descend(f, node, msg.name);
    f.file = file;
    f.opened = true;
    f.openFlags = msg.flags;
    return { type: 'Rlcreate', tag: msg.tag, qid: node.qid, iounit: file.iounit ?? 0 };
  }

  private async create(req: Request, msg: MessageOf<'Tcreate'>): Promise<Reply> {
    const f = this.fid(req, msg.fid);
    this.unopened(f);
    checkName(msg.name);
    const dir = this.node(f);
    const perm = msg.perm;
    const dotu = req.dialect === '9P2000.u';
    const bits =
      (perm & 0o777) | (perm & DirMode.DMSETUID ? 0o4000 : 0) | (perm & DirMode.DMSETGID ? 0o2000 : 0);
    let node: FsNode;
    let file: FsOpenFile | undefined;
    const flags = openModeToFlags(msg.mode);
    if (perm & DirMode.DMDIR) {
      if (!dir.mkdir) throw new NinePError(Errno.EPERM);
      node = await dir.mkdir(msg.name, bits, NONUNAME, req);
      if (node.open) file = await node.open(OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY, req);
    } else if (dotu && perm & DirMode.DMSYMLINK) {
      if (!dir.symlink) throw new NinePError(Errno.EPERM);
      node = await dir.symlink(msg.name, msg.extension, NONUNAME, req);
    } else if (dotu && perm & DirMode.DMLINK) {
      const target = this.fids.get(Number.parseInt(msg.extension, 10));
      if (!target) throw new NinePError(Errno.EBADF);
      if (!dir.link || !dir.walk) throw new NinePError(Errno.EPERM);
      await dir.link(this.node(target), msg.name, req);
      node = await dir.walk(msg.name, req);
    } else if (dotu && perm & (DirMode.DMDEVICE | DirMode.DMNAMEDPIPE | DirMode.DMSOCKET)) {
      if (!dir.mknod) throw new NinePError(Errno.EPERM);
      let mode = bits;
      let major = 0;
      let minor = 0;
      if (perm & DirMode.DMDEVICE) {
        const m = /^([bc]) (\d+) (\d+)$/.exec(msg.extension);
        if (!m) throw new NinePError(Errno.EINVAL);
        mode |= m[1] === 'b' ? FileMode.S_IFBLK : FileMode.S_IFCHR;
        major = Number(m[2]);
        minor = Number(m[3]);
      } else mode |= perm & DirMode.DMNAMEDPIPE ? FileMode.S_IFIFO : FileMode.S_IFSOCK;
      node = await dir.mknod(msg.name, mode, major, minor, NONUNAME, req);
    } else {
      if (!dir.create) throw new NinePError(Errno.EPERM);
      const r = await dir.create(msg.name, flags | OpenFlags.O_CREAT, bits, NONUNAME, req);
      node = r.node;
      file = r.file;
    }
    if (this.fids.get(msg.fid) !== f || f.opened) {
      await file?.close();
      throw new NinePError(Errno.EBADF);
    }
    this.descend(f, node, msg.name);
    f.file = file;
    f.opened = true;
    f.openFlags = perm & DirMode.DMDIR ? OpenFlags.O_RDONLY : flags;
    if (msg.mode & OpenMode.ORCLOSE) f.removeOnClunk = true;
    return { type: 'Rcreate', tag: msg.tag, qid: node.qid, iounit: file?.iounit ?? 0 };
  }

  private async mkdir(req: Request, msg: MessageOf<'Tmkdir'>): Promise<Reply> {
    const dir = this.node(this.fid(req, msg.dfid));
    checkName(msg.name);
    if (!dir.mkdir) throw new NinePError(Errno.EPERM);
    const node = await dir.mkdir(msg.name, msg.mode & 0o7777, msg.gid, req);
    return { type: 'Rmkdir', tag: msg.tag, qid: node.qid };
  }

  private async symlink(req: Request, msg: MessageOf<'Tsymlink'>): Promise<Reply> {
    const dir = this.node(this.fid(req, msg.fid));
    checkName(msg.name);
    if (!dir.symlink) throw new NinePError(Errno.EPERM);
    const node = await dir.symlink(msg.name, msg.target, msg.gid, req);
    return { type: 'Rsymlink', tag: msg.tag, qid: node.qid };
  }

  private async mknod(req: Request, msg: MessageOf<'Tmknod'>): Promise<Reply> {
    const dir = this.node(this.fid(req, msg.dfid));
    checkName(msg.name);
    if (!dir.mknod) throw new NinePError(Errno.EPERM);
    const node = await dir.mknod(msg.name, msg.mode, msg.major, msg.minor, msg.gid, req);
    return { type: 'Rmknod', tag: msg.tag, qid: node.qid };
  }

  private async readlink(req: Request, msg: MessageOf<'Treadlink'>): Promise<Reply> {
    const node = this.node(this.fid(req, msg.fid));
    if (!node.readlink) throw new NinePError(Errno.EINVAL);
    return { type: 'Rreadlink', tag: msg.tag, target: await node.readlink(req) };
  }

  private async rename(req: Request, msg: MessageOf<'Trename'>): Promise<Reply> {
    const f = this.fid(req, msg.fid);
    const d = this.fid(req, msg.dfid);
    checkName(msg.name);
    const { parent, name } = this.parentOf(f);
    if (!parent.rename) throw new NinePError(Errno.EPERM);
    const newDir = this.node(d);
    await parent.rename(name, newDir, msg.name, req);
    // The fid now lives under its new parent.
    f.nodes = [...d.nodes, this.node(f)];
    f.names = [...d.names, msg.name];
    return { type: 'Rrename', tag: msg.tag };
  }

  private async renameat(req: Request, msg: MessageOf<'Trenameat'>): Promise<Reply> {
    const oldDir = this.node(this.fid(req, msg.oldDirFid));
    const newDir = this.node(this.fid(req, msg.newDirFid));
    checkName(msg.oldName);
    checkName(msg.newName);
    if (!oldDir.rename) throw new NinePError(Errno.EPERM);
    await oldDir.rename(msg.oldName, newDir, msg.newName, req);
    return { type: 'Rrenameat', tag: msg.tag };
  }

  private async unlinkat(req: Request, msg: MessageOf<'Tunlinkat'>): Promise<Reply> {
    const dir = this.node(this.fid(req, msg.dirFid));
    checkName(msg.name);
    if (!dir.unlink) throw new NinePError(Errno.EPERM);
    await dir.unlink(msg.name, (msg.flags & AT_REMOVEDIR) !== 0, req);
    return { type: 'Runlinkat', tag: msg.tag };
  }

  private async link(req: Request, msg: MessageOf<'Tlink'>): Promise<Reply> {
    const dir = this.node(this.fid(req, msg.dfid));
    const target = this.node(this.fid(req, msg.fid));
    checkName(msg.name);
    if (!dir.link) throw new NinePError(Errno.EPERM);
    await dir.link(target, msg.name, req);
    return { type: 'Rlink', tag: msg.tag };
  }

  private async statfs(req: Request, msg: MessageOf<'Tstatfs'>): Promise<Reply> {
    const node = this.node(this.fid(req, msg.fid));
    const s = node.statfs
      ? await node.statfs(req)
      : {
          type: 0x01021997,
          bsize: 4096,
          blocks: 0,
          bfree: 0,
          bavail: 0,
          files: 0,
          ffree: 0,
          fsid: 0n,
          namelen: 255,
        };
    return {
      type: 'Rstatfs',
      tag: msg.tag,
      fsType: s.type >>> 0,
      bsize: s.bsize >>> 0,
      blocks: s.blocks,
      bfree: s.bfree,
      bavail: s.bavail,
      files: s.files,
      ffree: s.ffree,
      fsid: s.fsid,
      namelen: s.namelen >>> 0,
    };
  }

  private async fsync(req: Request, msg: MessageOf<'Tfsync'>): Promise<Reply> {
    const f = this.fid(req, msg.fid);
    await f.file?.fsync?.(req);
    return { type: 'Rfsync', tag: msg.tag };
  }

  private async stat(req: Request, msg: MessageOf<'Tstat'>): Promise<Reply> {
    const f = this.fid(req, msg.fid);
    const node = this.node(f);
    const attr = await node.getattr(req);
    const name = f.names.length > 0 ? f.names[f.names.length - 1]! : '/';
    const ext = await this.extensionOf(req, attr, node, undefined, name);
    return { type: 'Rstat', tag: msg.tag, stat: statFromAttr(attr, name, req.dialect, ext) };
  }

  private async wstat(req: Request, msg: MessageOf<'Twstat'>): Promise<Reply> {
    const f = this.fid(req, msg.fid);
    const node = this.node(f);
    const s = msg.stat;
    const changes = setAttrFromWstat(s);
    if (req.dialect !== '9P2000.u') {
      delete changes.uid;
      delete changes.gid;
    }
    const currentName = f.names[f.names.length - 1];
    if (s.name !== '' && s.name !== currentName) {
      checkName(s.name);
      const { parent, name } = this.parentOf(f);
      if (!parent.rename) throw new NinePError(Errno.EPERM);
      await parent.rename(name, parent, s.name, req);
      f.names = [...f.names.slice(0, -1), s.name];
    }
    if (Object.keys(changes).length > 0) {
      if (!node.setattr) throw new NinePError(Errno.EPERM);
      await node.setattr(changes, req);
    } else if (s.name === '' && f.file?.fsync) {
      // An all-"don't touch" wstat is a request to sync the file.
      await f.file.fsync(req);
    }
    return { type: 'Rwstat', tag: msg.tag };
  }
}
