import { type TapAddon, TapError, loadTapAddon as loadNativeAddon, tapAddonPath } from '@kitset/tap';
import { VpnkitError } from '../errors.js';
import { type Link, type LinkOffloads, type TxOffload, noClose, noFrame } from './link.js';

export type { TapAddon };
export { tapAddonPath };

/** @kitset/tap's addon; a missing build becomes VpnkitError ERR_VPNKIT_TAP (the message says how to build it). */
export function loadTapAddon(): TapAddon {
  try {
    return loadNativeAddon();
  } catch (err) {
    if (err instanceof TapError) throw new VpnkitError('ERR_VPNKIT_TAP', err.message, { cause: err });
    throw err;
  }
}

const READ_BATCH = 64;
const VNET_HDR_LEN = 10;
const VNET_F_NEEDS_CSUM = 1;
const VNET_F_DATA_VALID = 2;
const VNET_GSO_TCPV4 = 1;
/** The largest TCP payload we put in one TSO frame (IPv4 total length must fit 16 bits). */
const TSO_MAX_PAYLOAD = 65535 - 20 - 60;

/** A Linux TAP device. Reads many frames per wakeup into one reused buffer; writes each frame directly. */
export class TapLink implements Link {
  onFrame = noFrame;
  onClose = noClose;
  readonly description: string;
  private readonly addon: TapAddon;
  private readonly maxFrame: number;
  private readonly rx: Uint8Array;
  private readonly lengths = new Uint32Array(READ_BATCH);
  private watcher: unknown = null;
  private closed = false;
  private readonly vnetHeader = new Uint8Array(VNET_HDR_LEN);
  readonly offloads?: LinkOffloads;
  framesDropped = 0;

  private constructor(
    private readonly fd: number,
    readonly name: string,
    mtu: number,
    private readonly vnetHdr: boolean,
  ) {
    this.addon = loadTapAddon();
    this.description = `tap ${name}`;
    this.maxFrame = vnetHdr ? 65535 + 14 + VNET_HDR_LEN + 4 : mtu + 14 + 4;
    if (vnetHdr) this.offloads = { checksum: true, tsoMaxPayload: TSO_MAX_PAYLOAD };
    this.rx = new Uint8Array(Math.max(READ_BATCH * this.maxFrame, 1 << 20));
    this.watcher = this.addon.watch(fd, () => this.readable());
  }

  /** Creates (or attaches to) TAP device `name`, inside the network namespace at `netnsPath` if given. */
  static open(
    name: string,
    options: { netnsPath?: string; mtu?: number; vnetHdr?: boolean; device?: string } = {},
  ): TapLink {
    const a = loadTapAddon();
    const vnetHdr = options.vnetHdr ?? false;
    const { fd, name: actual } = a.open(name, options.netnsPath ?? '', vnetHdr, options.device ?? '');
    return new TapLink(fd, actual, options.mtu ?? 1500, vnetHdr);
  }

  /**
   * Serves a TAP fd opened elsewhere (e.g. handed over by a process inside a user namespace). `vnetHdr`
   * must match how it was opened. The link owns the fd from now on.
   */
  static fromFd(fd: number, name: string, options: { mtu?: number; vnetHdr?: boolean } = {}): TapLink {
    return new TapLink(fd, name, options.mtu ?? 1500, options.vnetHdr ?? false);
  }

  private readable(): void {
    // Bounded rounds per wakeup so one busy guest cannot starve the event loop.
    for (let round = 0; round < 8 && !this.closed; round++) {
      let count: number;
      try {
        count = this.addon.readFrames(this.fd, this.rx, this.lengths, this.maxFrame);
      } catch (err) {
        this.finish(err as Error);
        return;
      }
      let offset = 0;
      const rx = this.rx;
      for (let i = 0; i < count; i++) {
        const length = this.lengths[i]!;
        if (this.vnetHdr) {
          if (length > VNET_HDR_LEN)
            this.onFrame(
              rx.subarray(offset + VNET_HDR_LEN, offset + length),
              (rx[offset]! & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) !== 0,
            );
        } else this.onFrame(rx.subarray(offset, offset + length), false);
        offset += length;
      }
      if (count < READ_BATCH) return;
    }
  }

  send(frame: Uint8Array, offload?: TxOffload | null, tail?: Uint8Array): void {
    if (this.closed) return;
    try {
      let ok: boolean;
      if (this.vnetHdr) {
        const h = this.vnetHeader;
        if (offload) {
          const payload = frame.length + (tail?.length ?? 0) - offload.headerLength;
          const gso = offload.gsoSize > 0 && payload > offload.gsoSize;
          h[0] = VNET_F_NEEDS_CSUM;
          h[1] = gso ? VNET_GSO_TCPV4 : 0;
          h[2] = offload.headerLength & 0xff;
          h[3] = offload.headerLength >>> 8;
          h[4] = gso ? offload.gsoSize & 0xff : 0;
          h[5] = gso ? offload.gsoSize >>> 8 : 0;
          h[6] = offload.checksumStart & 0xff;
          h[7] = offload.checksumStart >>> 8;
          h[8] = offload.checksumOffset & 0xff;
          h[9] = offload.checksumOffset >>> 8;
        } else h.fill(0);
        ok = tail
          ? this.addon.writeFrameV(this.fd, h, frame, frame.length, tail)
          : this.addon.writeFrameV(this.fd, h, frame, frame.length);
      } else ok = this.addon.writeFrame(this.fd, frame, frame.length);
      if (!ok) this.framesDropped++;
    } catch (err) {
      this.finish(err as Error);
    }
  }

  private finish(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    if (this.watcher) this.addon.unwatch(this.watcher);
    this.watcher = null;
    this.addon.close(this.fd);
    this.onClose(error);
  }

  close(): void {
    this.finish();
  }
}
