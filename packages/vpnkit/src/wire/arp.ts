import { type Ipv4Address, type MacAddress, readIpv4, readMac, writeIpv4, writeMac } from './address.js';
import type { WireErrorCode } from './errors.js';

export const ARP_LEN = 28;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;

/** A view over an ARP packet for Ethernet/IPv4 (the only kind we answer). */
export class ArpPacket {
  constructor(public buf: Uint8Array) {}

  validate(): WireErrorCode | null {
    const b = this.buf;
    if (b.length < ARP_LEN) return 'ERR_WIRE_TRUNCATED';
    if (b[0] !== 0 || b[1] !== 1 || b[2] !== 0x08 || b[3] !== 0 || b[4] !== 6 || b[5] !== 4)
      return 'ERR_WIRE_UNSUPPORTED';
    return null;
  }
  get operation(): number {
    return (this.buf[6]! << 8) | this.buf[7]!;
  }
  get senderMac(): MacAddress {
    return readMac(this.buf, 8);
  }
  get senderIp(): Ipv4Address {
    return readIpv4(this.buf, 14);
  }
  get targetMac(): MacAddress {
    return readMac(this.buf, 18);
  }
  get targetIp(): Ipv4Address {
    return readIpv4(this.buf, 24);
  }
}

export interface ArpRepr {
  operation: number;
  senderMac: MacAddress;
  senderIp: Ipv4Address;
  targetMac: MacAddress;
  targetIp: Ipv4Address;
}

export function emitArp(buf: Uint8Array, off: number, repr: ArpRepr): number {
  buf.set([0, 1, 0x08, 0, 6, 4, 0, repr.operation], off);
  writeMac(buf, off + 8, repr.senderMac);
  writeIpv4(buf, off + 14, repr.senderIp);
  writeMac(buf, off + 18, repr.targetMac);
  writeIpv4(buf, off + 24, repr.targetIp);
  return ARP_LEN;
}
