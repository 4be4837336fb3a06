import { createHash } from 'node:crypto';
import { NetworkStack, type StackOptions } from '../src/stack/index.js';

/** A manual clock and scheduler so stack tests are deterministic and never wait for real time. */
export class ManualWorld {
  time = 0;
  private readonly tasks: Array<() => void> = [];
  readonly now = (): number => this.time;
  readonly schedule = (fn: () => void): void => {
    this.tasks.push(fn);
  };
  runTasks(): boolean {
    let ran = false;
    while (this.tasks.length > 0) {
      this.tasks.shift()!();
      ran = true;
    }
    return ran;
  }
}

/** Called per frame; returns the frames to deliver (none = drop, two = duplicate, ...). */
export type Fault = (frame: Uint8Array) => Uint8Array[];

/** Two stacks joined back to back through queues, with an optional fault per direction. */
export class Pair {
  readonly world = new ManualWorld();
  readonly a: NetworkStack;
  readonly b: NetworkStack;
  private readonly toA: Uint8Array[] = [];
  private readonly toB: Uint8Array[] = [];
  faultAtoB: Fault = (f) => [f];
  faultBtoA: Fault = (f) => [f];

  constructor(a: Partial<StackOptions>, b: Partial<StackOptions>) {
    this.a = new NetworkStack({
      mac: 0x02_00_00_00_00_0a,
      localAddresses: [],
      ...a,
      now: this.world.now,
      schedule: this.world.schedule,
      output: (f) => {
        for (const out of this.faultAtoB(f.slice())) this.toB.push(out);
      },
    });
    this.b = new NetworkStack({
      mac: 0x02_00_00_00_00_0b,
      localAddresses: [],
      ...b,
      now: this.world.now,
      schedule: this.world.schedule,
      output: (f) => {
        for (const out of this.faultBtoA(f.slice())) this.toA.push(out);
      },
    });
  }

  /** Delivers frames and runs tasks until nothing moves; advances time by `tickMs` when idle. */
  pump(maxSteps = 100_000, tickMs = 0, until?: () => boolean): number {
    let steps = 0;
    for (; steps < maxSteps; steps++) {
      if (until?.()) break;
      let moved = this.world.runTasks();
      // Deliver in batches, as a link would.
      const batchA = this.toA.splice(0, 64);
      for (const f of batchA) this.a.input(f);
      const batchB = this.toB.splice(0, 64);
      for (const f of batchB) this.b.input(f);
      moved ||= batchA.length > 0 || batchB.length > 0;
      if (!moved) {
        if (tickMs === 0) break;
        this.world.time += tickMs;
        this.a.poll();
        this.b.poll();
      }
    }
    return steps;
  }

  /** Frames queued towards a stack (for inspection). */
  framesTo(which: 'a' | 'b'): Uint8Array[] {
    return which === 'a' ? this.toA : this.toB;
  }
}

export function sha256(parts: Uint8Array[]): string {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(p);
  return hash.digest('hex');
}

/** Deterministic pseudo-random bytes (xorshift) so failures reproduce. */
export function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function makeRng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}
