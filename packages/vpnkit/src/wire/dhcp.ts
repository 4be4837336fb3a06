import { type Ipv4Address, type MacAddress, readIpv4, readMac, writeIpv4, writeMac } from './address.js';
import { WireError, type WireErrorCode } from './errors.js';

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;
export const DHCP_FIXED_LEN = 240; // BOOTP fields + magic cookie
const MAGIC_COOKIE = 0x63825363;

export const DHCP_OP_REQUEST = 1;
export const DHCP_OP_REPLY = 2;

export const DhcpMessageType = {
  Discover: 1,
  Offer: 2,
  Request: 3,
  Decline: 4,
  Ack: 5,
  Nak: 6,
  Release: 7,
  Inform: 8,
} as const;

export const DhcpOption = {
  Pad: 0,
  SubnetMask: 1,
  Router: 3,
  DomainNameServer: 6,
  HostName: 12,
  DomainName: 15,
  InterfaceMtu: 26,
  BroadcastAddress: 28,
  RequestedIp: 50,
  LeaseTime: 51,
  MessageType: 53,
  ServerIdentifier: 54,
  ParameterRequestList: 55,
  RenewalTime: 58,
  RebindingTime: 59,
  ClientIdentifier: 61,
  DomainSearch: 119,
  End: 255,
} as const;

/** A view over a DHCP (BOOTP) message, the UDP payload. */
export class DhcpMessage {
  constructor(public buf: Uint8Array) {}

  validate(): WireErrorCode | null {
    const b = this.buf;
    if (b.length < DHCP_FIXED_LEN) return 'ERR_WIRE_TRUNCATED';
    if (readIpv4(b, 236) !== MAGIC_COOKIE) return 'ERR_WIRE_MALFORMED';
    if (b[1] !== 1 || b[2] !== 6) return 'ERR_WIRE_UNSUPPORTED'; // Ethernet hardware addresses only
    return null;
  }
  get op(): number {
    return this.buf[0]!;
  }
  get transactionId(): number {
    return readIpv4(this.buf, 4);
  }
  get seconds(): number {
    return (this.buf[8]! << 8) | this.buf[9]!;
  }
  get flags(): number {
    return (this.buf[10]! << 8) | this.buf[11]!;
  }
  get clientIp(): Ipv4Address {
    return readIpv4(this.buf, 12);
  }
  get yourIp(): Ipv4Address {
    return readIpv4(this.buf, 16);
  }
  get serverIp(): Ipv4Address {
    return readIpv4(this.buf, 20);
  }
  get relayIp(): Ipv4Address {
    return readIpv4(this.buf, 24);
  }
  get clientMac(): MacAddress {
    return readMac(this.buf, 28);
  }

  /** The options in order; throws WireError if one overruns the message. */
  options(): Map<number, Uint8Array> {
    const out = new Map<number, Uint8Array>();
    const b = this.buf;
    let i = DHCP_FIXED_LEN;
    while (i < b.length) {
      const code = b[i]!;
      if (code === DhcpOption.End) break;
      if (code === DhcpOption.Pad) {
        i++;
        continue;
      }
      if (i + 1 >= b.length) throw new WireError('ERR_WIRE_TRUNCATED', 'DHCP option overruns message');
      const len = b[i + 1]!;
      if (i + 2 + len > b.length) throw new WireError('ERR_WIRE_TRUNCATED', 'DHCP option overruns message');
      out.set(code, b.subarray(i + 2, i + 2 + len));
      i += 2 + len;
    }
    return out;
  }
  /** Option 53, or -1 when missing. */
  messageType(): number {
    const option = this.options().get(DhcpOption.MessageType);
    return option && option.length === 1 ? option[0]! : -1;
  }
}

export interface DhcpRepr {
  op: number;
  transactionId: number;
  flags: number;
  clientIp: Ipv4Address;
  yourIp: Ipv4Address;
  serverIp: Ipv4Address;
  relayIp: Ipv4Address;
  clientMac: MacAddress;
  /** Options in the order to write them; values longer than 255 bytes are split (RFC 3396). */
  options: Array<[number, Uint8Array]>;
}

export function dhcpLength(repr: DhcpRepr): number {
  let length = DHCP_FIXED_LEN + 1; // End
  for (const [, value] of repr.options)
    length += 2 * Math.max(1, Math.ceil(value.length / 255)) + value.length;
  return Math.max(length, 300); // some clients insist on the BOOTP minimum
}

export function emitDhcp(buf: Uint8Array, off: number, repr: DhcpRepr): number {
  const length = dhcpLength(repr);
  buf.fill(0, off, off + length);
  buf[off] = repr.op;
  buf[off + 1] = 1;
  buf[off + 2] = 6;
  writeIpv4(buf, off + 4, repr.transactionId);
  buf[off + 10] = repr.flags >>> 8;
  buf[off + 11] = repr.flags & 0xff;
  writeIpv4(buf, off + 12, repr.clientIp);
  writeIpv4(buf, off + 16, repr.yourIp);
  writeIpv4(buf, off + 20, repr.serverIp);
  writeIpv4(buf, off + 24, repr.relayIp);
  writeMac(buf, off + 28, repr.clientMac);
  writeIpv4(buf, off + 236, MAGIC_COOKIE);
  let i = off + DHCP_FIXED_LEN;
  for (const [code, value] of repr.options) {
    let start = 0;
    do {
      const chunk = value.subarray(start, start + 255);
      buf[i] = code;
      buf[i + 1] = chunk.length;
      buf.set(chunk, i + 2);
      i += 2 + chunk.length;
      start += 255;
    } while (start < value.length);
  }
  buf[i] = DhcpOption.End;
  return length;
}
