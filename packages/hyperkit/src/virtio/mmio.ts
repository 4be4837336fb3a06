import { GuestMemoryError } from '../errors.js';
import type { MmioDevice } from '../machine/bus.js';
import type { IrqLine } from '../machine/interrupts.js';
import type { GuestMemory } from '../machine/memory.js';
import {
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  type VirtioDevice,
  type VirtioDeviceContext,
} from './device.js';
import { SplitVirtqueue, VirtqueueError } from './queue.js';

const MAGIC = 0x74726976;
const VENDOR = 0x554d4551; // "QEMU", as QEMU's virt board reports
const STATUS_DRIVER_OK = 4;
const STATUS_FEATURES_OK = 8;
export const STATUS_DEVICE_NEEDS_RESET = 0x40;
const INT_USED = 1;
const INT_CONFIG = 2;

/**
 * virtio-mmio transport (version 2) for one slot. An empty slot answers with device id 0, which Linux skips.
 * Any malformed queue state or chain sets DEVICE_NEEDS_RESET; the host never throws to the CPU.
 */
export class VirtioMmioTransport implements MmioDevice {
  readonly name: string;
  private readonly queues: SplitVirtqueue[];
  private readonly context: VirtioDeviceContext;
  private deviceFeatureSel = 0;
  private driverFeatureSel = 0;
  private driverFeatures = 0n;
  private queueSel = 0;
  private status = 0;
  private interruptStatus = 0;
  private configGeneration = 0;
  private activated = false;
  /** Why the device was marked broken (for logs and tests). */
  failure: string | undefined;
  onFailure: ((reason: string) => void) | undefined;

  constructor(
    private readonly memory: GuestMemory,
    private readonly irq: IrqLine,
    readonly device: VirtioDevice | undefined,
  ) {
    this.name = device ? `virtio-mmio(${device.deviceId})` : 'virtio-mmio(empty)';
    this.queues = (device?.queueMaxSizes ?? []).map((max) => new SplitVirtqueue(memory, max));
    this.context = {
      memory,
      queues: this.queues,
      notifyUsed: (index: number) => {
        const q = this.queues[index];
        if (!q || !q.shouldSignal()) return;
        this.interruptStatus |= INT_USED;
        this.updateIrq();
      },
      notifyConfigChange: () => {
        this.configGeneration++;
        this.interruptStatus |= INT_CONFIG;
        this.updateIrq();
      },
      fail: (reason: string) => this.fail(reason),
    };
  }

  private get offeredFeatures(): bigint {
    if (!this.device) return 0n;
    return (
      this.device.features |
      (1n << VIRTIO_F_VERSION_1) |
      (1n << VIRTIO_F_RING_INDIRECT_DESC) |
      (1n << VIRTIO_F_RING_EVENT_IDX)
    );
  }

  private get queue(): SplitVirtqueue | undefined {
    return this.queues[this.queueSel];
  }

  private updateIrq(): void {
    this.irq.set(this.interruptStatus !== 0);
  }

  /** Marks the device as needing reset and tells the driver through a config interrupt. */
  fail(reason: string): void {
    if (this.status & STATUS_DEVICE_NEEDS_RESET) return;
    this.failure = reason;
    this.status |= STATUS_DEVICE_NEEDS_RESET;
    this.interruptStatus |= INT_CONFIG;
    this.updateIrq();
    this.onFailure?.(reason);
  }

  private guarded(action: () => void): void {
    try {
      action();
    } catch (e) {
      if (e instanceof VirtqueueError || e instanceof GuestMemoryError) this.fail(e.message);
      else throw e;
    }
  }

  read(offset: number, size: number): number {
    if (offset >= 0x100) {
      if (!this.device) return 0;
      let v = 0;
      this.guarded(() => {
        v = this.device!.readConfig(offset - 0x100, size);
      });
      return v;
    }
    switch (offset) {
      case 0x000:
        return MAGIC;
      case 0x004:
        return 2;
      case 0x008:
        return this.device?.deviceId ?? 0;
      case 0x00c:
        return VENDOR;
      case 0x010:
        return Number((this.offeredFeatures >> BigInt(32 * this.deviceFeatureSel)) & 0xffffffffn);
      case 0x034:
        return this.queue?.maxSize ?? 0;
      case 0x044:
        return this.queue?.ready ? 1 : 0;
      case 0x060:
        return this.interruptStatus;
      case 0x070:
        return this.status;
      case 0x0fc:
        return this.configGeneration;
      default:
        return 0;
    }
  }

  write(offset: number, size: number, value: number): void {
    if (!this.device) return;
    const v = value >>> 0;
    if (offset >= 0x100) {
      this.guarded(() => this.device!.writeConfig(offset - 0x100, size, v));
      return;
    }
    const q = this.queue;
    switch (offset) {
      case 0x014:
        this.deviceFeatureSel = v;
        return;
      case 0x020: {
        if (this.driverFeatureSel > 1) return;
        const shift = BigInt(32 * this.driverFeatureSel);
        this.driverFeatures = (this.driverFeatures & ~(0xffffffffn << shift)) | (BigInt(v) << shift);
        return;
      }
      case 0x024:
        this.driverFeatureSel = v;
        return;
      case 0x030:
        this.queueSel = v;
        return;
      case 0x038:
        if (q) q.size = v;
        return;
      case 0x044:
        if (!q) return;
        if (v === 1) {
          q.eventIdx = (this.driverFeatures & (1n << VIRTIO_F_RING_EVENT_IDX)) !== 0n;
          this.guarded(() => {
            q.validate();
            q.ready = true;
          });
        } else q.ready = false;
        return;
      case 0x050:
        if (this.activated && !(this.status & STATUS_DEVICE_NEEDS_RESET) && this.queues[v]) {
          this.guarded(() => this.device!.queueNotify(v));
        }
        return;
      case 0x064:
        this.interruptStatus &= ~v;
        this.updateIrq();
        return;
      case 0x070:
        this.writeStatus(v);
        return;
      case 0x080:
        if (q) q.descAddr = setLow(q.descAddr, v);
        return;
      case 0x084:
        if (q) q.descAddr = setHigh(q.descAddr, v);
        return;
      case 0x090:
        if (q) q.availAddr = setLow(q.availAddr, v);
        return;
      case 0x094:
        if (q) q.availAddr = setHigh(q.availAddr, v);
        return;
      case 0x0a0:
        if (q) q.usedAddr = setLow(q.usedAddr, v);
        return;
      case 0x0a4:
        if (q) q.usedAddr = setHigh(q.usedAddr, v);
        return;
      default:
        return;
    }
  }

  private writeStatus(v: number): void {
    if (v === 0) {
      this.status = 0;
      this.interruptStatus = 0;
      this.driverFeatures = 0n;
      this.activated = false;
      this.failure = undefined;
      for (const q of this.queues) q.reset();
      this.device!.reset();
      this.updateIrq();
      return;
    }
    if (v & STATUS_FEATURES_OK && !(this.status & STATUS_FEATURES_OK)) {
      // refuse features we did not offer
      if ((this.driverFeatures & ~this.offeredFeatures) !== 0n) v &= ~STATUS_FEATURES_OK;
    }
    this.status = (this.status & STATUS_DEVICE_NEEDS_RESET) | v;
    if (v & STATUS_DRIVER_OK && !this.activated) {
      this.activated = true;
      this.guarded(() => this.device!.activate(this.context, this.driverFeatures));
    }
  }
}

function setLow(cur: number, lo: number): number {
  return Math.floor(cur / 0x1_0000_0000) * 0x1_0000_0000 + lo;
}
function setHigh(cur: number, hi: number): number {
  // guest RAM lies below 2^53; larger addresses fail validation as out of range
  return Math.min(hi, 0x1fffff) * 0x1_0000_0000 + (cur % 0x1_0000_0000);
}
