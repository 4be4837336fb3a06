import { type MacAddress, readMac, writeMac } from './address.js';
import type { WireErrorCode } from './errors.js';

export const ETHERNET_HEADER_LEN = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;

/** A view over an Ethernet II frame; reads fields in place. */
export class EthernetFrame {
  constructor(public buf: Uint8Array) {}

  validate(): WireErrorCode | null {
    return this.buf.length < ETHERNET_HEADER_LEN ? 'ERR_WIRE_TRUNCATED' : null;
  }
  get destination(): MacAddress {
    return readMac(this.buf, 0);
  }
  get source(): MacAddress {
    return readMac(this.buf, 6);
  }
  get etherType(): number {
    return (this.buf[12]! << 8) | this.buf[13]!;
  }
  payload(): Uint8Array {
    return this.buf.subarray(ETHERNET_HEADER_LEN);
  }
}

export function writeEthernetHeader(
  buf: Uint8Array,
  destination: MacAddress,
  source: MacAddress,
  etherType: number,
): void {
  writeMac(buf, 0, destination);
  writeMac(buf, 6, source);
  buf[12] = etherType >>> 8;
  buf[13] = etherType & 0xff;
}
