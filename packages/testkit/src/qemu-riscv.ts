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
