import type { MmioDevice } from '../machine/bus.js';
import { type HartInterruptInputs, MIP_MSIP, MIP_MTIP } from '../machine/interrupts.js';

/** SiFive CLINT for one hart: msip at 0x0, mtimecmp at 0x4000, mtime at 0xbff8 (10 MHz from the clock). */
export class Clint implements MmioDevice {
  readonly name = 'clint';
  /** mtimecmp as a Number; 0 at reset (as on QEMU), so MTIP is pending until the first write. */
  mtimecmp = 0;
  private msip = 0;

  constructor(
    private readonly hart: HartInterruptInputs,
    private readonly ticks: () => number,
  ) {}

  /** Re-evaluates MTIP against the clock; the machine calls this between instruction batches. */
  update(): void {
    this.hart.setPending(MIP_MTIP, this.ticks() >= this.mtimecmp);
  }

  read(offset: number, _size: number): number {
    if (offset === 0) return this.msip;
    if (offset === 0x4000) return (this.mtimecmp % 0x1_0000_0000) >>> 0;
    if (offset === 0x4004) return Math.floor(this.mtimecmp / 0x1_0000_0000) >>> 0;
    if (offset === 0xbff8 || offset === 0xbffc) {
      const t = this.ticks();
      return offset === 0xbff8 ? t >>> 0 : Math.floor(t / 0x1_0000_0000) >>> 0;
    }
    return 0;
  }

  write(offset: number, _size: number, value: number): void {
    if (offset === 0) {
      this.msip = value & 1;
      this.hart.setPending(MIP_MSIP, this.msip !== 0);
    } else if (offset === 0x4000) {
      this.mtimecmp = Math.floor(this.mtimecmp / 0x1_0000_0000) * 0x1_0000_0000 + (value >>> 0);
      this.update();
    } else if (offset === 0x4004) {
      // keep below 2^53 so the comparison stays exact; all-ones means "never"
      const hi = Math.min(value >>> 0, 0x1fffff);
      this.mtimecmp = hi * 0x1_0000_0000 + (this.mtimecmp % 0x1_0000_0000);
      this.update();
    }
  }
}
