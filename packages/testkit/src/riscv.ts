import { join } from 'node:path';

/** What a riscv64 QEMU `virt` boot of our guest kernel needs. */
export interface RiscvQemuBoot {
  kernel: string;
  initrd: string;
  append: string;
  /** Where the UART goes (QEMU chardev syntax); default `stdio`. */
  serial?: string;
  /** Guest RAM; default `256M`, as our benchmarks and tests boot HyperKit with. */
  memory?: string;
  /** Extra arguments (devices, netdevs) appended as given. */
  extra?: string[];
}

/**
 * The command line every comparison of HyperKit with qemu-system-riscv64 uses: the `virt` board, an rv64 CPU
 * without the H extension and Sstc (HyperKit implements neither), QEMU's default OpenSBI, no display or monitor.
 */
export function riscvQemuArgs(boot: RiscvQemuBoot): string[] {
  return [
    '-M',
    'virt',
    '-cpu',
    'rv64,h=false,sstc=false',
    '-m',
    boot.memory ?? '256M',
    '-display',
    'none',
    '-monitor',
    'none',
    '-serial',
    boot.serial ?? 'stdio',
    '-bios',
    'default',
    '-kernel',
    boot.kernel,
    '-initrd',
    boot.initrd,
    '-append',
    boot.append,
    ...(boot.extra ?? []),
  ];
}

/** A bare-metal riscv64 program of our tests: crt.S and link.ld from `dir`, plus the given sources. */
export interface RiscvBareMetalBuild {
  dir: string;
  sources: string[];
  out: string;
  /** Optimisation level; default `-O1`. */
  optimize?: '-O1' | '-O2';
  /** Preprocessor definitions (`NAME=VALUE`). */
  defines?: string[];
}

/** riscv64-linux-gnu-gcc arguments for a static, libc-free rv64gc program linked at RAM's base. */
export function riscvBareMetalGccArgs(build: RiscvBareMetalBuild): string[] {
  return [
    '-nostdlib',
    '-nostartfiles',
    '-ffreestanding',
    '-fno-pic',
    '-static',
    '-Wl,--build-id=none',
    '-Wl,--no-warn-rwx-segments',
    '-march=rv64gc',
    '-mabi=lp64d',
    '-mcmodel=medany',
    build.optimize ?? '-O1',
    ...(build.defines ?? []).map((d) => `-D${d}`),
    '-T',
    join(build.dir, 'link.ld'),
    '-I',
    build.dir,
    join(build.dir, 'crt.S'),
    ...build.sources.map((s) => join(build.dir, s)),
    '-o',
    build.out,
  ];
}
