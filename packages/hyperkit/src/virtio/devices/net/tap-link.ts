import { type TapAddon, loadTapAddon } from '@kitset/tap';
import type { EthernetLink } from './link.js';

/** Frames read per system-call batch; one buffer holds a whole batch. */
const READ_BATCH = 64;
/** Batches per readable wakeup, so a busy TAP cannot starve the event loop. */
const MAX_ROUNDS = 8;

export interface TapLinkOptions {
  /** Open the TAP inside the network namespace at this path (e.g. /var/run/netns/NAME); needs CAP_SYS_ADMIN. */
  netnsPath?: string;
  /** The largest frame accepted (Ethernet header included, no FCS); the MTU plus 14 by default. */
  mtu?: number;
}

/**
 * An EthernetLink over a Linux TAP device (plain Ethernet frames, no virtio-net header): frames from the
 * host's stack arrive many per read into one reused buffer; the guest's frames are written one by one, and
 * dropped (counted) when the device's queue is full, as a NIC would.
 */
export class TapEthernetLink implements EthernetLink {
  /** The device's actual name (the kernel picks one when the requested name has a %d). */
  readonly name: string;
  readonly counters = { rxFrames: 0, txFrames: 0, txDropped: 0 };
  private readonly addon: TapAddon;
  private readonly fd: number;
  private readonly maxFrame: number;
  private readonly rx: Uint8Array;
  private readonly lengths = new Uint32Array(READ_BATCH);
  private receiver: (frame: Uint8Array) => void = () => {};
  private watcher: unknown;
  private closed = false;

  /** Creates (or attaches to) TAP device `name`. Throws TapError when the addon is not built, Error on EPERM etc. */
  constructor(name: string, options: TapLinkOptions = {}) {
    this.addon = loadTapAddon();
    const opened = this.addon.open(name, options.netnsPath ?? '', false, '');
    this.fd = opened.fd;
    this.name = opened.name;
    // VLAN tag room on top of MTU + Ethernet header.
    this.maxFrame = (options.mtu ?? 1500) + 14 + 4;
    this.rx = new Uint8Array(READ_BATCH * this.maxFrame);
    this.watcher = this.addon.watch(this.fd, () => this.readable());
  }

  private readable(): void {
    for (let round = 0; round < MAX_ROUNDS && !this.closed; round++) {
      let count: number;
      try {
        count = this.addon.readFrames(this.fd, this.rx, this.lengths, this.maxFrame);
      } catch {
        // The device went away (deleted interface or namespace): behave as an unplugged cable.
        this.close();
        return;
      }
      let offset = 0;
      for (let i = 0; i < count && !this.closed; i++) {
        const length = this.lengths[i]!;
        this.counters.rxFrames++;
        this.receiver(this.rx.subarray(offset, offset + length));
        offset += length;
      }
      if (count < READ_BATCH) return;
    }
  }

  send(frame: Uint8Array): void {
    if (this.closed) return;
    let written = false;
    try {
      written = this.addon.writeFrame(this.fd, frame, frame.length);
    } catch {
      // e.g. EIO while the interface is down: the frame is lost, as on a wire.
    }
    if (written) this.counters.txFrames++;
    else this.counters.txDropped++;
  }

  onFrame(cb: (frame: Uint8Array) => void): void {
    this.receiver = cb;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.watcher) this.addon.unwatch(this.watcher);
    this.watcher = null;
    this.addon.close(this.fd);
  }
}
