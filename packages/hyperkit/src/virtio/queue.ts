import { HyperkitError } from '../errors.js';
import type { GuestMemory } from '../machine/memory.js';

/** A malformed queue or descriptor chain: the device needs a reset; the host carries on. */
export class VirtqueueError extends HyperkitError {
  constructor(message: string) {
    super('ERR_VM_STATE', `virtqueue: ${message}`);
    this.name = 'VirtqueueError';
  }
}

const VIRTQ_DESC_F_NEXT = 1;
const VIRTQ_DESC_F_WRITE = 2;
const VIRTQ_DESC_F_INDIRECT = 4;
const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** Largest total length a single chain may describe (guards devices against absurd sizes). */
export const MAX_CHAIN_BYTES = 64 * 1024 * 1024;

/** One buffer of a descriptor chain, already checked to lie in guest RAM. */
export interface ChainBuffer {
  addr: number;
  len: number;
  writable: boolean;
}

/** A popped chain: its head index (for pushUsed) and buffers, device-readable ones first. */
export interface DescriptorChain {
  head: number;
  readable: ChainBuffer[];
  writable: ChainBuffer[];
}

/** Split virtqueue (virtio 1.x §2.7) with indirect descriptors and event-idx, every access bounds-checked. */
export class SplitVirtqueue {
  size = 0;
  ready = false;
  descAddr = 0;
  availAddr = 0;
  usedAddr = 0;
  eventIdx = false;
  private lastAvail = 0;
  private usedIdx = 0;
  /** used.idx value at the last interrupt we signalled (event-idx bookkeeping). */
  private signalledUsed = 0;

  constructor(
    private readonly memory: GuestMemory,
    readonly maxSize: number,
  ) {}

  reset(): void {
    this.size = 0;
    this.ready = false;
    this.descAddr = this.availAddr = this.usedAddr = 0;
    this.lastAvail = this.usedIdx = this.signalledUsed = 0;
  }

  /** Checks the rings lie in guest RAM and are aligned; called when the driver sets QueueReady. */
  validate(): void {
    const n = this.size;
    if (n === 0 || n > this.maxSize || (n & (n - 1)) !== 0) throw new VirtqueueError(`bad queue size ${n}`);
    const check = (addr: number, len: number, align: number, what: string) => {
      if (addr % align !== 0) throw new VirtqueueError(`${what} ring at 0x${addr.toString(16)} misaligned`);
      if (!this.memory.contains(addr, len)) throw new VirtqueueError(`${what} ring outside guest memory`);
    };
    check(this.descAddr, 16 * n, 16, 'descriptor');
    check(this.availAddr, 6 + 2 * n, 2, 'available');
    check(this.usedAddr, 6 + 8 * n, 4, 'used');
  }

  /** True when the driver has made buffers available that we have not popped. */
  hasAvailable(): boolean {
    return this.ready && this.memory.readU16(this.availAddr + 2) !== this.lastAvail;
  }

  /** Pops the next available chain, or null. Throws VirtqueueError for any malformed chain. */
  pop(): DescriptorChain | null {
    if (!this.ready) return null;
    const mem = this.memory;
    const availIdx = mem.readU16(this.availAddr + 2);
    const outstanding = (availIdx - this.lastAvail) & 0xffff;
    if (outstanding === 0) return null;
    if (outstanding > this.size) throw new VirtqueueError(`available index jumped by ${outstanding}`);
    const head = mem.readU16(this.availAddr + 4 + 2 * (this.lastAvail % this.size));
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    if (this.eventIdx) mem.writeU16(this.usedAddr + 4 + 8 * this.size, this.lastAvail); // avail_event
    return this.walk(head);
  }

  private walk(head: number): DescriptorChain {
    const mem = this.memory;
    if (head >= this.size) throw new VirtqueueError(`head index ${head} >= queue size ${this.size}`);
    const chain: DescriptorChain = { head, readable: [], writable: [] };
    let table = this.descAddr;
    let tableSize = this.size;
    let index = head;
    let budget = this.size;
    let indirect = false;
    let total = 0;
    for (;;) {
      if (budget-- <= 0) throw new VirtqueueError('descriptor chain loops or is too long');
      const d = table + 16 * index;
      const addr = mem.readU64(d);
      const len = mem.readU32(d + 8);
      const flags = mem.readU16(d + 12);
      const next = mem.readU16(d + 14);
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        if (indirect) throw new VirtqueueError('nested indirect descriptor');
        if (flags & VIRTQ_DESC_F_NEXT) throw new VirtqueueError('indirect descriptor with NEXT');
        if (len === 0 || len % 16 !== 0) throw new VirtqueueError(`indirect table length ${len}`);
        if (!mem.contains(addr, len)) throw new VirtqueueError('indirect table outside guest memory');
        indirect = true;
        table = addr;
        tableSize = len / 16;
        budget = tableSize;
        index = 0;
        continue;
      }
      if (!mem.contains(addr, len)) {
        throw new VirtqueueError(`buffer 0x${addr.toString(16)}+${len} outside guest memory`);
      }
      total += len;
      if (total > MAX_CHAIN_BYTES) throw new VirtqueueError(`chain longer than ${MAX_CHAIN_BYTES} bytes`);
      const writable = (flags & VIRTQ_DESC_F_WRITE) !== 0;
      if (writable) chain.writable.push({ addr, len, writable });
      else if (chain.writable.length > 0)
        throw new VirtqueueError('readable descriptor after a writable one');
      else chain.readable.push({ addr, len, writable });
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) break;
      if (next >= tableSize) throw new VirtqueueError(`next index ${next} out of range`);
      index = next;
    }
    return chain;
  }

  /** Returns a chain to the driver with `written` bytes written. */
  pushUsed(head: number, written: number): void {
    const mem = this.memory;
    const slot = this.usedAddr + 4 + 8 * (this.usedIdx % this.size);
    mem.writeU32(slot, head);
    mem.writeU32(slot + 4, written);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    mem.writeU16(this.usedAddr + 2, this.usedIdx);
  }

  /** Whether the driver wants an interrupt for what we used since the last signal. */
  shouldSignal(): boolean {
    const mem = this.memory;
    const old = this.signalledUsed;
    const now = this.usedIdx;
    this.signalledUsed = now;
    if (this.eventIdx) {
      const usedEvent = mem.readU16(this.availAddr + 4 + 2 * this.size);
      // vring_need_event: signal if used_event lies in [old, now)
      return ((now - usedEvent - 1) & 0xffff) < ((now - old) & 0xffff);
    }
    return (mem.readU16(this.availAddr) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /** Copies the readable part of a chain into one buffer (bounded by MAX_CHAIN_BYTES when popped). */
  readAll(chain: DescriptorChain): Uint8Array {
    const total = chain.readable.reduce((n, b) => n + b.len, 0);
    const out = new Uint8Array(total);
    let off = 0;
    for (const b of chain.readable) {
      out.set(this.memory.slice(b.addr, b.len), off);
      off += b.len;
    }
    return out;
  }

  /** Scatters data into the writable part of a chain; returns bytes written. */
  writeAll(chain: DescriptorChain, data: Uint8Array): number {
    let off = 0;
    for (const b of chain.writable) {
      if (off >= data.length) break;
      const n = Math.min(b.len, data.length - off);
      this.memory.slice(b.addr, n).set(data.subarray(off, off + n));
      off += n;
    }
    return off;
  }
}
