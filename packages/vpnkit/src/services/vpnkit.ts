import { type Logger, consoleLogger } from '../errors.js';
import type { Link } from '../link/link.js';
import { NetworkStack } from '../stack/stack.js';
import type { TcpConnection } from '../stack/tcp.js';
import { DHCP_SERVER_PORT } from '../wire/dhcp.js';
import { DNS_PORT } from '../wire/dns.js';
import { type PortForward, type VpnkitConfig, defaultConfig } from './config.js';
import { DhcpServer } from './dhcp-server.js';
import { DnsForwarder } from './dns-forwarder.js';
import { PortForwarder } from './forwarder.js';
import { Nat } from './nat.js';

const POLL_INTERVAL_MS = 20;

/**
 * One guest's network: the stack on a link, plus DHCP and DNS on the gateway, NAT to host sockets and
 * port forwards. Frames in from the link go to the stack; frames out of the stack go to the link.
 */
export class Vpnkit {
  readonly config: VpnkitConfig;
  readonly stack: NetworkStack;
  readonly dhcp: DhcpServer;
  readonly dns: DnsForwarder;
  readonly nat: Nat;
  readonly forwards: PortForwarder;
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  onClose: (error?: Error) => void = () => {};

  constructor(
    readonly link: Link,
    config: Partial<VpnkitConfig> = {},
    private readonly log: Logger = consoleLogger,
  ) {
    this.config = { ...defaultConfig(), ...config };
    const c = this.config;
    const localAddresses = [c.gateway];
    if (c.hostAlias !== null) localAddresses.push(c.hostAlias);
    this.stack = new NetworkStack({
      mac: c.gatewayMac,
      localAddresses,
      mtu: c.mtu,
      output: (frame, offload, tail) => link.send(frame, offload, tail),
      ...(link.offloads ? { offloads: link.offloads } : {}),
      maxConnections: c.maxConnections,
      maxHalfOpen: c.maxHalfOpen,
      ...(c.delayedAckMs > 0 ? { scheduleDelayedAcks: (fn) => setTimeout(fn, c.delayedAckMs) } : {}),
    });
    this.dhcp = new DhcpServer(c, this.stack, log);
    this.dns = new DnsForwarder(c, log);
    this.nat = new Nat(c, this.stack, log);
    this.forwards = new PortForwarder(c, this.stack, log);
    this.stack.onUdp = (source, sourcePort, destination, destinationPort, payload) => {
      if (destinationPort === DHCP_SERVER_PORT && (destination === c.gateway || destination === 0xffffffff)) {
        this.dhcp.handle(payload);
        return;
      }
      if (destination === c.gateway) {
        if (destinationPort === DNS_PORT) {
          this.dns.resolve(payload, 'udp', (answer) =>
            this.stack.sendUdp(c.gateway, DNS_PORT, source, sourcePort, answer),
          );
          return;
        }
        this.forwards.udpFromGuest(destinationPort, payload);
        return;
      }
      this.nat.udp(source, sourcePort, destination, destinationPort, payload);
    };
    this.stack.onTcpConnection = (conn) => {
      if (conn.localAddress === c.gateway) {
        if (conn.localPort === DNS_PORT) this.dnsOverTcp(conn);
        else conn.reject();
        return;
      }
      this.nat.tcp(conn);
    };
    this.stack.onIcmpEcho = (source, destination, identifier, sequence, payload) =>
      this.nat.icmpEcho(source, destination, identifier, sequence, payload);
    link.onFrame = (frame, checksumValid) => this.stack.input(frame, checksumValid);
    link.onClose = (error) => this.close(error);
    this.timer = setInterval(() => this.stack.poll(), POLL_INTERVAL_MS);
    this.timer.unref();
  }

  /** Starts the configured port forwards; rejects with ERR_VPNKIT_FORWARD_BIND if a port is taken. */
  async start(): Promise<void> {
    for (const f of this.config.forwards) await this.forwards.add(f);
  }

  addForward(f: PortForward): Promise<void> {
    return this.forwards.add(f);
  }

  /** DNS over TCP on the gateway: 2-byte length-prefixed messages, answered in order of arrival. */
  private dnsOverTcp(conn: TcpConnection): void {
    let buffered = new Uint8Array(0);
    conn.onData = (chunk) => {
      const merged = new Uint8Array(buffered.length + chunk.length);
      merged.set(buffered);
      merged.set(chunk, buffered.length);
      buffered = merged;
      if (buffered.length > 70_000) {
        conn.abort();
        return;
      }
      while (buffered.length >= 2) {
        const length = (buffered[0]! << 8) | buffered[1]!;
        if (buffered.length < 2 + length) break;
        const query = buffered.slice(2, 2 + length);
        buffered = buffered.slice(2 + length);
        this.dns.resolve(query, 'tcp', (answer) => {
          const framed = new Uint8Array(2 + answer.length);
          framed[0] = answer.length >>> 8;
          framed[1] = answer.length & 0xff;
          framed.set(answer, 2);
          conn.write(framed);
        });
      }
    };
    conn.onEnd = () => conn.end();
    conn.accept();
  }

  close(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.stack.closeAll();
    this.stack.flush();
    this.nat.close();
    this.dns.close();
    this.forwards.close();
    this.link.close();
    this.onClose(error);
  }
}
