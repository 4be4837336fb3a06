import type { Ipv4Address } from './address.js';
import { foldChecksum, internetChecksum, pseudoHeaderSum } from './checksum.js';
import type { WireErrorCode } from './errors.js';
import { IP_PROTOCOL_TCP } from './ipv4.js';

export const TCP_HEADER_LEN = 20;
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;

const OPT_END = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;
const OPT_WINDOW_SCALE = 3;
const OPT_SACK_PERMITTED = 4;
const OPT_SACK = 5;
const OPT_TIMESTAMPS = 8;

/** The TCP options we understand. One instance is reused per parse so the hot path allocates nothing. */
export class TcpOptions {
  mss = -1;
  windowScale = -1;
  sackPermitted = false;
  hasTimestamps = false;
  tsVal = 0;
  tsEcr = 0;
  /** Up to four SACK blocks as [left0, right0, left1, right1, ...]. */
  readonly sackBlocks = new Uint32Array(8);
  sackCount = 0;

  reset(): void {
    this.mss = -1;
    this.windowScale = -1;
    this.sackPermitted = false;
    this.hasTimestamps = false;
    this.tsVal = 0;
    this.tsEcr = 0;
    this.sackCount = 0;
  }
}

/** A view over a TCP segment (the IPv4 payload). */
export class TcpSegment {
  constructor(public buf: Uint8Array) {}

  validate(source?: Ipv4Address, destination?: Ipv4Address): WireErrorCode | null {
    const b = this.buf;
    if (b.length < TCP_HEADER_LEN) return 'ERR_WIRE_TRUNCATED';
    const headerLength = this.headerLength;
    if (headerLength < TCP_HEADER_LEN) return 'ERR_WIRE_MALFORMED';
    if (headerLength > b.length) return 'ERR_WIRE_TRUNCATED';
    if (source !== undefined && destination !== undefined) {
      const initial = pseudoHeaderSum(source, destination, IP_PROTOCOL_TCP, b.length);
      if (internetChecksum(b, 0, b.length, initial) !== 0) return 'ERR_WIRE_CHECKSUM';
    }
    return null;
  }
  get sourcePort(): number {
    return (this.buf[0]! << 8) | this.buf[1]!;
  }
  get destinationPort(): number {
    return (this.buf[2]! << 8) | this.buf[3]!;
  }
  get sequence(): number {
    const b = this.buf;
    return ((b[4]! << 24) | (b[5]! << 16) | (b[6]! << 8) | b[7]!) >>> 0;
  }
  get acknowledgment(): number {
    const b = this.buf;
    return ((b[8]! << 24) | (b[9]! << 16) | (b[10]! << 8) | b[11]!) >>> 0;
  }
  get headerLength(): number {
    return (this.buf[12]! >>> 4) * 4;
  }
  get flags(): number {
    return this.buf[13]! & 0x3f;
  }
  get window(): number {
    return (this.buf[14]! << 8) | this.buf[15]!;
  }
  get checksum(): number {
    return (this.buf[16]! << 8) | this.buf[17]!;
  }
  payload(): Uint8Array {
    return this.buf.subarray(this.headerLength);
  }
  get payloadLength(): number {
    return this.buf.length - this.headerLength;
  }

  /** Parses the options into `out`; returns false if they are malformed (lengths that overrun). */
  parseOptions(out: TcpOptions): boolean {
    out.reset();
    const b = this.buf;
    const end = this.headerLength;
    let i = TCP_HEADER_LEN;
    while (i < end) {
      const kind = b[i]!;
      if (kind === OPT_END) break;
      if (kind === OPT_NOP) {
        i++;
        continue;
      }
      if (i + 1 >= end) return false;
      const len = b[i + 1]!;
      if (len < 2 || i + len > end) return false;
      switch (kind) {
        case OPT_MSS:
          if (len !== 4) return false;
          out.mss = (b[i + 2]! << 8) | b[i + 3]!;
          break;
        case OPT_WINDOW_SCALE:
          if (len !== 3) return false;
          out.windowScale = Math.min(b[i + 2]!, 14);
          break;
        case OPT_SACK_PERMITTED:
          if (len !== 2) return false;
          out.sackPermitted = true;
          break;
        case OPT_SACK: {
          if ((len - 2) % 8 !== 0) return false;
          const count = Math.min((len - 2) / 8, 4);
          for (let k = 0; k < count; k++) {
            const o = i + 2 + k * 8;
            out.sackBlocks[k * 2] = ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
            out.sackBlocks[k * 2 + 1] =
              ((b[o + 4]! << 24) | (b[o + 5]! << 16) | (b[o + 6]! << 8) | b[o + 7]!) >>> 0;
          }
          out.sackCount = count;
          break;
        }
        case OPT_TIMESTAMPS:
          if (len !== 10) return false;
          out.hasTimestamps = true;
          out.tsVal = ((b[i + 2]! << 24) | (b[i + 3]! << 16) | (b[i + 4]! << 8) | b[i + 5]!) >>> 0;
          out.tsEcr = ((b[i + 6]! << 24) | (b[i + 7]! << 16) | (b[i + 8]! << 8) | b[i + 9]!) >>> 0;
          break;
        default:
          break; // unknown options are skipped by length, as RFC 9293 requires
      }
      i += len;
    }
    return true;
  }
}

function write32(buf: Uint8Array, off: number, value: number): void {
  buf[off] = value >>> 24;
  buf[off + 1] = (value >>> 16) & 0xff;
  buf[off + 2] = (value >>> 8) & 0xff;
  buf[off + 3] = value & 0xff;
}

/** Writes `opts` (only the fields that are set) at `off`, NOP-padded to 4 bytes. Returns bytes written. */
export function emitTcpOptions(buf: Uint8Array, off: number, opts: TcpOptions): number {
  let i = off;
  if (opts.mss >= 0) {
    buf[i++] = OPT_MSS;
    buf[i++] = 4;
    buf[i++] = opts.mss >>> 8;
    buf[i++] = opts.mss & 0xff;
  }
  if (opts.sackPermitted) {
    buf[i++] = OPT_NOP;
    buf[i++] = OPT_NOP;
    buf[i++] = OPT_SACK_PERMITTED;
    buf[i++] = 2;
  }
  if (opts.hasTimestamps) {
    buf[i++] = OPT_NOP;
    buf[i++] = OPT_NOP;
    buf[i++] = OPT_TIMESTAMPS;
    buf[i++] = 10;
    write32(buf, i, opts.tsVal);
    write32(buf, i + 4, opts.tsEcr);
    i += 8;
  }
  if (opts.windowScale >= 0) {
    buf[i++] = OPT_NOP;
    buf[i++] = OPT_WINDOW_SCALE;
    buf[i++] = 3;
    buf[i++] = opts.windowScale;
  }
  if (opts.sackCount > 0) {
    buf[i++] = OPT_NOP;
    buf[i++] = OPT_NOP;
    buf[i++] = OPT_SACK;
    buf[i++] = 2 + opts.sackCount * 8;
    for (let k = 0; k < opts.sackCount; k++) {
      write32(buf, i, opts.sackBlocks[k * 2]!);
      write32(buf, i + 4, opts.sackBlocks[k * 2 + 1]!);
      i += 8;
    }
  }
  return i - off;
}

/** Bytes `emitTcpOptions` will write for `opts`. */
export function tcpOptionsLength(opts: TcpOptions): number {
  return (
    (opts.mss >= 0 ? 4 : 0) +
    (opts.sackPermitted ? 4 : 0) +
    (opts.hasTimestamps ? 12 : 0) +
    (opts.windowScale >= 0 ? 4 : 0) +
    (opts.sackCount > 0 ? 4 + opts.sackCount * 8 : 0)
  );
}

export interface TcpHeaderRepr {
  sourcePort: number;
  destinationPort: number;
  sequence: number;
  acknowledgment: number;
  flags: number;
  window: number;
}

/**
 * Writes a TCP header with `optionsLength` bytes of options already at `off+20` and the payload after them,
 * then the checksum over the pseudo-header (or only the pseudo-header part when `partialChecksum`, for a
 * peer that offloads checksums). Returns the header length.
 */
export function emitTcpHeader(
  buf: Uint8Array,
  off: number,
  source: Ipv4Address,
  destination: Ipv4Address,
  repr: TcpHeaderRepr,
  optionsLength: number,
  payloadLength: number,
  partialChecksum = false,
): number {
  const headerLength = TCP_HEADER_LEN + optionsLength;
  buf[off] = repr.sourcePort >>> 8;
  buf[off + 1] = repr.sourcePort & 0xff;
  buf[off + 2] = repr.destinationPort >>> 8;
  buf[off + 3] = repr.destinationPort & 0xff;
  write32(buf, off + 4, repr.sequence);
  write32(buf, off + 8, repr.acknowledgment);
  buf[off + 12] = (headerLength / 4) << 4;
  buf[off + 13] = repr.flags;
  buf[off + 14] = repr.window >>> 8;
  buf[off + 15] = repr.window & 0xff;
  buf[off + 16] = 0;
  buf[off + 17] = 0;
  buf[off + 18] = 0;
  buf[off + 19] = 0;
  const length = headerLength + payloadLength;
  if (partialChecksum) {
    // Checksum offload: only the pseudo-header sum, uncomplemented; the peer finishes it (virtio-net).
    const partial = ~foldChecksum(pseudoHeaderSum(source, destination, IP_PROTOCOL_TCP, length)) & 0xffff;
    buf[off + 16] = partial >>> 8;
    buf[off + 17] = partial & 0xff;
    return headerLength;
  }
  const sum = internetChecksum(
    buf,
    off,
    off + length,
    pseudoHeaderSum(source, destination, IP_PROTOCOL_TCP, length),
  );
  buf[off + 16] = sum >>> 8;
  buf[off + 17] = sum & 0xff;
  return headerLength;
}
