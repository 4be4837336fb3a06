import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TcpOptions, type TcpSegment } from '../wire/tcp.js';
import { ByteQueue } from './byte-queue.js';

export type TcpState =
  | 'PENDING' // SYN received, waiting for the application to accept or reject
  | 'SYN_SENT'
  | 'SYN_RECEIVED'
  | 'ESTABLISHED'
  | 'FIN_WAIT_1'
  | 'FIN_WAIT_2'
  | 'CLOSING'
  | 'TIME_WAIT'
  | 'CLOSE_WAIT'
  | 'LAST_ACK'
  | 'CLOSED';

export type TcpCloseReason = 'closed' | 'reset' | 'timeout' | 'aborted' | 'rejected';

/** What a connection needs from the stack that owns it. */
export interface TcpHost {
  now(): number;
  /** Emits one segment; payload is `payloadLength` bytes at `payloadOffset` of `conn`'s send queue. */
  emitSegment(
    conn: TcpConnection,
    flags: number,
    sequence: number,
    options: TcpOptions | null,
    payloadOffset: number,
    payloadLength: number,
  ): void;
  markDirty(conn: TcpConnection): void;
  /**
   * Asks to send `conn`'s pending ACK a little later (delayed ACK), so a reply that comes meanwhile carries
   * it. Returns false when the host does not delay ACKs; then it goes now.
   */
  deferAck(conn: TcpConnection): boolean;
  armTimer(conn: TcpConnection): void;
  released(conn: TcpConnection): void;
  established(conn: TcpConnection): void;
  enteredTimeWait(conn: TcpConnection): void;
}

export interface TcpTuning {
  /** Receive buffer: the most we ever advertise, and the most we buffer for a paused consumer. */
  receiveBuffer: number;
  /** `write` returns false once this many bytes wait to be acknowledged. */
  sendHighWater: number;
  /** Our maximum segment size, from the MTU. */
  mss: number;
  /** When the link segments for us (TSO): the largest payload per emitted segment; 0 = one MSS. */
  tsoMaxPayload: number;
  timeWaitMs: number;
  maxRetries: number;
  maxSynAckRetries: number;
}

const MIN_RTO = 200;
const MAX_RTO = 60_000;
const INITIAL_RTO = 1000;
const MAX_OOO_SEGMENTS = 64;
/** SACK scoreboard size (ranges); beyond it the oldest knowledge is merged away, never unbounded. */
const MAX_SACKED_RANGES = 16;
/** Holes retransmitted per ACK during SACK recovery: the ACK clock paces them (RFC 6675's pipe, simplified). */
const HOLES_PER_ACK = 2;
const SHARED_TX_OPTIONS = new TcpOptions();

export const seqLt = (a: number, b: number): boolean => ((a - b) | 0) < 0;
export const seqLe = (a: number, b: number): boolean => ((a - b) | 0) <= 0;
export const seqGt = (a: number, b: number): boolean => ((a - b) | 0) > 0;
export const seqGe = (a: number, b: number): boolean => ((a - b) | 0) >= 0;
export const seqAdd = (a: number, n: number): number => (a + n) >>> 0;
export const seqSub = (a: number, b: number): number => (a - b) | 0;

interface OutOfOrder {
  seq: number;
  data: Uint8Array;
}

/**
 * One TCP connection terminated in the stack. Sans-I/O: segments come in through `receive`, go out through
 * the host, time passes through `onTimer`. The application side looks like a socket: `write`/`end`/`abort`,
 * `onData`/`onEnd`/`onClose`/`onDrain`, and `pause`/`resume` to push back on the peer by closing the window.
 */
export class TcpConnection {
  state: TcpState;
  // Callbacks for the application.
  onConnect: () => void = () => {};
  /** In-order data; the view is only valid during the call (copy to keep it). */
  onData: (chunk: Uint8Array) => void = () => {};
  onEnd: () => void = () => {};
  onDrain: () => void = () => {};
  onClose: (reason: TcpCloseReason) => void = () => {};

  // Send sequence space.
  iss: number;
  sndUna: number;
  sndNxt: number;
  /** Highest sequence sent; sndNxt falls back below it after a retransmission timeout. */
  sndMax: number;
  sndWnd = 0;
  sndWscale = 0;
  sndMss = 536;
  private readonly sendQueue = new ByteQueue();
  /** Sequence number of the first byte in sendQueue. */
  private queueSeq: number;
  private endRequested = false;
  private finSeq = 0;
  private cwnd: number;
  private ssthresh = 0x7fffffff;
  private dupAcks = 0;
  private inRecovery = false;
  private recoverSeq = 0;
  private sackedUpTo = 0; // highest right edge the peer SACKed
  private sackOk = false;
  /**
   * The SACK scoreboard (RFC 6675): ranges above sndUna the peer holds, as [start, end) pairs, sorted and
   * disjoint. Recovery retransmits only the holes between them; after a timeout they are skipped too.
   */
  private readonly sacked: number[] = [];
  /** Highest sequence retransmitted in the current recovery (RFC 6675 HighRxt). */
  private highRxt = 0;
  /** Bytes retransmitted, and retransmitted segments (for tests and stats). */
  retransmittedBytes = 0;
  retransmittedSegments = 0;
  /** host.now() of the last segment from the peer or data from the application (for idle timeouts). */
  lastActivity = 0;

  // Receive sequence space.
  irs = 0;
  rcvNxt = 0;
  rcvWscale = 0;
  private readonly receiveQueue = new ByteQueue();
  private readonly outOfOrder: OutOfOrder[] = [];
  private outOfOrderBytes = 0;
  private paused = false;
  private finReceived = false;
  private endDelivered = false;
  private lastAdvertisedEdge = 0;

  // Timestamps (RFC 7323).
  private tsOk = false;
  private tsRecent = 0;

  // Timers (absolute times from host.now(); 0 = off).
  rtoDeadline = 0;
  timeWaitDeadline = 0;
  private rto = INITIAL_RTO;
  private srtt = 0;
  private rttvar = 0;
  private retries = 0;
  private rttSeq = -1;
  private rttStart = 0;

  ackPending = false;
  /** The pending ACK only acknowledges small in-order data: it may wait briefly for a reply to carry it. */
  private ackDelayable = false;
  private synPending = false;
  dirty = false;
  private closedReported = false;
  /** Lets the stack count half-open state. */
  halfOpen = false;

  /** Options for outgoing segments: filled and emitted synchronously, so all connections share one. */
  private readonly tx = SHARED_TX_OPTIONS;

  constructor(
    private readonly host: TcpHost,
    readonly tuning: TcpTuning,
    readonly localAddress: number,
    readonly localPort: number,
    readonly remoteAddress: number,
    readonly remotePort: number,
    iss: number,
    initialState: TcpState,
  ) {
    this.state = initialState;
    this.iss = iss >>> 0;
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
    this.sndMax = this.iss;
    this.queueSeq = seqAdd(this.iss, 1);
    this.cwnd = 10 * 1460;
    this.lastActivity = host.now();
    let scale = 0;
    while (scale < 14 && tuning.receiveBuffer >>> scale > 65535) scale++;
    this.rcvWscale = scale;
  }

  // ---------------------------------------------------------------- application API

  /** Buffered bytes not yet acknowledged by the peer. */
  get bufferedAmount(): number {
    return this.sendQueue.length;
  }

  /** Queues `chunk` (kept by reference: do not modify it afterwards). Returns false above the high-water mark. */
  write(chunk: Uint8Array): boolean {
    if (this.endRequested || this.state === 'CLOSED') return false;
    this.sendQueue.push(chunk);
    this.lastActivity = this.host.now();
    this.host.markDirty(this);
    return this.sendQueue.length < this.tuning.sendHighWater;
  }

  /** Sends FIN after the queued data. */
  end(): void {
    if (this.endRequested || this.state === 'CLOSED') return;
    this.endRequested = true;
    this.finSeq = seqAdd(this.queueSeq, this.sendQueue.length);
    if (this.state === 'PENDING') this.reject();
    else this.host.markDirty(this);
  }

  /** Sends RST and forgets the connection. */
  abort(): void {
    if (this.state === 'CLOSED') return;
    if (this.state !== 'PENDING' && this.state !== 'TIME_WAIT')
      this.host.emitSegment(this, TCP_RST | TCP_ACK, this.sndMax, null, 0, 0);
    this.close('aborted');
  }

  /** Stops delivering data; further data is buffered and the advertised window shrinks to zero. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    while (!this.paused && this.receiveQueue.length > 0) this.onData(this.receiveQueue.shift(65536));
    if (!this.paused) this.maybeDeliverEnd();
    // Tell the peer the window opened if it has grown by a useful amount.
    if (
      seqSub(this.windowEdge(), this.lastAdvertisedEdge) >=
      Math.min(this.tuning.receiveBuffer / 4, 4 * this.tuning.mss)
    ) {
      this.ackPending = true;
      this.host.markDirty(this);
    }
  }

  /** For a PENDING connection: complete the handshake. */
  accept(): void {
    if (this.state !== 'PENDING') return;
    this.state = 'SYN_RECEIVED';
    this.sndNxt = seqAdd(this.iss, 1);
    this.sndMax = this.sndNxt;
    this.synPending = true;
    this.host.markDirty(this);
  }

  /** For a PENDING connection: answer the SYN with RST. */
  reject(): void {
    if (this.state !== 'PENDING') return;
    this.host.emitSegment(this, TCP_RST | TCP_ACK, 0, null, 0, 0);
    this.close('rejected');
  }

  /** Copies send-queue bytes into an outgoing frame. */
  copySendData(offset: number, dst: Uint8Array, dstOffset: number, length: number): void {
    this.sendQueue.copyOut(offset, dst, dstOffset, length);
  }

  /** Send-queue bytes as one view when contiguous (so a link can write them without a copy), else null. */
  sendDataView(offset: number, length: number): Uint8Array | null {
    return this.sendQueue.view(offset, length);
  }

  // ---------------------------------------------------------------- setup

  /** Passive open: record the peer's SYN. */
  initFromSyn(seg: TcpSegment, opts: TcpOptions): void {
    this.irs = seg.sequence;
    this.rcvNxt = seqAdd(this.irs, 1);
    this.applySynOptions(seg, opts);
    this.lastAdvertisedEdge = this.rcvNxt;
  }

  /** Active open: send a SYN. */
  connect(): void {
    this.state = 'SYN_SENT';
    this.sndNxt = seqAdd(this.iss, 1);
    this.sndMax = this.sndNxt;
    this.synPending = true;
    this.host.markDirty(this);
  }

  private applySynOptions(seg: TcpSegment, opts: TcpOptions): void {
    this.sndMss = opts.mss > 0 ? Math.min(opts.mss, this.tuning.mss) : 536;
    if (opts.windowScale >= 0) this.sndWscale = opts.windowScale;
    else this.rcvWscale = 0;
    this.sackOk = opts.sackPermitted;
    this.tsOk = opts.hasTimestamps;
    if (this.tsOk) {
      this.tsRecent = opts.tsVal;
      this.sndMss -= 12;
    }
    this.sndWnd = seg.window; // windows in SYNs are never scaled
    this.cwnd = 10 * this.sndMss;
  }

  // ---------------------------------------------------------------- input

  receive(seg: TcpSegment, opts: TcpOptions): void {
    const flags = seg.flags;
    const now = this.host.now();
    if (this.state === 'CLOSED') return;
    this.lastActivity = now;
    if (this.state === 'PENDING') {
      if (flags & TCP_RST) this.close('reset');
      return;
    }
    if (this.state === 'SYN_SENT') {
      this.receiveInSynSent(seg, opts, flags);
      return;
    }
    const seq = seg.sequence;
    const payloadLength = seg.payloadLength;
    const segLength = payloadLength + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0);
    const window = this.receiveWindow();

    // Acceptability test (RFC 9293 3.10.7.4).
    let acceptable: boolean;
    if (segLength === 0)
      acceptable =
        window === 0
          ? seq === this.rcvNxt
          : seqGe(seq, this.rcvNxt) && seqLt(seq, seqAdd(this.rcvNxt, window));
    else
      acceptable =
        window > 0 &&
        (seqGe(seq, this.rcvNxt)
          ? seqLt(seq, seqAdd(this.rcvNxt, window))
          : seqGt(seqAdd(seq, segLength), this.rcvNxt));
    if (!acceptable) {
      if (flags & TCP_SYN && this.state === 'SYN_RECEIVED' && seq === this.irs) {
        this.synPending = true; // the peer lost our SYN-ACK
        this.host.markDirty(this);
        return;
      }
      if (!(flags & TCP_RST)) this.scheduleAck();
      return;
    }
    if (flags & TCP_RST) {
      // Only an exact match resets; anything else in the window gets a challenge ACK (RFC 5961).
      if (seq === this.rcvNxt) this.close('reset');
      else this.scheduleAck();
      return;
    }
    if (flags & TCP_SYN) {
      this.scheduleAck();
      return;
    }
    if (!(flags & TCP_ACK)) return;
    if (this.tsOk && opts.hasTimestamps && seqLe(seq, this.rcvNxt)) this.tsRecent = opts.tsVal;

    const ack = seg.acknowledgment;
    if (this.state === 'SYN_RECEIVED') {
      if (ack !== this.sndNxt && !(seqGt(ack, this.sndUna) && seqLe(ack, this.sndNxt))) {
        this.host.emitSegment(this, TCP_RST, ack, null, 0, 0);
        return;
      }
      this.state = 'ESTABLISHED';
      this.synPending = false;
      this.sndUna = seqAdd(this.iss, 1);
      this.sndWnd = seg.window << this.sndWscale;
      this.retries = 0;
      this.rtoDeadline = 0;
      this.host.established(this);
      this.onConnect();
      if (this.state !== 'ESTABLISHED') return;
    }
    this.processAck(seg, opts, ack, payloadLength, flags, now);
    if (this.isClosed) return;

    if (
      payloadLength > 0 &&
      (this.state === 'ESTABLISHED' || this.state === 'FIN_WAIT_1' || this.state === 'FIN_WAIT_2')
    )
      this.processData(seq, seg.payload(), window);
    if (this.isClosed) return;

    if (flags & TCP_FIN && seqAdd(seq, payloadLength) === this.rcvNxt && !this.finReceived) {
      this.finReceived = true;
      this.rcvNxt = seqAdd(this.rcvNxt, 1);
      this.scheduleAck();
      switch (this.state) {
        case 'ESTABLISHED':
          this.state = 'CLOSE_WAIT';
          break;
        case 'FIN_WAIT_1':
          this.state = 'CLOSING';
          break;
        case 'FIN_WAIT_2':
          this.enterTimeWait(now);
          break;
        default:
          break;
      }
      this.maybeDeliverEnd();
    }
  }

  private receiveInSynSent(seg: TcpSegment, opts: TcpOptions, flags: number): void {
    const ack = seg.acknowledgment;
    const ackOk = (flags & TCP_ACK) !== 0 && ack === this.sndNxt;
    if (flags & TCP_ACK && !ackOk) {
      if (!(flags & TCP_RST)) this.host.emitSegment(this, TCP_RST, ack, null, 0, 0);
      return;
    }
    if (flags & TCP_RST) {
      if (ackOk) this.close('reset');
      return;
    }
    if (!(flags & TCP_SYN) || !ackOk) return;
    this.irs = seg.sequence;
    this.rcvNxt = seqAdd(this.irs, 1);
    this.lastAdvertisedEdge = this.rcvNxt;
    this.applySynOptions(seg, opts);
    this.sndWnd = seg.window << this.sndWscale;
    this.sndUna = ack;
    this.synPending = false;
    this.rtoDeadline = 0;
    this.retries = 0;
    this.state = 'ESTABLISHED';
    this.scheduleAck();
    this.host.established(this);
    this.onConnect();
  }

  private processAck(
    seg: TcpSegment,
    opts: TcpOptions,
    ack: number,
    payloadLength: number,
    flags: number,
    now: number,
  ): void {
    if (seqGt(ack, this.sndMax)) {
      this.scheduleAck(); // acknowledges something we never sent
      return;
    }
    const window = seg.window << this.sndWscale;
    if (this.sackOk && opts.sackCount > 0) {
      for (let k = 0; k < opts.sackCount; k++) {
        const left = opts.sackBlocks[k * 2]!;
        const right = opts.sackBlocks[k * 2 + 1]!;
        // Only blocks within what is outstanding: anything else is stale or bogus.
        if (!seqLt(left, right) || !seqLe(right, this.sndMax) || !seqGt(right, ack)) continue;
        if (seqGt(right, this.sackedUpTo)) this.sackedUpTo = right;
        this.markSacked(seqGt(left, ack) ? left : ack, right);
      }
    }
    if (seqGt(ack, this.sndUna)) {
      const acked = seqSub(ack, this.sndUna);
      // RTT sample: timestamps when present, else one timed segment (Karn: never a retransmitted one).
      if (this.tsOk && opts.hasTimestamps && opts.tsEcr !== 0) this.rttSample(((now >>> 0) - opts.tsEcr) | 0);
      else if (this.rttSeq >= 0 && seqGe(ack, this.rttSeq)) this.rttSample(now - this.rttStart);
      if (this.rttSeq >= 0 && seqGe(ack, this.rttSeq)) this.rttSeq = -1;
      const dataAcked = Math.min(Math.max(0, seqSub(ack, this.queueSeq)), this.sendQueue.length);
      if (dataAcked > 0) {
        const wasAboveHighWater = this.sendQueue.length >= this.tuning.sendHighWater;
        this.sendQueue.consume(dataAcked);
        this.queueSeq = seqAdd(this.queueSeq, dataAcked);
        if (wasAboveHighWater && this.sendQueue.length < this.tuning.sendHighWater) this.onDrainSoon();
      }
      this.sndUna = ack;
      this.trimScoreboard();
      if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
      this.retries = 0;
      this.dupAcks = 0;
      if (this.inRecovery) {
        if (seqGe(ack, this.recoverSeq)) {
          this.inRecovery = false;
          this.cwnd = this.ssthresh;
        } else if (this.sacked.length > 0) {
          this.retransmitHoles(now); // SACK recovery: the next holes the scoreboard shows
        } else {
          this.retransmitFirst(); // NewReno partial ACK: the next hole
        }
      } else if (this.cwnd < this.ssthresh) this.cwnd += Math.min(acked, this.sndMss);
      else this.cwnd += Math.max(1, Math.floor((this.sndMss * this.sndMss) / this.cwnd));
      this.rtoDeadline = this.sndUna === this.sndMax ? 0 : now + this.rto;
      if (this.rtoDeadline) this.host.armTimer(this);
      this.sndWnd = window;
      this.host.markDirty(this);
      const finAcked = this.endRequested && seqGt(ack, this.finSeq);
      if (finAcked) {
        if (this.state === 'FIN_WAIT_1') this.state = 'FIN_WAIT_2';
        else if (this.state === 'CLOSING') this.enterTimeWait(now);
        else if (this.state === 'LAST_ACK') {
          this.close('closed');
          return;
        }
      }
    } else if (ack === this.sndUna) {
      const flight = seqSub(this.sndMax, this.sndUna);
      if (payloadLength === 0 && !(flags & TCP_FIN) && window === this.sndWnd && flight > 0) {
        // Three duplicate ACKs, or SACK showing three segments' worth received past the hole (RFC 6675).
        this.dupAcks++;
        const sackSaysLost = this.sackOk && seqSub(this.sackedUpTo, this.sndUna) >= 3 * this.sndMss;
        if ((this.dupAcks === 3 || (sackSaysLost && this.dupAcks < 3)) && !this.inRecovery) {
          this.ssthresh = Math.max(flight >>> 1, 2 * this.sndMss);
          this.cwnd = this.ssthresh + 3 * this.sndMss;
          this.inRecovery = true;
          this.recoverSeq = this.sndMax;
          this.highRxt = this.sndUna;
          if (this.sacked.length > 0) this.retransmitHoles(now);
          else this.retransmitFirst();
        } else {
          if (this.dupAcks > 3) this.cwnd += this.sndMss;
          // In SACK recovery each duplicate ACK means segments left the network: fill the next holes.
          if (this.inRecovery && this.sacked.length > 0) this.retransmitHoles(now);
        }
      } else if (window !== this.sndWnd) {
        this.sndWnd = window;
        this.host.markDirty(this);
      }
    }
  }

  private onDrainSoon(): void {
    queueMicrotask(() => {
      if (this.state !== 'CLOSED') this.onDrain();
    });
  }

  private processData(seq: number, payload: Uint8Array, window: number): void {
    // Trim to what the window allows.
    const windowEnd = seqAdd(this.rcvNxt, window);
    if (seqGt(seqAdd(seq, payload.length), windowEnd))
      payload = payload.subarray(0, Math.max(0, seqSub(windowEnd, seq)));
    if (seqLt(seq, this.rcvNxt)) {
      payload = payload.subarray(seqSub(this.rcvNxt, seq));
      seq = this.rcvNxt;
    }
    this.scheduleAck();
    if (payload.length === 0) return;
    if (seq !== this.rcvNxt) {
      this.storeOutOfOrder(seq, payload);
      return;
    }
    this.rcvNxt = seqAdd(this.rcvNxt, payload.length);
    // A request-sized segment in order, nothing out of order: its ACK may ride on the reply.
    this.ackDelayable = payload.length < this.tuning.mss >>> 1 && this.outOfOrder.length === 0;
    this.deliver(payload, false);
    // Pull in out-of-order segments that are now contiguous.
    while (this.outOfOrder.length > 0) {
      const next = this.outOfOrder[0]!;
      if (seqGt(next.seq, this.rcvNxt)) break;
      this.outOfOrder.shift();
      this.outOfOrderBytes -= next.data.length;
      const skip = seqSub(this.rcvNxt, next.seq);
      if (skip < next.data.length) {
        const rest = next.data.subarray(skip);
        this.rcvNxt = seqAdd(this.rcvNxt, rest.length);
        this.deliver(rest, true);
      }
    }
  }

  private deliver(data: Uint8Array, owned: boolean): void {
    if (this.paused || this.receiveQueue.length > 0) this.receiveQueue.push(owned ? data : data.slice());
    else this.onData(data);
  }

  private maybeDeliverEnd(): void {
    if (this.finReceived && !this.endDelivered && !this.paused && this.receiveQueue.length === 0) {
      this.endDelivered = true;
      this.onEnd();
    }
  }

  private storeOutOfOrder(seq: number, payload: Uint8Array): void {
    if (this.outOfOrder.length >= MAX_OOO_SEGMENTS) return;
    let i = 0;
    while (i < this.outOfOrder.length && seqLt(this.outOfOrder[i]!.seq, seq)) i++;
    const existing = this.outOfOrder[i];
    if (existing && existing.seq === seq && existing.data.length >= payload.length) return;
    if (existing && existing.seq === seq) {
      this.outOfOrderBytes -= existing.data.length;
      this.outOfOrder.splice(i, 1);
    }
    this.outOfOrder.splice(i, 0, { seq, data: payload.slice() });
    this.outOfOrderBytes += payload.length;
  }

  private scheduleAck(): void {
    this.ackDelayable = false;
    if (!this.ackPending) {
      this.ackPending = true;
      this.host.markDirty(this);
    }
  }

  /** The window we can offer: the buffer minus what a paused consumer has not taken yet. */
  receiveWindow(): number {
    const free = this.tuning.receiveBuffer - this.receiveQueue.length - this.outOfOrderBytes;
    // Never move the right edge left (RFC 9293 3.8.6.2.2).
    const promised = seqSub(this.lastAdvertisedEdge, this.rcvNxt);
    return Math.max(free, promised, 0);
  }

  private windowEdge(): number {
    const window = this.receiveWindow();
    return seqAdd(this.rcvNxt, (window >>> this.rcvWscale) << this.rcvWscale);
  }

  // ---------------------------------------------------------------- output

  /** Sends whatever the state, windows and pending flags allow. Called by the stack when flushing. */
  transmit(): void {
    const now = this.host.now();
    this.dirty = false;
    if (this.state === 'CLOSED' || this.state === 'PENDING') return;
    let sent = false;
    if (this.synPending) {
      this.synPending = false;
      this.sendSyn(now);
      return;
    }
    if (this.state === 'SYN_SENT' || this.state === 'SYN_RECEIVED') return;
    if (
      this.state === 'ESTABLISHED' ||
      this.state === 'CLOSE_WAIT' ||
      this.state === 'FIN_WAIT_1' ||
      this.state === 'CLOSING' ||
      this.state === 'LAST_ACK'
    ) {
      const queueEnd = seqAdd(this.queueSeq, this.sendQueue.length);
      const windowLimit = seqAdd(this.sndUna, Math.min(this.sndWnd, this.cwnd));
      const segmentMax = Math.max(this.sndMss, this.tuning.tsoMaxPayload);
      while (seqLt(this.sndNxt, queueEnd) && seqLt(this.sndNxt, windowLimit)) {
        let room = segmentMax;
        if (this.sacked.length > 0 && seqLt(this.sndNxt, this.sndMax)) {
          // Going back after a timeout: what the peer SACKed needs no second copy.
          const sackedEnd = this.sackedRangeEndAt(this.sndNxt);
          if (sackedEnd !== this.sndNxt) {
            this.sndNxt = sackedEnd;
            continue;
          }
          room = Math.min(room, this.distanceToNextSacked(this.sndNxt));
        }
        const length = Math.min(room, seqSub(queueEnd, this.sndNxt), seqSub(windowLimit, this.sndNxt));
        const offset = seqSub(this.sndNxt, this.queueSeq);
        const last = seqAdd(this.sndNxt, length) === queueEnd;
        const withFin = last && this.endRequested && this.sndNxt !== this.finSeq;
        if (seqLt(this.sndNxt, this.sndMax)) this.countRetransmit(length);
        this.sendData(TCP_ACK | (last ? TCP_PSH : 0) | (withFin ? TCP_FIN : 0), offset, length, now);
        this.sndNxt = seqAdd(this.sndNxt, length + (withFin ? 1 : 0));
        if (seqGt(this.sndNxt, this.sndMax)) this.sndMax = this.sndNxt;
        if (withFin) this.finSent();
        sent = true;
      }
      if (this.endRequested && this.sndNxt === this.finSeq) {
        this.sendData(TCP_ACK | TCP_FIN, 0, 0, now);
        this.sndNxt = seqAdd(this.sndNxt, 1);
        if (seqGt(this.sndNxt, this.sndMax)) this.sndMax = this.sndNxt;
        this.finSent();
        sent = true;
      }
      if (
        this.sndWnd === 0 &&
        seqLt(this.sndNxt, queueEnd) &&
        this.sndUna === this.sndMax &&
        this.rtoDeadline === 0
      ) {
        this.rtoDeadline = now + this.rto; // persist timer: probe the zero window when it fires
        this.host.armTimer(this);
      }
    }
    if (sent) {
      if (this.rtoDeadline === 0) {
        this.rtoDeadline = now + this.rto;
        this.host.armTimer(this);
      }
    } else if (this.ackPending || seqSub(this.windowEdge(), this.lastAdvertisedEdge) >= 2 * this.tuning.mss) {
      if (this.ackDelayable && !this.finReceived) {
        this.ackDelayable = false; // at most one deferral per ACK
        if (this.host.deferAck(this)) return;
      }
      this.sendData(TCP_ACK, 0, 0, now);
    }
  }

  private finSent(): void {
    if (this.state === 'ESTABLISHED') this.state = 'FIN_WAIT_1';
    else if (this.state === 'CLOSE_WAIT') this.state = 'LAST_ACK';
  }

  private sendSyn(now: number): void {
    const o = this.tx;
    o.reset();
    o.mss = this.tuning.mss;
    const active = this.state === 'SYN_SENT';
    // On a passive open only echo what the peer offered.
    if (active || this.sndWscale > 0 || this.rcvWscale > 0) o.windowScale = this.rcvWscale;
    if (active || this.sackOk) o.sackPermitted = true;
    if (active || this.tsOk) {
      o.hasTimestamps = true;
      o.tsVal = now >>> 0;
      o.tsEcr = active ? 0 : this.tsRecent;
    }
    if (active && !this.tsOk) this.tsOk = false;
    this.host.emitSegment(this, active ? TCP_SYN : TCP_SYN | TCP_ACK, this.iss, o, 0, 0);
    this.ackPending = false;
    this.lastAdvertisedEdge = seqAdd(this.rcvNxt, Math.min(this.receiveWindow(), 65535));
    this.rtoDeadline = now + this.rto;
    this.host.armTimer(this);
  }

  private sendData(flags: number, offset: number, length: number, now: number): void {
    const seq = length > 0 ? seqAdd(this.queueSeq, offset) : flags & TCP_FIN ? this.finSeq : this.sndNxt;
    let o: TcpOptions | null = null;
    if (this.tsOk || this.outOfOrder.length > 0) {
      o = this.tx;
      o.reset();
      if (this.tsOk) {
        o.hasTimestamps = true;
        o.tsVal = now >>> 0;
        o.tsEcr = this.tsRecent;
      }
      if (this.sackOk && this.outOfOrder.length > 0) this.fillSackBlocks(o);
    }
    if (length > 0 && this.rttSeq < 0 && !this.tsOk && seqGe(seq, this.sndNxt)) {
      this.rttSeq = seqAdd(seq, length);
      this.rttStart = now;
    }
    this.host.emitSegment(this, flags, seq, o, offset, length);
    this.ackPending = false;
    this.ackDelayable = false;
    this.lastAdvertisedEdge = this.windowEdge();
  }

  /** The window field for an outgoing segment (scaled). */
  windowField(): number {
    return Math.min(this.receiveWindow() >>> this.rcvWscale, 65535);
  }

  private fillSackBlocks(o: TcpOptions): void {
    // Merge adjacent out-of-order runs into at most 3 blocks (room left for timestamps).
    let count = 0;
    let left = 0;
    let right = 0;
    for (const seg of this.outOfOrder) {
      const end = seqAdd(seg.seq, seg.data.length);
      if (count > 0 && seqLe(seg.seq, right)) {
        if (seqGt(end, right)) right = end;
        o.sackBlocks[(count - 1) * 2 + 1] = right;
        continue;
      }
      if (count === 3) break;
      left = seg.seq;
      right = end;
      o.sackBlocks[count * 2] = left;
      o.sackBlocks[count * 2 + 1] = right;
      count++;
    }
    o.sackCount = count;
  }

  private retransmitFirst(): void {
    const now = this.host.now();
    const queueEnd = seqAdd(this.queueSeq, this.sendQueue.length);
    if (seqLt(this.sndUna, queueEnd)) {
      const offset = seqSub(this.sndUna, this.queueSeq);
      const length = Math.min(this.sndMss, seqSub(queueEnd, this.sndUna));
      const withFin =
        this.endRequested && seqAdd(this.sndUna, length) === this.finSeq && seqGt(this.sndMax, this.finSeq);
      this.countRetransmit(length);
      this.sendData(TCP_ACK | (withFin ? TCP_FIN : 0), offset, length, now);
    } else if (this.endRequested && this.sndUna === this.finSeq) {
      this.sendData(TCP_ACK | TCP_FIN, 0, 0, now);
    }
    this.rttSeq = -1;
  }

  // ---------------------------------------------------------------- SACK scoreboard

  /** Adds [left, right) to the scoreboard, merging with neighbours; bounded in size. */
  private markSacked(left: number, right: number): void {
    const r = this.sacked;
    let i = 0;
    while (i < r.length && seqLt(r[i + 1]!, left)) i += 2;
    // Merge every range that touches [left, right).
    let j = i;
    while (j < r.length && seqLe(r[j]!, right)) {
      if (seqLt(r[j]!, left)) left = r[j]!;
      if (seqGt(r[j + 1]!, right)) right = r[j + 1]!;
      j += 2;
    }
    r.splice(i, j - i, left, right);
    if (r.length > MAX_SACKED_RANGES * 2) {
      // Forget the smallest gap: merge the two lowest ranges' knowledge by dropping the lowest one.
      r.splice(0, 2);
    }
  }

  /** Drops scoreboard ranges the cumulative ACK has passed. */
  private trimScoreboard(): void {
    const r = this.sacked;
    let k = 0;
    while (k < r.length && seqLe(r[k + 1]!, this.sndUna)) k += 2;
    if (k > 0) r.splice(0, k);
    if (r.length > 0 && seqLt(r[0]!, this.sndUna)) r[0] = this.sndUna;
    if (seqLt(this.highRxt, this.sndUna)) this.highRxt = this.sndUna;
  }

  /** If `seq` lies in a SACKed range, that range's end; else `seq`. */
  private sackedRangeEndAt(seq: number): number {
    const r = this.sacked;
    for (let k = 0; k < r.length; k += 2) {
      if (seqLt(seq, r[k]!)) break;
      if (seqLt(seq, r[k + 1]!)) return r[k + 1]!;
    }
    return seq;
  }

  /** Bytes from `seq` to the next SACKed range (a large number when none follows). */
  private distanceToNextSacked(seq: number): number {
    const r = this.sacked;
    for (let k = 0; k < r.length; k += 2) if (seqGt(r[k]!, seq)) return seqSub(r[k]!, seq);
    return 0x7fffffff;
  }

  /**
   * RFC 6675's NextSeg, rule 1: the first bytes at or above HighRxt that the peer lacks while holding
   * data above them (a hole below the highest SACK is taken as lost). Sends up to HOLES_PER_ACK segments.
   */
  private retransmitHoles(now: number): void {
    const r = this.sacked;
    if (r.length === 0) return;
    // Holes lie below the highest range the peer holds, and never beyond what was ever sent.
    const highestSacked = r[r.length - 1]!;
    const limit = seqLt(highestSacked, this.sndMax) ? highestSacked : this.sndMax;
    let seq = seqLt(this.highRxt, this.sndUna) ? this.sndUna : this.highRxt;
    for (let sent = 0; sent < HOLES_PER_ACK; ) {
      seq = this.sackedRangeEndAt(seq);
      if (!seqLt(seq, limit)) break;
      const length = Math.min(this.sndMss, this.distanceToNextSacked(seq), seqSub(limit, seq));
      if (length <= 0) break;
      this.countRetransmit(length);
      this.sendData(TCP_ACK, seqSub(seq, this.queueSeq), length, now);
      seq = seqAdd(seq, length);
      this.highRxt = seq;
      sent++;
    }
    this.rttSeq = -1;
  }

  private countRetransmit(length: number): void {
    this.retransmittedBytes += length;
    this.retransmittedSegments++;
  }

  /** The SACK scoreboard as [start, end) pairs (for tests). */
  get sackScoreboard(): readonly number[] {
    return this.sacked;
  }

  // ---------------------------------------------------------------- timers

  /** Called by the stack when a deadline of ours has passed. */
  onTimer(now: number): void {
    if (this.state === 'CLOSED') return;
    if (this.state === 'PENDING') {
      if (this.rtoDeadline && now >= this.rtoDeadline) this.reject(); // the application never answered
      return;
    }
    if (this.timeWaitDeadline && now >= this.timeWaitDeadline) {
      this.close('closed');
      return;
    }
    if (!this.rtoDeadline || now < this.rtoDeadline) return;
    this.rtoDeadline = 0;
    this.retries++;
    if (this.state === 'SYN_RECEIVED' || this.state === 'SYN_SENT') {
      if (this.retries > this.tuning.maxSynAckRetries) {
        this.close('timeout');
        return;
      }
      this.rto = Math.min(this.rto * 2, MAX_RTO);
      this.synPending = true;
      this.host.markDirty(this);
      return;
    }
    if (this.retries > this.tuning.maxRetries) {
      this.host.emitSegment(this, TCP_RST | TCP_ACK, this.sndMax, null, 0, 0);
      this.close('timeout');
      return;
    }
    this.rto = Math.min(this.rto * 2, MAX_RTO);
    if (this.sndWnd === 0 && this.sndUna === this.sndMax) {
      // Zero-window probe: one byte past the window; the peer answers with its current window.
      const queueEnd = seqAdd(this.queueSeq, this.sendQueue.length);
      if (seqLt(this.sndNxt, queueEnd)) {
        this.sendData(TCP_ACK, seqSub(this.sndNxt, this.queueSeq), 1, now);
        this.sndNxt = seqAdd(this.sndNxt, 1);
        if (seqGt(this.sndNxt, this.sndMax)) this.sndMax = this.sndNxt;
        this.retries = 0; // a peer that answers probes is alive
      }
      this.rtoDeadline = now + this.rto;
      this.host.armTimer(this);
      return;
    }
    // Retransmission timeout: collapse the window and go back to the first unacknowledged byte, skipping
    // what the scoreboard says the peer holds. A second timeout in a row forgets the scoreboard, in case
    // the peer reneged on its SACKs (RFC 2018 allows it).
    if (this.retries > 1) this.sacked.length = 0;
    const flight = seqSub(this.sndMax, this.sndUna);
    this.ssthresh = Math.max(flight >>> 1, 2 * this.sndMss);
    this.cwnd = this.sndMss;
    this.inRecovery = false;
    this.dupAcks = 0;
    this.rttSeq = -1;
    this.sndNxt = this.sndUna;
    this.host.markDirty(this);
  }

  private rttSample(rtt: number): void {
    if (rtt < 0 || rtt > MAX_RTO) return;
    if (this.srtt === 0) {
      this.srtt = rtt;
      this.rttvar = rtt / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rtt);
      this.srtt = 0.875 * this.srtt + 0.125 * rtt;
    }
    this.rto = Math.min(Math.max(this.srtt + Math.max(10, 4 * this.rttvar), MIN_RTO), MAX_RTO);
  }

  private enterTimeWait(now: number): void {
    this.state = 'TIME_WAIT';
    this.rtoDeadline = 0;
    this.timeWaitDeadline = now + this.tuning.timeWaitMs;
    this.host.armTimer(this);
    this.host.enteredTimeWait(this);
  }

  /** Forgets the connection and tells the application once. */
  close(reason: TcpCloseReason): void {
    if (this.state === 'CLOSED') return;
    this.state = 'CLOSED';
    this.rtoDeadline = 0;
    this.timeWaitDeadline = 0;
    this.sendQueue.clear();
    this.receiveQueue.clear();
    this.sacked.length = 0;
    this.outOfOrder.length = 0;
    this.outOfOrderBytes = 0;
    this.host.released(this);
    if (!this.closedReported) {
      this.closedReported = true;
      this.onClose(reason);
    }
  }

  /** A getter, so checks after callbacks (which may close us) are not narrowed away by the compiler. */
  get isClosed(): boolean {
    return this.state === 'CLOSED';
  }

  get isTimeWait(): boolean {
    return this.state === 'TIME_WAIT';
  }
}
