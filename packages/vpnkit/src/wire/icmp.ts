import { internetChecksum } from './checksum.js';
import type { WireErrorCode } from './errors.js';

export const ICMP_HEADER_LEN = 8;
export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_CODE_PORT_UNREACHABLE = 3;
export const ICMP_CODE_FRAGMENTATION_NEEDED = 4;

/** A view over an ICMPv4 message (the IPv4 payload). */
export class IcmpPacket {
  constructor(public buf: Uint8Array) {}

  validate(verifyChecksum = true): WireErrorCode | null {
    if (this.buf.length < ICMP_HEADER_LEN) return 'ERR_WIRE_TRUNCATED';
    if (verifyChecksum && internetChecksum(this.buf, 0, this.buf.length) !== 0) return 'ERR_WIRE_CHECKSUM';
    return null;
  }
  get type(): number {
    return this.buf[0]!;
  }
  get code(): number {
    return this.buf[1]!;
  }
  get checksum(): number {
    return (this.buf[2]! << 8) | this.buf[3]!;
  }
  /** Echo identifier (echo request/reply only). */
  get echoIdentifier(): number {
    return (this.buf[4]! << 8) | this.buf[5]!;
  }
  get echoSequence(): number {
    return (this.buf[6]! << 8) | this.buf[7]!;
  }
  payload(): Uint8Array {
    return this.buf.subarray(ICMP_HEADER_LEN);
  }
}

/** Writes type, code and the 4-byte rest-of-header; `buf[off+8 .. end)` must already hold the body. */
export function emitIcmp(
  buf: Uint8Array,
  off: number,
  end: number,
  type: number,
  code: number,
  restOfHeader: number,
): void {
  buf[off] = type;
  buf[off + 1] = code;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + 4] = restOfHeader >>> 24;
  buf[off + 5] = (restOfHeader >>> 16) & 0xff;
  buf[off + 6] = (restOfHeader >>> 8) & 0xff;
  buf[off + 7] = restOfHeader & 0xff;
  const sum = internetChecksum(buf, off, end);
  buf[off + 2] = sum >>> 8;
  buf[off + 3] = sum & 0xff;
}
