import { lstatSync, symlinkSync, unlinkSync } from 'node:fs';
import { type Server, type Socket, createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { DeviceBase, DeviceId, gather, scatter, totalLength } from '../common.js';
import {
  SHUTDOWN_RECEIVE,
  SHUTDOWN_SEND,
  VSOCK_CID_HOST,
  VSOCK_HEADER_SIZE,
  VSOCK_TYPE_STREAM,
  type VsockHeader,
  VsockOp,
  decodeVsockHeader,
  encodeVsockHeader,
  parseConnectRequest,
  socketName,
} from './packet.js';

const RX = 0;
const TX = 1;
const QUEUE_SIZE = 256;
/** Bytes the host side buffers per connection for the guest (our advertised buf_alloc). */
const HOST_BUF_ALLOC = 256 * 1024;
/** Host-to-guest bytes held per connection before the host socket is paused. */
const MAX_PENDING_TO_GUEST = 256 * 1024;
const MAX_CONNECTIONS = 4096;
const MAX_CONTROL_PACKETS = 8192;
/** Host-initiated connections use local ports from 2^16 up, above any guest TCP-style port. */
const FIRST_HOST_PORT = 0x10000;
/** Longest a transmit completion (or a closing RST) waits for another interrupt to ride along with. */
const SIGNAL_DELAY_MS = 2;
/** How long a host peer may take to close after the guest's side closed. */
const PEER_CLOSE_GUARD_MS = 10_000;

export interface VirtioVsockOptions {
  guestCid: number;
  /** Directory of Unix sockets: `00000002.PPPPPPPP` (host services), `connect`, forwards. */
  path: string;
  /** Guest ports to expose as `path/CCCCCCCC.PPPPPPPP` listeners (and `guest.PPPPPPPP` symlinks). */
  guestForwards?: number[];
}

interface Connection {
  key: string;
  hostPort: number;
  guestPort: number;
  socket: Socket;
  state: 'connecting-to-host' | 'connecting-to-guest' | 'connected' | 'closed';
  /** Guest's receive buffer (from its headers). */
  peerBufAlloc: number;
  peerFwdCnt: number;
  /** Bytes we sent the guest. */
  txCnt: number;
  /** Bytes of guest data we wrote on to the host socket (our fwd_cnt). */
  fwdCnt: number;
  /** fwd_cnt the guest last heard from us. */
  fwdCntSent: number;
  /** Guest data the host socket has not yet accepted (counted into fwd_cnt on drain). */
  unflushed: number;
  toGuest: Uint8Array[];
  toGuestBytes: number;
  hostEof: boolean;
  eofSent: boolean;
  guestShutdown: number;
}

/**
 * virtio-vsock with hyperkit's host side: guest connections to host port P go to the Unix socket
 * `path/00000002.PPPPPPPP` (no listener → RST at once, so connect() fails promptly); host processes
 * reach guest port P by connecting to `path/connect` and writing "CCCCCCCC.PPPPPPPP\n", or through
 * a forward listener. Stream data follows virtio's credit-based flow control in both directions.
 */
export class VirtioVsock extends DeviceBase {
  readonly deviceId = DeviceId.VSOCK;
  readonly features = 0n;
  readonly queueMaxSizes = [QUEUE_SIZE, QUEUE_SIZE, 16];
  readonly guestCid: number;
  readonly path: string;
  private readonly conns = new Map<string, Connection>();
  private readonly control: Uint8Array[] = [];
  private readonly servers: Server[] = [];
  private readonly createdPaths: string[] = [];
  private nextHostPort = FIRST_HOST_PORT;
  /** Counters for tests and logs. */
  readonly stats = { connected: 0, refused: 0, resets: 0, interruptsDeferred: 0 };
  /** Transmit buffers given back without an interrupt yet (see `txDone`). */
  private txUnsignalled = 0;
  /** Receive buffers filled with packets that need no interrupt of their own (see `deferSignal`). */
  private rxUnsignalled = false;
  private signalTimer: NodeJS.Timeout | undefined;
  /** Control packets that need no interrupt of their own (a RST answering the guest's close). */
  private readonly lazyControl = new WeakSet<Uint8Array>();
  /** Packet headers are decoded from and encoded into this as they pass (never kept). */
  private readonly scratchHeader = new Uint8Array(VSOCK_HEADER_SIZE);
  /** A wake of the guest is scheduled for the end of this event-loop turn (see `fromHost`). */
  private wakeScheduled = false;
  private readonly wakeNow = (): void => {
    this.wakeScheduled = false;
    this.wakeGuest();
  };

  constructor(private readonly options: VirtioVsockOptions) {
    super();
    if (
      !Number.isInteger(options.guestCid) ||
      options.guestCid <= VSOCK_CID_HOST ||
      options.guestCid >= 0xffffffff
    ) {
      throw new RangeError(`guest_cid must be an integer above 2, got ${options.guestCid}`);
    }
    this.guestCid = options.guestCid;
    this.path = options.path;
  }

  /** Starts the host listeners (`connect` and forwards). */
  async listen(): Promise<void> {
    await this.listenOn(join(this.path, 'connect'), undefined);
    for (const port of this.options.guestForwards ?? []) {
      const name = socketName(this.guestCid, port);
      await this.listenOn(join(this.path, name), port);
      const link = join(this.path, `guest.${port.toString(16).padStart(8, '0')}`);
      removeStale(link);
      symlinkSync(name, link);
      this.createdPaths.push(link);
    }
  }

  private listenOn(path: string, forwardPort: number | undefined): Promise<void> {
    removeStale(path);
    const server = createServer({ allowHalfOpen: true }, (socket) => this.acceptHost(socket, forwardPort));
    this.servers.push(server);
    this.createdPaths.push(path);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  /** Closes listeners and every connection, and removes the sockets we created. */
  close(): void {
    clearTimeout(this.signalTimer);
    this.signalTimer = undefined;
    for (const s of this.servers) s.close();
    this.servers.length = 0;
    for (const c of this.conns.values()) c.socket.destroy();
    this.conns.clear();
    for (const p of this.createdPaths) removeStale(p);
    this.createdPaths.length = 0;
  }

  override readConfig(offset: number, size: number): number {
    const cfg = new Uint8Array(8);
    const v = new DataView(cfg.buffer);
    v.setUint32(0, this.guestCid, true);
    let out = 0;
    for (let i = size - 1; i >= 0; i--) out = out * 256 + (cfg[offset + i] ?? 0);
    return out >>> 0;
  }

  protected override onReset(): void {
    clearTimeout(this.signalTimer);
    this.signalTimer = undefined;
    this.txUnsignalled = 0;
    this.rxUnsignalled = false;
    for (const c of this.conns.values()) c.socket.destroy();
    this.conns.clear();
    this.control.length = 0;
  }

  /**
   * Host events (socket connects, data, closes) wake an idle guest once per event-loop turn rather than at
   * each one: woken at once, the guest runs (in the microtask after the first callback) before the turn's
   * other callbacks, so a guest with many connections in flight would take one interrupt, one worker run
   * and one idle cycle per host event. Woken at the turn's end, it finds every answer that arrived.
   */
  protected override wakeAfterHostEvent(): void {
    if (!this.wakeScheduled) {
      this.wakeScheduled = true;
      setImmediate(this.wakeNow);
    }
  }

  // ---- host side ----

  private acceptHost(socket: Socket, forwardPort: number | undefined): void {
    if (!this.ctx || this.conns.size >= MAX_CONNECTIONS) {
      socket.destroy();
      return;
    }
    if (forwardPort !== undefined) {
      this.startHostConnection(socket, forwardPort);
      return;
    }
    // The first 18 bytes name the guest port; anything after is stream data.
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (head.length < 18) return;
      socket.off('data', onData);
      socket.pause();
      const req = parseConnectRequest(head.subarray(0, 18).toString('latin1'));
      if (!req || req.cid !== this.guestCid) {
        socket.destroy();
        return;
      }
      const conn = this.startHostConnection(socket, req.port);
      if (conn && head.length > 18) this.queueToGuest(conn, new Uint8Array(head.subarray(18)));
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
  }

  private startHostConnection(socket: Socket, guestPort: number): Connection | undefined {
    const hostPort = this.allocateHostPort(guestPort);
    if (hostPort === undefined) {
      socket.destroy();
      return undefined;
    }
    socket.pause();
    const conn = this.newConnection(hostPort, guestPort, socket, 'connecting-to-guest');
    this.sendControl(conn, VsockOp.REQUEST, 0);
    return conn;
  }

  private allocateHostPort(guestPort: number): number | undefined {
    for (let i = 0; i < MAX_CONNECTIONS * 2; i++) {
      const p = this.nextHostPort;
      this.nextHostPort = p >= 0xfffffff0 ? FIRST_HOST_PORT : p + 1;
      if (!this.conns.has(`${p}:${guestPort}`)) return p;
    }
    return undefined;
  }

  private newConnection(
    hostPort: number,
    guestPort: number,
    socket: Socket,
    state: Connection['state'],
  ): Connection {
    const conn: Connection = {
      key: `${hostPort}:${guestPort}`,
      hostPort,
      guestPort,
      socket,
      state,
      peerBufAlloc: 0,
      peerFwdCnt: 0,
      txCnt: 0,
      fwdCnt: 0,
      fwdCntSent: 0,
      unflushed: 0,
      toGuest: [],
      toGuestBytes: 0,
      hostEof: false,
      eofSent: false,
      guestShutdown: 0,
    };
    this.conns.set(conn.key, conn);
    socket.on('data', (chunk: Buffer) =>
      this.fromHost(() =>
        this.queueToGuest(conn, new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)),
      ),
    );
    socket.on('end', () =>
      this.fromHost(() => {
        conn.hostEof = true;
        this.pump();
      }),
    );
    socket.on('drain', () =>
      this.fromHost(() => {
        conn.fwdCnt += conn.unflushed;
        conn.unflushed = 0;
        this.maybeCreditUpdate(conn);
        this.pump();
      }),
    );
    socket.on('error', () => socket.destroy());
    socket.on('close', () =>
      this.fromHost(() => {
        if (this.conns.get(conn.key) !== conn || conn.state === 'closed') return;
        // Let queued data and the EOF reach the guest first; then reset what is left.
        conn.hostEof = true;
        if (conn.toGuestBytes === 0 || conn.state !== 'connected') this.resetConnection(conn);
        else this.pump();
      }),
    );
    return conn;
  }

  private queueToGuest(conn: Connection, bytes: Uint8Array): void {
    if (conn.state === 'closed') return;
    conn.toGuest.push(bytes);
    conn.toGuestBytes += bytes.length;
    if (conn.toGuestBytes >= MAX_PENDING_TO_GUEST) conn.socket.pause();
    this.pump();
  }

  private resetConnection(conn: Connection, lazy = false): void {
    if (conn.state !== 'closed') this.sendControl(conn, VsockOp.RST, 0, lazy);
    this.drop(conn);
  }

  private drop(conn: Connection): void {
    conn.state = 'closed';
    if (this.conns.get(conn.key) === conn) this.conns.delete(conn.key);
    const socket = conn.socket;
    if (conn.guestShutdown & SHUTDOWN_SEND && !socket.destroyed) {
      // The guest finished sending: let what it sent reach the host peer, then close. The guard against a
      // peer that never closes goes when the socket does, not 10 s later holding the connection alive.
      socket.end();
      const guard = setTimeout(() => socket.destroy(), PEER_CLOSE_GUARD_MS).unref();
      socket.once('close', () => clearTimeout(guard));
    } else socket.destroy();
  }

  // ---- packets to the guest ----

  private header(
    conn: { hostPort: number; guestPort: number },
    op: number,
    flags: number,
    len: number,
    c?: Connection,
  ): VsockHeader {
    return {
      srcCid: VSOCK_CID_HOST,
      dstCid: this.guestCid,
      srcPort: conn.hostPort,
      dstPort: conn.guestPort,
      len,
      type: VSOCK_TYPE_STREAM,
      op,
      flags,
      bufAlloc: c ? HOST_BUF_ALLOC : 0,
      fwdCnt: c ? c.fwdCnt : 0,
    };
  }

  private sendControl(conn: Connection, op: number, flags: number, lazy = false): void {
    conn.fwdCntSent = conn.fwdCnt;
    const packet = encodeVsockHeader(this.header(conn, op, flags, 0, conn));
    if (lazy) this.lazyControl.add(packet);
    this.queueControl(packet);
  }

  private queueControl(packet: Uint8Array): void {
    if (this.control.length >= MAX_CONTROL_PACKETS) {
      this.fail('too many control packets waiting for receive buffers');
      return;
    }
    this.control.push(packet);
    this.pump();
  }

  /** Tells the guest about freed buffer space once a good part of our window was consumed. */
  private maybeCreditUpdate(conn: Connection): void {
    if (conn.state === 'connected' && conn.fwdCnt - conn.fwdCntSent >= HOST_BUF_ALLOC / 4) {
      this.sendControl(conn, VsockOp.CREDIT_UPDATE, 0);
    }
  }

  /** Fills receive buffers: control packets first, then data within each connection's credit. */
  private pump(): void {
    const ctx = this.ctx;
    if (!ctx) return;
    const q = ctx.queues[RX]!;
    let used = false;
    let urgent = false;
    for (;;) {
      if (!q.hasAvailable()) break;
      const packet = this.control[0];
      if (packet) {
        if (!this.lazyControl.has(packet)) urgent = true;
        const chain = q.pop()!;
        if (totalLength(chain.writable) < VSOCK_HEADER_SIZE) {
          this.fail('vsock receive buffer smaller than a packet header');
          return;
        }
        this.control.shift();
        scatter(ctx.memory, chain.writable, 0, packet);
        q.pushUsed(chain.head, VSOCK_HEADER_SIZE);
        used = true;
        continue;
      }
      const conn = this.nextSender();
      if (!conn) break;
      const chain = q.pop()!;
      const room = totalLength(chain.writable) - VSOCK_HEADER_SIZE;
      if (room < 0) {
        this.fail('vsock receive buffer smaller than a packet header');
        return;
      }
      if (conn.toGuestBytes === 0) {
        // only the host's EOF is left to tell
        conn.eofSent = true;
        conn.fwdCntSent = conn.fwdCnt;
        scatter(
          ctx.memory,
          chain.writable,
          0,
          encodeVsockHeader(this.header(conn, VsockOp.SHUTDOWN, SHUTDOWN_SEND, 0, conn), this.scratchHeader),
        );
        q.pushUsed(chain.head, VSOCK_HEADER_SIZE);
        used = urgent = true;
        if (conn.guestShutdown & SHUTDOWN_SEND) this.drop(conn);
        continue;
      }
      const credit = conn.peerBufAlloc - (conn.txCnt - conn.peerFwdCnt);
      let n = Math.min(room, credit, conn.toGuestBytes);
      let off = VSOCK_HEADER_SIZE;
      while (n > 0) {
        const first = conn.toGuest[0]!;
        const take = Math.min(first.length, n);
        scatter(ctx.memory, chain.writable, off, first.subarray(0, take));
        off += take;
        n -= take;
        conn.toGuestBytes -= take;
        if (take === first.length) conn.toGuest.shift();
        else conn.toGuest[0] = first.subarray(take);
      }
      const len = off - VSOCK_HEADER_SIZE;
      conn.txCnt += len;
      conn.fwdCntSent = conn.fwdCnt;
      const header = encodeVsockHeader(this.header(conn, VsockOp.RW, 0, len, conn), this.scratchHeader);
      scatter(ctx.memory, chain.writable, 0, header);
      q.pushUsed(chain.head, off);
      used = urgent = true;
      if (conn.toGuestBytes < MAX_PENDING_TO_GUEST / 2 && !conn.hostEof) conn.socket.resume();
    }
    if (urgent) this.signalAll();
    else if (used) {
      this.rxUnsignalled = true;
      this.deferSignal();
    }
  }

  /**
   * Transmit completions only let the guest free its packets, and each interrupt costs an emulated guest
   * an interrupt entry and a worker wakeup. A connection's packets mostly draw an answer within a moment
   * (REQUEST → RESPONSE, RW → the peer's reply), and one interrupt serves every queue of the device: so
   * completions wait for the answer's interrupt, for SIGNAL_DELAY_MS at most, or until half the ring is
   * waiting. The RST that ends a connection the guest closed waits the same way (the guest's close()
   * does not block on it; it only frees the socket).
   */
  private txDone(count: number): void {
    const ctx = this.ctx;
    if (!ctx) return;
    this.txUnsignalled += count;
    if (this.txUnsignalled >= ctx.queues[TX]!.size / 2) this.signalAll();
    else this.deferSignal();
  }

  private deferSignal(): void {
    this.stats.interruptsDeferred++;
    this.signalTimer ??= setTimeout(() => {
      this.signalTimer = undefined;
      this.fromHost(() => this.signalAll());
    }, SIGNAL_DELAY_MS);
  }

  /** Signals whatever the guest has not been told about yet. */
  private signalAll(): void {
    clearTimeout(this.signalTimer);
    this.signalTimer = undefined;
    const ctx = this.ctx;
    if (!ctx) return;
    if (this.txUnsignalled > 0) {
      this.txUnsignalled = 0;
      ctx.notifyUsed(TX);
    }
    this.rxUnsignalled = false;
    ctx.notifyUsed(RX);
  }

  /** A connected stream with data the guest has room for, or an EOF to tell. */
  private nextSender(): Connection | undefined {
    for (const c of this.conns.values()) {
      if (c.state !== 'connected') continue;
      if (c.toGuestBytes > 0 && c.peerBufAlloc - (c.txCnt - c.peerFwdCnt) > 0) {
        // round robin: move to the back so others get their turn
        this.conns.delete(c.key);
        this.conns.set(c.key, c);
        return c;
      }
      if (c.toGuestBytes === 0 && c.hostEof && !c.eofSent) return c;
    }
    return undefined;
  }

  // ---- packets from the guest ----

  queueNotify(index: number): void {
    const ctx = this.ctx;
    if (!ctx) return;
    if (index === RX) {
      this.pump();
      return;
    }
    if (index !== TX) return;
    const q = ctx.queues[TX]!;
    const headerBytes = this.scratchHeader;
    let used = 0;
    for (let chain = q.pop(); chain; chain = q.pop()) {
      const total = totalLength(chain.readable);
      if (total < VSOCK_HEADER_SIZE) {
        this.fail(`vsock packet of ${total} bytes is shorter than its header`);
        return;
      }
      gather(ctx.memory, chain.readable, 0, headerBytes);
      const h = decodeVsockHeader(headerBytes);
      if (h.len > total - VSOCK_HEADER_SIZE) {
        this.fail(`vsock packet claims ${h.len} payload bytes but carries ${total - VSOCK_HEADER_SIZE}`);
        return;
      }
      const payload = h.op === VsockOp.RW && h.len > 0 ? new Uint8Array(h.len) : undefined;
      if (payload) gather(ctx.memory, chain.readable, VSOCK_HEADER_SIZE, payload);
      q.pushUsed(chain.head, 0);
      used++;
      this.handlePacket(h, payload);
    }
    this.pump();
    if (used > 0) this.txDone(used);
  }

  private resetUnknown(h: VsockHeader): void {
    if (h.op === VsockOp.RST) return; // never answer a reset with a reset
    this.stats.resets++;
    this.queueControl(
      encodeVsockHeader({
        srcCid: h.dstCid,
        dstCid: h.srcCid,
        srcPort: h.dstPort,
        dstPort: h.srcPort,
        len: 0,
        type: h.type,
        op: VsockOp.RST,
        flags: 0,
        bufAlloc: 0,
        fwdCnt: 0,
      }),
    );
  }

  private handlePacket(h: VsockHeader, payload: Uint8Array | undefined): void {
    if (h.srcCid !== this.guestCid || h.dstCid !== VSOCK_CID_HOST || h.type !== VSOCK_TYPE_STREAM) {
      this.resetUnknown(h);
      return;
    }
    const key = `${h.dstPort}:${h.srcPort}`;
    const conn = this.conns.get(key);
    if (conn) {
      conn.peerBufAlloc = h.bufAlloc;
      conn.peerFwdCnt = h.fwdCnt;
    }
    switch (h.op) {
      case VsockOp.REQUEST:
        if (conn || this.conns.size >= MAX_CONNECTIONS) {
          this.resetUnknown(h);
          return;
        }
        this.connectToHost(h);
        return;
      case VsockOp.RESPONSE:
        if (!conn || conn.state !== 'connecting-to-guest') {
          this.resetUnknown(h);
          return;
        }
        conn.state = 'connected';
        this.stats.connected++;
        conn.socket.resume();
        return;
      case VsockOp.RST:
        if (conn) this.drop(conn);
        return;
      case VsockOp.SHUTDOWN:
        if (!conn) {
          this.resetUnknown(h);
          return;
        }
        conn.guestShutdown |= h.flags & (SHUTDOWN_RECEIVE | SHUTDOWN_SEND);
        if (conn.guestShutdown & SHUTDOWN_SEND) conn.socket.end();
        if (conn.guestShutdown === (SHUTDOWN_RECEIVE | SHUTDOWN_SEND)) this.resetConnection(conn, true);
        return;
      case VsockOp.RW:
        if (!conn || conn.state !== 'connected' || conn.guestShutdown & SHUTDOWN_SEND) {
          this.resetUnknown(h);
          if (conn) this.drop(conn);
          return;
        }
        if (payload && payload.length > 0) {
          if (conn.socket.write(payload)) conn.fwdCnt += payload.length;
          else conn.unflushed += payload.length;
          this.maybeCreditUpdate(conn);
        }
        return;
      case VsockOp.CREDIT_UPDATE:
        if (!conn) this.resetUnknown(h);
        return; // the header's credit was recorded above; pump() runs after the batch
      case VsockOp.CREDIT_REQUEST:
        if (!conn) {
          this.resetUnknown(h);
          return;
        }
        this.sendControl(conn, VsockOp.CREDIT_UPDATE, 0);
        return;
      default:
        this.resetUnknown(h);
        if (conn) this.drop(conn);
    }
  }

  private connectToHost(h: VsockHeader): void {
    const path = join(this.path, socketName(VSOCK_CID_HOST, h.dstPort));
    const socket = createConnection({ path, allowHalfOpen: true });
    socket.pause();
    const conn = this.newConnection(h.dstPort, h.srcPort, socket, 'connecting-to-host');
    conn.peerBufAlloc = h.bufAlloc;
    conn.peerFwdCnt = h.fwdCnt;
    socket.once('connect', () =>
      this.fromHost(() => {
        if (conn.state !== 'connecting-to-host') return;
        conn.state = 'connected';
        this.stats.connected++;
        this.sendControl(conn, VsockOp.RESPONSE, 0);
        socket.resume();
      }),
    );
    socket.once('error', () =>
      this.fromHost(() => {
        if (conn.state === 'connecting-to-host') this.stats.refused++;
        this.resetConnection(conn);
      }),
    );
  }

  /** Open connections (tests). */
  get connectionCount(): number {
    return this.conns.size;
  }
}

/** Removes a socket or symlink we are about to (re)create; never a directory or regular file. */
function removeStale(path: string): void {
  try {
    const st = lstatSync(path);
    if (st.isSocket() || st.isSymbolicLink()) unlinkSync(path);
  } catch {
    // absent
  }
}
