import type { GuestMemory } from '../src/machine/memory.js';
import type { VirtioDevice } from '../src/virtio/device.js';
import { VirtioMmioTransport } from '../src/virtio/mmio.js';

/** The driver half of one split virtqueue, as a guest would run it (no event-idx; the test polls). */
export class DriverQueue {
  private readonly free: number[] = [];
  private availIdx = 0;
  private usedSeen = 0;
  constructor(
    private readonly mem: GuestMemory,
    readonly base: number,
    readonly size: number,
  ) {
    for (let i = size - 1; i >= 0; i--) this.free.push(i);
  }
  get desc(): number {
    return this.base;
  }
  get avail(): number {
    return this.base + 0x1000;
  }
  get used(): number {
    return this.base + 0x2000;
  }
  /** Makes one single-buffer chain available; false when every descriptor is in use. */
  post(addr: number, len: number, writable: boolean): boolean {
    const i = this.free.pop();
    if (i === undefined) return false;
    const d = this.desc + 16 * i;
    this.mem.writeU64(d, addr);
    this.mem.writeU32(d + 8, len);
    this.mem.writeU16(d + 12, writable ? 2 : 0);
    this.mem.writeU16(d + 14, 0);
    this.mem.writeU16(this.avail + 4 + 2 * (this.availIdx % this.size), i);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.mem.writeU16(this.avail + 2, this.availIdx);
    return true;
  }
  /** Used entries since last time: [buffer address, bytes written]; their descriptors are free again. */
  takeUsed(): [number, number][] {
    const out: [number, number][] = [];
    const idx = this.mem.readU16(this.used + 2);
    while (this.usedSeen !== idx) {
      const slot = this.used + 4 + 8 * (this.usedSeen % this.size);
      const id = this.mem.readU32(slot);
      out.push([this.mem.readU64(this.desc + 16 * id), this.mem.readU32(slot + 4)]);
      this.free.push(id);
      this.usedSeen = (this.usedSeen + 1) & 0xffff;
    }
    return out;
  }
}

/**
 * Drives a device behind the MMIO transport to DRIVER_OK as a guest driver would: accepts the device's
 * features (VERSION_1 always, EVENT_IDX never: the test polls) filtered by `accept`, and sets up one
 * DriverQueue per entry of `queueSizes` at RAM-relative 16 KiB strides from `ringBase`.
 */
export function activateDevice(
  mem: GuestMemory,
  device: VirtioDevice,
  irq: { set(level: boolean): void },
  queueSizes: number[],
  ringBase: number,
  accept: (low: number) => number = (low) => low,
): { transport: VirtioMmioTransport; queues: DriverQueue[] } {
  const transport = new VirtioMmioTransport(mem, irq, device);
  transport.write(0x070, 4, 3);
  for (const sel of [0, 1]) {
    transport.write(0x014, 4, sel);
    const offered = transport.read(0x010, 4);
    const f = sel === 0 ? accept(offered) & ~(1 << 29) : offered;
    transport.write(0x024, 4, sel);
    transport.write(0x020, 4, f >>> 0);
  }
  transport.write(0x070, 4, 3 | 8);
  const queues = queueSizes.map((size, q) => new DriverQueue(mem, ringBase + q * 0x4000, size));
  for (const [q, dq] of queues.entries()) {
    transport.write(0x030, 4, q);
    transport.write(0x038, 4, dq.size);
    transport.write(0x080, 4, dq.desc);
    transport.write(0x090, 4, dq.avail);
    transport.write(0x0a0, 4, dq.used);
    transport.write(0x044, 4, 1);
  }
  transport.write(0x070, 4, 3 | 8 | 4);
  return { transport, queues };
}
