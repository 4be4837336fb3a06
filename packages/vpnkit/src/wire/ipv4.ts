import { type Ipv4Address, readIpv4, writeIpv4 } from './address.js';
import { internetChecksum } from './checksum.js';
import type { WireErrorCode } from './errors.js';

export const IPV4_HEADER_LEN = 20;
export const IP_PROTOCOL_ICMP = 1;
export const IP_PROTOCOL_TCP = 6;
export const IP_PROTOCOL_UDP = 17;

/** A view over an IPv4 packet. `buf` may extend past the packet (Ethernet padding); `totalLength` bounds it. */
export class Ipv4Packet {
  constructor(public buf: Uint8Array) {}

  validate(verifyChecksum = true): WireErrorCode | null {
    const b = this.buf;
    if (b.length < IPV4_HEADER_LEN) return 'ERR_WIRE_TRUNCATED';
    if (b[0]! >>> 4 !== 4) return 'ERR_WIRE_MALFORMED';
    const headerLength = this.headerLength;
    const totalLength = this.totalLength;
    if (headerLength < IPV4_HEADER_LEN || totalLength < headerLength) return 'ERR_WIRE_MALFORMED';
    if (totalLength > b.length) return 'ERR_WIRE_TRUNCATED';
    if (verifyChecksum && internetChecksum(b, 0, headerLength) !== 0) return 'ERR_WIRE_CHECKSUM';
    return null;
  }
  get headerLength(): number {
    return (this.buf[0]! & 0x0f) * 4;
  }
  get dscpEcn(): number {
    return this.buf[1]!;
  }
  get totalLength(): number {
    return (this.buf[2]! << 8) | this.buf[3]!;
  }
  get identification(): number {
    return (this.buf[4]! << 8) | this.buf[5]!;
  }
  get dontFragment(): boolean {
    return (this.buf[6]! & 0x40) !== 0;
  }
  get moreFragments(): boolean {
    return (this.buf[6]! & 0x20) !== 0;
  }
  /** Offset of this fragment's payload in the original datagram, in bytes. */
  get fragmentOffset(): number {
    return (((this.buf[6]! & 0x1f) << 8) | this.buf[7]!) * 8;
  }
  get isFragment(): boolean {
    return this.moreFragments || this.fragmentOffset !== 0;
  }
  get ttl(): number {
    return this.buf[8]!;
  }
  get protocol(): number {
    return this.buf[9]!;
  }
  get checksum(): number {
    return (this.buf[10]! << 8) | this.buf[11]!;
  }
  get source(): Ipv4Address {
    return readIpv4(this.buf, 12);
  }
  get destination(): Ipv4Address {
    return readIpv4(this.buf, 16);
  }
  payload(): Uint8Array {
    return this.buf.subarray(this.headerLength, this.totalLength);
  }
}

export interface Ipv4HeaderRepr {
  source: Ipv4Address;
  destination: Ipv4Address;
  protocol: number;
  payloadLength: number;
  identification?: number;
  ttl?: number;
  dontFragment?: boolean;
  moreFragments?: boolean;
  /** In bytes; must be a multiple of 8. */
  fragmentOffset?: number;
}

/** Writes a 20-byte header (no options) at `off`, with its checksum. Returns the header length. */
export function emitIpv4Header(buf: Uint8Array, off: number, repr: Ipv4HeaderRepr): number {
  const total = IPV4_HEADER_LEN + repr.payloadLength;
  const id = repr.identification ?? 0;
  const fragmentField =
    (repr.dontFragment ? 0x4000 : 0) | (repr.moreFragments ? 0x2000 : 0) | ((repr.fragmentOffset ?? 0) >>> 3);
  buf[off] = 0x45;
  buf[off + 1] = 0;
  buf[off + 2] = total >>> 8;
  buf[off + 3] = total & 0xff;
  buf[off + 4] = id >>> 8;
  buf[off + 5] = id & 0xff;
  buf[off + 6] = fragmentField >>> 8;
  buf[off + 7] = fragmentField & 0xff;
  buf[off + 8] = repr.ttl ?? 64;
  buf[off + 9] = repr.protocol;
  buf[off + 10] = 0;
  buf[off + 11] = 0;
  writeIpv4(buf, off + 12, repr.source);
  writeIpv4(buf, off + 16, repr.destination);
  const sum = internetChecksum(buf, off, off + IPV4_HEADER_LEN);
  buf[off + 10] = sum >>> 8;
  buf[off + 11] = sum & 0xff;
  return IPV4_HEADER_LEN;
}
