import { HyperkitError } from '../errors.js';

/** A memory-mapped device. Offsets are relative to the device's base; sizes are 1, 2 or 4 bytes. */
export interface MmioDevice {
  readonly name: string;
  read(offset: number, size: number): number;
  write(offset: number, size: number, value: number): void;
}

interface Mapping {
  base: number;
  size: number;
  device: MmioDevice;
}

/** Guest-physical MMIO dispatch. 8-byte accesses are split into two 4-byte ones (low word first). */
export class MmioBus {
  private readonly mappings: Mapping[] = [];
  private last: Mapping | undefined;

  map(base: number, size: number, device: MmioDevice): void {
    for (const m of this.mappings) {
      if (base < m.base + m.size && m.base < base + size) {
        throw new HyperkitError(
          'ERR_BUS_OVERLAP',
          `${device.name} at 0x${base.toString(16)} overlaps ${m.device.name} at 0x${m.base.toString(16)}`,
        );
      }
    }
    this.mappings.push({ base, size, device });
  }

  /** The mapping covering [address, address+size), or undefined (the CPU raises an access fault). */
  find(address: number, size: number): Mapping | undefined {
    const last = this.last;
    if (last !== undefined && address >= last.base && address + size <= last.base + last.size) return last;
    for (const m of this.mappings) {
      if (address >= m.base && address + size <= m.base + m.size) {
        this.last = m;
        return m;
      }
    }
    return undefined;
  }

  /** Returns the value, or -1 when nothing is mapped there (reads of mapped devices are non-negative). */
  read(address: number, size: number): number {
    const m = this.find(address, size);
    if (m === undefined) return -1;
    return m.device.read(address - m.base, size) >>> 0;
  }

  /** Returns false when nothing is mapped there. */
  write(address: number, size: number, value: number): boolean {
    const m = this.find(address, size);
    if (m === undefined) return false;
    m.device.write(address - m.base, size, value);
    return true;
  }
}
