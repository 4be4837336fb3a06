import type { Qid } from '../backend.js';
import { QID_SIZE } from './constants.js';

/** Thrown when bytes on the wire do not form a valid message. `tag` is set when the header was readable. */
export class NinePDecodeError extends Error {
  override readonly name = 'NinePDecodeError';
  readonly code = 'ERR_NINEP_DECODE';
  constructor(
    message: string,
    readonly tag?: number,
  ) {
    super(message);
  }
}

/** Thrown when a message does not fit the buffer it is encoded into. */
export class NinePEncodeError extends Error {
  override readonly name = 'NinePEncodeError';
  readonly code = 'ERR_NINEP_ENCODE';
}

const utf8Decoder = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();
const TWO_32 = 0x1_0000_0000;
const U64_MAX = 0xffffffff * TWO_32 + 0xffffffff;

/** A bounds-checked little-endian cursor over a byte view. Every read past `end` throws NinePDecodeError. */
export class WireReader {
  constructor(
    public buf: Uint8Array,
    public pos: number,
    public end: number,
  ) {}

  get remaining(): number {
    return this.end - this.pos;
  }

  need(n: number): void {
    if (this.pos + n > this.end)
      throw new NinePDecodeError(`truncated message: need ${n} bytes at ${this.pos}`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 2;
    return b[p]! | (b[p + 1]! << 8);
  }

  u32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16)) + b[p + 3]! * 0x1000000;
  }

  /** A u64 as a number (exact up to 2^53; offsets and sizes never get near that). */
  u64(): number {
    const lo = this.u32();
    const hi = this.u32();
    return hi * TWO_32 + lo;
  }

  u64big(): bigint {
    const lo = this.u32();
    const hi = this.u32();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  str(): string {
    const n = this.u16();
    this.need(n);
    const p = this.pos;
    this.pos = p + n;
    return n === 0 ? '' : utf8Decoder.decode(this.buf.subarray(p, p + n));
  }

  qid(): Qid {
    this.need(QID_SIZE);
    const type = this.u8();
    const version = this.u32();
    const path = this.u64big();
    return { type, version, path };
  }

  /** A view (no copy) of the next n bytes. */
  bytes(n: number): Uint8Array {
    this.need(n);
    const p = this.pos;
    this.pos = p + n;
    return this.buf.subarray(p, p + n);
  }
}

/** A bounds-checked little-endian cursor that encodes into a preallocated buffer. */
export class WireWriter {
  constructor(
    public buf: Uint8Array,
    public pos = 0,
    public end = buf.length,
  ) {}

  room(n: number): void {
    if (this.pos + n > this.end)
      throw new NinePEncodeError(`message does not fit: need ${n} bytes at ${this.pos}`);
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }

  u16(v: number): void {
    this.room(2);
    const b = this.buf;
    const p = this.pos;
    b[p] = v;
    b[p + 1] = v >>> 8;
    this.pos = p + 2;
  }

  u32(v: number): void {
    this.room(4);
    const b = this.buf;
    const p = this.pos;
    b[p] = v;
    b[p + 1] = v >>> 8;
    b[p + 2] = v >>> 16;
    b[p + 3] = v >>> 24;
    this.pos = p + 4;
  }

  u64(v: number): void {
    if (v >= U64_MAX) {
      // 2^64-1 is not a double; its nearest (2^64) stands for all ones ("don't touch", OFFSET_MAX).
      this.u32(0xffffffff);
      this.u32(0xffffffff);
      return;
    }
    const lo = v % TWO_32;
    this.u32(lo);
    this.u32((v - lo) / TWO_32);
  }

  u64big(v: bigint): void {
    this.u32(Number(v & 0xffffffffn));
    this.u32(Number((v >> 32n) & 0xffffffffn));
  }

  str(s: string): void {
    this.room(2);
    const start = this.pos;
    this.pos += 2;
    let n = 0;
    if (s.length > 0) {
      const r = utf8Encoder.encodeInto(s, this.buf.subarray(this.pos, this.end));
      if (r.read !== s.length || r.written > 0xffff) {
        this.pos = start;
        throw new NinePEncodeError('string does not fit');
      }
      n = r.written;
    }
    this.pos += n;
    this.buf[start] = n;
    this.buf[start + 1] = n >>> 8;
  }

  qid(q: Qid): void {
    this.u8(q.type);
    this.u32(q.version);
    this.u64big(q.path);
  }

  bytes(data: Uint8Array): void {
    this.room(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }
}

export function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}
