import { closeSync, fstatSync, fsyncSync, openSync, readSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { DiskError, type DiskImage, RawDisk, preadFull, pwriteFull } from './disk.js';

/**
 * qcow2 (versions 2 and 3) as written by `qemu-img`: reads, writes with cluster allocation and exact
 * refcounts (so `qemu-img check` stays clean), backing files (raw or qcow2), zero clusters, discard.
 * Not supported: encryption, compressed clusters (reads fail with an I/O error), external data files,
 * extended L2 entries, writing to images with internal snapshots or a dirty/corrupt flag.
 * Refcounts are always kept exact, which is also correct for images with lazy_refcounts=on.
 */

const MAGIC = 0x514649fb;
const INCOMPAT_DIRTY = 1;
const INCOMPAT_CORRUPT = 2;
const EXT_BACKING_FORMAT = 0xe2792aca;
const HI_COPIED = 0x80000000;
const HI_COMPRESSED = 0x40000000;
/** Host cluster offsets: bits 9..55 of an L1/L2 entry. */
const HI_OFFSET_MASK = 0x00ffffff;
const LO_OFFSET_MASK = 0xfffffe00;
const LO_ZERO = 1;
/** Cached L2 tables / refcount blocks before the least recently used is dropped (they are written through). */
const CACHE_TABLES = 64;

export interface Qcow2Header {
  version: number;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  incompatibleFeatures: number;
  compatibleFeatures: number;
  autoclearFeatures: number;
  refcountOrder: number;
  headerLength: number;
}

function u64(v: DataView, off: number): number {
  const hi = v.getUint32(off, false);
  if (hi >= 0x200000) throw new DiskError(`qcow2: 64-bit field at ${off} too large`);
  return hi * 0x1_0000_0000 + v.getUint32(off + 4, false);
}

/** Parses the header (big-endian) from the first bytes of the file. */
export function parseQcow2Header(bytes: Uint8Array): Qcow2Header {
  if (bytes.length < 72) throw new DiskError('qcow2: file too short for a header');
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0, false) !== MAGIC) throw new DiskError('qcow2: bad magic');
  const version = v.getUint32(4, false);
  if (version !== 2 && version !== 3) throw new DiskError(`qcow2: unsupported version ${version}`);
  const v3 = version === 3;
  if (v3 && bytes.length < 104) throw new DiskError('qcow2: file too short for a version 3 header');
  const h: Qcow2Header = {
    version,
    backingFileOffset: u64(v, 8),
    backingFileSize: v.getUint32(16, false),
    clusterBits: v.getUint32(20, false),
    size: u64(v, 24),
    cryptMethod: v.getUint32(32, false),
    l1Size: v.getUint32(36, false),
    l1TableOffset: u64(v, 40),
    refcountTableOffset: u64(v, 48),
    refcountTableClusters: v.getUint32(56, false),
    nbSnapshots: v.getUint32(60, false),
    incompatibleFeatures: v3 ? u64(v, 72) : 0,
    compatibleFeatures: v3 ? u64(v, 80) : 0,
    autoclearFeatures: v3 ? u64(v, 88) : 0,
    refcountOrder: v3 ? v.getUint32(96, false) : 4,
    headerLength: v3 ? v.getUint32(100, false) : 72,
  };
  if (h.clusterBits < 9 || h.clusterBits > 21) throw new DiskError(`qcow2: cluster_bits ${h.clusterBits}`);
  if (h.refcountOrder > 6) throw new DiskError(`qcow2: refcount_order ${h.refcountOrder}`);
  if (h.cryptMethod !== 0) throw new DiskError('qcow2: encrypted images are not supported');
  const cs = 2 ** h.clusterBits;
  if (h.l1TableOffset % cs || h.refcountTableOffset % cs) throw new DiskError('qcow2: misaligned tables');
  if (h.l1Size * (cs / 8) * cs < h.size) throw new DiskError('qcow2: L1 table too small for the disk size');
  return h;
}

/** Header extensions (type → data), which start after the header and end with type 0. */
export function parseHeaderExtensions(bytes: Uint8Array, start: number): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = start;
  for (let i = 0; i < 256 && off + 8 <= bytes.length; i++) {
    const type = v.getUint32(off, false);
    const len = v.getUint32(off + 4, false);
    if (type === 0) break;
    if (off + 8 + len > bytes.length)
      throw new DiskError('qcow2: header extension runs past the header cluster');
    out.set(type, bytes.subarray(off + 8, off + 8 + len));
    off += 8 + Math.ceil(len / 8) * 8;
  }
  return out;
}

export function isQcow2(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = new Uint8Array(4);
    return readSync(fd, b, 0, 4, 0) === 4 && new DataView(b.buffer).getUint32(0, false) === MAGIC;
  } finally {
    closeSync(fd);
  }
}

/** Opens a raw or qcow2 image, chosen by its magic. */
export function openDiskImage(path: string, readOnly = false): DiskImage {
  let qcow: boolean;
  try {
    qcow = isQcow2(path);
  } catch (e) {
    throw new DiskError(`cannot open disk image ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  return qcow ? new Qcow2Disk(path, readOnly) : new RawDisk(path, readOnly);
}

/** An L2 entry split into what we use. */
interface Entry {
  offset: number;
  copied: boolean;
  compressed: boolean;
  zero: boolean;
}

export class Qcow2Disk implements DiskImage {
  readonly size: number;
  readonly header: Qcow2Header;
  readonly backing: DiskImage | undefined;
  private readonly fd: number;
  private readonly clusterSize: number;
  private readonly l2Entries: number;
  private readonly l1: Uint8Array;
  private readonly l1View: DataView;
  private readonly refTable: Uint8Array;
  private readonly refTableView: DataView;
  private readonly refBits: number;
  private readonly refsPerBlock: number;
  private readonly l2Cache = new Map<number, Uint8Array>();
  private readonly refCache = new Map<number, Uint8Array>();
  private nextFree: number;
  private readonly freed: number[] = [];
  private readonly scratch: Uint8Array;

  constructor(
    readonly path: string,
    readonly readOnly = false,
    depth = 0,
  ) {
    try {
      this.fd = openSync(path, readOnly ? 'r' : 'r+');
    } catch (e) {
      throw new DiskError(`cannot open disk image ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
    try {
      const first = new Uint8Array(4096);
      preadFull(this.fd, first, 0);
      const h = parseQcow2Header(first);
      this.header = h;
      this.size = h.size;
      this.clusterSize = 2 ** h.clusterBits;
      this.l2Entries = this.clusterSize / 8;
      this.scratch = new Uint8Array(this.clusterSize);
      const known = INCOMPAT_DIRTY | INCOMPAT_CORRUPT;
      if (h.incompatibleFeatures & ~known) {
        throw new DiskError(
          `qcow2: ${path} uses incompatible features 0x${h.incompatibleFeatures.toString(16)} (external data file, compression type or extended L2) that are not supported`,
        );
      }
      if (!readOnly && h.incompatibleFeatures & INCOMPAT_CORRUPT) {
        throw new DiskError(`qcow2: ${path} is marked corrupt; repair it with qemu-img check -r all`);
      }
      if (!readOnly && h.incompatibleFeatures & INCOMPAT_DIRTY) {
        throw new DiskError(
          `qcow2: ${path} has stale refcounts (dirty); repair it with qemu-img check -r all`,
        );
      }
      if (!readOnly && h.nbSnapshots > 0) {
        throw new DiskError(
          `qcow2: ${path} has internal snapshots; writing to it is not supported (open read-only)`,
        );
      }
      this.l1 = new Uint8Array(h.l1Size * 8);
      preadFull(this.fd, this.l1, h.l1TableOffset);
      this.l1View = new DataView(this.l1.buffer);
      this.refTable = new Uint8Array(h.refcountTableClusters * this.clusterSize);
      preadFull(this.fd, this.refTable, h.refcountTableOffset);
      this.refTableView = new DataView(this.refTable.buffer);
      this.refBits = 2 ** h.refcountOrder;
      this.refsPerBlock = (this.clusterSize * 8) / this.refBits;
      const fileSize = fstatSync(this.fd).size;
      this.nextFree = Math.ceil(fileSize / this.clusterSize) * this.clusterSize;

      const headerCluster = new Uint8Array(Math.min(this.clusterSize, Math.max(fileSize, 72)));
      preadFull(this.fd, headerCluster, 0);
      const ext = parseHeaderExtensions(headerCluster, h.headerLength);
      if (h.backingFileOffset !== 0 && h.backingFileSize > 0) {
        if (depth >= 16) throw new DiskError(`qcow2: backing chain deeper than 16 at ${path}`);
        if (h.backingFileSize > 1023) throw new DiskError('qcow2: backing file name too long');
        const name = new Uint8Array(h.backingFileSize);
        preadFull(this.fd, name, h.backingFileOffset);
        const backingName = new TextDecoder().decode(name);
        const backingPath = isAbsolute(backingName) ? backingName : resolve(dirname(path), backingName);
        const fmt = ext.get(EXT_BACKING_FORMAT);
        const format = fmt ? new TextDecoder().decode(fmt) : undefined;
        this.backing =
          format === 'raw'
            ? new RawDisk(backingPath, true)
            : format === 'qcow2' || isQcow2(backingPath)
              ? new Qcow2Disk(backingPath, true, depth + 1)
              : new RawDisk(backingPath, true);
      }
      if (!readOnly && h.autoclearFeatures !== 0) {
        // A writer that does not maintain an autoclear feature (e.g. persistent bitmaps) must clear its bit.
        pwriteFull(this.fd, new Uint8Array(8), 88);
      }
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  // ---- tables ----

  private static entryAt(view: DataView, off: number): Entry {
    const hi = view.getUint32(off, false);
    const lo = view.getUint32(off + 4, false);
    return {
      offset: (hi & HI_OFFSET_MASK) * 0x1_0000_0000 + (lo & LO_OFFSET_MASK),
      copied: (hi & HI_COPIED) !== 0,
      compressed: (hi & HI_COMPRESSED) !== 0,
      zero: (lo & LO_ZERO) !== 0,
    };
  }

  private static encodeEntry(offset: number, copied: boolean, zero: boolean): Uint8Array {
    const b = new Uint8Array(8);
    const v = new DataView(b.buffer);
    v.setUint32(
      0,
      ((Math.floor(offset / 0x1_0000_0000) & HI_OFFSET_MASK) | (copied ? HI_COPIED : 0)) >>> 0,
      false,
    );
    v.setUint32(4, ((offset % 0x1_0000_0000) | (zero ? LO_ZERO : 0)) >>> 0, false);
    return b;
  }

  private cached(cache: Map<number, Uint8Array>, offset: number): Uint8Array {
    let t = cache.get(offset);
    if (t) {
      cache.delete(offset);
      cache.set(offset, t);
      return t;
    }
    if (offset % this.clusterSize !== 0) throw new DiskError(`qcow2: misaligned table at ${offset}`);
    t = new Uint8Array(this.clusterSize);
    preadFull(this.fd, t, offset);
    cache.set(offset, t);
    if (cache.size > CACHE_TABLES) cache.delete(cache.keys().next().value as number);
    return t;
  }

  private l2Location(guestOffset: number): { l1Index: number; l2Index: number } {
    const cluster = Math.floor(guestOffset / this.clusterSize);
    const l1Index = Math.floor(cluster / this.l2Entries);
    if (l1Index >= this.header.l1Size) throw new DiskError('qcow2: offset beyond the L1 table');
    return { l1Index, l2Index: cluster % this.l2Entries };
  }

  private lookup(guestOffset: number): Entry | undefined {
    const { l1Index, l2Index } = this.l2Location(guestOffset);
    const l1e = Qcow2Disk.entryAt(this.l1View, l1Index * 8);
    if (l1e.offset === 0) return undefined;
    const l2 = this.cached(this.l2Cache, l1e.offset);
    const e = Qcow2Disk.entryAt(new DataView(l2.buffer), l2Index * 8);
    if (e.compressed) return e;
    return e.offset === 0 && !e.zero ? undefined : e;
  }

  // ---- refcounts ----

  private refcount(hostOffset: number): number {
    const cluster = hostOffset / this.clusterSize;
    const blockIndex = Math.floor(cluster / this.refsPerBlock);
    if (blockIndex * 8 >= this.refTable.length) return 0;
    const block = Qcow2Disk.entryAt(this.refTableView, blockIndex * 8).offset;
    if (block === 0) return 0;
    const t = this.cached(this.refCache, block);
    return this.getRef(t, cluster % this.refsPerBlock);
  }

  private getRef(t: Uint8Array, index: number): number {
    const bits = this.refBits;
    if (bits < 8) {
      const perByte = 8 / bits;
      return (t[Math.floor(index / perByte)]! >> ((index % perByte) * bits)) & ((1 << bits) - 1);
    }
    const bytes = bits / 8;
    let v = 0;
    for (let i = 0; i < bytes; i++) v = v * 256 + t[index * bytes + i]!;
    return v;
  }

  /** Sets a refcount, allocating a refcount block if needed, and writes it through. */
  private setRefcount(hostOffset: number, value: number): void {
    const cluster = hostOffset / this.clusterSize;
    const blockIndex = Math.floor(cluster / this.refsPerBlock);
    if (blockIndex * 8 >= this.refTable.length) {
      throw new DiskError('qcow2: refcount table full (growing it is not supported)');
    }
    let block = Qcow2Disk.entryAt(this.refTableView, blockIndex * 8).offset;
    if (block === 0) {
      block = this.takeFreshCluster();
      const zero = new Uint8Array(this.clusterSize);
      pwriteFull(this.fd, zero, block);
      this.refCache.set(block, zero);
      const entry = Qcow2Disk.encodeEntry(block, false, false);
      this.refTable.set(entry, blockIndex * 8);
      pwriteFull(this.fd, entry, this.header.refcountTableOffset + blockIndex * 8);
      this.setRefcount(block, 1); // the new block counts itself (or lands in another block)
    }
    const t = this.cached(this.refCache, block);
    const index = cluster % this.refsPerBlock;
    const bits = this.refBits;
    if (value >= 2 ** Math.min(bits, 48)) throw new DiskError('qcow2: refcount overflow');
    let byteStart: number;
    let byteLen: number;
    if (bits < 8) {
      const perByte = 8 / bits;
      byteStart = Math.floor(index / perByte);
      byteLen = 1;
      const shift = (index % perByte) * bits;
      const mask = ((1 << bits) - 1) << shift;
      t[byteStart] = (t[byteStart]! & ~mask) | (value << shift);
    } else {
      byteLen = bits / 8;
      byteStart = index * byteLen;
      let v = value;
      for (let i = byteLen - 1; i >= 0; i--) {
        t[byteStart + i] = v % 256;
        v = Math.floor(v / 256);
      }
    }
    pwriteFull(this.fd, t.subarray(byteStart, byteStart + byteLen), block + byteStart);
  }

  /** The next cluster at the end of the file whose refcount is 0 (does not set it). */
  private takeFreshCluster(): number {
    for (let i = 0; i < 1_000_000; i++) {
      const c = this.nextFree;
      this.nextFree += this.clusterSize;
      if (this.refcount(c) === 0) return c;
    }
    throw new DiskError('qcow2: no free cluster found');
  }

  private allocateCluster(): number {
    while (this.freed.length > 0) {
      const c = this.freed.pop()!;
      if (this.refcount(c) === 0) {
        this.setRefcount(c, 1);
        return c;
      }
    }
    const c = this.takeFreshCluster();
    this.setRefcount(c, 1);
    return c;
  }

  private release(hostOffset: number): void {
    const r = this.refcount(hostOffset);
    if (r === 0) throw new DiskError(`qcow2: refcount of cluster 0x${hostOffset.toString(16)} already 0`);
    this.setRefcount(hostOffset, r - 1);
    if (r === 1) this.freed.push(hostOffset);
  }

  // ---- data ----

  private checkRange(offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new DiskError(`qcow2: access ${offset}+${length} beyond the disk (${this.size} bytes)`);
    }
  }

  read(offset: number, into: Uint8Array): void {
    this.checkRange(offset, into.length);
    let done = 0;
    while (done < into.length) {
      const pos = offset + done;
      const inCluster = pos % this.clusterSize;
      const n = Math.min(this.clusterSize - inCluster, into.length - done);
      this.readInCluster(pos, into.subarray(done, done + n));
      done += n;
    }
  }

  /** Reads a piece lying within one guest cluster. */
  private readInCluster(pos: number, into: Uint8Array): void {
    const e = this.lookup(pos);
    if (e?.compressed) throw new DiskError('qcow2: compressed clusters are not supported');
    if (e?.zero) into.fill(0);
    else if (e) preadFull(this.fd, into, e.offset + (pos % this.clusterSize));
    else this.readBacking(pos, into);
  }

  private readBacking(pos: number, into: Uint8Array): void {
    const b = this.backing;
    if (!b || pos >= b.size) {
      into.fill(0);
      return;
    }
    const n = Math.min(into.length, b.size - pos);
    b.read(pos, into.subarray(0, n));
    into.fill(0, n);
  }

  /** The L2 table for a guest offset, allocating an empty one if the L1 entry is empty. */
  private l2TableFor(l1Index: number): number {
    const l1e = Qcow2Disk.entryAt(this.l1View, l1Index * 8);
    if (l1e.offset !== 0) {
      if (!l1e.copied) throw new DiskError('qcow2: shared L2 table (snapshots) cannot be written');
      return l1e.offset;
    }
    const table = this.allocateCluster();
    const zero = new Uint8Array(this.clusterSize);
    pwriteFull(this.fd, zero, table);
    this.l2Cache.set(table, zero);
    const entry = Qcow2Disk.encodeEntry(table, true, false);
    this.l1.set(entry, l1Index * 8);
    pwriteFull(this.fd, entry, this.header.l1TableOffset + l1Index * 8);
    return table;
  }

  private setL2(pos: number, offset: number, copied: boolean, zero: boolean): void {
    const { l1Index, l2Index } = this.l2Location(pos);
    const table = this.l2TableFor(l1Index);
    const t = this.cached(this.l2Cache, table);
    const entry = Qcow2Disk.encodeEntry(offset, copied, zero);
    t.set(entry, l2Index * 8);
    pwriteFull(this.fd, entry, table + l2Index * 8);
  }

  private writable(): void {
    if (this.readOnly) throw new DiskError('qcow2: image is read-only');
  }

  write(offset: number, data: Uint8Array): void {
    this.writable();
    this.checkRange(offset, data.length);
    let done = 0;
    while (done < data.length) {
      const pos = offset + done;
      const inCluster = pos % this.clusterSize;
      const n = Math.min(this.clusterSize - inCluster, data.length - done);
      this.writeInCluster(pos, data.subarray(done, done + n));
      done += n;
    }
  }

  private writeInCluster(pos: number, data: Uint8Array): void {
    const e = this.lookup(pos);
    if (e && !e.compressed && !e.zero && e.copied && e.offset !== 0) {
      pwriteFull(this.fd, data, e.offset + (pos % this.clusterSize));
      return;
    }
    // Copy on write: build the whole new cluster, then point the L2 entry at it.
    const start = pos - (pos % this.clusterSize);
    const buf = this.scratch;
    if (data.length === this.clusterSize) buf.set(data);
    else {
      this.readInCluster(start, buf);
      buf.set(data, pos - start);
    }
    const fresh = this.allocateCluster();
    pwriteFull(this.fd, buf, fresh);
    this.setL2(pos, fresh, true, false);
    if (e && !e.compressed && e.offset !== 0) this.release(e.offset);
  }

  writeZeroes(offset: number, length: number, _mayUnmap = true): void {
    this.writable();
    this.checkRange(offset, length);
    let done = 0;
    while (done < length) {
      const pos = offset + done;
      const inCluster = pos % this.clusterSize;
      const n = Math.min(this.clusterSize - inCluster, length - done);
      if (n === this.clusterSize && (this.header.version === 3 || !this.backing)) this.zeroCluster(pos);
      else this.writeInCluster(pos, new Uint8Array(n));
      done += n;
    }
  }

  /** Makes a whole guest cluster read as zeros, freeing its host cluster. */
  private zeroCluster(pos: number): void {
    const e = this.lookup(pos);
    if (!e && !this.backing) return;
    if (e?.zero && e.offset === 0) return;
    this.setL2(pos, 0, false, this.header.version === 3);
    if (e && !e.compressed && e.offset !== 0) this.release(e.offset);
  }

  discard(offset: number, length: number): void {
    this.writeZeroes(offset, length, true);
  }

  flush(): void {
    if (!this.readOnly) fsyncSync(this.fd);
  }

  close(): void {
    this.backing?.close();
    closeSync(this.fd);
  }
}
