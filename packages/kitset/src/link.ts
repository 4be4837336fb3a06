import type { Link } from '@kitset/vpnkit';

/** Frames and bytes one end may have queued for the other before the pipe drops (as a full NIC ring would). */
const MAX_QUEUED_FRAMES = 4096;
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

/**
 * One end of an in-process Ethernet pipe. It is a VPNKit `Link` — the same framed-Ethernet interface a
 * Unix socket carries — so VPNKit cannot tell a VM in this process from one on a socket.
 */
export class PipeEnd implements Link {
  onFrame: (frame: Uint8Array, checksumValid?: boolean) => void = () => {};
  onClose: (error?: Error) => void = () => {};
  peer!: PipeEnd;
  /** Frames sent by this end, copied (send's view is only valid during the call), delivered in a microtask. */
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  private closed = false;
  dropped = 0;

  constructor(readonly description: string) {}

  send(frame: Uint8Array): void {
    if (this.closed) return;
    if (this.queue.length >= MAX_QUEUED_FRAMES || this.queuedBytes + frame.length > MAX_QUEUED_BYTES) {
      this.dropped++;
      return;
    }
    this.queue.push(frame.slice());
    this.queuedBytes += frame.length;
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
    for (const frame of frames) {
      if (this.peer.closed) return;
      this.peer.onFrame(frame);
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
