/** The memory map and interrupt numbers of QEMU's `virt` board, so one kernel/DTB/firmware runs on both. */
export const VIRT = {
  testDevice: { base: 0x100000, size: 0x1000 },
  rtc: { base: 0x101000, size: 0x1000, irq: 11 },
  clint: { base: 0x2000000, size: 0x10000 },
  plic: { base: 0xc000000, size: 0x600000, sources: 95 },
  uart: { base: 0x10000000, size: 0x100, irq: 10, clockHz: 0x384000 },
  virtio: { base: 0x10001000, stride: 0x1000, count: 8, firstIrq: 1 },
  ram: { base: 0x80000000 },
} as const;

export function virtioSlotBase(slot: number): number {
  return VIRT.virtio.base + slot * VIRT.virtio.stride;
}
