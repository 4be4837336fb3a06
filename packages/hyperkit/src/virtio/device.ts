import type { GuestMemory } from '../machine/memory.js';
import type { SplitVirtqueue } from './queue.js';

/** Feature bits the transport/queue layer implements for every device. */
export const VIRTIO_F_RING_INDIRECT_DESC = 28n;
export const VIRTIO_F_RING_EVENT_IDX = 29n;
export const VIRTIO_F_VERSION_1 = 32n;

/** What an activated device gets: its queues, guest memory, and a way to raise interrupts. */
export interface VirtioDeviceContext {
  readonly memory: GuestMemory;
  readonly queues: readonly SplitVirtqueue[];
  /** Signals used buffers on queue `index` (honours event-idx suppression). */
  notifyUsed(index: number): void;
  /** Signals a configuration change. */
  notifyConfigChange(): void;
  /** Marks the device broken (DEVICE_NEEDS_RESET) with a reason for the log; never throws. */
  fail(reason: string): void;
}

/**
 * A virtio device behind the MMIO transport (Firecracker's shape: device state and queue handling here,
 * backends such as files or sockets outside). Devices touch guest memory only through GuestMemory and the
 * queue's checked descriptor chains.
 */
export interface VirtioDevice {
  readonly deviceId: number;
  /** Device-specific feature bits (the transport adds VERSION_1, INDIRECT_DESC and EVENT_IDX). */
  readonly features: bigint;
  /** Maximum size of each queue. */
  readonly queueMaxSizes: readonly number[];
  readConfig(offset: number, size: number): number;
  writeConfig(offset: number, size: number, value: number): void;
  /** The driver set DRIVER_OK: queues are configured. */
  activate(ctx: VirtioDeviceContext, negotiatedFeatures: bigint): void;
  /** The driver notified queue `index`. */
  queueNotify(index: number): void;
  /** The driver reset the device. */
  reset(): void;
}
