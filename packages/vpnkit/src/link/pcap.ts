import { closeSync, openSync, writeSync } from 'node:fs';
import { type Link, noClose, noFrame } from './link.js';

const PCAP_MAGIC = 0xa1b2c3d4;
const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 65535;

/**
 * Wraps a link and records every frame, both directions, to a classic pcap file (readable by tshark and
 * Wireshark). Records are buffered and written in batches.
 */
export class PcapLink implements Link {
  onFrame = noFrame;
  onClose = noClose;
  readonly description: string;
  private readonly fd: number;
  private buffer = Buffer.allocUnsafe(1 << 20);
  private used = 0;
  private flushScheduled = false;
  private closed = false;

  constructor(
    private readonly inner: Link,
    path: string,
  ) {
    this.description = `${inner.description} (pcap ${path})`;
    this.fd = openSync(path, 'w');
    const header = Buffer.alloc(24);
    header.writeUInt32LE(PCAP_MAGIC, 0);
    header.writeUInt16LE(2, 4);
    header.writeUInt16LE(4, 6);
    header.writeUInt32LE(SNAPLEN, 16);
    header.writeUInt32LE(LINKTYPE_ETHERNET, 20);
    writeSync(this.fd, header);
    inner.onFrame = (frame) => {
      this.record(frame);
      this.onFrame(frame);
    };
    inner.onClose = (error) => {
      this.finish();
      this.onClose(error);
    };
  }

  private record(frame: Uint8Array): void {
    if (this.closed) return;
    const length = Math.min(frame.length, SNAPLEN);
    if (this.used + 16 + length > this.buffer.length) this.flush();
    const now = Date.now();
    const b = this.buffer;
    b.writeUInt32LE(Math.floor(now / 1000), this.used);
    b.writeUInt32LE((now % 1000) * 1000, this.used + 4);
    b.writeUInt32LE(length, this.used + 8);
    b.writeUInt32LE(frame.length, this.used + 12);
    b.set(frame.subarray(0, length), this.used + 16);
    this.used += 16 + length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.flushScheduled = false;
    if (this.used === 0 || this.closed) return;
    writeSync(this.fd, this.buffer, 0, this.used);
    this.used = 0;
  }

  send(frame: Uint8Array): void {
    this.record(frame);
    this.inner.send(frame);
  }

  private finish(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    closeSync(this.fd);
  }

  close(): void {
    this.finish();
    this.inner.close();
  }
}
