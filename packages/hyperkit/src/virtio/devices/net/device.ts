import type { ChainBuffer } from '../../queue.js';
import { DeviceBase, DeviceId, gather, scatter, totalLength } from '../common.js';
import type { EthernetLink } from './link.js';
import {
  NET_HDR_F_DATA_VALID,
  NET_HDR_F_NEEDS_CSUM,
  NET_HDR_GSO_ECN,
  NET_HDR_GSO_NONE,
  NET_HDR_GSO_TCPV4,
  NET_HDR_GSO_TCPV6,
  type NetOffload,
  emptyOffload,
  finishChecksum,
  readNetHeader,
  segmentTcp,
  writeNetHeader,
} from './offload.js';

const RX = 0;
const TX = 1;
const QUEUE_SIZE = 256;
// Feature bits (virtio 1.2 §5.1.3).
const F_CSUM = 0;
const F_GUEST_CSUM = 1;
const F_MTU = 3;
const F_MAC = 5;
const F_GUEST_TSO4 = 7;
const F_GUEST_TSO6 = 8;
const F_HOST_TSO4 = 11;
const F_HOST_TSO6 = 12;
const F_MRG_RXBUF = 15;
const F_STATUS = 16;
const STATUS_LINK_UP = 1;
/** virtio_net_hdr_v1 (num_buffers included, as VERSION_1 requires). */
const NET_HDR_SIZE = 12;
/** Frames held while the guest has posted no receive buffers, before dropping. */
const MAX_RX_BACKLOG = 256;
/** A TSO frame's IPv4 total length fits 16 bits; room for an Ethernet header (and a VLAN tag) on top. */
const MAX_FRAME = 65535 + 18;
const UDP_CHECKSUM_OFFSET = 6;

const bit = (n: number) => 1n << BigInt(n);

export interface VirtioNetOptions {
  /** The guest's MAC (6 bytes); from VPNKit's reply when attached over its socket. */
  mac: Uint8Array;
  mtu?: number;
  /** Offer checksum offload, TSO and mergeable receive buffers to the guest (default true). */
  offloads?: boolean;
}

/** Parses "02:00:00:00:00:01". */
export function parseMac(text: string): Uint8Array {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new RangeError(`bad MAC address "${text}"`);
  }
  return Uint8Array.from(parts.map((p) => Number.parseInt(p, 16)));
}

interface Held {
  frame: Uint8Array;
  offload: NetOffload | null;
}

/**
 * virtio-net over an EthernetLink. The guest is offered checksum offload both ways (CSUM, GUEST_CSUM),
 * TSO both ways (HOST_TSO4/6, GUEST_TSO4/6) and mergeable receive buffers, so an emulated guest's TCP moves
 * 64 KiB segments and computes no checksums: it is the guest's CPU that bounds throughput. Frames go to
 * the link as they are when it takes partial checksums and TSO frames (VPNKit in this process); for a
 * link that needs plain MTU-sized frames (TAP without vnet_hdr, the vpnkit protocol) the device finishes
 * checksums and cuts TSO frames into MSS-sized ones itself, on the host's CPU. Received frames the guest
 * did not negotiate the offloads for are finished and segmented the same way.
 */
export class VirtioNet extends DeviceBase {
  readonly deviceId = DeviceId.NET;
  readonly features: bigint;
  readonly queueMaxSizes = [QUEUE_SIZE, QUEUE_SIZE];
  private readonly config = new Uint8Array(12);
  private readonly backlog: Held[] = [];
  private readonly txFrame = new Uint8Array(MAX_FRAME);
  private readonly txHeaderBytes = new Uint8Array(NET_HDR_SIZE);
  private readonly txOffload = emptyOffload();
  private readonly segmentScratch = new Uint8Array(MAX_FRAME);
  private readonly rxFrame = new Uint8Array(MAX_FRAME);
  private readonly rxHeader = new Uint8Array(NET_HDR_SIZE);
  /** Receive chains popped for a frame that did not fit in them yet (mergeable buffers). */
  private heldChains: { head: number; room: number; buffers: ChainBuffer[] }[] = [];
  private heldRoom = 0;
  readonly counters = {
    txFrames: 0,
    rxFrames: 0,
    rxDropped: 0,
    txDropped: 0,
    /** Frames this device segmented or checksummed because the link or the guest could not. */
    txSegmented: 0,
    txChecksummed: 0,
    rxSegmented: 0,
    rxChecksummed: 0,
  };

  constructor(
    readonly link: EthernetLink,
    options: VirtioNetOptions,
  ) {
    super();
    if (options.mac.length !== 6) throw new RangeError('MAC must be 6 bytes');
    const mtu = options.mtu ?? 1500;
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535 - 14) throw new RangeError(`bad MTU ${mtu}`);
    let features = bit(F_MAC) | bit(F_MTU) | bit(F_STATUS);
    if (options.offloads !== false)
      features |=
        bit(F_CSUM) |
        bit(F_GUEST_CSUM) |
        bit(F_HOST_TSO4) |
        bit(F_HOST_TSO6) |
        bit(F_GUEST_TSO4) |
        bit(F_GUEST_TSO6) |
        bit(F_MRG_RXBUF);
    this.features = features;
    this.config.set(options.mac, 0);
    const v = new DataView(this.config.buffer);
    v.setUint16(6, STATUS_LINK_UP, true);
    v.setUint16(8, 1, true); // max_virtqueue_pairs
    v.setUint16(10, mtu, true);
    link.onFrame((frame, offload) => this.fromHost(() => this.receive(frame, offload ?? null)));
  }

  override readConfig(offset: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (this.config[offset + i] ?? 0);
    return v >>> 0;
  }

  // ------------------------------------------------------------------ receive (link → guest)

  private receive(frame: Uint8Array, offload: NetOffload | null): void {
    if (frame.length > MAX_FRAME || frame.length < 14) {
      this.counters.rxDropped++;
      return;
    }
    const gso = offload ? offload.gsoType & ~NET_HDR_GSO_ECN : NET_HDR_GSO_NONE;
    if (offload && gso !== NET_HDR_GSO_NONE && !this.guestTakesGso(gso)) {
      // A TSO frame for a guest that negotiated no TSO: cut it here (segments carry full checksums).
      const n = segmentTcp(frame, offload.gsoSize, this.segmentScratch, (segment) =>
        this.receivePlain(segment, NET_HDR_F_DATA_VALID),
      );
      if (n < 0) this.counters.rxDropped++;
      else this.counters.rxSegmented++;
      return;
    }
    if (offload && offload.flags & NET_HDR_F_NEEDS_CSUM && !this.hasFeature(F_GUEST_CSUM)) {
      const copy = this.rxFrame.subarray(0, frame.length);
      copy.set(frame);
      if (
        !finishChecksum(
          copy,
          offload.checksumStart,
          offload.checksumOffset,
          offload.checksumOffset === UDP_CHECKSUM_OFFSET,
        )
      ) {
        this.counters.rxDropped++;
        return;
      }
      this.counters.rxChecksummed++;
      this.receivePlain(copy, NET_HDR_F_DATA_VALID);
      return;
    }
    this.enqueue(frame, offload);
  }

  private guestTakesGso(gso: number): boolean {
    if (gso === NET_HDR_GSO_TCPV4) return this.hasFeature(F_GUEST_TSO4);
    if (gso === NET_HDR_GSO_TCPV6) return this.hasFeature(F_GUEST_TSO6);
    return false;
  }

  private readonly plainOffload = emptyOffload();
  private receivePlain(frame: Uint8Array, flags: number): void {
    this.plainOffload.flags = flags;
    this.enqueue(frame, this.plainOffload);
  }

  private enqueue(frame: Uint8Array, offload: NetOffload | null): void {
    if (this.backlog.length > 0 || !this.deliver(frame, offload)) {
      if (this.backlog.length >= MAX_RX_BACKLOG) {
        this.counters.rxDropped++;
        return;
      }
      this.backlog.push({ frame: frame.slice(), offload: offload ? { ...offload } : null });
    }
  }

  /** The virtio_net_hdr for a received frame, as far as the guest negotiated. */
  private fillRxHeader(offload: NetOffload | null, buffers: number): void {
    const h = this.rxHeader;
    const guestCsum = this.hasFeature(F_GUEST_CSUM);
    if (!offload || !guestCsum) writeNetHeader(h, null);
    else if (offload.flags & NET_HDR_F_NEEDS_CSUM) writeNetHeader(h, offload);
    else {
      writeNetHeader(h, null);
      if (offload.flags & NET_HDR_F_DATA_VALID) h[0] = NET_HDR_F_DATA_VALID;
    }
    h[10] = buffers & 0xff;
    h[11] = buffers >>> 8;
  }

  /** Puts one frame into receive chains; false when the guest has not posted enough. */
  private deliver(frame: Uint8Array, offload: NetOffload | null): boolean {
    const ctx = this.ctx;
    if (!ctx) return false;
    const q = ctx.queues[RX]!;
    const needed = NET_HDR_SIZE + frame.length;
    if (!this.hasFeature(F_MRG_RXBUF)) {
      const chain = q.pop();
      if (!chain) return false;
      if (totalLength(chain.writable) < needed) {
        // The guest's buffers are too small for this frame (larger than it can take): drop it.
        this.counters.rxDropped++;
        q.pushUsed(chain.head, 0);
      } else {
        this.fillRxHeader(offload, 1);
        scatter(ctx.memory, chain.writable, 0, this.rxHeader);
        scatter(ctx.memory, chain.writable, NET_HDR_SIZE, frame);
        q.pushUsed(chain.head, needed);
        this.counters.rxFrames++;
      }
      ctx.notifyUsed(RX);
      return true;
    }
    // Mergeable buffers: as many chains as the frame needs, the header (with their count) in the first.
    while (this.heldRoom < needed) {
      const chain = q.pop();
      if (!chain) return false;
      const room = totalLength(chain.writable);
      this.heldChains.push({ head: chain.head, room, buffers: chain.writable });
      this.heldRoom += room;
      if (this.heldChains.length >= q.size && this.heldRoom < needed) {
        // Buffers too small to ever hold the frame: give them back empty and drop it.
        for (const c of this.heldChains) q.pushUsed(c.head, 0);
        this.heldChains = [];
        this.heldRoom = 0;
        this.counters.rxDropped++;
        ctx.notifyUsed(RX);
        return true;
      }
    }
    let used = 0;
    let offset = 0; // into the frame
    for (const chain of this.heldChains) {
      if (used > 0 && offset >= frame.length) break;
      let written = 0;
      if (used === 0) {
        written = NET_HDR_SIZE;
        // The count is known once the chains are: fill the header below, after counting.
      }
      const n = Math.min(chain.room - written, frame.length - offset);
      scatter(ctx.memory, chain.buffers, written, frame.subarray(offset, offset + n));
      offset += n;
      written += n;
      chain.room = written; // reused below as the length written
      used++;
    }
    this.fillRxHeader(offload, used);
    scatter(ctx.memory, this.heldChains[0]!.buffers, 0, this.rxHeader);
    for (let i = 0; i < used; i++) {
      const chain = this.heldChains[i]!;
      q.pushUsed(chain.head, chain.room);
    }
    this.heldChains = this.heldChains.slice(used);
    this.heldRoom = 0;
    for (const c of this.heldChains) this.heldRoom += c.room;
    this.counters.rxFrames++;
    ctx.notifyUsed(RX);
    return true;
  }

  // ------------------------------------------------------------------ transmit (guest → link)

  private transmit(frame: Uint8Array, offload: NetOffload): void {
    const support = this.link.offloads;
    const gso = offload.gsoType & ~NET_HDR_GSO_ECN;
    if (gso !== NET_HDR_GSO_NONE) {
      if ((gso === NET_HDR_GSO_TCPV4 || gso === NET_HDR_GSO_TCPV6) && support?.tso && support.checksum) {
        this.link.send(frame, offload);
        return;
      }
      const n =
        gso === NET_HDR_GSO_TCPV4 || gso === NET_HDR_GSO_TCPV6
          ? segmentTcp(frame, offload.gsoSize, this.segmentScratch, (segment) => this.link.send(segment))
          : -1;
      if (n < 0) this.counters.txDropped++;
      else this.counters.txSegmented++;
      return;
    }
    if (offload.flags & NET_HDR_F_NEEDS_CSUM) {
      if (support?.checksum) {
        this.link.send(frame, offload);
        return;
      }
      const udp = offload.checksumOffset === UDP_CHECKSUM_OFFSET;
      if (!finishChecksum(frame, offload.checksumStart, offload.checksumOffset, udp)) {
        this.counters.txDropped++;
        return;
      }
      this.counters.txChecksummed++;
    }
    this.link.send(frame);
  }

  queueNotify(index: number): void {
    const ctx = this.ctx;
    if (!ctx) return;
    if (index === RX) {
      while (this.backlog.length > 0) {
        const next = this.backlog[0]!;
        if (!this.deliver(next.frame, next.offload)) break;
        this.backlog.shift();
      }
      return;
    }
    if (index !== TX) return;
    const q = ctx.queues[TX]!;
    let used = false;
    for (let chain = q.pop(); chain; chain = q.pop()) {
      const total = totalLength(chain.readable);
      const len = total - NET_HDR_SIZE;
      if (len < 14 || len > MAX_FRAME) {
        this.counters.txDropped++;
      } else {
        gather(ctx.memory, chain.readable, 0, this.txHeaderBytes);
        readNetHeader(this.txHeaderBytes, this.txOffload);
        const frame = this.txFrame.subarray(0, len);
        gather(ctx.memory, chain.readable, NET_HDR_SIZE, frame);
        this.transmit(frame, this.txOffload);
        this.counters.txFrames++;
      }
      q.pushUsed(chain.head, 0);
      used = true;
    }
    if (used) ctx.notifyUsed(TX);
  }

  protected override onReset(): void {
    this.backlog.length = 0;
    this.heldChains = [];
    this.heldRoom = 0;
  }

  close(): void {
    this.link.close();
  }
}
