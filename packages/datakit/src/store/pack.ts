import { type FileHandle, open } from 'node:fs/promises';
import { inflateSync } from 'node:zlib';
import { StoreError } from './errors.js';
import type { ObjectType, RawObject } from './objects.js';

/** Pack object type numbers (gitformat-pack). */
const PackType = { COMMIT: 1, TREE: 2, BLOB: 3, TAG: 4, OFS_DELTA: 6, REF_DELTA: 7 } as const;
const typeNames: Record<number, ObjectType> = { 1: 'commit', 2: 'tree', 3: 'blob', 4: 'tag' };

/** A view of a version-2 pack index: fanout, sorted names, offsets. */
export class PackIndex {
  readonly count: number;
  private readonly view: DataView;
  private readonly namesAt: number;
  private readonly offsetsAt: number;
  private readonly largeAt: number;
  private readonly names: Buffer;

  constructor(
    readonly bytes: Uint8Array,
    readonly path: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < 8 + 1024 || this.view.getUint32(0) !== 0xff744f63 || this.view.getUint32(4) !== 2)
      throw new StoreError('ERR_BAD_PACK', `${path}: not a version 2 pack index`);
    this.count = this.view.getUint32(8 + 255 * 4);
    this.namesAt = 8 + 1024;
    this.offsetsAt = this.namesAt + this.count * 24; // names (20) + crc (4)
    this.largeAt = this.offsetsAt + this.count * 4;
    if (bytes.length < this.largeAt + 40) throw new StoreError('ERR_BAD_PACK', `${path}: truncated`);
    this.names = Buffer.from(bytes.buffer, bytes.byteOffset + this.namesAt, this.count * 20);
  }

  /** The pack offset of `hash`, or -1. */
  find(hash: string): number {
    return this.findKey(Buffer.from(hash, 'hex'));
  }

  /** `find` with the binary object name (looking one name up in many packs decodes it once). */
  findKey(key: Buffer): number {
    const first = key[0] ?? 0;
    let lo = first === 0 ? 0 : this.view.getUint32(8 + (first - 1) * 4);
    let hi = this.view.getUint32(8 + first * 4);
    const names = this.names;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const cmp = names.compare(key, 0, 20, mid * 20, mid * 20 + 20);
      if (cmp === 0) return this.offsetAt(mid);
      if (cmp < 0) lo = mid + 1;
      else hi = mid;
    }
    return -1;
  }

  offsetAt(i: number): number {
    const small = this.view.getUint32(this.offsetsAt + i * 4);
    if ((small & 0x80000000) === 0) return small;
    const large = this.largeAt + (small & 0x7fffffff) * 8;
    return Number(this.view.getBigUint64(large));
  }

  /** All object offsets, sorted: each object's compressed bytes end where the next begins. */
  sortedOffsets(): Float64Array {
    const out = new Float64Array(this.count);
    for (let i = 0; i < this.count; i++) out[i] = this.offsetAt(i);
    return out.sort();
  }
}

export function applyDelta(base: Uint8Array, delta: Uint8Array): Uint8Array {
  let pos = 0;
  const varint = (): number => {
    let value = 0;
    let shift = 0;
    for (;;) {
      const b = delta[pos++];
      if (b === undefined) throw new StoreError('ERR_BAD_PACK', 'truncated delta header');
      value += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) return value;
    }
  };
  const baseSize = varint();
  const targetSize = varint();
  if (baseSize !== base.length) throw new StoreError('ERR_BAD_PACK', 'delta base size mismatch');
  const out = new Uint8Array(targetSize);
  let outPos = 0;
  while (pos < delta.length) {
    const op = delta[pos++] ?? 0;
    if (op & 0x80) {
      let offset = 0;
      let size = 0;
      for (let i = 0; i < 4; i++) if (op & (1 << i)) offset |= (delta[pos++] ?? 0) << (8 * i);
      for (let i = 0; i < 3; i++) if (op & (0x10 << i)) size |= (delta[pos++] ?? 0) << (8 * i);
      offset >>>= 0;
      if (size === 0) size = 0x10000;
      if (offset + size > base.length || outPos + size > targetSize)
        throw new StoreError('ERR_BAD_PACK', 'delta copy out of range');
      out.set(base.subarray(offset, offset + size), outPos);
      outPos += size;
    } else if (op !== 0) {
      if (pos + op > delta.length || outPos + op > targetSize)
        throw new StoreError('ERR_BAD_PACK', 'delta insert out of range');
      out.set(delta.subarray(pos, pos + op), outPos);
      pos += op;
      outPos += op;
    } else {
      throw new StoreError('ERR_BAD_PACK', 'delta opcode 0');
    }
  }
  if (outPos !== targetSize) throw new StoreError('ERR_BAD_PACK', 'delta result size mismatch');
  return out;
}

/** Reads objects out of one pack file; REF_DELTA bases come from `resolveRef` (any pack or loose). */
export class PackFile {
  private sorted: Float64Array | undefined;
  private readonly baseCache = new Map<number, RawObject>();

  private constructor(
    readonly index: PackIndex,
    private readonly file: FileHandle | undefined,
    private readonly size: number,
    /** The whole pack, for packs we just wrote (small; read without system calls). */
    private readonly bytes?: Uint8Array,
  ) {}

  static async open(packPath: string, index: PackIndex): Promise<PackFile> {
    const file = await open(packPath, 'r');
    const { size } = await file.stat();
    return new PackFile(index, file, size);
  }

  /** A pack whose bytes are in memory (the same bytes as on disk). */
  static fromBytes(bytes: Uint8Array, index: PackIndex): PackFile {
    return new PackFile(index, undefined, bytes.length, bytes);
  }

  /** Bytes held in memory (0 for a pack read from its file). */
  get memoryBytes(): number {
    return this.bytes?.length ?? 0;
  }

  async close(): Promise<void> {
    await this.file?.close();
  }

  async read(hash: string, resolveRef: (hash: string) => Promise<RawObject | undefined>) {
    const offset = this.index.find(hash);
    if (offset < 0) return undefined;
    return this.readAtDepth(offset, resolveRef, 0);
  }

  /** The object at `offset` (from this pack's index). */
  readAt(offset: number, resolveRef: (hash: string) => Promise<RawObject | undefined>): Promise<RawObject> {
    return this.readAtDepth(offset, resolveRef, 0);
  }

  private endOf(offset: number): number {
    this.sorted ??= this.index.sortedOffsets();
    const s = this.sorted;
    let lo = 0;
    let hi = s.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((s[mid] ?? 0) <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo < s.length ? (s[lo] ?? this.size - 20) : this.size - 20;
  }

  private async readAtDepth(
    offset: number,
    resolveRef: (hash: string) => Promise<RawObject | undefined>,
    depth: number,
  ): Promise<RawObject> {
    const cached = this.baseCache.get(offset);
    if (cached) return cached;
    if (depth > 64) throw new StoreError('ERR_BAD_PACK', 'delta chain too deep');
    const end = this.endOf(offset);
    let buf: Uint8Array;
    if (this.bytes) buf = this.bytes.subarray(offset, end);
    else {
      buf = new Uint8Array(end - offset);
      await this.file?.read(buf, 0, buf.length, offset);
    }
    let pos = 0;
    let b = buf[pos++] ?? 0;
    const type = (b >> 4) & 7;
    let size = b & 0x0f;
    let shift = 4;
    while (b & 0x80) {
      b = buf[pos++] ?? 0;
      size += (b & 0x7f) * 2 ** shift;
      shift += 7;
    }
    let result: RawObject;
    if (type === PackType.OFS_DELTA) {
      b = buf[pos++] ?? 0;
      let back = b & 0x7f;
      while (b & 0x80) {
        b = buf[pos++] ?? 0;
        back = (back + 1) * 128 + (b & 0x7f);
      }
      const base = await this.readAtDepth(offset - back, resolveRef, depth + 1);
      const delta = inflate(buf.subarray(pos), size);
      result = { type: base.type, data: applyDelta(base.data, delta) };
    } else if (type === PackType.REF_DELTA) {
      const baseHash = Buffer.from(buf.buffer, buf.byteOffset + pos, 20).toString('hex');
      pos += 20;
      const baseOffset = this.index.find(baseHash);
      const base =
        baseOffset >= 0
          ? await this.readAtDepth(baseOffset, resolveRef, depth + 1)
          : await resolveRef(baseHash);
      if (!base) throw new StoreError('ERR_MISSING_OBJECT', `delta base ${baseHash} missing`);
      const delta = inflate(buf.subarray(pos), size);
      result = { type: base.type, data: applyDelta(base.data, delta) };
    } else {
      const name = typeNames[type];
      if (!name) throw new StoreError('ERR_BAD_PACK', `${this.index.path}: bad object type ${type}`);
      result = { type: name, data: inflate(buf.subarray(pos), size) };
    }
    // Bounded cache of recently used objects: delta chains share bases.
    if (this.baseCache.size >= 256) {
      const oldest = this.baseCache.keys().next().value;
      if (oldest !== undefined) this.baseCache.delete(oldest);
    }
    this.baseCache.set(offset, result);
    return result;
  }
}

function inflate(bytes: Uint8Array, size: number): Uint8Array {
  const out = inflateSync(bytes, { maxOutputLength: Math.max(size, 1) });
  if (out.length !== size) throw new StoreError('ERR_BAD_PACK', 'inflated size mismatch');
  return out;
}
