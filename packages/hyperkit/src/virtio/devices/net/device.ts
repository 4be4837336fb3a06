import { DeviceBase, DeviceId, gather, scatter, totalLength } from '../common.js';
import type { EthernetLink } from './link.js';

const RX = 0;
const TX = 1;
const QUEUE_SIZE = 256;
const F_MTU = 3;
const F_MAC = 5;
const F_STATUS = 16;
const STATUS_LINK_UP = 1;
/** virtio_net_hdr_v1 (num_buffers included, as VERSION_1 requires). */
const NET_HDR_SIZE = 12;
/** Frames held while the guest has posted no receive buffers, before dropping. */
const MAX_RX_BACKLOG = 256;
const MAX_FRAME = 65535;

export interface VirtioNetOptions {
  /** The guest's MAC (6 bytes); from VPNKit's reply when attached over its socket. */
  mac: Uint8Array;
  mtu?: number;
}

/** Parses "02:00:00:00:00:01". */
export function parseMac(text: string): Uint8Array {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new RangeError(`bad MAC address "${text}"`);
  }
  return Uint8Array.from(parts.map((p) => Number.parseInt(p, 16)));
}

/**
 * virtio-net over an EthernetLink: each transmitted chain (header + frame) becomes one `send`, each
 * received frame fills one receive chain. No offloads are offered, so frames are plain Ethernet.
 */
export class VirtioNet extends DeviceBase {
  readonly deviceId = DeviceId.NET;
  readonly features = (1n << BigInt(F_MAC)) | (1n << BigInt(F_MTU)) | (1n << BigInt(F_STATUS));
  readonly queueMaxSizes = [QUEUE_SIZE, QUEUE_SIZE];
  private readonly config = new Uint8Array(12);
  private readonly backlog: Uint8Array[] = [];
  private readonly txFrame = new Uint8Array(MAX_FRAME);
  private readonly rxHeader = new Uint8Array(NET_HDR_SIZE);
  readonly counters = { txFrames: 0, rxFrames: 0, rxDropped: 0, txDropped: 0 };

  constructor(
    readonly link: EthernetLink,
    options: VirtioNetOptions,
  ) {
    super();
    if (options.mac.length !== 6) throw new RangeError('MAC must be 6 bytes');
    const mtu = options.mtu ?? 1500;
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535 - 14) throw new RangeError(`bad MTU ${mtu}`);
    this.config.set(options.mac, 0);
    const v = new DataView(this.config.buffer);
    v.setUint16(6, STATUS_LINK_UP, true);
    v.setUint16(8, 1, true); // max_virtqueue_pairs
    v.setUint16(10, mtu, true);
    // numbers of the rx header stay zero except num_buffers
    new DataView(this.rxHeader.buffer).setUint16(10, 1, true);
    link.onFrame((frame) => this.fromHost(() => this.receive(frame)));
  }

  override readConfig(offset: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (this.config[offset + i] ?? 0);
    return v >>> 0;
  }

  private receive(frame: Uint8Array): void {
    if (frame.length > MAX_FRAME) return;
    if (this.backlog.length > 0 || !this.deliver(frame)) {
      if (this.backlog.length >= MAX_RX_BACKLOG) {
        this.counters.rxDropped++;
        return;
      }
      this.backlog.push(frame.slice());
    }
  }

  /** Puts one frame into the next receive chain; false when the guest posted none. */
  private deliver(frame: Uint8Array): boolean {
    const ctx = this.ctx;
    if (!ctx) return false;
    const q = ctx.queues[RX]!;
    const chain = q.pop();
    if (!chain) return false;
    const room = totalLength(chain.writable);
    if (room < NET_HDR_SIZE + frame.length) {
      // The guest's buffers are too small for this frame (larger than the MTU we announced): drop it.
      this.counters.rxDropped++;
      q.pushUsed(chain.head, 0);
    } else {
      scatter(ctx.memory, chain.writable, 0, this.rxHeader);
      scatter(ctx.memory, chain.writable, NET_HDR_SIZE, frame);
      q.pushUsed(chain.head, NET_HDR_SIZE + frame.length);
      this.counters.rxFrames++;
    }
    ctx.notifyUsed(RX);
    return true;
  }

  queueNotify(index: number): void {
    const ctx = this.ctx;
    if (!ctx) return;
    if (index === RX) {
      while (this.backlog.length > 0 && this.deliver(this.backlog[0]!)) this.backlog.shift();
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
        gather(ctx.memory, chain.readable, NET_HDR_SIZE, this.txFrame.subarray(0, len));
        this.link.send(this.txFrame.subarray(0, len));
        this.counters.txFrames++;
      }
      q.pushUsed(chain.head, 0);
      used = true;
    }
    if (used) ctx.notifyUsed(TX);
  }

  protected override onReset(): void {
    this.backlog.length = 0;
  }

  close(): void {
    this.link.close();
  }
}
