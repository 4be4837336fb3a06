import net from 'node:net';
import { VpnkitError } from '../errors.js';
import { type Link, noClose, noFrame } from './link.js';

export type LengthPrefix = 'u16le' | 'u32be';

const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

/**
 * Ethernet frames over a byte stream with a length prefix: u16 little-endian for hyperkit's vpnkit
 * protocol, u32 big-endian for QEMU's `-netdev stream`/`socket`. Outgoing frames are corked and written
 * in one batch per event-loop turn.
 */
export class StreamLink implements Link {
  onFrame = noFrame;
  onClose = noClose;
  private pending: Buffer | null = null;
  private corked = false;
  private closed = false;
  private readonly headerLength: number;
  framesDropped = 0;

  constructor(
    private readonly socket: net.Socket,
    private readonly prefix: LengthPrefix,
    readonly description: string,
    private readonly maxFrame = 65550,
    leftover?: Buffer,
  ) {
    this.headerLength = prefix === 'u16le' ? 2 : 4;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err) => this.finish(err));
    socket.on('close', () => this.finish());
    if (leftover && leftover.length > 0) queueMicrotask(() => this.receive(leftover));
  }

  private receive(chunk: Buffer): void {
    let data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    let offset = 0;
    const h = this.headerLength;
    while (data.length - offset >= h) {
      const length = this.prefix === 'u16le' ? data.readUInt16LE(offset) : data.readUInt32BE(offset);
      if (length > this.maxFrame) {
        this.finish(
          new VpnkitError(
            'ERR_VPNKIT_PROTOCOL',
            `${this.description}: frame of ${length} bytes exceeds ${this.maxFrame}`,
          ),
        );
        return;
      }
      if (data.length - offset - h < length) break;
      this.onFrame(data.subarray(offset + h, offset + h + length));
      offset += h + length;
      if (this.closed) return;
    }
    if (offset < data.length) {
      data = data.subarray(offset);
      // Keep a copy only of the partial frame, so one small leftover does not pin a large chunk.
      this.pending = Buffer.from(data);
    }
  }

  send(frame: Uint8Array): void {
    if (this.closed) return;
    // A peer that stops reading must not grow our memory: past the limit, drop like a full NIC queue
    // (TCP retransmits; everything above copes with loss).
    if (this.socket.writableLength > MAX_QUEUED_BYTES) {
      this.framesDropped++;
      return;
    }
    const out = Buffer.allocUnsafe(this.headerLength + frame.length);
    if (this.prefix === 'u16le') out.writeUInt16LE(frame.length, 0);
    else out.writeUInt32BE(frame.length, 0);
    out.set(frame, this.headerLength);
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(out);
  }

  private finish(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.onClose(error);
  }

  close(): void {
    this.finish();
  }
}

export type StreamAddress = { path: string } | { host: string; port: number };

export function describeAddress(address: StreamAddress): string {
  return 'path' in address ? address.path : `${address.host}:${address.port}`;
}

/** Listens for QEMU `-netdev stream,server=off` (or `socket,connect=`) clients; one link per connection. */
export function listenQemu(address: StreamAddress, onLink: (link: StreamLink) => void): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => {
      onLink(new StreamLink(socket, 'u32be', `qemu ${describeAddress(address)}`));
    });
    server.once('error', (err) =>
      reject(
        new VpnkitError(
          'ERR_VPNKIT_LINK',
          `cannot listen for QEMU on ${describeAddress(address)}: ${err.message}`,
        ),
      ),
    );
    if ('path' in address) server.listen(address.path, () => resolve(server));
    else server.listen(address.port, address.host, () => resolve(server));
  });
}

/** Connects to QEMU `-netdev stream,server=on`; resolves with the link once connected. */
export function connectQemu(address: StreamAddress): Promise<StreamLink> {
  return new Promise((resolve, reject) => {
    const socket = 'path' in address ? net.connect(address.path) : net.connect(address.port, address.host);
    socket.once('error', (err) =>
      reject(
        new VpnkitError(
          'ERR_VPNKIT_LINK',
          `cannot connect to QEMU at ${describeAddress(address)}: ${err.message}`,
        ),
      ),
    );
    socket.once('connect', () =>
      resolve(new StreamLink(socket, 'u32be', `qemu ${describeAddress(address)}`)),
    );
  });
}
