/**
 * The machine clock: `mtime` ticks at 10 MHz derived from the host's monotonic clock, stopping while the
 * VM is paused so a paused guest sees no time jump.
 */
export const TIMEBASE_HZ = 10_000_000;

export class Clock {
  private origin = performance.now();
  private pausedAt: number | undefined;

  /** Current mtime (ticks). Exact as a Number for ~28 years of uptime. */
  ticks(): number {
    const now = this.pausedAt ?? performance.now();
    return Math.floor((now - this.origin) * (TIMEBASE_HZ / 1000));
  }

  /** Host milliseconds until `ticks()` reaches `target` (0 when already there). */
  msUntil(target: number): number {
    const delta = target - this.ticks();
    return delta <= 0 ? 0 : delta / (TIMEBASE_HZ / 1000);
  }

  pause(): void {
    if (this.pausedAt === undefined) this.pausedAt = performance.now();
  }

  resume(): void {
    if (this.pausedAt !== undefined) {
      this.origin += performance.now() - this.pausedAt;
      this.pausedAt = undefined;
    }
  }
}
