import type { MmioDevice } from '../machine/bus.js';
import { type HartInterruptInputs, MIP_MSIP, MIP_MTIP } from '../machine/interrupts.js';

/** SiFive CLINT for one hart: msip at 0x0, mtimecmp at 0x4000, mtime at 0xbff8 (10 MHz from the clock). */
export class Clint implements MmioDevice {
  readonly name = 'clint';
  /** mtimecmp as a Number for comparison (saturated below 2^53); 0 at reset (as on QEMU). */
  mtimecmp = 0;
  /** The register as written, for exact read-back. */
  private cmpLo = 0;
  private cmpHi = 0;
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
    if (offset === 0x4000) return this.cmpLo;
    if (offset === 0x4004) return this.cmpHi;
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
    } else if (offset === 0x4000 || offset === 0x4004) {
      if (offset === 0x4000) this.cmpLo = value >>> 0;
      else this.cmpHi = value >>> 0;
      // beyond 2^53 ticks (28 years) means "never" for our purposes; the Number stays exact below that
      this.mtimecmp =
        this.cmpHi > 0x1fffff ? Number.MAX_SAFE_INTEGER : this.cmpHi * 0x1_0000_0000 + this.cmpLo;
      this.update();
    }
  }
}
