import { GuestMemoryError } from '../errors.js';

interface WasmMemoryApi {
  Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer };
}
const WA = (globalThis as unknown as { WebAssembly?: WasmMemoryApi }).WebAssembly;
const WASM_PAGE = 65536;
/** wasm32 memories are at most 4 GiB; RAM offsets must also fit a signed int32 in translated code. */
const MAX_WASM_RAM = 0x8000_0000 - 16 * WASM_PAGE;

/** Space after RAM, in the same buffer, for the CPU backend's state that translated code reaches. */
export interface CpuArea {
  /** The WebAssembly.Memory whose buffer is `GuestMemory.buffer`. */
  memory: object;
  /** Pages (64 KiB) of that memory. */
  pages: number;
  /** Byte offset of the area (after RAM) and its size. */
  offset: number;
  size: number;
}

/**
 * Guest RAM: one ArrayBuffer mapped at `base` in guest-physical space. When it fits, the buffer is that of
 * a fixed-size WebAssembly.Memory (initial = maximum, never grown, so views never detach) with RAM at offset
 * 0 and a CPU area after it, so translated WebAssembly code reaches RAM and CPU state directly. Devices reach it only through these
 * bounds-checked methods (addresses are guest-physical numbers; 64-bit values are split or given as
 * Numbers below 2^53). The CPU backend reads `bytes`/`words` directly in its hot loop after its own checks.
 */
export class GuestMemory {
  readonly base: number;
  readonly size: number;
  readonly buffer: ArrayBuffer;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  /** Present when the buffer is a WebAssembly.Memory's (see CpuArea). */
  readonly cpuArea: CpuArea | undefined;

  /** `cpuAreaSize`: bytes the CPU backend wants after RAM (0: a plain ArrayBuffer). */
  constructor(base: number, size: number, cpuAreaSize = 0) {
    if (!Number.isInteger(size) || size <= 0 || size % 4096 !== 0) {
      throw new RangeError(`guest memory size must be a positive multiple of 4096, got ${size}`);
    }
    this.base = base;
    this.size = size;
    const areaOffset = Math.ceil(size / WASM_PAGE) * WASM_PAGE;
    const pages = Math.ceil((areaOffset + cpuAreaSize) / WASM_PAGE);
    if (cpuAreaSize > 0 && WA !== undefined && size <= MAX_WASM_RAM) {
      const memory = new WA.Memory({ initial: pages, maximum: pages });
      this.buffer = memory.buffer;
      this.cpuArea = { memory, pages, offset: areaOffset, size: cpuAreaSize };
    } else {
      this.buffer = new ArrayBuffer(size);
      this.cpuArea = undefined;
    }
    this.bytes = new Uint8Array(this.buffer, 0, size);
    this.view = new DataView(this.buffer, 0, size);
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
    const target = this.slice(address, data.length);
    // already in place (a file read straight into guest memory): nothing to copy
    if (data.buffer === target.buffer && data.byteOffset === target.byteOffset) return;
    target.set(data);
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
