import { randomFillSync } from 'node:crypto';
import type { LinkOffloads, TxOffload } from '../link/link.js';
import { BROADCAST_MAC, type Ipv4Address, type MacAddress, isMulticastMac } from '../wire/address.js';
import { ARP_REPLY, ARP_REQUEST, ArpPacket, emitArp } from '../wire/arp.js';
import {
  ETHERNET_HEADER_LEN,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  EthernetFrame,
  writeEthernetHeader,
} from '../wire/ethernet.js';
import {
  ICMP_DEST_UNREACHABLE,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_HEADER_LEN,
  IcmpPacket,
  emitIcmp,
} from '../wire/icmp.js';
import {
  IPV4_HEADER_LEN,
  IP_PROTOCOL_ICMP,
  IP_PROTOCOL_TCP,
  IP_PROTOCOL_UDP,
  type Ipv4HeaderRepr,
  Ipv4Packet,
  emitIpv4Header,
} from '../wire/ipv4.js';
import {
  TCP_ACK,
  TCP_FIN,
  TCP_HEADER_LEN,
  TCP_RST,
  TCP_SYN,
  type TcpHeaderRepr,
  TcpOptions,
  TcpSegment,
  emitTcpHeader,
  emitTcpOptions,
} from '../wire/tcp.js';
import { UDP_HEADER_LEN, UdpDatagram, emitUdpHeader } from '../wire/udp.js';
import { Reassembler } from './reassembly.js';
import { type TcpCloseReason, TcpConnection, type TcpHost, type TcpTuning, seqAdd } from './tcp.js';

export interface StackOptions {
  /** The stack's own (gateway) MAC address. */
  mac: MacAddress;
  /** Addresses the stack answers ARP and ICMP echo for (the gateway, the host alias, ...). */
  localAddresses: Ipv4Address[];
  /** Link MTU (IP packet size), 576..65520. */
  mtu?: number;
  /**
   * Receives each outgoing frame; the view is only valid during the call (copy to keep it). `offload` is
   * set for TCP frames when `offloads` is given: the link must finish the checksum (and segment if asked).
   */
  output: (frame: Uint8Array, offload: TxOffload | null, tail?: Uint8Array) => void;
  /** What the link does for us (checksum offload, TSO); absent = full checksums, one MSS per frame. */
  offloads?: LinkOffloads;
  /** Milliseconds, monotonic. Defaults to performance.now(). */
  now?: () => number;
  /** Runs `flush` soon; defaults to queueMicrotask, so a batch of input yields one round of output. */
  schedule?: (fn: () => void) => void;
  /**
   * Delayed ACKs: runs `fn` a little later (say 1 ms). An ACK for a small request then waits that long for
   * the reply to carry it, saving a frame per exchange. Absent: every ACK goes at once.
   */
  scheduleDelayedAcks?: (fn: () => void) => void;
  maxHalfOpen?: number;
  maxConnections?: number;
  receiveBuffer?: number;
  sendHighWater?: number;
  timeWaitMs?: number;
  maxReassemblies?: number;
}

export interface StackStats {
  framesIn: number;
  framesOut: number;
  dropped: number;
  droppedMalformed: number;
  droppedNotForUs: number;
  tcpResets: number;
  halfOpenEvicted: number;
}

export type UdpHandler = (
  source: Ipv4Address,
  sourcePort: number,
  destination: Ipv4Address,
  destinationPort: number,
  payload: Uint8Array,
) => void;

export type IcmpEchoHandler = (
  source: Ipv4Address,
  destination: Ipv4Address,
  identifier: number,
  sequence: number,
  payload: Uint8Array,
) => void;

/** A new connection from the guest, in state PENDING: call accept() or reject(). */
export type TcpListener = (conn: TcpConnection) => void;

const MAX_FRAME = ETHERNET_HEADER_LEN + 65535;

/**
 * The sans-I/O interface: Ethernet frames in through `input`, frames out through `options.output`, time
 * through `poll`. It terminates TCP itself and hands UDP and ICMP echo to handlers, so the services layer
 * decides what each flow becomes on the host.
 */
export class NetworkStack implements TcpHost {
  readonly mac: MacAddress;
  readonly mtu: number;
  readonly localAddresses: Set<Ipv4Address>;
  readonly stats: StackStats = {
    framesIn: 0,
    framesOut: 0,
    dropped: 0,
    droppedMalformed: 0,
    droppedNotForUs: 0,
    tcpResets: 0,
    halfOpenEvicted: 0,
  };
  onUdp: UdpHandler = () => {};
  onIcmpEcho: IcmpEchoHandler | null = null;
  onTcpConnection: TcpListener = (conn) => conn.reject();

  private readonly output: (frame: Uint8Array, offload: TxOffload | null, tail?: Uint8Array) => void;
  /** A payload handed to the link as its own piece (checksum offload only). */
  private pendingTail: Uint8Array | undefined;
  private readonly checksumOffload: boolean;
  private readonly txOffload: TxOffload = {
    gsoSize: 0,
    headerLength: 0,
    checksumStart: 0,
    checksumOffset: 16,
  };
  readonly now: () => number;
  private readonly schedule: (fn: () => void) => void;
  private readonly tuning: TcpTuning;
  private readonly maxHalfOpen: number;
  private readonly maxConnections: number;
  private readonly maxTimeWait: number;

  private readonly tx = new Uint8Array(MAX_FRAME + 64);
  private readonly fragmentScratch = new Uint8Array(65536);
  private readonly arpCache = new Map<Ipv4Address, MacAddress>();
  private lastGuestMac: MacAddress = BROADCAST_MAC;
  private readonly reassembler: Reassembler;
  private ipIdentification = 1;

  // Reusable views and reprs so the per-frame path allocates nothing it need not.
  private readonly ethView = new EthernetFrame(new Uint8Array(0));
  private readonly ipView = new Ipv4Packet(new Uint8Array(0));
  private readonly tcpView = new TcpSegment(new Uint8Array(0));
  private readonly tcpOptions = new TcpOptions();
  private readonly ipRepr: Ipv4HeaderRepr = { source: 0, destination: 0, protocol: 0, payloadLength: 0 };
  private readonly tcpRepr: TcpHeaderRepr = {
    sourcePort: 0,
    destinationPort: 0,
    sequence: 0,
    acknowledgment: 0,
    flags: 0,
    window: 0,
  };

  /** remote (address:port) -> local (address:port) -> connection. Keys are exact integers < 2^48. */
  private readonly connections = new Map<number, Map<number, TcpConnection>>();
  private connectionCount = 0;
  private readonly halfOpen = new Set<TcpConnection>();
  /** Connections in TIME_WAIT, oldest first: the first to go when the table is full (as Linux does). */
  private readonly timeWait = new Set<TcpConnection>();
  private readonly timed = new Set<TcpConnection>();
  private dirty: TcpConnection[] = [];
  private flushScheduled = false;
  private readonly scheduleDelayedAcks: ((fn: () => void) => void) | null;
  private delayedAcks: TcpConnection[] = [];
  private readonly runDelayedAcks = (): void => {
    const due = this.delayedAcks;
    this.delayedAcks = [];
    // Those whose reply went out meanwhile have no ACK pending any more.
    for (const conn of due) if (conn.ackPending && !conn.isClosed) this.markDirty(conn);
  };
  private readonly randomPool = new Uint32Array(256);
  private randomIndex = 256;
  private nextEphemeralPort = 49152;

  constructor(options: StackOptions) {
    this.mac = options.mac;
    this.mtu = Math.min(Math.max(options.mtu ?? 1500, 576), 65520);
    this.localAddresses = new Set(options.localAddresses);
    this.output = options.output;
    this.now = options.now ?? (() => performance.now());
    this.schedule = options.schedule ?? queueMicrotask;
    this.scheduleDelayedAcks = options.scheduleDelayedAcks ?? null;
    const mss = this.mtu - IPV4_HEADER_LEN - TCP_HEADER_LEN;
    this.checksumOffload = options.offloads?.checksum ?? false;
    const tsoMaxPayload = this.checksumOffload ? (options.offloads?.tsoMaxPayload ?? 0) : 0;
    this.tuning = {
      mss,
      tsoMaxPayload,
      receiveBuffer: options.receiveBuffer ?? Math.max(256 * 1024, 8 * mss, 8 * tsoMaxPayload),
      // Room for a few milliseconds of event-loop jitter at 10 Gbit/s; the guest's window bounds it anyway.
      sendHighWater: options.sendHighWater ?? Math.max(256 * 1024, 16 * mss, 16 * tsoMaxPayload),
      timeWaitMs: options.timeWaitMs ?? 30_000,
      maxRetries: 12,
      maxSynAckRetries: 5,
    };
    this.maxHalfOpen = options.maxHalfOpen ?? 1024;
    this.maxConnections = options.maxConnections ?? 16384;
    this.maxTimeWait = Math.max(16, Math.floor(this.maxConnections / 2));
    this.reassembler = new Reassembler(options.maxReassemblies ?? 16);
  }

  get tcpConnectionCount(): number {
    return this.connectionCount;
  }
  get halfOpenCount(): number {
    return this.halfOpen.size;
  }
  get reassembliesInProgress(): number {
    return this.reassembler.inProgress;
  }

  /** Remembers a guest's MAC (e.g. from a DHCP lease) so replies need no ARP round trip. */
  learnNeighbor(address: Ipv4Address, mac: MacAddress): void {
    if (this.arpCache.size > 4096 && !this.arpCache.has(address)) this.arpCache.clear();
    this.arpCache.set(address, mac);
    this.lastGuestMac = mac;
  }

  // ---------------------------------------------------------------- input

  /** Processes one Ethernet frame. Never throws on bad input; drops and counts it. */
  input(frame: Uint8Array, checksumValid = false): void {
    this.stats.framesIn++;
    const eth = this.ethView;
    eth.buf = frame;
    if (eth.validate() !== null) {
      this.drop(true);
      return;
    }
    const destination = eth.destination;
    if (destination !== this.mac && destination !== BROADCAST_MAC && !isMulticastMac(destination)) {
      this.stats.droppedNotForUs++;
      return;
    }
    const etherType = eth.etherType;
    if (etherType === ETHERTYPE_IPV4)
      this.inputIpv4(frame.subarray(ETHERNET_HEADER_LEN), eth.source, checksumValid);
    else if (etherType === ETHERTYPE_ARP) this.inputArp(frame.subarray(ETHERNET_HEADER_LEN));
    else this.drop(false);
  }

  private drop(malformed: boolean): void {
    this.stats.dropped++;
    if (malformed) this.stats.droppedMalformed++;
  }

  private inputArp(bytes: Uint8Array): void {
    const arp = new ArpPacket(bytes);
    if (arp.validate() !== null) {
      this.drop(true);
      return;
    }
    const senderIp = arp.senderIp;
    if (senderIp !== 0 && !this.localAddresses.has(senderIp)) this.learnNeighbor(senderIp, arp.senderMac);
    if (arp.operation !== ARP_REQUEST || !this.localAddresses.has(arp.targetIp)) return;
    const b = this.tx;
    writeEthernetHeader(b, arp.senderMac, this.mac, ETHERTYPE_ARP);
    emitArp(b, ETHERNET_HEADER_LEN, {
      operation: ARP_REPLY,
      senderMac: this.mac,
      senderIp: arp.targetIp,
      targetMac: arp.senderMac,
      targetIp: senderIp,
    });
    this.emitFrame(ETHERNET_HEADER_LEN + 28);
  }

  private inputIpv4(bytes: Uint8Array, sourceMac: MacAddress, checksumValid: boolean): void {
    let ip = this.ipView;
    ip.buf = bytes;
    if (ip.validate() !== null) {
      this.drop(true);
      return;
    }
    const source = ip.source;
    if (source !== 0 && !this.arpCache.has(source) && !isMulticastMac(sourceMac))
      this.learnNeighbor(source, sourceMac);
    if (ip.isFragment) {
      const whole = this.reassembler.add(ip, this.now());
      if (!whole) return;
      ip = new Ipv4Packet(whole);
    }
    const payload = ip.payload();
    const protocol = ip.protocol;
    if (protocol === IP_PROTOCOL_TCP) this.inputTcp(ip.source, ip.destination, payload, checksumValid);
    else if (protocol === IP_PROTOCOL_UDP) this.inputUdp(ip.source, ip.destination, payload, checksumValid);
    else if (protocol === IP_PROTOCOL_ICMP) this.inputIcmp(ip.source, ip.destination, payload);
    else this.drop(false);
  }

  private inputUdp(
    source: Ipv4Address,
    destination: Ipv4Address,
    bytes: Uint8Array,
    checksumValid: boolean,
  ): void {
    const udp = new UdpDatagram(bytes);
    if ((checksumValid ? udp.validate() : udp.validate(source, destination)) !== null) {
      this.drop(true);
      return;
    }
    this.onUdp(source, udp.sourcePort, destination, udp.destinationPort, udp.payload());
  }

  private inputIcmp(source: Ipv4Address, destination: Ipv4Address, bytes: Uint8Array): void {
    const icmp = new IcmpPacket(bytes);
    if (icmp.validate() !== null) {
      this.drop(true);
      return;
    }
    if (icmp.type !== ICMP_ECHO_REQUEST) return;
    if (this.localAddresses.has(destination))
      this.sendIcmpEchoReply(destination, source, icmp.echoIdentifier, icmp.echoSequence, icmp.payload());
    else if (this.onIcmpEcho)
      this.onIcmpEcho(source, destination, icmp.echoIdentifier, icmp.echoSequence, icmp.payload());
  }

  private inputTcp(
    source: Ipv4Address,
    destination: Ipv4Address,
    bytes: Uint8Array,
    checksumValid: boolean,
  ): void {
    const seg = this.tcpView;
    seg.buf = bytes;
    const invalid = checksumValid ? seg.validate() : seg.validate(source, destination);
    if (invalid !== null || !seg.parseOptions(this.tcpOptions)) {
      this.drop(true);
      return;
    }
    const opts = this.tcpOptions;
    const remoteKey = source * 65536 + seg.sourcePort;
    const localKey = destination * 65536 + seg.destinationPort;
    const conn = this.connections.get(remoteKey)?.get(localKey);
    if (conn) {
      if (conn.state === 'TIME_WAIT' && seg.flags & TCP_SYN && !(seg.flags & TCP_ACK)) {
        conn.close('closed'); // a new incarnation reuses the 4-tuple (RFC 6191 style)
      } else {
        conn.receive(seg, opts);
        return;
      }
    }
    const flags = seg.flags;
    if (flags & TCP_RST) return;
    if ((flags & (TCP_SYN | TCP_ACK)) !== TCP_SYN) {
      this.sendResetFor(source, destination, seg);
      return;
    }
    if (this.halfOpen.size >= this.maxHalfOpen) {
      // A SYN flood must not lock out real connections: forget the oldest half-open one.
      const oldest = this.halfOpen.values().next().value;
      if (oldest) {
        this.stats.halfOpenEvicted++;
        oldest.close('timeout');
      }
    }
    if (this.connectionCount >= this.maxConnections) {
      const oldest = this.timeWait.values().next().value;
      if (oldest) oldest.close('closed');
      else {
        this.sendResetFor(source, destination, seg);
        return;
      }
    }
    const created = this.createConnection(
      destination,
      seg.destinationPort,
      source,
      seg.sourcePort,
      'PENDING',
    );
    created.initFromSyn(seg, opts);
    created.halfOpen = true;
    this.halfOpen.add(created);
    created.rtoDeadline = this.now() + 30_000; // how long the application may take to accept
    this.armTimer(created);
    this.onTcpConnection(created);
  }

  private createConnection(
    localAddress: Ipv4Address,
    localPort: number,
    remoteAddress: Ipv4Address,
    remotePort: number,
    state: 'PENDING' | 'SYN_SENT',
  ): TcpConnection {
    const conn = new TcpConnection(
      this,
      this.tuning,
      localAddress,
      localPort,
      remoteAddress,
      remotePort,
      this.random32(),
      state,
    );
    const remoteKey = remoteAddress * 65536 + remotePort;
    let inner = this.connections.get(remoteKey);
    if (!inner) {
      inner = new Map();
      this.connections.set(remoteKey, inner);
    }
    inner.set(localAddress * 65536 + localPort, conn);
    this.connectionCount++;
    return conn;
  }

  /** Opens a connection to the guest (for port forwarding). Resolves the callbacks on the returned object. */
  connectTcp(
    localAddress: Ipv4Address,
    remoteAddress: Ipv4Address,
    remotePort: number,
    localPort?: number,
  ): TcpConnection {
    let port = localPort ?? 0;
    if (!port) {
      for (let tries = 0; tries < 16384; tries++) {
        port = this.nextEphemeralPort;
        this.nextEphemeralPort = port >= 65535 ? 49152 : port + 1;
        if (!this.connections.get(remoteAddress * 65536 + remotePort)?.has(localAddress * 65536 + port))
          break;
      }
    }
    const conn = this.createConnection(localAddress, port, remoteAddress, remotePort, 'SYN_SENT');
    conn.connect();
    return conn;
  }

  private random32(): number {
    if (this.randomIndex >= this.randomPool.length) {
      randomFillSync(this.randomPool);
      this.randomIndex = 0;
    }
    return this.randomPool[this.randomIndex++]!;
  }

  // ---------------------------------------------------------------- TcpHost

  markDirty(conn: TcpConnection): void {
    if (conn.dirty) return;
    conn.dirty = true;
    this.dirty.push(conn);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.schedule(() => this.flush());
    }
  }

  deferAck(conn: TcpConnection): boolean {
    if (this.scheduleDelayedAcks === null) return false;
    if (this.delayedAcks.length === 0) this.scheduleDelayedAcks(this.runDelayedAcks);
    this.delayedAcks.push(conn);
    return true;
  }

  armTimer(conn: TcpConnection): void {
    this.timed.add(conn);
  }

  released(conn: TcpConnection): void {
    const remoteKey = conn.remoteAddress * 65536 + conn.remotePort;
    const inner = this.connections.get(remoteKey);
    if (inner?.get(conn.localAddress * 65536 + conn.localPort) === conn) {
      inner.delete(conn.localAddress * 65536 + conn.localPort);
      if (inner.size === 0) this.connections.delete(remoteKey);
      this.connectionCount--;
    }
    this.halfOpen.delete(conn);
    this.timeWait.delete(conn);
    this.timed.delete(conn);
  }

  enteredTimeWait(conn: TcpConnection): void {
    this.timeWait.add(conn);
    if (this.timeWait.size > this.maxTimeWait) this.timeWait.values().next().value?.close('closed');
  }

  established(conn: TcpConnection): void {
    this.halfOpen.delete(conn);
    conn.halfOpen = false;
  }

  emitSegment(
    conn: TcpConnection,
    flags: number,
    sequence: number,
    options: TcpOptions | null,
    payloadOffset: number,
    payloadLength: number,
  ): void {
    const window = flags & TCP_SYN ? Math.min(conn.receiveWindow(), 65535) : conn.windowField();
    if (flags & TCP_RST) this.stats.tcpResets++;
    this.emitTcp(
      conn.localAddress,
      conn.localPort,
      conn.remoteAddress,
      conn.remotePort,
      sequence,
      flags & TCP_ACK ? conn.rcvNxt : 0,
      flags,
      flags & TCP_RST ? 0 : window,
      options,
      conn,
      payloadOffset,
      payloadLength,
    );
  }

  private sendResetFor(source: Ipv4Address, destination: Ipv4Address, seg: TcpSegment): void {
    const flags = seg.flags;
    this.stats.tcpResets++;
    if (flags & TCP_ACK) {
      this.emitTcp(
        destination,
        seg.destinationPort,
        source,
        seg.sourcePort,
        seg.acknowledgment,
        0,
        TCP_RST,
        0,
        null,
        null,
        0,
        0,
      );
    } else {
      const length = seg.payloadLength + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0);
      this.emitTcp(
        destination,
        seg.destinationPort,
        source,
        seg.sourcePort,
        0,
        seqAdd(seg.sequence, length),
        TCP_RST | TCP_ACK,
        0,
        null,
        null,
        0,
        0,
      );
    }
  }

  private emitTcp(
    localAddress: Ipv4Address,
    localPort: number,
    remoteAddress: Ipv4Address,
    remotePort: number,
    sequence: number,
    acknowledgment: number,
    flags: number,
    window: number,
    options: TcpOptions | null,
    conn: TcpConnection | null,
    payloadOffset: number,
    payloadLength: number,
  ): void {
    const b = this.tx;
    const tcpOffset = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN;
    const optionsLength = options ? emitTcpOptions(b, tcpOffset + TCP_HEADER_LEN, options) : 0;
    const dataOffset = tcpOffset + TCP_HEADER_LEN + optionsLength;
    // With checksum offload nobody needs the payload in `tx`: hand the link a view of it instead.
    const tail =
      this.checksumOffload && conn && payloadLength > 0
        ? conn.sendDataView(payloadOffset, payloadLength)
        : null;
    if (tail) this.pendingTail = tail;
    else if (conn && payloadLength > 0) conn.copySendData(payloadOffset, b, dataOffset, payloadLength);
    const r = this.tcpRepr;
    r.sourcePort = localPort;
    r.destinationPort = remotePort;
    r.sequence = sequence;
    r.acknowledgment = acknowledgment;
    r.flags = flags;
    r.window = window;
    const offload = this.checksumOffload;
    emitTcpHeader(b, tcpOffset, localAddress, remoteAddress, r, optionsLength, payloadLength, offload);
    const o = this.txOffload;
    if (offload) {
      o.headerLength = dataOffset;
      o.checksumStart = tcpOffset;
      o.gsoSize = conn && payloadLength > conn.sndMss ? conn.sndMss : 0;
    }
    this.emitIpv4(
      localAddress,
      remoteAddress,
      IP_PROTOCOL_TCP,
      TCP_HEADER_LEN + optionsLength + payloadLength,
      true,
      offload ? o : null,
    );
  }

  // ---------------------------------------------------------------- output helpers

  /** Sends a UDP datagram to the guest, fragmenting if it exceeds the MTU. */
  sendUdp(
    source: Ipv4Address,
    sourcePort: number,
    destination: Ipv4Address,
    destinationPort: number,
    payload: Uint8Array,
  ): void {
    if (payload.length > 65535 - IPV4_HEADER_LEN - UDP_HEADER_LEN) return;
    const b = this.tx;
    const udpOffset = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN;
    b.set(payload, udpOffset + UDP_HEADER_LEN);
    emitUdpHeader(b, udpOffset, source, destination, sourcePort, destinationPort, payload.length);
    this.emitIpv4(source, destination, IP_PROTOCOL_UDP, UDP_HEADER_LEN + payload.length, false);
  }

  sendIcmpEchoReply(
    source: Ipv4Address,
    destination: Ipv4Address,
    identifier: number,
    sequence: number,
    payload: Uint8Array,
  ): void {
    if (payload.length > 65535 - IPV4_HEADER_LEN - ICMP_HEADER_LEN) return;
    const b = this.tx;
    const icmpOffset = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN;
    b.copyWithin(0, 0, 0);
    b.set(payload, icmpOffset + ICMP_HEADER_LEN);
    const end = icmpOffset + ICMP_HEADER_LEN + payload.length;
    emitIcmp(b, icmpOffset, end, ICMP_ECHO_REPLY, 0, ((identifier << 16) | sequence) >>> 0);
    this.emitIpv4(source, destination, IP_PROTOCOL_ICMP, ICMP_HEADER_LEN + payload.length, false);
  }

  /** Sends an ICMP destination-unreachable about `original` (an IPv4 packet the guest sent). */
  sendIcmpUnreachable(from: Ipv4Address, original: Uint8Array, code: number): void {
    const ip = new Ipv4Packet(original);
    if (ip.validate(false) !== null) return;
    const quoted = original.subarray(0, Math.min(original.length, ip.headerLength + 8));
    const b = this.tx;
    const icmpOffset = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN;
    b.set(quoted, icmpOffset + ICMP_HEADER_LEN);
    const end = icmpOffset + ICMP_HEADER_LEN + quoted.length;
    emitIcmp(b, icmpOffset, end, ICMP_DEST_UNREACHABLE, code, 0);
    this.emitIpv4(from, ip.source, IP_PROTOCOL_ICMP, ICMP_HEADER_LEN + quoted.length, false);
  }

  /** Finishes the IPv4 + Ethernet headers around a payload already at tx[34..]; fragments if needed. */
  private emitIpv4(
    source: Ipv4Address,
    destination: Ipv4Address,
    protocol: number,
    payloadLength: number,
    dontFragment: boolean,
    offload: TxOffload | null = null,
  ): void {
    const b = this.tx;
    const r = this.ipRepr;
    r.source = source;
    r.destination = destination;
    r.protocol = protocol;
    r.identification = this.ipIdentification;
    this.ipIdentification = (this.ipIdentification + 1) & 0xffff;
    r.ttl = 64;
    r.fragmentOffset = 0;
    r.moreFragments = false;
    r.dontFragment = dontFragment;
    const destinationMac = this.resolve(destination);
    if (IPV4_HEADER_LEN + payloadLength <= this.mtu || offload) {
      r.payloadLength = payloadLength;
      emitIpv4Header(b, ETHERNET_HEADER_LEN, r);
      writeEthernetHeader(b, destinationMac, this.mac, ETHERTYPE_IPV4);
      this.emitFrame(ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + payloadLength, offload);
      return;
    }
    const payloadStart = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN;
    const scratch = this.fragmentScratch;
    scratch.set(b.subarray(payloadStart, payloadStart + payloadLength));
    const maxChunk = (this.mtu - IPV4_HEADER_LEN) & ~7;
    r.dontFragment = false;
    for (let offset = 0; offset < payloadLength; offset += maxChunk) {
      const length = Math.min(maxChunk, payloadLength - offset);
      b.set(scratch.subarray(offset, offset + length), payloadStart);
      r.payloadLength = length;
      r.fragmentOffset = offset;
      r.moreFragments = offset + length < payloadLength;
      emitIpv4Header(b, ETHERNET_HEADER_LEN, r);
      writeEthernetHeader(b, destinationMac, this.mac, ETHERTYPE_IPV4);
      this.emitFrame(payloadStart + length);
    }
  }

  private resolve(address: Ipv4Address): MacAddress {
    const mac = this.arpCache.get(address);
    if (mac !== undefined) return mac;
    if (address === 0xffffffff) return BROADCAST_MAC;
    // Unknown neighbour: ask, and meanwhile use the guest we last heard from (one guest per link is usual).
    this.sendArpRequest(address);
    return this.lastGuestMac;
  }

  private readonly arpScratch = new Uint8Array(ETHERNET_HEADER_LEN + 28);
  private sendArpRequest(target: Ipv4Address): void {
    const source = this.localAddresses.values().next().value ?? 0;
    const b = this.arpScratch;
    writeEthernetHeader(b, BROADCAST_MAC, this.mac, ETHERTYPE_ARP);
    emitArp(b, ETHERNET_HEADER_LEN, {
      operation: ARP_REQUEST,
      senderMac: this.mac,
      senderIp: source,
      targetMac: 0,
      targetIp: target,
    });
    this.stats.framesOut++;
    this.output(b, null);
  }

  private emitFrame(length: number, offload: TxOffload | null = null): void {
    this.stats.framesOut++;
    const tail = this.pendingTail;
    if (tail) {
      this.pendingTail = undefined;
      this.output(this.tx.subarray(0, length - tail.length), offload, tail);
    } else this.output(this.tx.subarray(0, length), offload);
  }

  // ---------------------------------------------------------------- time and batching

  /** Sends what connections have pending. Called automatically via `schedule`; callable directly. */
  flush(): void {
    this.flushScheduled = false;
    // Connections made dirty while flushing are handled in the same pass.
    for (let i = 0; i < this.dirty.length; i++) this.dirty[i]!.transmit();
    this.dirty = [];
  }

  /** Runs due timers. Call every few milliseconds (or at the deadline of your choice). */
  poll(): void {
    const now = this.now();
    for (const conn of this.timed) {
      if (conn.rtoDeadline === 0 && conn.timeWaitDeadline === 0) {
        this.timed.delete(conn);
        continue;
      }
      if (
        (conn.rtoDeadline && now >= conn.rtoDeadline) ||
        (conn.timeWaitDeadline && now >= conn.timeWaitDeadline)
      )
        conn.onTimer(now);
    }
    this.reassembler.expire(now);
    if (this.dirty.length > 0) this.flush();
  }

  /** Resets every connection (for shutdown). */
  closeAll(reason: TcpCloseReason = 'aborted'): void {
    for (const inner of [...this.connections.values()])
      for (const conn of [...inner.values()]) reason === 'aborted' ? conn.abort() : conn.close(reason);
  }
}
