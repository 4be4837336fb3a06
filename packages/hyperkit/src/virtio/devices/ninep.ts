import { type FsBackend, HostFsBackend, ServerConnection, type ServerOptions } from '@kitset/ninep';
import type { DescriptorChain } from '../queue.js';
import { DeviceBase, DeviceId, gather, scatter, totalLength } from './common.js';

const VIRTIO_9P_MOUNT_TAG = 0;
const QUEUE_SIZE = 128;
const TFLUSH = 108;
/** Largest request we copy out of the guest; Linux's msize defaults far below this. */
const MAX_REQUEST = 1024 * 1024 + 4096;

export interface Virtio9pOptions {
  /** The mount tag the guest names: `mount -t 9p -o trans=virtio TAG /mnt`. */
  tag: string;
  server?: ServerOptions;
}

/**
 * virtio-9p: each request chain carries one T-message (device-readable) and room for its R-message
 * (device-writable). Messages go through @kitset/ninep's sans-I/O ServerConnection over any FsBackend:
 * a host directory (HostFsBackend, confined to its root) or DataKit's tree.
 */
export class Virtio9p extends DeviceBase {
  readonly deviceId = DeviceId.NINEP;
  readonly features = 1n << BigInt(VIRTIO_9P_MOUNT_TAG);
  readonly queueMaxSizes = [QUEUE_SIZE];
  private readonly config: Uint8Array;
  private conn: ServerConnection | undefined;
  /** Chains waiting for their reply, by 9P tag. */
  private readonly pending = new Map<number, DescriptorChain>();
  /** Tflush tag → the tag it flushes: on Rflush the flushed request's chain is returned empty. */
  private readonly flushes = new Map<number, number>();
  private readonly headerBytes = new Uint8Array(7);

  constructor(
    readonly backend: FsBackend,
    private readonly options: Virtio9pOptions,
  ) {
    super();
    const tag = new TextEncoder().encode(options.tag);
    if (tag.length === 0 || tag.length > 255)
      throw new RangeError('virtio-9p mount tag must be 1..255 bytes');
    this.config = new Uint8Array(2 + tag.length);
    new DataView(this.config.buffer).setUint16(0, tag.length, true);
    this.config.set(tag, 2);
  }

  /** Shares a host directory; nothing outside `dir` is reachable. */
  static hostDirectory(dir: string, tag: string, readOnly = false): Virtio9p {
    return new Virtio9p(new HostFsBackend(dir, { readOnly }), { tag });
  }

  override readConfig(offset: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (this.config[offset + i] ?? 0);
    return v >>> 0;
  }

  protected override onActivate(): void {
    this.openConnection();
  }

  private openConnection(): void {
    this.conn?.close();
    this.pending.clear();
    this.flushes.clear();
    const conn = new ServerConnection(this.backend, {
      logger: (m) => this.log(`virtio-9p: ${m}`),
      ...this.options.server,
    });
    conn.onSend = (parts, release) => this.fromHost(() => this.reply(conn, parts, release));
    this.conn = conn;
  }

  protected override onReset(): void {
    this.conn?.close();
    this.conn = undefined;
    this.pending.clear();
    this.flushes.clear();
  }

  queueNotify(index: number): void {
    const ctx = this.ctx;
    const conn = this.conn;
    if (!ctx || !conn || index !== 0) return;
    const q = ctx.queues[0]!;
    for (let chain = q.pop(); chain; chain = q.pop()) {
      const len = totalLength(chain.readable);
      if (len < 7 || len > MAX_REQUEST) {
        this.fail(`9P request of ${len} bytes`);
        return;
      }
      // One request per chain: its size field must fit the chain, or the stream would lose its framing.
      gather(ctx.memory, chain.readable, 0, this.headerBytes);
      const h = this.headerBytes;
      const size = (h[0]! | (h[1]! << 8) | (h[2]! << 16) | (h[3]! << 24)) >>> 0;
      if (size < 7 || size > len) {
        this.fail(`9P message size ${size} does not match its ${len}-byte buffer`);
        return;
      }
      const tag = h[5]! | (h[6]! << 8);
      if (h[4] === TFLUSH && size >= 9) {
        const old = new Uint8Array(2);
        gather(ctx.memory, chain.readable, 7, old);
        this.flushes.set(tag, old[0]! | (old[1]! << 8));
      }
      if (this.pending.has(tag)) {
        this.fail(`9P tag ${tag} reused while in flight`);
        return;
      }
      this.pending.set(tag, chain);
      // The connection keeps views of the request (Twrite data), so it gets its own copy.
      const bytes = new Uint8Array(size);
      gather(ctx.memory, chain.readable, 0, bytes);
      conn.receive(bytes);
      if (conn.closed) {
        this.fail('9P connection closed on a malformed request');
        return;
      }
    }
  }

  private reply(conn: ServerConnection, parts: Uint8Array[], release: (() => void) | undefined): void {
    try {
      const ctx = this.ctx;
      if (!ctx || conn !== this.conn) return;
      const first = parts[0];
      let tag: number;
      if (first && first.length >= 7) tag = first[5]! | (first[6]! << 8);
      else {
        const header = new Uint8Array(7);
        let off = 0;
        for (const p of parts) {
          const n = Math.min(p.length, 7 - off);
          header.set(p.subarray(0, n), off);
          off += n;
          if (off === 7) break;
        }
        tag = header[5]! | (header[6]! << 8);
      }
      const chain = this.pending.get(tag);
      if (!chain) return; // e.g. the reply to a request whose chain was reset away
      this.pending.delete(tag);
      let size = 0;
      for (const p of parts) size += p.length;
      if (size > totalLength(chain.writable)) {
        this.fail(`9P reply of ${size} bytes does not fit the ${totalLength(chain.writable)} bytes offered`);
        return;
      }
      let written = 0;
      for (const p of parts) written += scatter(ctx.memory, chain.writable, written, p);
      const q = ctx.queues[0]!;
      q.pushUsed(chain.head, written);
      const flushed = this.flushes.get(tag);
      if (flushed !== undefined) {
        this.flushes.delete(tag);
        // The flushed request gets no reply of its own; as QEMU does, give its buffers back with
        // nothing written (Linux ignores zero-length completions), or they would leak from the ring.
        const old = this.pending.get(flushed);
        if (old) {
          this.pending.delete(flushed);
          q.pushUsed(old.head, 0);
        }
      }
      ctx.notifyUsed(0);
    } finally {
      release?.();
    }
  }

  /** Closes the 9P connection (open files, fids) after the VM stopped. */
  close(): void {
    this.onReset();
  }

  /** Requests waiting for the backend. */
  get inFlight(): number {
    return this.pending.size;
  }
}
