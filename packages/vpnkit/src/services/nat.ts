import dgram from 'node:dgram';
import net from 'node:net';
import type { Logger } from '../errors.js';
import type { NetworkStack } from '../stack/stack.js';
import type { TcpConnection } from '../stack/tcp.js';
import { type Ipv4Address, formatIpv4 } from '../wire/address.js';
import { type VpnkitConfig, inSubnet } from './config.js';

/**
 * Joins a guest TCP connection and a host socket, with backpressure both ways: a host socket that will not
 * take more closes the guest's window (pause), and a guest that will not take more pauses the host socket.
 */
export function splice(conn: TcpConnection, socket: net.Socket): void {
  conn.onData = (chunk) => {
    if (!socket.write(Buffer.from(chunk))) conn.pause();
  };
  socket.on('drain', () => conn.resume());
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

interface UdpFlow {
  socket: dgram.Socket;
  lastActive: number;
}

/** Turns guest flows into host sockets. */
export class Nat {
  private readonly udpFlows = new Map<string, UdpFlow>();
  private tcpProxies = 0;
  private icmpWarned = false;
  private readonly sweeper: NodeJS.Timeout;
  private readonly hostSockets = new Set<net.Socket>();

  constructor(
    private readonly config: VpnkitConfig,
    private readonly stack: NetworkStack,
    private readonly log: Logger,
  ) {
    this.sweeper = setInterval(() => this.sweepUdp(), Math.min(5000, config.udpIdleMs / 2));
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
    const socket = net.connect({ host, port: conn.localPort, allowHalfOpen: true });
    this.hostSockets.add(socket);
    let connected = false;
    const timer = setTimeout(() => {
      socket.destroy();
      conn.reject();
    }, this.config.tcpConnectTimeoutMs);
    socket.once('close', () => {
      this.tcpProxies--;
      this.hostSockets.delete(socket);
      clearTimeout(timer);
    });
    socket.once('error', (err) => {
      if (connected) return;
      clearTimeout(timer);
      this.log('debug', `TCP ${host}:${conn.localPort} refused for guest: ${err.message}`);
      conn.reject();
    });
    conn.onClose = () => {
      if (!connected) socket.destroy(); // the guest gave up while we were connecting
    };
    socket.once('connect', () => {
      connected = true;
      clearTimeout(timer);
      socket.setNoDelay(true);
      splice(conn, socket);
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
      const created: UdpFlow = { socket, lastActive: now };
      flow = created;
      socket.on('message', (msg) => {
        created.lastActive = Date.now();
        this.stack.sendUdp(destination, destinationPort, source, sourcePort, msg);
      });
      socket.on('error', (err) => {
        this.log('debug', `UDP flow to ${host}:${destinationPort}: ${err.message}`);
      });
      this.udpFlows.set(key, created);
    }
    flow.lastActive = now;
    flow.socket.send(Buffer.from(payload), destinationPort, host);
  }

  icmpEcho(destination: Ipv4Address): void {
    if (this.icmpWarned) return;
    this.icmpWarned = true;
    this.log(
      'warn',
      `ICMP echo to ${formatIpv4(destination)} not forwarded: Node.js has no ICMP socket API ` +
        '(echo to the gateway and host alias is answered locally)',
    );
  }

  private closeFlow(key: string): void {
    const flow = this.udpFlows.get(key);
    if (!flow) return;
    this.udpFlows.delete(key);
    flow.socket.close();
  }

  private sweepUdp(): void {
    const cutoff = Date.now() - this.config.udpIdleMs;
    for (const [key, flow] of this.udpFlows) if (flow.lastActive < cutoff) this.closeFlow(key);
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const key of [...this.udpFlows.keys()]) this.closeFlow(key);
    for (const socket of this.hostSockets) socket.destroy();
  }
}
