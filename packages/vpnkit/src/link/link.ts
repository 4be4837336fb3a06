/**
 * A link carries Ethernet frames to and from one peer (a VM, a TAP device, a test). The stack never
 * knows which: everything from vmnet sockets to fault injectors implements this.
 */
export interface Link {
  /**
   * Queues a frame for the peer. The view is only valid during the call: implementations copy it.
   * `offload` (and `tail`: the rest of the frame, kept apart to spare a copy) only ever come when
   * `offloads` says the link takes them.
   */
  send(frame: Uint8Array, offload?: TxOffload | null, tail?: Uint8Array): void;
  /**
   * Set by the consumer; called once per received frame with a view valid only during the call.
   * `checksumValid` means the peer's kernel vouches for the TCP/UDP checksum (it may be left partial).
   */
  onFrame: (frame: Uint8Array, checksumValid?: boolean) => void;
  /** What the link can do for the stack (absent: nothing). */
  readonly offloads?: LinkOffloads;
  /** Set by the consumer; called once when the link goes away (error undefined on a clean close). */
  onClose: (error?: Error) => void;
  close(): void;
  /** A human-readable name for logs. */
  readonly description: string;
}

/** Checksum and segmentation the peer's kernel does for us (virtio-net header semantics). */
export interface LinkOffloads {
  /** The peer computes TCP checksums of frames we send (we write only the pseudo-header sum). */
  checksum: boolean;
  /** Largest TCP payload we may send in one frame, to be segmented by the peer (0 = no TSO). */
  tsoMaxPayload: number;
}

/** Per-frame offload request for a TCP frame. */
export interface TxOffload {
  /** Segment size for TSO, or 0 when the frame is not to be segmented. */
  gsoSize: number;
  /** Ethernet + IP + TCP header bytes. */
  headerLength: number;
  checksumStart: number;
  checksumOffset: number;
}

/** Shared no-op defaults for link callbacks. */
export const noFrame = (_frame: Uint8Array, _checksumValid?: boolean): void => {};
export const noClose = (_error?: Error): void => {};
