import type { MmioDevice } from '../machine/bus.js';
import { type HartInterruptInputs, type IrqLine, MIP_MEIP, MIP_SEIP } from '../machine/interrupts.js';

/**
 * SiFive PLIC with two contexts (hart 0 M-mode, hart 0 S-mode), level-triggered sources 1..n, as on QEMU virt.
 * Layout: priorities at 4*id, pending bits at 0x1000, enables at 0x2000 + 0x80*ctx,
 * threshold/claim at 0x200000 + 0x1000*ctx.
 */
const CONTEXTS = 2;

export class Plic implements MmioDevice {
  readonly name = 'plic';
  private readonly priority: Uint32Array;
  private readonly level: Uint8Array;
  private readonly claimed: Uint8Array;
  private readonly enable: Uint32Array[];
  private readonly threshold = new Uint32Array(CONTEXTS);
  private readonly words: number;

  constructor(
    private readonly hart: HartInterruptInputs,
    readonly sources: number,
  ) {
    this.priority = new Uint32Array(sources + 1);
    this.level = new Uint8Array(sources + 1);
    this.claimed = new Uint8Array(sources + 1);
    this.words = Math.ceil((sources + 1) / 32);
    this.enable = Array.from({ length: CONTEXTS }, () => new Uint32Array(this.words));
  }

  /** The interrupt line for source `id` (1..sources). */
  line(id: number): IrqLine {
    if (id < 1 || id > this.sources) throw new RangeError(`PLIC source ${id} out of range`);
    return {
      set: (level: boolean) => {
        const value = level ? 1 : 0;
        // devices report their line after every register access: only a change can change the outputs
        if (this.level[id] === value) return;
        this.level[id] = value;
        this.update();
      },
    };
  }

  private pending(id: number): boolean {
    return this.level[id] === 1 && this.claimed[id] === 0;
  }

  /** Highest-priority pending enabled source above threshold for a context, or 0. */
  private best(ctx: number): number {
    let best = 0;
    let bestPriority = this.threshold[ctx]!;
    const en = this.enable[ctx]!;
    for (let id = 1; id <= this.sources; id++) {
      if (!this.pending(id) || ((en[id >> 5]! >>> (id & 31)) & 1) === 0) continue;
      const p = this.priority[id]!;
      if (p > bestPriority) {
        best = id;
        bestPriority = p;
      }
    }
    return best;
  }

  private update(): void {
    this.hart.setPending(MIP_MEIP, this.best(0) !== 0);
    this.hart.setPending(MIP_SEIP, this.best(1) !== 0);
  }

  read(offset: number, _size: number): number {
    if (offset < 0x1000) {
      const id = offset >> 2;
      return id <= this.sources ? this.priority[id]! : 0;
    }
    if (offset < 0x2000) {
      const word = (offset - 0x1000) >> 2;
      let bits = 0;
      for (let b = 0; b < 32; b++) if (this.pending(word * 32 + b)) bits |= 1 << b;
      return bits >>> 0;
    }
    if (offset < 0x200000) {
      const ctx = (offset - 0x2000) >> 7;
      const word = ((offset - 0x2000) & 0x7f) >> 2;
      return ctx < CONTEXTS && word < this.words ? this.enable[ctx]![word]! : 0;
    }
    const ctx = (offset - 0x200000) >> 12;
    if (ctx >= CONTEXTS) return 0;
    const reg = offset & 0xfff;
    if (reg === 0) return this.threshold[ctx]!;
    if (reg === 4) {
      const id = this.best(ctx);
      if (id !== 0) {
        this.claimed[id] = 1;
        this.update();
      }
      return id;
    }
    return 0;
  }

  write(offset: number, _size: number, value: number): void {
    if (offset < 0x1000) {
      const id = offset >> 2;
      if (id >= 1 && id <= this.sources) this.priority[id] = value & 7;
      this.update();
      return;
    }
    if (offset < 0x2000) return; // pending bits are read-only
    if (offset < 0x200000) {
      const ctx = (offset - 0x2000) >> 7;
      const word = ((offset - 0x2000) & 0x7f) >> 2;
      if (ctx < CONTEXTS && word < this.words) this.enable[ctx]![word] = word === 0 ? value & ~1 : value;
      this.update();
      return;
    }
    const ctx = (offset - 0x200000) >> 12;
    if (ctx >= CONTEXTS) return;
    const reg = offset & 0xfff;
    if (reg === 0) this.threshold[ctx] = value & 7;
    else if (reg === 4 && value >= 1 && value <= this.sources) this.claimed[value] = 0; // complete
    this.update();
  }
}
