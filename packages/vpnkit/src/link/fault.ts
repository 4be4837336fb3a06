import { type Link, noClose, noFrame } from './link.js';

export interface FaultOptions {
  /** Probabilities in [0, 1] per frame. */
  drop?: number;
  duplicate?: number;
  reorder?: number;
  corrupt?: number;
  /** Seed for the deterministic generator, so failures reproduce. */
  seed?: number;
  /** Which directions to disturb (default both). */
  directions?: 'in' | 'out' | 'both';
  /** Drops exactly the frames this returns true for (before any random fault): targeted loss for tests. */
  dropIf?: (frame: Uint8Array, direction: 'in' | 'out') => boolean;
}

/**
 * Wraps a link and disturbs frames: drops, duplicates, reorders (holds one frame back behind the next)
 * and corrupts (flips one random byte). For tests of the stack's recovery, never for production.
 */
export class FaultLink implements Link {
  onFrame = noFrame;
  onClose = noClose;
  readonly description: string;
  private state: number;
  private heldIn: Uint8Array | null = null;
  private heldOut: Uint8Array | null = null;
  readonly counts = { dropped: 0, duplicated: 0, reordered: 0, corrupted: 0 };

  constructor(
    private readonly inner: Link,
    private readonly options: FaultOptions,
  ) {
    this.description = `${inner.description} (faults)`;
    this.state = options.seed ?? 1;
    const directions = options.directions ?? 'both';
    inner.onFrame = (frame) => {
      if (directions === 'out') this.onFrame(frame);
      else this.disturb(frame, 'in', (f) => this.onFrame(f));
    };
    inner.onClose = (error) => this.onClose(error);
    if (directions === 'in') this.send = (frame) => inner.send(frame);
  }

  private random(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0 || 1;
    return this.state / 0x1_0000_0000;
  }

  private disturb(frame: Uint8Array, direction: 'in' | 'out', deliver: (f: Uint8Array) => void): void {
    const o = this.options;
    if (o.dropIf?.(frame, direction)) {
      this.counts.dropped++;
      return;
    }
    if (this.random() < (o.drop ?? 0)) {
      this.counts.dropped++;
      return;
    }
    let out = frame;
    if (this.random() < (o.corrupt ?? 0) && frame.length > 0) {
      out = frame.slice();
      const index = Math.floor(this.random() * out.length);
      out[index] = (out[index] ?? 0) ^ (1 + Math.floor(this.random() * 255));
      this.counts.corrupted++;
    }
    const held = direction === 'in' ? this.heldIn : this.heldOut;
    if (!held && this.random() < (o.reorder ?? 0)) {
      if (direction === 'in') this.heldIn = out.slice();
      else this.heldOut = out.slice();
      this.counts.reordered++;
      return;
    }
    deliver(out);
    if (this.random() < (o.duplicate ?? 0)) {
      this.counts.duplicated++;
      deliver(out);
    }
    if (held) {
      if (direction === 'in') this.heldIn = null;
      else this.heldOut = null;
      deliver(held);
    }
  }

  send(frame: Uint8Array): void {
    this.disturb(frame, 'out', (f) => this.inner.send(f));
  }

  close(): void {
    this.inner.close();
  }
}
