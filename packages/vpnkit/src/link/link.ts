/**
 * A link carries Ethernet frames to and from one peer (a VM, a TAP device, a test). The stack never
 * knows which: everything from vmnet sockets to fault injectors implements this.
 */
export interface Link {
  /** Queues a frame for the peer. The view is only valid during the call: implementations copy it. */
  send(frame: Uint8Array): void;
  /** Set by the consumer; called once per received frame with a view valid only during the call. */
  onFrame: (frame: Uint8Array) => void;
  /** Set by the consumer; called once when the link goes away (error undefined on a clean close). */
  onClose: (error?: Error) => void;
  close(): void;
  /** A human-readable name for logs. */
  readonly description: string;
}

/** Shared no-op defaults for link callbacks. */
export const noFrame = (_frame: Uint8Array): void => {};
export const noClose = (_error?: Error): void => {};
