import { NinePDecodeError } from './buffer.js';
import { HEADER_SIZE } from './constants.js';

/**
 * Splits a byte stream into complete 9P frames. Frames lying wholly inside one pushed chunk are
 * yielded as views of it (no copy); a frame spanning chunks is assembled once into its own buffer,
 * so every yielded frame stays valid after later pushes.
 */
export class FrameSplitter {
  /** A partially received frame (its size is known once 4 bytes are in). */
  private partial: Uint8Array | undefined;
  private partialFilled = 0;
  /** Up to 3 bytes of a size field split across chunks. */
  private sizeBytes = new Uint8Array(4);
  private sizeFilled = 0;

  constructor(public maxFrameSize: number) {}

  /** Bytes buffered towards the next frame. */
  get buffered(): number {
    return this.partial ? this.partialFilled : this.sizeFilled;
  }

  /**
   * Feeds a chunk and calls `onFrame` for each complete frame. Throws NinePDecodeError when a size
   * field is smaller than a header or larger than maxFrameSize (the stream cannot be resynchronised).
   */
  push(chunk: Uint8Array, onFrame: (frame: Uint8Array) => void): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      if (this.partial) {
        const want = this.partial.length - this.partialFilled;
        const take = Math.min(want, len - pos);
        this.partial.set(chunk.subarray(pos, pos + take), this.partialFilled);
        this.partialFilled += take;
        pos += take;
        if (this.partialFilled === this.partial.length) {
          const frame = this.partial;
          this.partial = undefined;
          this.partialFilled = 0;
          onFrame(frame);
        }
        continue;
      }
      if (this.sizeFilled > 0 || len - pos < 4) {
        // Collect a size field that straddles chunks.
        while (this.sizeFilled < 4 && pos < len) this.sizeBytes[this.sizeFilled++] = chunk[pos++]!;
        if (this.sizeFilled < 4) return;
        const size = this.checkSize(this.sizeBytes, 0);
        this.partial = Buffer.allocUnsafeSlow(size);
        this.partial.set(this.sizeBytes, 0);
        this.partialFilled = 4;
        this.sizeFilled = 0;
        continue;
      }
      const size = this.checkSize(chunk, pos);
      if (len - pos >= size) {
        const frame = chunk.subarray(pos, pos + size);
        pos += size;
        onFrame(frame);
      } else {
        this.partial = Buffer.allocUnsafeSlow(size);
        this.partialFilled = len - pos;
        this.partial.set(chunk.subarray(pos), 0);
        pos = len;
      }
    }
  }

  private checkSize(buf: Uint8Array, p: number): number {
    const size = (buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16)) + buf[p + 3]! * 0x1000000;
    if (size < HEADER_SIZE) throw new NinePDecodeError(`frame size ${size} is smaller than a header`);
    if (size > this.maxFrameSize)
      throw new NinePDecodeError(`frame size ${size} exceeds the maximum of ${this.maxFrameSize}`);
    return size;
  }
}
