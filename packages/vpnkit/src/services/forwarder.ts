import dgram from 'node:dgram';
import net from 'node:net';
import { VpnkitError } from '../errors.js';
import type { Logger } from '../errors.js';
import type { NetworkStack } from '../stack/stack.js';
import { formatIpv4 } from '../wire/address.js';
import type { PortForward, VpnkitConfig } from './config.js';
import { splice } from './nat.js';

export function describeForward(f: PortForward): string {
  return `${f.protocol}:${f.hostAddress}:${f.hostPort}:${formatIpv4(f.guestAddress)}:${f.guestPort}`;
}

interface InboundUdp {
  socket: dgram.Socket;
  address: string;
  port: number;
  lastActive: number;
}

/** Host-to-guest port forwards: a host listener whose connections the stack opens to the guest. */
export class PortForwarder {
  /** By describeForward(): the forward and its host listener. */
  private readonly servers = new Map<string, { forward: PortForward; server: net.Server | dgram.Socket }>();
  /** Gateway-side UDP port -> the host client it stands for. */
  private readonly inboundUdp = new Map<number, InboundUdp>();
  private readonly udpByClient = new Map<string, number>();
  private nextUdpPort = 40000;
  private readonly openSockets = new Set<net.Socket>();

  constructor(
    private readonly config: VpnkitConfig,
    private readonly stack: NetworkStack,
    private readonly log: Logger,
  ) {}

  list(): PortForward[] {
    return [...this.servers.values()].map((s) => s.forward);
  }

  async add(f: PortForward): Promise<void> {
    const key = describeForward(f);
    if (this.servers.has(key)) return;
    const where = `${f.hostAddress}:${f.hostPort}`;
    const bindError = (err: Error) =>
      new VpnkitError(
        'ERR_VPNKIT_FORWARD_BIND',
        `cannot listen on ${f.protocol} ${where} for forward ${describeForward(f)}: ${err.message}`,
        { cause: err },
      );
    if (f.protocol === 'tcp') {
      const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) =>
        this.acceptTcp(f, socket),
      );
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) => reject(bindError(err)));
        server.listen(f.hostPort, f.hostAddress, () => resolve());
      });
      this.servers.set(key, { forward: f, server });
    } else {
      const socket = dgram.createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        socket.once('error', (err) => reject(bindError(err)));
        socket.bind(f.hostPort, f.hostAddress, () => resolve());
      });
      socket.on('message', (msg, rinfo) => this.udpFromHost(f, socket, msg, rinfo));
      this.servers.set(key, { forward: f, server: socket });
    }
    this.log('info', `forwarding ${describeForward(f)}`);
  }

  remove(f: PortForward): boolean {
    const key = describeForward(f);
    const entry = this.servers.get(key);
    if (!entry) return false;
    this.servers.delete(key);
    entry.server.close();
    return true;
  }

  private acceptTcp(f: PortForward, socket: net.Socket): void {
    this.openSockets.add(socket);
    socket.once('close', () => this.openSockets.delete(socket));
    const conn = this.stack.connectTcp(this.config.gateway, f.guestAddress, f.guestPort);
    let connected = false;
    socket.once('error', () => {
      if (!connected) conn.abort();
    });
    conn.onClose = () => {
      if (!connected) socket.destroy();
    };
    conn.onConnect = () => {
      connected = true;
      socket.setNoDelay(true);
      splice(conn, socket);
      socket.resume();
    };
  }

  private udpFromHost(f: PortForward, socket: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const clientKey = `${f.hostPort}:${rinfo.address}:${rinfo.port}`;
    let port = this.udpByClient.get(clientKey);
    if (port === undefined) {
      if (this.inboundUdp.size >= this.config.udpFlowLimit) {
        const oldest = this.inboundUdp.keys().next().value;
        if (oldest !== undefined) this.dropInbound(oldest);
      }
      for (let tries = 0; tries < 10000; tries++) {
        port = this.nextUdpPort;
        this.nextUdpPort = port >= 48999 ? 40000 : port + 1;
        if (!this.inboundUdp.has(port)) break;
      }
      if (port === undefined) return;
      this.udpByClient.set(clientKey, port);
      this.inboundUdp.set(port, { socket, address: rinfo.address, port: rinfo.port, lastActive: Date.now() });
    }
    const entry = this.inboundUdp.get(port);
    if (entry) entry.lastActive = Date.now();
    this.stack.sendUdp(this.config.gateway, port, f.guestAddress, f.guestPort, msg);
  }

  private dropInbound(port: number): void {
    const entry = this.inboundUdp.get(port);
    if (!entry) return;
    this.inboundUdp.delete(port);
    for (const [k, v] of this.udpByClient) if (v === port) this.udpByClient.delete(k);
  }

  /** A guest datagram to the gateway: the reply to a forwarded UDP flow, if it is one. */
  udpFromGuest(gatewayPort: number, payload: Uint8Array): boolean {
    const entry = this.inboundUdp.get(gatewayPort);
    if (!entry) return false;
    entry.lastActive = Date.now();
    entry.socket.send(Buffer.from(payload), entry.port, entry.address);
    return true;
  }

  close(): void {
    for (const { server } of this.servers.values()) server.close();
    this.servers.clear();
    for (const socket of this.openSockets) socket.destroy();
  }
}
