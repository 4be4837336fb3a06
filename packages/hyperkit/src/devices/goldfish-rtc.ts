import type { MmioDevice } from '../machine/bus.js';
import type { IrqLine } from '../machine/interrupts.js';

/** Goldfish RTC: wall-clock nanoseconds since the epoch, with a one-shot alarm. */
export class GoldfishRtc implements MmioDevice {
  readonly name = 'goldfish-rtc';
  private latchedHigh = 0;
  private alarmLow = 0;
  private alarmHigh = 0;
  private irqEnabled = 0;
  private alarmStatus = 0;
  private alarmTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly irq: IrqLine,
    private readonly nowNs: () => bigint = () => BigInt(Date.now()) * 1_000_000n,
  ) {}

  read(offset: number, _size: number): number {
    switch (offset) {
      case 0x00: {
        const t = this.nowNs();
        this.latchedHigh = Number((t >> 32n) & 0xffffffffn);
        return Number(t & 0xffffffffn);
      }
      case 0x04:
        return this.latchedHigh;
      case 0x08:
        return this.alarmLow;
      case 0x0c:
        return this.alarmHigh;
      case 0x10:
        return this.irqEnabled;
      case 0x18:
        return this.alarmStatus;
      default:
        return 0;
    }
  }

  write(offset: number, _size: number, value: number): void {
    switch (offset) {
      case 0x08: {
        this.alarmLow = value >>> 0;
        const at = (BigInt(this.alarmHigh) << 32n) | BigInt(this.alarmLow);
        this.arm(at);
        return;
      }
      case 0x0c:
        this.alarmHigh = value >>> 0;
        return;
      case 0x10:
        this.irqEnabled = value & 1;
        return;
      case 0x14:
        this.disarm();
        return;
      case 0x1c:
        this.alarmStatus = 0;
        this.irq.set(false);
        return;
      default:
        return;
    }
  }

  private arm(atNs: bigint): void {
    this.disarm();
    this.alarmStatus = 1;
    const delayMs = Number((atNs - this.nowNs()) / 1_000_000n);
    const fire = () => {
      this.alarmTimer = undefined;
      this.alarmStatus = 0;
      if (this.irqEnabled) this.irq.set(true);
    };
    if (delayMs <= 0) fire();
    else {
      this.alarmTimer = setTimeout(fire, Math.min(delayMs, 0x7fffffff));
      this.alarmTimer.unref();
    }
  }

  private disarm(): void {
    if (this.alarmTimer !== undefined) clearTimeout(this.alarmTimer);
    this.alarmTimer = undefined;
    this.alarmStatus = 0;
  }

  /** Cancels a pending alarm (VM teardown). */
  close(): void {
    this.disarm();
  }
}
