import type { Ipv4Address } from './address.js';
import { internetChecksum, pseudoHeaderSum } from './checksum.js';
import type { WireErrorCode } from './errors.js';
import { IP_PROTOCOL_UDP } from './ipv4.js';

export const UDP_HEADER_LEN = 8;

/** A view over a UDP datagram (the IPv4 payload). */
export class UdpDatagram {
  constructor(public buf: Uint8Array) {}

  /** Checks lengths and, when the sender set one, the checksum over the pseudo-header. */
  validate(source?: Ipv4Address, destination?: Ipv4Address): WireErrorCode | null {
    const b = this.buf;
    if (b.length < UDP_HEADER_LEN) return 'ERR_WIRE_TRUNCATED';
    const length = this.length;
    if (length < UDP_HEADER_LEN) return 'ERR_WIRE_MALFORMED';
    if (length > b.length) return 'ERR_WIRE_TRUNCATED';
    if (source !== undefined && destination !== undefined && this.checksum !== 0) {
      const initial = pseudoHeaderSum(source, destination, IP_PROTOCOL_UDP, length);
      if (internetChecksum(b, 0, length, initial) !== 0) return 'ERR_WIRE_CHECKSUM';
    }
    return null;
  }
  get sourcePort(): number {
    return (this.buf[0]! << 8) | this.buf[1]!;
  }
  get destinationPort(): number {
    return (this.buf[2]! << 8) | this.buf[3]!;
  }
  get length(): number {
    return (this.buf[4]! << 8) | this.buf[5]!;
  }
  get checksum(): number {
    return (this.buf[6]! << 8) | this.buf[7]!;
  }
  payload(): Uint8Array {
    return this.buf.subarray(UDP_HEADER_LEN, this.length);
  }
}

/** Writes the UDP header at `off`; the payload must already be at `off+8 .. off+8+payloadLength`. */
export function emitUdpHeader(
  buf: Uint8Array,
  off: number,
  source: Ipv4Address,
  destination: Ipv4Address,
  sourcePort: number,
  destinationPort: number,
  payloadLength: number,
): number {
  const length = UDP_HEADER_LEN + payloadLength;
  buf[off] = sourcePort >>> 8;
  buf[off + 1] = sourcePort & 0xff;
  buf[off + 2] = destinationPort >>> 8;
  buf[off + 3] = destinationPort & 0xff;
  buf[off + 4] = length >>> 8;
  buf[off + 5] = length & 0xff;
  buf[off + 6] = 0;
  buf[off + 7] = 0;
  let sum = internetChecksum(
    buf,
    off,
    off + length,
    pseudoHeaderSum(source, destination, IP_PROTOCOL_UDP, length),
  );
  if (sum === 0) sum = 0xffff; // zero means "no checksum" in UDP
  buf[off + 6] = sum >>> 8;
  buf[off + 7] = sum & 0xff;
  return UDP_HEADER_LEN;
}
