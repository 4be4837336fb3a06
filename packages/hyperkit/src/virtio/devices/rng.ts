import { randomFillSync } from 'node:crypto';
import { DeviceBase, DeviceId } from './common.js';

/** virtio-rng (entropy source): fills each writable buffer the driver offers with host randomness. */
export class VirtioRng extends DeviceBase {
  readonly deviceId = DeviceId.RNG;
  readonly features = 0n;
  readonly queueMaxSizes = [64];
  /** Bytes handed to the guest so far. */
  bytesServed = 0;
  /** Called with every chunk handed to the guest (tests compare it with what the guest read). */
  onServe: ((bytes: Uint8Array) => void) | undefined;

  queueNotify(index: number): void {
    const ctx = this.ctx;
    if (!ctx || index !== 0) return;
    const q = ctx.queues[0]!;
    let used = false;
    for (let chain = q.pop(); chain; chain = q.pop()) {
      let written = 0;
      for (const b of chain.writable) {
        // Entropy requests are small (the kernel asks for at most a page); cap each answer anyway.
        const n = Math.min(b.len, 4096 - written);
        if (n <= 0) break;
        const view = ctx.memory.slice(b.addr, n);
        randomFillSync(view);
        this.onServe?.(view);
        written += n;
      }
      this.bytesServed += written;
      q.pushUsed(chain.head, written);
      used = true;
    }
    if (used) ctx.notifyUsed(0);
  }
}
