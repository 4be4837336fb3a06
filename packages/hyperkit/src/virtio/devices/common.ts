import type { GuestMemory } from '../../machine/memory.js';
import type { VirtioDevice, VirtioDeviceContext } from '../device.js';
import type { ChainBuffer } from '../queue.js';

/** Virtio device ids (virtio 1.2 §5). */
export const DeviceId = {
  NET: 1,
  BLOCK: 2,
  CONSOLE: 3,
  RNG: 4,
  NINEP: 9,
  VSOCK: 19,
} as const;

/** Bytes described by a list of chain buffers. */
export function totalLength(buffers: readonly ChainBuffer[]): number {
  let n = 0;
  for (const b of buffers) n += b.len;
  return n;
}

/**
 * Copies `into.length` bytes starting `offset` bytes into the chain's buffers; returns how many it could
 * (fewer when the chain is shorter). Guest memory is reached only through GuestMemory's checked views.
 */
export function gather(
  memory: GuestMemory,
  buffers: readonly ChainBuffer[],
  offset: number,
  into: Uint8Array,
): number {
  let skip = offset;
  let done = 0;
  for (const b of buffers) {
    if (done >= into.length) break;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const n = Math.min(b.len - skip, into.length - done);
    into.set(memory.slice(b.addr + skip, n), done);
    done += n;
    skip = 0;
  }
  return done;
}

/** Copies `data` into the chain's buffers starting `offset` bytes in; returns bytes written. */
export function scatter(
  memory: GuestMemory,
  buffers: readonly ChainBuffer[],
  offset: number,
  data: Uint8Array,
): number {
  let skip = offset;
  let done = 0;
  for (const b of buffers) {
    if (done >= data.length) break;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const n = Math.min(b.len - skip, data.length - done);
    memory.slice(b.addr + skip, n).set(data.subarray(done, done + n));
    done += n;
    skip = 0;
  }
  return done;
}

/** Views (no copies) of guest memory covering `length` bytes of the chain from `offset`. */
export function views(
  memory: GuestMemory,
  buffers: readonly ChainBuffer[],
  offset: number,
  length: number,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = offset;
  let left = length;
  for (const b of buffers) {
    if (left <= 0) break;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const n = Math.min(b.len - skip, left);
    out.push(memory.slice(b.addr + skip, n));
    left -= n;
    skip = 0;
  }
  return out;
}

/** Little-endian config-space reads from a byte array, as the MMIO transport asks (1, 2 or 4 bytes). */
export function readConfigBytes(config: Uint8Array, offset: number, size: number): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + (config[offset + i] ?? 0);
  return v >>> 0;
}

/**
 * Common state of our devices: the context handed over at activation, and a hook to wake an idle guest when
 * something arrives from the host asynchronously (sockets, 9P replies). The VM connects `wakeGuest` to
 * the machine's run loop; without it, interrupts raised while the hart sleeps in WFI wait for the next timer.
 */
export abstract class DeviceBase implements VirtioDevice {
  abstract readonly deviceId: number;
  abstract readonly features: bigint;
  abstract readonly queueMaxSizes: readonly number[];
  protected ctx: VirtioDeviceContext | undefined;
  protected negotiated = 0n;
  /** Set once this device marked itself broken; cleared by reset. */
  protected broken = false;
  wakeGuest: () => void = () => {};
  /** Reasons this device was marked broken (most recent last, bounded), for logs and tests. */
  readonly failures: string[] = [];
  /** Where failure reasons are logged (default stderr). */
  log: (message: string) => void = (m) => process.stderr.write(`hyperkit: ${m}\n`);

  readConfig(_offset: number, _size: number): number {
    return 0;
  }
  writeConfig(_offset: number, _size: number, _value: number): void {}

  activate(ctx: VirtioDeviceContext, negotiatedFeatures: bigint): void {
    this.ctx = ctx;
    this.negotiated = negotiatedFeatures;
    this.onActivate();
  }
  protected onActivate(): void {}

  abstract queueNotify(index: number): void;

  reset(): void {
    this.onReset();
    this.broken = false;
    this.ctx = undefined;
    this.negotiated = 0n;
  }
  protected onReset(): void {}

  protected hasFeature(bit: number): boolean {
    return (this.negotiated & (1n << BigInt(bit))) !== 0n;
  }

  /** Marks the device as needing reset and logs why; never throws. */
  protected fail(reason: string): void {
    this.broken = true;
    const name = this.constructor.name;
    if (this.failures.length >= 16) this.failures.shift();
    this.failures.push(reason);
    this.log(`${name}: device needs reset: ${reason}`);
    this.ctx?.fail(reason);
  }

  /** Runs host-initiated work (socket data, async completions): errors mark the device broken, never throw. */
  protected fromHost(action: () => void): void {
    if (!this.ctx || this.broken) return;
    try {
      action();
    } catch (e) {
      this.fail(e instanceof Error ? e.message : String(e));
    }
    this.wakeAfterHostEvent();
  }

  /** Wakes the guest after host work; a device may defer or batch it. */
  protected wakeAfterHostEvent(): void {
    this.wakeGuest();
  }
}
