import { VpnkitError } from '../errors.js';
import { type Ipv4Address, type MacAddress, parseIpv4, parseMac } from '../wire/address.js';

export interface PortForward {
  protocol: 'tcp' | 'udp';
  hostAddress: string;
  hostPort: number;
  guestAddress: Ipv4Address;
  guestPort: number;
}

export interface VpnkitConfig {
  subnet: Ipv4Address;
  prefixLength: number;
  gateway: Ipv4Address;
  gatewayMac: MacAddress;
  /** The address in the subnet that stands for the host's 127.0.0.1, or null to turn host-loopback access off. */
  hostAlias: Ipv4Address | null;
  /** First address handed out by DHCP. */
  dhcpFirst: Ipv4Address;
  dhcpLast: Ipv4Address;
  leaseSeconds: number;
  mtu: number;
  domainName: string;
  searchDomains: string[];
  /** Upstream resolvers as "host" or "host:port"; empty = follow /etc/resolv.conf. */
  dnsServers: string[];
  resolvConfPath: string;
  hostsPath: string;
  forwards: PortForward[];
  maxConnections: number;
  maxHalfOpen: number;
  udpFlowLimit: number;
  udpIdleMs: number;
  tcpConnectTimeoutMs: number;
  /**
   * A NAT'd TCP connection with no segment from the guest and no data either way for this long is reset
   * (VPNKit's --port-max-idle-time, 300 s by default there too); 0 = never. Guest keepalives count as
   * activity, so an application that sends them is never cut off.
   */
  tcpIdleMs: number;
  /**
   * How long the ACK of a small request may wait for the reply to carry it (0 = ACK at once). 1 ms is
   * long enough for a host reply on loopback, far below any RTO, and a guest Nagle-waiting on it loses
   * little (Linux itself delays up to 40 ms).
   */
  delayedAckMs: number;
}

export function defaultConfig(): VpnkitConfig {
  return {
    subnet: parseIpv4('192.168.65.0'),
    prefixLength: 24,
    gateway: parseIpv4('192.168.65.1'),
    gatewayMac: parseMac('f6:16:36:bc:f9:c6'),
    hostAlias: parseIpv4('192.168.65.254'),
    dhcpFirst: parseIpv4('192.168.65.3'),
    dhcpLast: parseIpv4('192.168.65.253'),
    leaseSeconds: 7200,
    mtu: 1500,
    domainName: 'kitset.internal',
    searchDomains: ['kitset.internal'],
    dnsServers: [],
    resolvConfPath: '/etc/resolv.conf',
    hostsPath: '/etc/hosts',
    forwards: [],
    maxConnections: 8192,
    maxHalfOpen: 1024,
    udpFlowLimit: 1024,
    udpIdleMs: 60_000,
    tcpConnectTimeoutMs: 10_000,
    tcpIdleMs: 300_000,
    delayedAckMs: 1,
  };
}

export function netmask(prefixLength: number): Ipv4Address {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

export function inSubnet(config: VpnkitConfig, address: Ipv4Address): boolean {
  const mask = netmask(config.prefixLength);
  return (address & mask) >>> 0 === (config.subnet & mask) >>> 0;
}

/** Parses `tcp:127.0.0.1:8080:192.168.65.3:80` (host address optional: `tcp:8080:192.168.65.3:80`). */
export function parseForward(spec: string): PortForward {
  const parts = spec.split(':');
  const bad = () =>
    new VpnkitError(
      'ERR_VPNKIT_FORWARD_SPEC',
      `bad forward "${spec}": expected tcp|udp:[HOST_ADDRESS:]HOST_PORT:GUEST_ADDRESS:GUEST_PORT`,
    );
  if (parts.length !== 4 && parts.length !== 5) throw bad();
  const protocol = parts[0];
  if (protocol !== 'tcp' && protocol !== 'udp') throw bad();
  const [hostAddress, hostPort, guestAddress, guestPort] =
    parts.length === 5 ? parts.slice(1) : ['127.0.0.1', ...parts.slice(1)];
  const port = (text: string | undefined) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw bad();
    return n;
  };
  let guest: Ipv4Address;
  try {
    guest = parseIpv4(guestAddress ?? '');
  } catch {
    throw bad();
  }
  return {
    protocol,
    hostAddress: hostAddress ?? '127.0.0.1',
    hostPort: port(hostPort),
    guestAddress: guest,
    guestPort: port(guestPort),
  };
}
