import type { LinkOffloadSupport, NetOffload } from './offload.js';

/**
 * A framed-Ethernet link: what virtio-net talks to. VPNKit in the same process, VPNKit over a Unix
 * socket (hyperkit's vpnkit protocol) and test peers all look like this, so in-process and
 * out-of-process wiring are one code path.
 */
export interface EthernetLink {
  /**
   * Sends one frame. The view is valid only during the call: implementations copy what they keep.
   * `offload` (partial checksum, TSO) comes only as far as `offloads` says the link takes it.
   */
  send(frame: Uint8Array, offload?: NetOffload | null): void;
  /**
   * Registers the receiver of frames (views valid only during the call). A frame may come with an
   * offload: a partial checksum and TSO (virtio-net header semantics), or DATA_VALID when the link
   * vouches for its checksums.
   */
  onFrame(cb: (frame: Uint8Array, offload?: NetOffload | null) => void): void;
  /** What `send` takes beyond plain frames of at most MTU bytes with full checksums (absent: nothing). */
  readonly offloads?: LinkOffloadSupport;
  close(): void;
}

/** Two in-process links joined back to back (for wiring a stack to a VM in one process, and tests). */
export function linkPair(): [EthernetLink, EthernetLink] {
  let toA: ((f: Uint8Array) => void) | undefined;
  let toB: ((f: Uint8Array) => void) | undefined;
  let closed = false;
  const a: EthernetLink = {
    send: (f) => {
      if (!closed) toB?.(f.slice());
    },
    onFrame: (cb) => {
      toA = cb;
    },
    close: () => {
      closed = true;
    },
  };
  const b: EthernetLink = {
    send: (f) => {
      if (!closed) toA?.(f.slice());
    },
    onFrame: (cb) => {
      toB = cb;
    },
    close: () => {
      closed = true;
    },
  };
  return [a, b];
}
