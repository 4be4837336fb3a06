import { WireError } from './errors.js';

/**
 * IPv4 addresses are uint32 numbers and MAC addresses 48-bit numbers (exact in a double), so the hot
 * path compares and hashes them without allocating.
 */
export type Ipv4Address = number;
export type MacAddress = number;

export const BROADCAST_MAC: MacAddress = 0xffff_ffff_ffff;

export function readIpv4(buf: Uint8Array, off: number): Ipv4Address {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

export function writeIpv4(buf: Uint8Array, off: number, addr: Ipv4Address): void {
  buf[off] = addr >>> 24;
  buf[off + 1] = (addr >>> 16) & 0xff;
  buf[off + 2] = (addr >>> 8) & 0xff;
  buf[off + 3] = addr & 0xff;
}

export function parseIpv4(text: string): Ipv4Address {
  const parts = text.split('.');
  if (parts.length !== 4) throw new WireError('ERR_WIRE_MALFORMED', `not an IPv4 address: ${text}`);
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255)
      throw new WireError('ERR_WIRE_MALFORMED', `not an IPv4 address: ${text}`);
    value = value * 256 + Number(part);
  }
  return value;
}

export function formatIpv4(addr: Ipv4Address): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

export function readMac(buf: Uint8Array, off: number): MacAddress {
  return (
    ((buf[off]! << 8) | buf[off + 1]!) * 0x1_0000_0000 +
    (((buf[off + 2]! << 24) | (buf[off + 3]! << 16) | (buf[off + 4]! << 8) | buf[off + 5]!) >>> 0)
  );
}

export function writeMac(buf: Uint8Array, off: number, mac: MacAddress): void {
  const high = Math.floor(mac / 0x1_0000_0000);
  const low = mac >>> 0;
  buf[off] = high >>> 8;
  buf[off + 1] = high & 0xff;
  buf[off + 2] = low >>> 24;
  buf[off + 3] = (low >>> 16) & 0xff;
  buf[off + 4] = (low >>> 8) & 0xff;
  buf[off + 5] = low & 0xff;
}

export function parseMac(text: string): MacAddress {
  const parts = text.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p)))
    throw new WireError('ERR_WIRE_MALFORMED', `not a MAC address: ${text}`);
  return parts.reduce((acc, p) => acc * 256 + Number.parseInt(p, 16), 0);
}

export function formatMac(mac: MacAddress): string {
  const bytes = new Uint8Array(6);
  writeMac(bytes, 0, mac);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}

export function isMulticastMac(mac: MacAddress): boolean {
  return Math.floor(mac / 0x100_0000_0000) % 2 === 1;
}
