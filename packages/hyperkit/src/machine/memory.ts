import { GuestMemoryError } from '../errors.js';

/**
 * Guest RAM: one ArrayBuffer mapped at `base` in guest-physical space. Devices reach it only through these
 * bounds-checked methods (addresses are guest-physical numbers; 64-bit values are split or given as
 * Numbers below 2^53). The CPU backend reads `bytes`/`words` directly in its hot loop after its own checks.
 */
export class GuestMemory {
  readonly base: number;
  readonly size: number;
  readonly buffer: ArrayBuffer;
  readonly bytes: Uint8Array;
  readonly view: DataView;

  constructor(base: number, size: number) {
    if (!Number.isInteger(size) || size <= 0 || size % 4096 !== 0) {
      throw new RangeError(`guest memory size must be a positive multiple of 4096, got ${size}`);
    }
    this.base = base;
    this.size = size;
    this.buffer = new ArrayBuffer(size);
    this.bytes = new Uint8Array(this.buffer);
    this.view = new DataView(this.buffer);
  }

  /** True when [address, address+length) lies inside RAM. */
  contains(address: number, length: number): boolean {
    const offset = address - this.base;
    return (
      Number.isInteger(offset) &&
      length >= 0 &&
      offset >= 0 &&
      offset <= this.size &&
      length <= this.size - offset
    );
  }

  private offsetOf(address: number, length: number): number {
    if (!this.contains(address, length)) throw new GuestMemoryError(address, length);
    return address - this.base;
  }

  /** A live view (no copy) of guest RAM; throws GuestMemoryError when out of range. */
  slice(address: number, length: number): Uint8Array {
    const offset = this.offsetOf(address, length);
    return this.bytes.subarray(offset, offset + length);
  }

  read(address: number, into: Uint8Array): void {
    into.set(this.slice(address, into.length));
  }

  write(address: number, data: Uint8Array): void {
    this.slice(address, data.length).set(data);
  }

  readU8(address: number): number {
    return this.bytes[this.offsetOf(address, 1)]!;
  }
  readU16(address: number): number {
    return this.view.getUint16(this.offsetOf(address, 2), true);
  }
  readU32(address: number): number {
    return this.view.getUint32(this.offsetOf(address, 4), true);
  }
  /** Reads a u64 as a Number; values at or above 2^53 are reported as out-of-range addresses by callers. */
  readU64(address: number): number {
    const offset = this.offsetOf(address, 8);
    return this.view.getUint32(offset, true) + this.view.getUint32(offset + 4, true) * 0x1_0000_0000;
  }
  writeU8(address: number, value: number): void {
    this.bytes[this.offsetOf(address, 1)] = value;
  }
  writeU16(address: number, value: number): void {
    this.view.setUint16(this.offsetOf(address, 2), value, true);
  }
  writeU32(address: number, value: number): void {
    this.view.setUint32(this.offsetOf(address, 4), value >>> 0, true);
  }
  writeU64(address: number, value: number): void {
    const offset = this.offsetOf(address, 8);
    this.view.setUint32(offset, (value % 0x1_0000_0000) >>> 0, true);
    this.view.setUint32(offset + 4, Math.floor(value / 0x1_0000_0000) >>> 0, true);
  }
}
