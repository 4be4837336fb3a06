import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { HyperkitError } from '../../../errors.js';

/** A disk image as the block device sees it: byte-addressed, synchronous (the VM runs on one thread). */
export interface DiskImage {
  readonly size: number;
  readonly readOnly: boolean;
  read(offset: number, into: Uint8Array): void;
  write(offset: number, data: Uint8Array): void;
  flush(): void;
  /** Drops the contents of [offset, offset+length); later reads return zeros. */
  discard(offset: number, length: number): void;
  writeZeroes(offset: number, length: number, mayUnmap: boolean): void;
  close(): void;
}

export class DiskError extends HyperkitError {
  constructor(message: string) {
    super('ERR_BAD_ARGUMENT', message);
    this.name = 'DiskError';
  }
}

const ZERO_CHUNK = new Uint8Array(64 * 1024);

/** Reads exactly `into.length` bytes at `position`, zero-filling past end of file. */
export function preadFull(fd: number, into: Uint8Array, position: number): void {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) {
      into.fill(0, done);
      return;
    }
    done += n;
  }
}

export function pwriteFull(fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done);
}

/** A raw image file: guest sector n is file bytes 512n..512n+511. */
export class RawDisk implements DiskImage {
  readonly size: number;
  private readonly fd: number;

  constructor(
    readonly path: string,
    readonly readOnly = false,
  ) {
    try {
      this.fd = openSync(path, readOnly ? 'r' : 'r+');
    } catch (e) {
      throw new DiskError(`cannot open disk image ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
    this.size = fstatSync(this.fd).size;
  }

  read(offset: number, into: Uint8Array): void {
    preadFull(this.fd, into, offset);
  }
  write(offset: number, data: Uint8Array): void {
    pwriteFull(this.fd, data, offset);
  }
  flush(): void {
    fsyncSync(this.fd);
  }
  discard(offset: number, length: number): void {
    // No portable hole punching from Node: zeroing keeps "reads return zeros after discard" true.
    this.writeZeroes(offset, length, true);
  }
  writeZeroes(offset: number, length: number, _mayUnmap = true): void {
    for (let done = 0; done < length; ) {
      const n = Math.min(ZERO_CHUNK.length, length - done);
      pwriteFull(this.fd, ZERO_CHUNK.subarray(0, n), offset + done);
      done += n;
    }
  }
  close(): void {
    closeSync(this.fd);
  }
}
