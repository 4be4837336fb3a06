import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { VpnkitError } from '../errors.js';
import { type Link, noClose, noFrame } from './link.js';

interface TapAddon {
  open(name: string, netnsPath?: string): { fd: number; name: string };
  readFrames(fd: number, buf: Uint8Array, lengths: Uint32Array, maxFrame: number): number;
  writeFrame(fd: number, buf: Uint8Array, length: number): boolean;
  watch(fd: number, callback: (status: number) => void): unknown;
  unwatch(handle: unknown): void;
  close(fd: number): void;
}

let addon: TapAddon | null = null;

/** Where prepare.d/20-vpnkit-addon.sh puts the addon, relative to this file (src/ or dist/src/). */
export function tapAddonPath(): string {
  const candidates = [
    new URL('../../../native/build/Release/vpnkit_tap.node', import.meta.url).pathname,
    new URL('../../native/build/Release/vpnkit_tap.node', import.meta.url).pathname,
  ];
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

export function loadTapAddon(): TapAddon {
  if (addon) return addon;
  const path = tapAddonPath();
  if (!existsSync(path))
    throw new VpnkitError(
      'ERR_VPNKIT_TAP',
      `the TAP addon is not built (${path}); run: bash scripts/prepare.d/20-vpnkit-addon.sh`,
    );
  addon = createRequire(import.meta.url)(path) as TapAddon;
  return addon;
}

const READ_BATCH = 64;

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
  framesDropped = 0;

  private constructor(
    private readonly fd: number,
    readonly name: string,
    mtu: number,
  ) {
    this.addon = loadTapAddon();
    this.description = `tap ${name}`;
    this.maxFrame = mtu + 14 + 4;
    this.rx = new Uint8Array(Math.max(READ_BATCH * this.maxFrame, 1 << 20));
    this.watcher = this.addon.watch(fd, () => this.readable());
  }

  /** Creates (or attaches to) TAP device `name`, inside the network namespace at `netnsPath` if given. */
  static open(name: string, options: { netnsPath?: string; mtu?: number } = {}): TapLink {
    const a = loadTapAddon();
    const { fd, name: actual } = options.netnsPath ? a.open(name, options.netnsPath) : a.open(name);
    return new TapLink(fd, actual, options.mtu ?? 1500);
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
      for (let i = 0; i < count; i++) {
        const length = this.lengths[i]!;
        this.onFrame(this.rx.subarray(offset, offset + length));
        offset += length;
      }
      if (count < READ_BATCH) return;
    }
  }

  send(frame: Uint8Array): void {
    if (this.closed) return;
    try {
      if (!this.addon.writeFrame(this.fd, frame, frame.length)) this.framesDropped++;
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
