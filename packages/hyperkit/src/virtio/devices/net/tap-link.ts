import { type TapAddon, loadTapAddon } from '@kitset/tap';
import type { EthernetLink } from './link.js';
import {
  type LinkOffloadSupport,
  NET_HDR_F_NEEDS_CSUM,
  type NetOffload,
  emptyOffload,
  readNetHeader,
  writeNetHeader,
} from './offload.js';

/** Frames read per system-call batch; one buffer holds a whole batch. */
const READ_BATCH = 64;
/** Batches per readable wakeup, so a busy TAP cannot starve the event loop. */
const MAX_ROUNDS = 8;
/** The virtio-net header a TAP opened with IFF_VNET_HDR puts before each frame (its default size). */
const VNET_HDR_LEN = 10;
/** A TSO frame: IPv4's total length fits 16 bits, plus the Ethernet header and a VLAN tag. */
const MAX_TSO_FRAME = 65535 + 18;

export interface TapLinkOptions {
  /** Open the TAP inside the network namespace at this path (e.g. /var/run/netns/NAME); needs CAP_SYS_ADMIN. */
  netnsPath?: string;
  /** The largest frame accepted (Ethernet header included, no FCS); the MTU plus 14 by default. */
  mtu?: number;
  /**
   * Open the TAP with virtio-net headers (IFF_VNET_HDR, checksum and TSO4 offloads), so the guest's TSO
   * frames and partial checksums go to Linux as they are and Linux's arrive whole (default true).
   */
  offloads?: boolean;
}

/**
 * An EthernetLink over a Linux TAP device: frames from the host's stack arrive many per read into one
 * reused buffer; the guest's frames are written one by one, and dropped (counted) when the device's queue
 * is full, as a NIC would. With offloads (the default) every frame carries a virtio-net header both ways,
 * the same header virtio-net speaks, so checksums and segmentation stay with whoever can do them cheapest.
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
  private receiver: (frame: Uint8Array, offload?: NetOffload | null) => void = () => {};
  readonly offloads?: LinkOffloadSupport;
  private readonly vnetHdr: boolean;
  private readonly rxOffload = emptyOffload();
  private readonly txHeader = new Uint8Array(VNET_HDR_LEN);
  private watcher: unknown;
  private closed = false;

  /** Creates (or attaches to) TAP device `name`. Throws TapError when the addon is not built, Error on EPERM etc. */
  constructor(name: string, options: TapLinkOptions = {}) {
    this.addon = loadTapAddon();
    this.vnetHdr = options.offloads !== false;
    const opened = this.addon.open(name, options.netnsPath ?? '', this.vnetHdr, '');
    this.fd = opened.fd;
    this.name = opened.name;
    // VLAN tag room on top of MTU + Ethernet header.
    this.maxFrame = this.vnetHdr ? VNET_HDR_LEN + MAX_TSO_FRAME : (options.mtu ?? 1500) + 14 + 4;
    if (this.vnetHdr) this.offloads = { checksum: true, tso: true };
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
        if (!this.vnetHdr) this.receiver(this.rx.subarray(offset, offset + length));
        else if (length > VNET_HDR_LEN)
          this.receiver(
            this.rx.subarray(offset + VNET_HDR_LEN, offset + length),
            readNetHeader(this.rx.subarray(offset, offset + VNET_HDR_LEN), this.rxOffload),
          );
        offset += length;
      }
      if (count < READ_BATCH) return;
    }
  }

  send(frame: Uint8Array, offload?: NetOffload | null): void {
    if (this.closed) return;
    let written = false;
    try {
      if (this.vnetHdr) {
        writeNetHeader(this.txHeader, offload && offload.flags & NET_HDR_F_NEEDS_CSUM ? offload : null);
        written = this.addon.writeFrameV(this.fd, this.txHeader, frame, frame.length);
      } else written = this.addon.writeFrame(this.fd, frame, frame.length);
    } catch {
      // e.g. EIO while the interface is down: the frame is lost, as on a wire.
    }
    if (written) this.counters.txFrames++;
    else this.counters.txDropped++;
  }

  onFrame(cb: (frame: Uint8Array, offload?: NetOffload | null) => void): void {
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
