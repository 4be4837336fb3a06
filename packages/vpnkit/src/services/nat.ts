import dgram from 'node:dgram';
import net from 'node:net';
import type { Logger } from '../errors.js';
import type { NetworkStack } from '../stack/stack.js';
import type { TcpConnection } from '../stack/tcp.js';
import { type Ipv4Address, formatIpv4 } from '../wire/address.js';
import { ICMP_CODE_PORT_UNREACHABLE } from '../wire/icmp.js';
import { IP_PROTOCOL_UDP, emitIpv4Header } from '../wire/ipv4.js';
import { type VpnkitConfig, inSubnet } from './config.js';
import { IcmpForwarder } from './icmp.js';

/**
 * Joins a guest TCP connection and a host socket, with backpressure both ways: a host socket that will not
 * take more closes the guest's window (pause), and a guest that will not take more pauses the host socket.
 */
export function splice(
  conn: TcpConnection,
  socket: net.Socket,
  /** For sockets made with `onread` (see `connectWithLargeReads`): where to send what they read. */
  reads?: { deliver: (data: Buffer) => boolean },
): void {
  conn.onData = (chunk) => {
    if (!socket.write(Buffer.from(chunk))) conn.pause();
  };
  socket.on('drain', () => conn.resume());
  if (reads)
    reads.deliver = (data) => conn.write(data); // false pauses the socket
  else
    socket.on('data', (data: Buffer) => {
      if (!conn.write(data)) socket.pause();
    });
  conn.onDrain = () => socket.resume();
  conn.onEnd = () => socket.end();
  socket.on('end', () => conn.end());
  socket.on('error', () => conn.abort());
  socket.on('close', (hadError) => {
    if (hadError) conn.abort();
  });
  conn.onClose = (reason) => {
    if (reason !== 'closed') socket.destroy();
  };
}

const ignoreData = (_chunk: Uint8Array): void => {};
const ignore = (): void => {};

/** Drops a guest connection's references to its (closed) host socket. */
function detach(conn: TcpConnection): void {
  conn.onData = ignoreData;
  conn.onEnd = ignore;
  conn.onDrain = ignore;
  conn.onClose = ignore;
}

/** Host reads start small (most connections carry little) and double while reads fill the buffer. */
const HOST_READ_MIN = 16 * 1024;
const HOST_READ_MAX = 256 * 1024;
/** Below this much room left in a read buffer, the next read gets a fresh one. */
const HOST_READ_SPARE = 4 * 1024;

const SLAB_SIZE = 16 * HOST_READ_MIN;
let slab: Buffer | null = null;
let slabUsed = 0;

function firstReadBuffer(): Buffer {
  if (slab === null || slabUsed + HOST_READ_MIN > SLAB_SIZE) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
    slabUsed = 0;
  }
  const slice = slab.subarray(slabUsed, slabUsed + HOST_READ_MIN);
  slabUsed += HOST_READ_MIN;
  return slice;
}

/**
 * Read buffers for one host socket. Bytes read are handed to the guest connection, which keeps them (no
 * copy), so each read goes into the unused rest of the current buffer and a new buffer comes only when that
 * is nearly full. Sizing adapts: a request/response connection costs one 16 KiB buffer, not 256 KiB
 * (a quarter of a megabyte per connection was most of the garbage collector's work at thousands of
 * connections per second), while a bulk transfer soon reads 256 KiB at a time.
 */
export class HostReadBuffers {
  private size = HOST_READ_MIN;
  private chunk: Buffer | null = null;
  private used = 0;
  /** The next read's buffer (called by the socket before every read). */
  next(): Buffer {
    const chunk = this.chunk;
    if (chunk !== null && chunk.length - this.used >= HOST_READ_SPARE) return chunk.subarray(this.used);
    // A connection's first buffer is its own slice of a shared slab: one allocation per 16 connections.
    const fresh = chunk === null ? firstReadBuffer() : Buffer.allocUnsafeSlow(this.size);
    this.chunk = fresh;
    this.used = 0;
    return fresh;
  }
  /** Records a read of `bytes` into `buffer` (the last `next()`); returns the bytes as a view. */
  took(bytes: number, buffer: Uint8Array): Buffer {
    if (bytes === buffer.length && this.size < HOST_READ_MAX) this.size *= 2;
    this.used += bytes;
    return Buffer.from(buffer.buffer, buffer.byteOffset, bytes);
  }
}

interface UdpFlow {
  socket: dgram.Socket;
  lastActive: number;
  connected: boolean;
  /** Datagrams sent before connect() completed (bounded). */
  queued: Buffer[];
}

/** The first bytes of the guest's datagram, as quoted in an ICMP error (IPv4 header + UDP header). */
function quoteUdp(
  source: Ipv4Address,
  sourcePort: number,
  destination: Ipv4Address,
  destinationPort: number,
): Uint8Array {
  const quote = new Uint8Array(28);
  emitIpv4Header(quote, 0, { source, destination, protocol: IP_PROTOCOL_UDP, payloadLength: 8 });
  quote[20] = sourcePort >>> 8;
  quote[21] = sourcePort & 0xff;
  quote[22] = destinationPort >>> 8;
  quote[23] = destinationPort & 0xff;
  quote[25] = 8;
  return quote;
}

/** Turns guest flows into host sockets. */
export class Nat {
  private readonly udpFlows = new Map<string, UdpFlow>();
  private tcpProxies = 0;
  private icmpWarned = false;
  /** Opened on the first ping; null when the host allows no ICMP socket. */
  private icmp: IcmpForwarder | null | undefined;
  private readonly sweeper: NodeJS.Timeout;
  private readonly hostSockets = new Set<net.Socket>();
  /** Established guest connections with their host socket, for the idle sweep. */
  private readonly proxied = new Map<TcpConnection, net.Socket>();
  /** Connections reset for idleness since start. */
  tcpIdleClosed = 0;

  constructor(
    private readonly config: VpnkitConfig,
    private readonly stack: NetworkStack,
    private readonly log: Logger,
  ) {
    const tcpSweep = config.tcpIdleMs > 0 ? config.tcpIdleMs / 2 : 5000;
    this.sweeper = setInterval(
      () => this.sweep(),
      Math.max(10, Math.min(5000, config.udpIdleMs / 2, tcpSweep)),
    );
    this.sweeper.unref();
  }

  get udpFlowCount(): number {
    return this.udpFlows.size;
  }
  get tcpProxyCount(): number {
    return this.tcpProxies;
  }

  /** Where a guest destination lives on the host, or null when it must not leave the stack. */
  hostAddressFor(destination: Ipv4Address): string | null {
    if (destination === this.config.hostAlias) return '127.0.0.1';
    if (destination === this.config.gateway || inSubnet(this.config, destination)) return null;
    if (destination >>> 28 >= 14 || destination >>> 24 === 127 || destination === 0) return null; // multicast, reserved, loopback
    return formatIpv4(destination);
  }

  /** A new guest TCP connection (state PENDING): connect on the host first, then accept or refuse. */
  tcp(conn: TcpConnection): void {
    const host = this.hostAddressFor(conn.localAddress);
    if (host === null || this.tcpProxies >= this.config.maxConnections) {
      conn.reject();
      return;
    }
    this.tcpProxies++;
    // Reads into buffers the guest connection then owns: bigger segments, no copy.
    const reads = { deliver: (_data: Buffer): boolean => true };
    const buffers = new HostReadBuffers();
    const socket = net.connect({
      host,
      port: conn.localPort,
      allowHalfOpen: true,
      onread: {
        buffer: () => buffers.next(),
        callback: (bytes: number, buffer: Uint8Array) => reads.deliver(buffers.took(bytes, buffer)),
      },
    });
    this.hostSockets.add(socket);
    let connected = false;
    // The stack rejects a connection still PENDING at this deadline (no timer per connection); onClose
    // below then destroys the socket.
    conn.rtoDeadline = this.stack.now() + this.config.tcpConnectTimeoutMs;
    socket.once('close', () => {
      this.tcpProxies--;
      this.hostSockets.delete(socket);
    });
    socket.once('error', (err) => {
      if (connected) return;
      this.log('debug', `TCP ${host}:${conn.localPort} refused for guest: ${err.message}`);
      conn.reject();
    });
    conn.onClose = () => {
      if (!connected) socket.destroy(); // the guest gave up while we were connecting
    };
    socket.once('connect', () => {
      connected = true;
      socket.setNoDelay(true);
      splice(conn, socket, reads);
      const onClose = conn.onClose;
      conn.onClose = (reason) => {
        this.proxied.delete(conn);
        onClose(reason);
      };
      this.proxied.set(conn, socket);
      socket.once('close', () => {
        this.proxied.delete(conn);
        // The guest side may linger in TIME_WAIT for half a minute: let it forget the dead socket (and its
        // buffers) rather than keep thousands of them alive for the garbage collector to trace.
        detach(conn);
      });
      conn.accept();
    });
  }

  /** A guest UDP datagram to somewhere outside the stack. */
  udp(
    source: Ipv4Address,
    sourcePort: number,
    destination: Ipv4Address,
    destinationPort: number,
    payload: Uint8Array,
  ): void {
    const host = this.hostAddressFor(destination);
    if (host === null) return;
    const key = `${source}:${sourcePort}:${destination}:${destinationPort}`;
    let flow = this.udpFlows.get(key);
    const now = Date.now();
    if (!flow) {
      if (this.udpFlows.size >= this.config.udpFlowLimit) {
        const oldestKey = this.udpFlows.keys().next().value;
        if (oldestKey !== undefined) this.closeFlow(oldestKey);
      }
      const socket = dgram.createSocket('udp4');
      const created: UdpFlow = { socket, lastActive: now, connected: false, queued: [] };
      flow = created;
      socket.on('message', (msg) => {
        created.lastActive = Date.now();
        this.stack.sendUdp(destination, destinationPort, source, sourcePort, msg);
      });
      socket.on('error', (err: NodeJS.ErrnoException) => {
        // A connected socket learns of ICMP port unreachable as ECONNREFUSED: tell the guest the same way.
        if (err.code === 'ECONNREFUSED')
          this.stack.sendIcmpUnreachable(
            destination,
            quoteUdp(source, sourcePort, destination, destinationPort),
            ICMP_CODE_PORT_UNREACHABLE,
          );
        else this.log('debug', `UDP flow to ${host}:${destinationPort}: ${err.message}`);
      });
      // One flow is one 4-tuple, so the host socket is connected: replies from elsewhere are dropped
      // by the kernel, and port-unreachable errors come back to us.
      socket.connect(destinationPort, host, () => {
        created.connected = true;
        for (const datagram of created.queued) socket.send(datagram);
        created.queued.length = 0;
      });
      this.udpFlows.set(key, created);
    }
    flow.lastActive = now;
    if (flow.connected) flow.socket.send(Buffer.from(payload));
    else if (flow.queued.length < 64) flow.queued.push(Buffer.from(payload));
  }

  /** A guest ping to an address outside the stack. */
  icmpEcho(
    source: Ipv4Address,
    destination: Ipv4Address,
    identifier: number,
    sequence: number,
    payload: Uint8Array,
  ): void {
    if (this.hostAddressFor(destination) === null) return;
    if (this.icmp === undefined) this.icmp = IcmpForwarder.open(this.stack, this.log);
    if (this.icmp) {
      this.icmp.echo(source, destination, identifier, sequence, payload);
      return;
    }
    if (this.icmpWarned) return;
    this.icmpWarned = true;
    this.log('warn', `ICMP echo to ${formatIpv4(destination)} not forwarded (see the message above)`);
  }

  private closeFlow(key: string): void {
    const flow = this.udpFlows.get(key);
    if (!flow) return;
    this.udpFlows.delete(key);
    flow.socket.close();
  }

  private sweep(): void {
    const cutoff = Date.now() - this.config.udpIdleMs;
    for (const [key, flow] of this.udpFlows) if (flow.lastActive < cutoff) this.closeFlow(key);
    if (this.config.tcpIdleMs > 0) this.sweepTcp();
  }

  /** Resets NAT'd connections idle past `tcpIdleMs` (RST to the guest, the host socket destroyed). */
  private sweepTcp(): void {
    const cutoff = this.stack.now() - this.config.tcpIdleMs;
    for (const [conn, socket] of this.proxied) {
      if (conn.lastActivity >= cutoff) continue;
      this.proxied.delete(conn);
      this.tcpIdleClosed++;
      this.log(
        'info',
        `TCP ${formatIpv4(conn.remoteAddress)}:${conn.remotePort} > ${formatIpv4(conn.localAddress)}:${conn.localPort} closed after ${Math.round(this.config.tcpIdleMs / 1000)} s idle`,
      );
      conn.abort();
      socket.destroy();
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    this.icmp?.close();
    for (const key of [...this.udpFlows.keys()]) this.closeFlow(key);
    for (const socket of this.hostSockets) socket.destroy();
  }
}
