import type { Logger } from '../errors.js';
import type { NetworkStack } from '../stack/stack.js';
import {
  type Ipv4Address,
  type MacAddress,
  formatIpv4,
  formatMac,
  readIpv4,
  writeIpv4,
} from '../wire/address.js';
import {
  DHCP_CLIENT_PORT,
  DHCP_OP_REPLY,
  DHCP_OP_REQUEST,
  DHCP_SERVER_PORT,
  DhcpMessage,
  DhcpMessageType,
  DhcpOption,
  type DhcpRepr,
  dhcpLength,
  emitDhcp,
} from '../wire/dhcp.js';
import { type VpnkitConfig, netmask } from './config.js';

const BROADCAST: Ipv4Address = 0xffffffff;

function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  writeIpv4(out, 0, value >>> 0);
  return out;
}

/** RFC 1035 name list for option 119 (uncompressed, which every client accepts). */
function encodeSearchList(domains: string[]): Uint8Array {
  const bytes: number[] = [];
  for (const domain of domains) {
    for (const label of domain.split('.').filter(Boolean)) {
      const b = Buffer.from(label, 'latin1');
      bytes.push(b.length, ...b);
    }
    bytes.push(0);
  }
  return Uint8Array.from(bytes);
}

/**
 * A DHCP server for one link. Each MAC gets the same address every time: a hash of the MAC picks the
 * starting point in the pool, so leases are stable across restarts too while the pool is not crowded.
 */
export class DhcpServer {
  private readonly leases = new Map<MacAddress, Ipv4Address>();
  private readonly owners = new Map<Ipv4Address, MacAddress>();

  constructor(
    private readonly config: VpnkitConfig,
    private readonly stack: NetworkStack,
    private readonly log: Logger,
  ) {}

  /**
   * Reserves `address` for `mac` (hyperkit's "preferred IPv4" command). Returns false when the address is
   * outside the pool or taken by another MAC; the client then gets a normal lease.
   */
  reserve(mac: MacAddress, address: Ipv4Address): boolean {
    if (address < this.config.dhcpFirst || address > this.config.dhcpLast) return false;
    const owner = this.owners.get(address);
    if (owner !== undefined && owner !== mac) return false;
    const previous = this.leases.get(mac);
    if (previous !== undefined) this.owners.delete(previous);
    this.leases.set(mac, address);
    this.owners.set(address, mac);
    return true;
  }

  /** The address leased to `mac`, if any. */
  leaseFor(mac: MacAddress): Ipv4Address | undefined {
    return this.leases.get(mac);
  }

  private allocate(mac: MacAddress): Ipv4Address | null {
    const existing = this.leases.get(mac);
    if (existing !== undefined) return existing;
    const first = this.config.dhcpFirst;
    const size = this.config.dhcpLast - first + 1;
    if (size <= 0) return null;
    let hash = 2166136261;
    for (let shift = 0; shift < 48; shift += 8) {
      hash ^= Math.floor(mac / 2 ** shift) & 0xff;
      hash = Math.imul(hash, 16777619) >>> 0;
    }
    for (let i = 0; i < size; i++) {
      const candidate = first + ((hash + i) % size);
      if (
        !this.owners.has(candidate) &&
        candidate !== this.config.gateway &&
        candidate !== this.config.hostAlias
      ) {
        this.leases.set(mac, candidate);
        this.owners.set(candidate, mac);
        return candidate;
      }
    }
    return null;
  }

  /** Handles a datagram to UDP port 67. */
  handle(payload: Uint8Array): void {
    const message = new DhcpMessage(payload);
    if (message.validate() !== null || message.op !== DHCP_OP_REQUEST) return;
    let options: Map<number, Uint8Array>;
    try {
      options = message.options();
    } catch {
      return;
    }
    const typeOption = options.get(DhcpOption.MessageType);
    const type = typeOption?.length === 1 ? typeOption[0]! : -1;
    const mac = message.clientMac;
    const requestedOption = options.get(DhcpOption.RequestedIp);
    const requested =
      requestedOption?.length === 4 ? readIpv4(requestedOption, 0) : message.clientIp || undefined;
    const serverIdOption = options.get(DhcpOption.ServerIdentifier);
    if (serverIdOption?.length === 4 && readIpv4(serverIdOption, 0) !== this.config.gateway) return; // another server's
    switch (type) {
      case DhcpMessageType.Discover: {
        const address = this.allocate(mac);
        if (address === null) {
          this.log('warn', `DHCP: address pool exhausted, cannot offer to ${formatMac(mac)}`);
          return;
        }
        this.reply(message, DhcpMessageType.Offer, address);
        return;
      }
      case DhcpMessageType.Request: {
        const address = this.allocate(mac);
        if (address === null || (requested !== undefined && requested !== address)) {
          this.reply(message, DhcpMessageType.Nak, 0);
          return;
        }
        this.log('info', `DHCP: leased ${formatIpv4(address)} to ${formatMac(mac)}`);
        this.stack.learnNeighbor(address, mac);
        this.reply(message, DhcpMessageType.Ack, address);
        return;
      }
      case DhcpMessageType.Inform:
        this.reply(message, DhcpMessageType.Ack, 0);
        return;
      default:
        return; // Release/Decline: the lease stays reserved for this MAC
    }
  }

  private reply(request: DhcpMessage, type: number, address: Ipv4Address): void {
    const c = this.config;
    const options: Array<[number, Uint8Array]> = [
      [DhcpOption.MessageType, Uint8Array.of(type)],
      [DhcpOption.ServerIdentifier, u32(c.gateway)],
    ];
    if (type !== DhcpMessageType.Nak) {
      if (type !== DhcpMessageType.Ack || address !== 0) {
        options.push([DhcpOption.LeaseTime, u32(c.leaseSeconds)]);
        options.push([DhcpOption.RenewalTime, u32(Math.floor(c.leaseSeconds / 2))]);
        options.push([DhcpOption.RebindingTime, u32(Math.floor((c.leaseSeconds * 7) / 8))]);
      }
      const mask = netmask(c.prefixLength);
      options.push([DhcpOption.SubnetMask, u32(mask)]);
      options.push([DhcpOption.BroadcastAddress, u32((c.subnet | ~mask) >>> 0)]);
      options.push([DhcpOption.Router, u32(c.gateway)]);
      options.push([DhcpOption.DomainNameServer, u32(c.gateway)]);
      options.push([DhcpOption.InterfaceMtu, Uint8Array.of(c.mtu >>> 8, c.mtu & 0xff)]);
      if (c.domainName) options.push([DhcpOption.DomainName, Buffer.from(c.domainName, 'latin1')]);
      if (c.searchDomains.length > 0)
        options.push([DhcpOption.DomainSearch, encodeSearchList(c.searchDomains)]);
    }
    const repr: DhcpRepr = {
      op: DHCP_OP_REPLY,
      transactionId: request.transactionId,
      flags: request.flags,
      clientIp: type === DhcpMessageType.Nak ? 0 : request.clientIp,
      yourIp: address,
      serverIp: c.gateway,
      relayIp: request.relayIp,
      clientMac: request.clientMac,
      options,
    };
    const out = new Uint8Array(dhcpLength(repr));
    emitDhcp(out, 0, repr);
    // A client without an address cannot receive unicast IP yet: broadcast unless it already has one.
    const destination = request.clientIp !== 0 && type !== DhcpMessageType.Nak ? request.clientIp : BROADCAST;
    this.stack.sendUdp(c.gateway, DHCP_SERVER_PORT, destination, DHCP_CLIENT_PORT, out);
  }
}
