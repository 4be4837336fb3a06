/**
 * A FIFO of byte chunks, addressed by offset from its front. Writers hand over chunks they will not modify
 * again (no copy on push); readers copy out ranges straight into outgoing frames.
 */
export class ByteQueue {
  private chunks: Uint8Array[] = [];
  private head = 0; // index of the first live chunk
  private headOffset = 0; // bytes already consumed from chunks[head]
  length = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** Drops `n` bytes from the front. */
  consume(n: number): void {
    n = Math.min(n, this.length);
    this.length -= n;
    while (n > 0) {
      const chunk = this.chunks[this.head]!;
      const left = chunk.length - this.headOffset;
      if (n < left) {
        this.headOffset += n;
        return;
      }
      n -= left;
      this.head++;
      this.headOffset = 0;
    }
    if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
    if (this.length === 0) {
      this.chunks.length = 0;
      this.head = 0;
      this.headOffset = 0;
    }
  }

  /** Copies `len` bytes starting `offset` bytes from the front into `dst` at `dstOffset`. */
  copyOut(offset: number, dst: Uint8Array, dstOffset: number, len: number): void {
    let i = this.head;
    let pos = offset + this.headOffset;
    while (len > 0) {
      const chunk = this.chunks[i]!;
      if (pos >= chunk.length) {
        pos -= chunk.length;
        i++;
        continue;
      }
      const n = Math.min(len, chunk.length - pos);
      dst.set(pos === 0 && n === chunk.length ? chunk : chunk.subarray(pos, pos + n), dstOffset);
      dstOffset += n;
      len -= n;
      pos = 0;
      i++;
    }
  }

  /** The `len` bytes at `offset` as one view when they lie in a single chunk, else null (copy them out). */
  view(offset: number, len: number): Uint8Array | null {
    let i = this.head;
    let pos = offset + this.headOffset;
    while (i < this.chunks.length) {
      const chunk = this.chunks[i]!;
      if (pos < chunk.length) return pos + len <= chunk.length ? chunk.subarray(pos, pos + len) : null;
      pos -= chunk.length;
      i++;
    }
    return null;
  }

  /** Removes and returns up to `max` bytes from the front as one view (no copy when it is one chunk). */
  shift(max: number): Uint8Array {
    const chunk = this.chunks[this.head]!;
    const n = Math.min(max, chunk.length - this.headOffset);
    const out = chunk.subarray(this.headOffset, this.headOffset + n);
    this.consume(n);
    return out;
  }

  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.headOffset = 0;
    this.length = 0;
  }
}
