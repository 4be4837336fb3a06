import { createHash } from 'node:crypto';
import { crc32, deflateSync } from 'node:zlib';
import type { ObjectType } from './objects.js';

const typeCodes: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3, tag: 4 };

export interface PackInput {
  readonly hash: string;
  readonly type: ObjectType;
  readonly data: Uint8Array;
  /** A git delta giving `data` from object `base`: stored as OFS_DELTA if the base is earlier in the pack. */
  readonly delta?: { readonly base: string; readonly data: Uint8Array };
}

/** Longest delta chain written (git's default --depth is 50): bounds the work of a read. */
const MAX_DELTA_DEPTH = 20;
const OFS_DELTA = 6;
/** Contents shorter than this are stored, not deflated. */
const MIN_DEFLATED = 256;

/**
 * Encodes objects as a version-2 pack (no deltas) and its version-2 index: what `git index-pack`
 * would produce for them, so git and our reader both read it.
 */
export function encodePack(objects: readonly PackInput[]): {
  pack: Uint8Array;
  idx: Uint8Array;
  name: string;
} {
  const parts: Uint8Array[] = [];
  const header = new Uint8Array(12);
  const hv = new DataView(header.buffer);
  header.set([0x50, 0x41, 0x43, 0x4b]); // "PACK"
  hv.setUint32(4, 2);
  hv.setUint32(8, objects.length);
  parts.push(header);
  let offset = 12;
  const entries: Array<{ name: Buffer; offset: number; crc: number }> = [];
  const placed = new Map<string, { offset: number; depth: number }>();
  for (const o of objects) {
    const head: number[] = [];
    const base = o.delta ? placed.get(o.delta.base) : undefined;
    const asDelta = o.delta !== undefined && base !== undefined && base.depth < MAX_DELTA_DEPTH;
    const payload = asDelta ? (o.delta as { data: Uint8Array }).data : o.data;
    let size = payload.length;
    let byte = ((asDelta ? OFS_DELTA : typeCodes[o.type]) << 4) | (size & 0x0f);
    size = Math.floor(size / 16);
    while (size > 0) {
      head.push(byte | 0x80);
      byte = size & 0x7f;
      size = Math.floor(size / 128);
    }
    head.push(byte);
    if (asDelta && base) {
      // The distance back to the base, as git writes it (big-endian groups of 7 bits, each
      // continued group one less).
      let back = offset - base.offset;
      const ofs = [back & 0x7f];
      back = Math.floor(back / 128);
      while (back > 0) {
        back -= 1;
        ofs.unshift(0x80 | (back & 0x7f));
        back = Math.floor(back / 128);
      }
      head.push(...ofs);
    }
    const headBytes = Uint8Array.from(head);
    // Trees and commits are mostly hashes, which do not compress: store them (level 0, a copy)
    // rather than spend a deflate of every rewritten tree on each commit. Contents get level 1,
    // unless they are too small to gain anything (a zlib stream per object costs 10-20 µs).
    const body =
      o.type === 'blob' && !asDelta && payload.length >= MIN_DEFLATED
        ? deflateSync(payload, { level: 1 })
        : storedZlib(payload);
    placed.set(o.hash, { offset, depth: asDelta && base ? base.depth + 1 : 0 });
    const crc = crc32(body, crc32(headBytes));
    entries.push({ name: Buffer.from(o.hash, 'hex'), offset, crc });
    parts.push(headBytes, body);
    offset += headBytes.length + body.length;
  }
  const packBody = Buffer.concat(parts);
  const packSum = createHash('sha1').update(packBody).digest();
  const pack = Buffer.concat([packBody, packSum]);

  entries.sort((a, b) => Buffer.compare(a.name, b.name));
  const n = entries.length;
  const idx = Buffer.alloc(8 + 1024 + n * 28 + 40);
  idx.writeUInt32BE(0xff744f63, 0);
  idx.writeUInt32BE(2, 4);
  const fanout = new Uint32Array(256);
  for (const e of entries) fanout[e.name[0] ?? 0] = (fanout[e.name[0] ?? 0] ?? 0) + 1;
  let running = 0;
  for (let i = 0; i < 256; i++) {
    running += fanout[i] ?? 0;
    idx.writeUInt32BE(running, 8 + i * 4);
  }
  let p = 8 + 1024;
  for (const e of entries) {
    e.name.copy(idx, p);
    p += 20;
  }
  for (const e of entries) {
    idx.writeUInt32BE(e.crc >>> 0, p);
    p += 4;
  }
  for (const e of entries) {
    // Packs we write are small; offsets past 2 GiB would need the large-offset table.
    idx.writeUInt32BE(e.offset, p);
    p += 4;
  }
  packSum.copy(idx, p);
  p += 20;
  createHash('sha1').update(idx.subarray(0, p)).digest().copy(idx, p);
  return { pack, idx, name: `pack-${packSum.toString('hex')}` };
}

/**
 * `data` as a zlib stream of stored (uncompressed) deflate blocks, RFC 1950/1951: what
 * `deflateSync(data, { level: 0 })` produces, without building a zlib stream object per call.
 */
export function storedZlib(data: Uint8Array): Uint8Array {
  const MAX_BLOCK = 0xffff;
  const blocks = Math.max(1, Math.ceil(data.length / MAX_BLOCK));
  const out = Buffer.allocUnsafe(2 + blocks * 5 + data.length + 4);
  out[0] = 0x78; // CM 8 (deflate), CINFO 7 (32 KiB window)
  out[1] = 0x01; // no dictionary, fastest; (0x78 << 8 | 0x01) % 31 === 0
  let p = 2;
  for (let b = 0; b < blocks; b++) {
    const start = b * MAX_BLOCK;
    const len = Math.min(MAX_BLOCK, data.length - start);
    out[p] = b === blocks - 1 ? 1 : 0; // BFINAL, BTYPE 00 (stored)
    out.writeUInt16LE(len, p + 1);
    out.writeUInt16LE(~len & 0xffff, p + 3);
    out.set(data.subarray(start, start + len), p + 5);
    p += 5 + len;
  }
  out.writeUInt32BE(adler32(data), p);
  return out;
}

function adler32(data: Uint8Array): number {
  let a = 1;
  let b = 0;
  // 5552 bytes is the most that can be summed before b may overflow 2^32 (zlib's NMAX).
  for (let i = 0; i < data.length; ) {
    const end = Math.min(i + 5552, data.length);
    for (; i < end; i++) {
      a += data[i] as number;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}
