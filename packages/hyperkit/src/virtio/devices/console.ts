import { DeviceBase, DeviceId, gather, scatter, totalLength } from './common.js';

const RX = 0;
const TX = 1;
/** Bytes of host input held while the guest offers no receive buffers, before input is dropped. */
const MAX_PENDING_INPUT = 1024 * 1024;

/**
 * virtio-console with one port (no MULTIPORT): the guest's /dev/hvc0. Guest output goes to `onOutput`;
 * `input()` queues bytes for the guest, delivered as it offers receive buffers.
 */
export class VirtioConsole extends DeviceBase {
  readonly deviceId = DeviceId.CONSOLE;
  readonly features = 0n;
  readonly queueMaxSizes = [64, 64];
  onOutput: (bytes: Uint8Array) => void = () => {};
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  /** Bytes of input dropped because the guest did not read them. */
  droppedInput = 0;
  /** Detaches the host side (stdio, a socket) when the VM is gone. */
  private detach: (() => void) | undefined;

  constructor(
    private readonly cols = 80,
    private readonly rows = 25,
  ) {
    super();
  }

  override readConfig(offset: number, size: number): number {
    // cols (u16), rows (u16), max_nr_ports (u32), emerg_wr (u32)
    const config = new Uint8Array(12);
    const view = new DataView(config.buffer);
    view.setUint16(0, this.cols, true);
    view.setUint16(2, this.rows, true);
    view.setUint32(4, 1, true);
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (config[offset + i] ?? 0);
    return v >>> 0;
  }

  override writeConfig(offset: number, _size: number, value: number): void {
    if (offset === 8) this.onOutput(Uint8Array.of(value & 0xff)); // emergency write
  }

  /** Bytes for the guest to read from /dev/hvc0. */
  input(bytes: Uint8Array): void {
    if (this.pendingBytes + bytes.length > MAX_PENDING_INPUT) {
      this.droppedInput += bytes.length;
      return;
    }
    this.pending.push(bytes.slice());
    this.pendingBytes += bytes.length;
    this.fromHost(() => this.deliver());
  }

  private deliver(): void {
    const ctx = this.ctx;
    if (!ctx) return;
    const q = ctx.queues[RX]!;
    let used = false;
    while (this.pending.length > 0 && q.hasAvailable()) {
      const chain = q.pop();
      if (!chain) break;
      let written = 0;
      const room = totalLength(chain.writable);
      while (this.pending.length > 0 && written < room) {
        const head = this.pending[0]!;
        const n = scatter(ctx.memory, chain.writable, written, head.subarray(0, room - written));
        written += n;
        this.pendingBytes -= n;
        if (n === head.length) this.pending.shift();
        else this.pending[0] = head.subarray(n);
      }
      q.pushUsed(chain.head, written);
      used = true;
    }
    if (used) ctx.notifyUsed(RX);
  }

  queueNotify(index: number): void {
    const ctx = this.ctx;
    if (!ctx) return;
    if (index === RX) {
      this.deliver();
      return;
    }
    if (index !== TX) return;
    const q = ctx.queues[TX]!;
    let used = false;
    for (let chain = q.pop(); chain; chain = q.pop()) {
      const out = new Uint8Array(totalLength(chain.readable));
      gather(ctx.memory, chain.readable, 0, out);
      if (out.length > 0) this.onOutput(out);
      q.pushUsed(chain.head, 0);
      used = true;
    }
    if (used) ctx.notifyUsed(TX);
  }

  protected override onReset(): void {
    // Input not yet delivered stays queued for the next driver.
  }

  /** Remembers how to detach the host side that `close()` undoes. */
  setDetach(detach: () => void): void {
    this.detach = detach;
  }

  close(): void {
    this.detach?.();
    this.detach = undefined;
  }
}
