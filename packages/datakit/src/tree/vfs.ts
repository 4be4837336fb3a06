import { VfsError } from './errors.js';

/**
 * The generic node kinds DataKit's file system is built from, after the original's vfs.ml:
 * files (static, read-write key/value, command, status, stream) and directories (static list,
 * read-only, directories-only, fully custom). Each inode has a number minted once, so qids are
 * stable for as long as the inode lives.
 */

export type VPerm = 'normal' | 'exec' | { link: string };

export interface FileStat {
  length: number;
  perm: VPerm;
}

/**
 * How a blocking read or write is given up: `signal` aborts on Tflush or a closed connection.
 * Made on first use (only stream files block): every other request goes without one.
 */
export interface Cancel {
  readonly signal: AbortSignal;
}

/** An open file: the offset checks of each kind live here. */
export interface Fd {
  read(offset: number, count: number, cancel: Cancel): Promise<Uint8Array>;
  write(offset: number, data: Uint8Array, cancel: Cancel): Promise<void>;
  close?(): void;
}

export interface VFile {
  stat(): Promise<FileStat>;
  open(): Promise<Fd>;
  remove(): Promise<void>;
  truncate(length: number): Promise<void>;
  chmod(perm: VPerm): Promise<void>;
}

export interface VDir {
  ls(): Promise<Inode[]>;
  /** Synchronous when the directory has its entries at hand (most of DataKit's tree). */
  lookup(name: string): Inode | Promise<Inode>;
  mkfile(name: string, perm: VPerm): Promise<Inode>;
  mkdir(name: string): Promise<Inode>;
  remove(): Promise<void>;
  rename(inode: Inode, newName: string): Promise<void>;
}

let lastIno = 0n;

export class Inode {
  readonly ino: bigint;
  constructor(
    public basename: string,
    readonly node: { kind: 'file'; file: VFile } | { kind: 'dir'; dir: VDir },
  ) {
    lastIno += 1n;
    this.ino = lastIno;
  }
  static file(name: string, file: VFile): Inode {
    return new Inode(name, { kind: 'file', file });
  }
  static dir(name: string, dir: VDir): Inode {
    return new Inode(name, { kind: 'dir', dir });
  }
}

const encoder = new TextEncoder();
export const empty = new Uint8Array(0);

export function checkOffset(offset: number, length: number): void {
  if (offset < 0) throw VfsError.negativeOffset(offset);
  if (offset > length) throw VfsError.offsetTooLarge(offset, length);
}

/**
 * How far each buffer behind a file value has been filled. Values are immutable views; a write at
 * the end may still fill the spare capacity behind a view in place when nothing was written there
 * after that view's end (so no other view can see the new bytes), which makes a file written in
 * many sequential chunks cost O(n), not O(n²).
 */
const filled = new WeakMap<ArrayBufferLike, number>();

/** `orig` with `data` written at `offset`, zero-padded as needed. */
export function overwrite(orig: Uint8Array, data: Uint8Array, offset: number): Uint8Array {
  if (offset === 0 && data.length >= orig.length) return data.slice();
  const end = offset + data.length;
  if (offset >= orig.length) {
    const origEnd = orig.byteOffset + orig.length;
    const spare = orig.buffer.byteLength - origEnd;
    const padded = end - orig.length;
    if (filled.get(orig.buffer) === origEnd && spare >= padded) {
      const out = new Uint8Array(orig.buffer, orig.byteOffset, end);
      out.fill(0, orig.length, offset);
      out.set(data, offset);
      filled.set(orig.buffer, orig.byteOffset + end);
      return out;
    }
    // Grow with headroom so the next sequential writes land in place.
    const buffer = new ArrayBuffer(Math.max(end, Math.min(end * 2, end + (64 << 20))));
    const out = new Uint8Array(buffer, 0, end);
    out.set(orig);
    out.set(data, offset);
    filled.set(buffer, end);
    return out;
  }
  const out = new Uint8Array(Math.max(orig.length, end));
  out.set(orig);
  out.set(data, offset);
  return out;
}

export function resize(orig: Uint8Array, length: number): Uint8Array {
  if (length < 0) throw VfsError.negativeOffset(length);
  if (length === orig.length) return orig;
  if (length < orig.length) return orig.slice(0, length);
  const out = new Uint8Array(length);
  out.set(orig);
  return out;
}

function slice(data: Uint8Array, offset: number, count: number): Uint8Array {
  checkOffset(offset, data.length);
  return data.subarray(offset, offset + Math.max(0, Math.min(count, data.length - offset)));
}

const readOnlyOps = {
  remove: async () => {
    throw VfsError.readOnlyFile();
  },
  truncate: async () => {
    throw VfsError.readOnlyFile();
  },
  chmod: async () => {
    throw VfsError.readOnlyFile();
  },
};

// ---- change notification ----

/** A value that changes; readers wait for a change (cancellable). */
export class Session<T> {
  private waiters = new Set<() => void>();
  /** Resolves when updates already under way have been published (readers wait for it first). */
  settle: () => Promise<void> = () => Promise.resolve();
  constructor(public value: T) {}

  publish(value: T): void {
    this.value = value;
    const ws = this.waiters;
    this.waiters = new Set();
    for (const w of ws) w();
  }

  /** Resolves at the next publish; rejects when `signal` aborts. */
  next(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(VfsError.interrupted());
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.waiters.delete(wake);
        reject(VfsError.interrupted());
      };
      const wake = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      this.waiters.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

export interface Stream {
  /** `cancel.signal` only where the read blocks: an AbortSignal per request cost more than the rest of a write. */
  read(count: number, cancel: Cancel): Promise<Uint8Array>;
  write(data: Uint8Array, cancel: Cancel): Promise<void>;
}

/**
 * A stream over a session: first the current value, then each new value once it differs from the
 * last one sent. Nothing is sent twice.
 */
export function sessionStream<T>(session: Session<T>, render: (v: T) => string): Stream {
  let last = render(session.value);
  let buffer: Uint8Array = encoder.encode(last);
  return {
    async read(count, cancel) {
      if (buffer.length === 0) await session.settle();
      while (buffer.length === 0) {
        const current = render(session.value);
        if (current !== last) {
          last = current;
          buffer = encoder.encode(current);
        } else await session.next(cancel.signal);
      }
      const n = Math.min(count, buffer.length);
      const out = buffer.subarray(0, n);
      buffer = buffer.subarray(n);
      return out;
    },
    async write() {
      throw VfsError.readOnlyFile();
    },
  };
}

/**
 * An Fd over a stream: offsets must be sequential ("Attempt to seek in stream"), and each chunk is
 * followed by one empty read, which Linux needs to hand buffered data to the application (two
 * empty reads in a row mean end-of-file to it).
 */
export function fdOfStream(stream: Stream, onClose?: () => void): Fd {
  let position = 0;
  let needFlush = false;
  return {
    async read(offset, count, cancel) {
      if (offset !== position) throw VfsError.streamSeek();
      if (needFlush) {
        needFlush = false;
        return empty;
      }
      const data = await stream.read(count, cancel);
      position += data.length;
      needFlush = true;
      return data;
    },
    async write(offset, data, cancel) {
      if (offset !== position) throw VfsError.streamSeek();
      await stream.write(data, cancel);
      position += data.length;
    },
    close: onClose,
  };
}

// ---- file kinds ----

/** A read-only file with fixed contents. */
export function roFile(data: Uint8Array | string, perm: VPerm = 'normal'): VFile {
  const bytes = typeof data === 'string' ? encoder.encode(data) : data;
  return {
    stat: async () => ({ length: bytes.length, perm }),
    open: async () => ({
      read: async (offset, count) => slice(bytes, offset, count),
      write: async () => {
        throw VfsError.readOnlyFile();
      },
    }),
    ...readOnlyOps,
  };
}

/** A stream file: length 0; reads block until the value changes. `open` may set up per-open state. */
export function streamFile(open: () => Promise<{ stream: Stream; close?: () => void }>): VFile {
  return {
    stat: async () => ({ length: 0, perm: 'normal' }),
    open: async () => {
      const { stream, close } = await open();
      return fdOfStream(stream, close);
    },
    ...readOnlyOps,
  };
}

/** Key/value-backed file: reads and writes go to `read`/`write` of the whole value. */
export function kvFile(ops: {
  read: () => Promise<Uint8Array | undefined>;
  write: (data: Uint8Array) => Promise<void>;
  stat?: () => Promise<FileStat>;
  remove?: () => Promise<void>;
  chmod?: (perm: VPerm) => Promise<void>;
}): VFile {
  const stat =
    ops.stat ??
    (async (): Promise<FileStat> => {
      const data = await ops.read();
      if (!data) throw VfsError.noEntry();
      return { length: data.length, perm: 'normal' };
    });
  return {
    stat,
    open: async () => ({
      async read(offset, count) {
        const data = await ops.read();
        if (!data) throw VfsError.noEntry();
        return slice(data, offset, count);
      },
      async write(offset, data) {
        if (offset < 0) throw VfsError.badWriteOffset(offset);
        const old = (await ops.read()) ?? empty;
        await ops.write(overwrite(old, data, offset));
      },
    }),
    async truncate(length) {
      if (length === 0) return ops.write(empty);
      await ops.write(resize((await ops.read()) ?? empty, length));
    },
    remove:
      ops.remove ??
      (async () => {
        throw VfsError.readOnlyFile();
      }),
    chmod:
      ops.chmod ??
      (async () => {
        throw VfsError.readOnlyFile();
      }),
  };
}

/** A file that is read-only with contents computed at each read. */
export function kvroFile(read: () => Promise<Uint8Array | undefined>, stat?: () => Promise<FileStat>): VFile {
  return kvFile({
    read,
    write: async () => {
      throw VfsError.readOnlyFile();
    },
    ...(stat ? { stat } : {}),
  });
}

function normalOnly(perm: VPerm): Promise<void> {
  return perm === 'normal' ? Promise.resolve() : Promise.reject(VfsError.chmodSpecial());
}

/** An in-memory read-write file; returns the file and a getter of its text. */
export function rwString(init: string): { file: VFile; get: () => string; set: (s: string) => void } {
  let data: Uint8Array = encoder.encode(init);
  const file = kvFile({
    read: async () => data,
    write: async (d) => {
      data = d;
    },
    stat: async () => ({ length: data.length, perm: 'normal' }),
    chmod: normalOnly,
  });
  return {
    file,
    get: () => Buffer.from(data).toString('utf8'),
    set: (s) => {
      data = encoder.encode(s);
    },
  };
}

/**
 * A command file: writing runs `handler` on the trimmed text; the result is then readable from
 * the same file (it belongs to the file, not the fid, so `echo cmd > f; cat f` works).
 * Truncating to 0 is accepted (for `echo cmd > f`); anything else is "Can't extend command file".
 */
export function commandFile(handler: (command: string) => Promise<string>, init = ''): VFile {
  let data: Uint8Array = encoder.encode(init);
  return {
    stat: async () => ({ length: data.length, perm: 'normal' }),
    open: async () =>
      fdOfStream({
        async read(count) {
          const n = Math.min(count, data.length);
          const out = data.subarray(0, n);
          data = data.subarray(n);
          return out;
        },
        async write(buf) {
          const result = await handler(Buffer.from(buf).toString('utf8').trim());
          data = encoder.encode(result);
        },
      }),
    remove: async () => {
      throw VfsError.perm();
    },
    truncate: async (length) => {
      if (length !== 0) throw VfsError.extendCommandFile();
    },
    chmod: normalOnly,
  };
}

/** A read-only file whose contents are computed at open (like `head`). */
export function statusFile(compute: () => Promise<string>): VFile {
  return {
    stat: async () => ({ length: encoder.encode(await compute()).length, perm: 'normal' }),
    open: async () => {
      let data: Uint8Array = encoder.encode(await compute());
      return fdOfStream({
        async read(count) {
          const n = Math.min(count, data.length);
          const out = data.subarray(0, n);
          data = data.subarray(n);
          return out;
        },
        async write() {
          throw VfsError.readOnlyFile();
        },
      });
    },
    ...readOnlyOps,
  };
}

// ---- directory kinds ----

const readOnlyDirOps = {
  mkfile: async (): Promise<Inode> => {
    throw VfsError.dirReadOnly();
  },
  mkdir: async (): Promise<Inode> => {
    throw VfsError.dirReadOnly();
  },
  rename: async (): Promise<void> => {
    throw VfsError.dirReadOnly();
  },
  remove: async (): Promise<void> => {
    throw VfsError.dirReadOnly();
  },
};

function named(items: readonly Inode[], name: string): Inode {
  const found = items.find((i) => i.basename === name);
  if (!found) throw VfsError.noEntry();
  return found;
}

/** A read-only directory with entries computed by `items`. */
export function listDir(items: () => Promise<Inode[]> | Inode[]): VDir {
  return {
    ls: async () => items(),
    lookup(name) {
      const list = items();
      return list instanceof Promise ? list.then((l) => named(l, name)) : named(list, name);
    },
    ...readOnlyDirOps,
  };
}

export function staticDir(name: string, items: Inode[]): Inode {
  return Inode.dir(
    name,
    listDir(() => items),
  );
}

/** A read-only directory with custom listing and lookup. */
export function readOnlyDir(ops: {
  ls: () => Promise<Inode[]>;
  lookup: (name: string) => Inode | Promise<Inode>;
}): VDir {
  return { ...readOnlyDirOps, ...ops };
}

/** A directory of directories: mkfile is refused. */
export function dirOnly(ops: Omit<VDir, 'mkfile'>): VDir {
  return {
    ...ops,
    mkfile: async () => {
      throw VfsError.dirOnly();
    },
  };
}

export const emptyDirNode = (): VDir => listDir(() => []);
