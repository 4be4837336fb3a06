import { randomBytes } from 'node:crypto';
import { HyperkitError } from '../errors.js';
import type { Privilege } from '../machine/backend.js';
import { buildVirtDeviceTree } from '../machine/devicetree.js';
import { parseFdt } from '../machine/fdt.js';
import type { GuestMemory } from '../machine/memory.js';
import { isElf, loadElf } from './elf.js';
import { checkInitrd } from './initrd.js';
import { parseRiscvImage } from './kernel-image.js';

/**
 * How the guest starts:
 * - `builtin`: the kernel enters in S-mode directly, SBI calls are answered in TypeScript (fast default);
 * - `opensbi`: a firmware image (Debian's OpenSBI fw_jump) runs in M-mode and jumps to the kernel, as QEMU;
 * - `none`: the kernel ELF/Image runs in M-mode with no firmware (bare-metal programs, like QEMU -bios none).
 */
export type FirmwareKind = 'builtin' | 'opensbi' | 'none';

export const DEFAULT_OPENSBI = '/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.elf';
/** Where OpenSBI's fw_jump (generic platform, RV64) copies the device tree before entering the kernel. */
const FW_JUMP_FDT_ADDR = 0x82200000;
const MiB = 1024 * 1024;
/** QEMU's virt board gives the guest 32 bytes of /chosen/rng-seed; so do we. */
const RNG_SEED_BYTES = 32;
/** Room the kernel needs beyond its image, initrd and DTB to get to userspace. */
const MIN_HEADROOM = 24 * MiB;

export interface BootInputs {
  kernel: Uint8Array;
  initrd?: Uint8Array | undefined;
  cmdline: string;
  firmware: FirmwareKind;
  /** Firmware image for `opensbi` (ELF or flat binary loaded at the start of RAM). */
  firmwareImage?: Uint8Array | undefined;
  /** A user-supplied DTB instead of the generated one (checked, loaded as-is). */
  dtb?: Uint8Array | undefined;
}

export interface BootPlan {
  entry: number;
  privilege: Privilege;
  a0: number;
  a1: number;
  kernel: { start: number; end: number };
  initrd?: { start: number; end: number } | undefined;
  dtb: { start: number; end: number };
}

const alignUp = (v: number, a: number) => Math.ceil(v / a) * a;
const alignDown = (v: number, a: number) => Math.floor(v / a) * a;

function tooLittle(memory: GuestMemory, needed: number, what: string): never {
  throw new HyperkitError(
    'ERR_TOO_LITTLE_MEMORY',
    `${memory.size / MiB} MiB of guest memory is too little for ${what}: give at least ${Math.ceil(needed / MiB)} MiB (-m ${Math.ceil(needed / MiB)}M)`,
  );
}

/** Places kernel, initrd, DTB (and firmware) in guest memory, QEMU-virt style; returns the entry state. */
export function loadBoot(memory: GuestMemory, inputs: BootInputs): BootPlan {
  const ramBase = memory.base;
  const ramEnd = memory.base + memory.size;
  // Check every input before touching memory, so errors name the first bad file.
  const initrd = inputs.initrd ? checkInitrd(inputs.initrd) : undefined;
  if (inputs.dtb) parseFdt(inputs.dtb);

  let kernelStart: number;
  let kernelEnd: number;
  let entry: number;
  if (isElf(inputs.kernel)) {
    const image = loadElf(inputs.kernel, memory, 'kernel');
    kernelStart = image.start;
    kernelEnd = image.end;
    entry = image.entry;
  } else {
    const image = parseRiscvImage(inputs.kernel);
    kernelStart = ramBase + image.textOffset;
    kernelEnd = kernelStart + image.imageSize;
    const needed = kernelEnd - ramBase + (initrd?.length ?? 0) + MIN_HEADROOM;
    if (needed > memory.size) tooLittle(memory, needed, 'this kernel and initrd');
    memory.write(kernelStart, image.payload);
    memory.slice(kernelStart + image.payload.length, image.imageSize - image.payload.length).fill(0);
    entry = kernelStart;
  }

  // Reserved ranges the initrd and DTB must avoid.
  const avoid: { start: number; end: number }[] = [{ start: kernelStart, end: kernelEnd }];
  let firmwareEntry: number | undefined;
  if (inputs.firmware === 'opensbi') {
    const fw = inputs.firmwareImage;
    if (!fw) throw new HyperkitError('ERR_BAD_FIRMWARE', 'opensbi firmware image missing');
    if (isElf(fw)) {
      const image = loadElf(fw, memory, 'firmware');
      firmwareEntry = image.entry;
      avoid.push({ start: image.start, end: image.end });
      if (image.end > kernelStart) {
        throw new HyperkitError('ERR_BAD_FIRMWARE', 'firmware overlaps the kernel load address');
      }
    } else {
      if (fw.length > kernelStart - ramBase) {
        throw new HyperkitError('ERR_BAD_FIRMWARE', 'firmware binary overlaps the kernel load address');
      }
      memory.write(ramBase, fw);
      firmwareEntry = ramBase;
      avoid.push({ start: ramBase, end: ramBase + fw.length });
    }
    avoid.push({ start: FW_JUMP_FDT_ADDR, end: FW_JUMP_FDT_ADDR + 2 * MiB });
  }

  // initrd: well above the kernel (QEMU's rule: min(128 MiB, RAM/2) past the kernel), never over reserved ranges
  let initrdRange: { start: number; end: number } | undefined;
  if (initrd) {
    let start = alignUp(Math.max(kernelEnd, kernelStart + Math.min(128 * MiB, memory.size / 2)), 4096);
    for (let moved = true; moved; ) {
      moved = false;
      for (const r of avoid) {
        if (start < r.end && start + initrd.length > r.start) {
          start = alignUp(r.end, 4096);
          moved = true;
        }
      }
    }
    initrdRange = { start, end: start + initrd.length };
    avoid.push(initrdRange);
  }

  const dtb =
    inputs.dtb ??
    buildVirtDeviceTree({
      ramSize: memory.size,
      bootargs: inputs.cmdline,
      initrd: initrdRange,
      rngSeed: randomBytes(RNG_SEED_BYTES),
    });
  const dtbStart = alignDown(ramEnd - dtb.length, 2 * MiB);
  const dtbRange = { start: dtbStart, end: dtbStart + dtb.length };
  const highest = Math.max(...avoid.map((r) => r.end));
  if (dtbStart < highest) {
    tooLittle(memory, highest - ramBase + dtb.length + MIN_HEADROOM, 'this kernel, initrd and device tree');
  }
  if (initrd && initrdRange) memory.write(initrdRange.start, initrd);
  memory.write(dtbStart, dtb);

  if (inputs.firmware === 'opensbi') {
    return {
      entry: firmwareEntry!,
      privilege: 'M',
      a0: 0,
      a1: dtbStart,
      kernel: { start: kernelStart, end: kernelEnd },
      initrd: initrdRange,
      dtb: dtbRange,
    };
  }
  return {
    entry,
    privilege: inputs.firmware === 'none' ? 'M' : 'S',
    a0: 0,
    a1: dtbStart,
    kernel: { start: kernelStart, end: kernelEnd },
    initrd: initrdRange,
    dtb: dtbRange,
  };
}
