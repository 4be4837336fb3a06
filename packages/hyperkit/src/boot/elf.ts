import { HyperkitError } from '../errors.js';
import type { GuestMemory } from '../machine/memory.js';

/** A loadable image: segments copied to guest-physical addresses and an entry point. */
export interface LoadedImage {
  entry: number;
  /** Lowest and highest (exclusive) guest-physical address written. */
  start: number;
  end: number;
}

const EM_RISCV = 243;
const PT_LOAD = 1;

export function isElf(data: Uint8Array): boolean {
  return data.length >= 4 && data[0] === 0x7f && data[1] === 0x45 && data[2] === 0x4c && data[3] === 0x46;
}

/** Loads a RISC-V ELF64 executable's PT_LOAD segments (by physical address) into guest memory. */
export function loadElf(
  data: Uint8Array,
  memory: GuestMemory,
  what: 'kernel' | 'firmware' = 'kernel',
): LoadedImage {
  const code = what === 'kernel' ? 'ERR_BAD_KERNEL' : 'ERR_BAD_FIRMWARE';
  const bad = (msg: string): never => {
    throw new HyperkitError(code, `${what} ELF: ${msg}`);
  };
  if (data.length < 64) bad(`truncated: ${data.length} bytes is smaller than an ELF header`);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data[4] !== 2) bad('not a 64-bit ELF');
  if (data[5] !== 1) bad('not little-endian');
  if (dv.getUint16(18, true) !== EM_RISCV) bad(`machine ${dv.getUint16(18, true)} is not RISC-V`);
  const entry = Number(dv.getBigUint64(24, true));
  const phoff = Number(dv.getBigUint64(32, true));
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  if (phentsize < 56 || phoff + phnum * phentsize > data.length)
    bad('program headers extend past the end of the file');
  let start = Number.POSITIVE_INFINITY;
  let end = 0;
  let loaded = 0;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (dv.getUint32(ph, true) !== PT_LOAD) continue;
    const offset = Number(dv.getBigUint64(ph + 8, true));
    const paddr = Number(dv.getBigUint64(ph + 24, true));
    const filesz = Number(dv.getBigUint64(ph + 32, true));
    const memsz = Number(dv.getBigUint64(ph + 40, true));
    if (memsz === 0) continue;
    if (filesz > memsz || offset + filesz > data.length) bad(`segment ${i} is truncated (file too short)`);
    if (!memory.contains(paddr, memsz)) {
      bad(
        `segment ${i} at 0x${paddr.toString(16)}+0x${memsz.toString(16)} does not fit in guest RAM ` +
          `(0x${memory.base.toString(16)}+0x${memory.size.toString(16)})`,
      );
    }
    memory.write(paddr, data.subarray(offset, offset + filesz));
    memory.slice(paddr + filesz, memsz - filesz).fill(0);
    start = Math.min(start, paddr);
    end = Math.max(end, paddr + memsz);
    loaded++;
  }
  if (loaded === 0) bad('no loadable segments');
  return { entry, start, end };
}
