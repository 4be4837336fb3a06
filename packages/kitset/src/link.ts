import type { Link, LinkOffloads, TxOffload } from '@kitset/vpnkit';

/** Frames and bytes one end may have queued for the other before the pipe drops (as a full NIC ring would). */
const MAX_QUEUED_FRAMES = 4096;
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

/** A queued frame: its bytes (copied), and how its checksum stands. */
interface QueuedFrame {
  frame: Uint8Array;
  /** VPNKit's request to finish the checksum (and segment), for frames VPNKit sent. */
  offload: TxOffload | null;
  /** The sender vouches for the TCP/UDP checksum (it may be left partial). */
  checksumValid: boolean;
}

/**
 * One end of an in-process Ethernet pipe. It is a VPNKit `Link` — the same framed-Ethernet interface a
 * Unix socket carries — so VPNKit cannot tell a VM in this process from one on a socket. Checksums and
 * segmentation are offloaded across it both ways, as a TAP device with vnet headers would: VPNKit's end
 * says (`offloads`) that it may send TCP frames with partial checksums and up to 64 KiB of payload, which
 * the VM's end hands to virtio-net with their offload; the VM's end sends with `checksumValid` what the
 * guest's kernel vouches for (partial checksums, TSO frames), which VPNKit then does not verify.
 */
export class PipeEnd implements Link {
  onFrame: (frame: Uint8Array, checksumValid?: boolean) => void = () => {};
  /** Receives frames with VPNKit's offload request (set on the VM's end; default: `onFrame`). */
  onOffloadFrame: ((frame: Uint8Array, offload: TxOffload | null) => void) | null = null;
  onClose: (error?: Error) => void = () => {};
  offloads?: LinkOffloads;
  peer!: PipeEnd;
  /** Frames sent by this end, copied (send's view is only valid during the call), delivered in a microtask. */
  private queue: QueuedFrame[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  private closed = false;
  dropped = 0;

  constructor(readonly description: string) {}

  send(frame: Uint8Array, offload?: TxOffload | null, tail?: Uint8Array): void {
    this.sendFrame(frame, offload ?? null, false, tail);
  }

  /** Sends a frame whose TCP/UDP checksum the sender vouches for (it may be partial). */
  sendChecksumValid(frame: Uint8Array): void {
    this.sendFrame(frame, null, true);
  }

  private sendFrame(
    frame: Uint8Array,
    offload: TxOffload | null,
    checksumValid: boolean,
    tail?: Uint8Array,
  ): void {
    if (this.closed) return;
    const length = frame.length + (tail?.length ?? 0);
    if (this.queue.length >= MAX_QUEUED_FRAMES || this.queuedBytes + length > MAX_QUEUED_BYTES) {
      this.dropped++;
      return;
    }
    let copy: Uint8Array;
    if (tail) {
      copy = new Uint8Array(length);
      copy.set(frame, 0);
      copy.set(tail, frame.length);
    } else copy = frame.slice();
    this.queue.push({ frame: copy, offload: offload ? { ...offload } : null, checksumValid });
    this.queuedBytes += length;
    if (!this.scheduled) {
      this.scheduled = true;
      // Delivering later, not inside send, keeps each side's frame handlers from re-entering the other's.
      queueMicrotask(this.drain);
    }
  }

  private readonly drain = (): void => {
    this.scheduled = false;
    const frames = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    const peer = this.peer;
    for (const q of frames) {
      if (peer.closed) return;
      if (peer.onOffloadFrame) peer.onOffloadFrame(q.frame, q.offload);
      else peer.onFrame(q.frame, q.checksumValid || q.offload !== null);
    }
  };

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.queuedBytes = 0;
    this.onClose();
    this.peer.close();
  }
}

/** Two connected ends: what one sends, the other's `onFrame` receives. */
export function framePipe(a: string, b: string): [PipeEnd, PipeEnd] {
  const left = new PipeEnd(a);
  const right = new PipeEnd(b);
  left.peer = right;
  right.peer = left;
  return [left, right];
}
