/** virtio-blk wire format (virtio 1.2 §5.2): request header, types, status codes, discard segments. */

export const BlkRequestType = {
  IN: 0,
  OUT: 1,
  FLUSH: 4,
  GET_ID: 8,
  DISCARD: 11,
  WRITE_ZEROES: 13,
} as const;

export const BlkStatus = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;

/** Feature bits. */
export const BlkFeature = {
  SEG_MAX: 2,
  RO: 5,
  BLK_SIZE: 6,
  FLUSH: 9,
  DISCARD: 13,
  WRITE_ZEROES: 14,
} as const;

export const SECTOR_SIZE = 512;
export const HEADER_SIZE = 16;
export const SEGMENT_SIZE = 16;
export const ID_BYTES = 20;

export interface BlkRequestHeader {
  type: number;
  sector: number;
}

/** Decodes the 16-byte header (type u32, reserved u32, sector u64). Sectors past 2^53 decode as Infinity. */
export function decodeHeader(bytes: Uint8Array): BlkRequestHeader {
  const v = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  const hi = v.getUint32(12, true);
  return {
    type: v.getUint32(0, true),
    sector: hi >= 0x200000 ? Number.POSITIVE_INFINITY : hi * 0x1_0000_0000 + v.getUint32(8, true),
  };
}

export interface BlkSegment {
  sector: number;
  sectors: number;
  /** WRITE_ZEROES: bit 0 = unmap allowed. */
  flags: number;
}

/** Decodes discard/write-zeroes segments (sector u64, num_sectors u32, flags u32). */
export function decodeSegments(bytes: Uint8Array): BlkSegment[] {
  const out: BlkSegment[] = [];
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let off = 0; off + SEGMENT_SIZE <= bytes.length; off += SEGMENT_SIZE) {
    const hi = v.getUint32(off + 4, true);
    out.push({
      sector: hi >= 0x200000 ? Number.POSITIVE_INFINITY : hi * 0x1_0000_0000 + v.getUint32(off, true),
      sectors: v.getUint32(off + 8, true),
      flags: v.getUint32(off + 12, true),
    });
  }
  return out;
}

export interface BlkConfig {
  capacitySectors: number;
  segMax: number;
  blockSize: number;
  maxDiscardSectors: number;
  maxDiscardSegments: number;
  maxWriteZeroesSectors: number;
  maxWriteZeroesSegments: number;
}

/** The device's config space (60 bytes, little-endian). */
export function encodeConfig(c: BlkConfig): Uint8Array {
  const bytes = new Uint8Array(60);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, c.capacitySectors % 0x1_0000_0000, true);
  v.setUint32(4, Math.floor(c.capacitySectors / 0x1_0000_0000), true);
  v.setUint32(12, c.segMax, true);
  v.setUint32(20, c.blockSize, true);
  v.setUint32(36, c.maxDiscardSectors, true);
  v.setUint32(40, c.maxDiscardSegments, true);
  v.setUint32(44, 1, true); // discard_sector_alignment
  v.setUint32(48, c.maxWriteZeroesSectors, true);
  v.setUint32(52, c.maxWriteZeroesSegments, true);
  bytes[56] = 1; // write_zeroes_may_unmap
  return bytes;
}
