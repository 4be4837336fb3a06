import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * The native addon (native/tap.c): TAP devices, fd passing and ICMP sockets, the system calls Node lacks.
 * Fds are plain integers owned by the caller until passed to `close`.
 */
export interface TapAddon {
  /**
   * Creates (or attaches to) TAP device `name` (nonblocking, close-on-exec), inside the network namespace
   * at `netnsPath` when not empty; `vnetHdr` prefixes every frame with a 10-byte virtio-net header.
   */
  open(name: string, netnsPath?: string, vnetHdr?: boolean, device?: string): { fd: number; name: string };
  /** Reads up to `lengths.length` frames back to back into `buf`; returns how many (0 when none is ready). */
  readFrames(fd: number, buf: Uint8Array, lengths: Uint32Array, maxFrame: number): number;
  /** Writes one frame; false when the device queue is full (the frame is dropped). */
  writeFrame(fd: number, buf: Uint8Array, length: number): boolean;
  /** Writes header + frame[0, length) + tail as one frame (writev). */
  writeFrameV(fd: number, header: Uint8Array, frame: Uint8Array, length: number, tail?: Uint8Array): boolean;
  /** Calls `callback` from the event loop whenever `fd` is readable; returns a handle for `unwatch`. */
  watch(fd: number, callback: (status: number) => void): unknown;
  unwatch(handle: unknown): void;
  close(fd: number): void;
  icmpOpen(): { fd: number; raw: boolean };
  icmpSend(fd: number, address: number, message: Uint8Array): boolean;
  icmpRecv(fd: number, buf: Uint8Array, from: Uint32Array): number;
  /** An AF_UNIX stream socket pair (close-on-exec), for handing a TAP fd from one process to another. */
  socketPair(): [number, number];
  /** Sends `fd` over `socket` as SCM_RIGHTS; false when the socket is full. */
  sendFd(socket: number, fd: number): boolean;
  /** Nonblocking: the fd received, -1 when nothing has arrived yet, -2 when the peer closed without one. */
  recvFd(socket: number): number;
}

/**
 * ERR_TAP_NOT_BUILT: `TapError` from `loadTapAddon`. The addon's own calls throw `Error`s with code ERR_TAP,
 * an `errno` number when a system call failed, and a message naming the call (e.g. "setns ...: Operation not
 * permitted").
 */
export type TapErrorCode = 'ERR_TAP_NOT_BUILT';

/** Errors with a stable `code`; messages say what to do about them. */
export class TapError extends Error {
  constructor(
    readonly code: TapErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TapError';
  }
}

let addon: TapAddon | null = null;

/** Where scripts/prepare.d/20-tap-addon.sh puts the addon, relative to this file (src/ or dist/src/). */
export function tapAddonPath(): string {
  const candidates = [
    new URL('../../native/build/Release/kitset_tap.node', import.meta.url).pathname,
    new URL('../native/build/Release/kitset_tap.node', import.meta.url).pathname,
  ];
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

/** Loads the addon once; throws `TapError` ERR_TAP_NOT_BUILT with the command that builds it. */
export function loadTapAddon(): TapAddon {
  if (addon) return addon;
  const path = tapAddonPath();
  if (!existsSync(path))
    throw new TapError(
      'ERR_TAP_NOT_BUILT',
      `the TAP addon is not built (${path}); run: bash scripts/prepare.d/20-tap-addon.sh`,
    );
  addon = createRequire(import.meta.url)(path) as TapAddon;
  return addon;
}
