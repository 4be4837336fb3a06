import { type Socket, createConnection } from 'node:net';
import { HyperkitError } from '../../../errors.js';
import type { EthernetLink } from './link.js';
import {
  FrameSplitter,
  HELLO_SIZE,
  REPLY_SIZE,
  checkHello,
  decodeReply,
  encodeEthernetCommand,
  encodeHello,
} from './vpnkit-protocol.js';

export interface VpnkitConnection {
  link: EthernetLink;
  mac: Uint8Array;
  mtu: number;
  maxPacketSize: number;
}

/** Frames written to the socket while it is not draining, before further frames are dropped (as a NIC would). */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

/**
 * Connects to VPNKit's Unix socket as hyperkit does (`-s virtio-vpnkit,path=…,uuid=…`): hello, Ethernet
 * command with the VM's UUID, and VPNKit's reply giving the MTU and the guest's MAC.
 */
export function connectVpnkit(path: string, uuid: string, timeoutMs = 10_000): Promise<VpnkitConnection> {
  const command = encodeEthernetCommand(uuid);
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let buffered = new Uint8Array(0);
    let stage: 'hello' | 'reply' = 'hello';
    const timer = setTimeout(
      () => fail(`no answer from VPNKit at ${path} within ${timeoutMs} ms`),
      timeoutMs,
    );
    const fail = (message: string) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new HyperkitError('ERR_BAD_ARGUMENT', `virtio-vpnkit: ${message}`));
    };
    socket.once('error', (e) =>
      fail(`cannot connect to ${path}: ${(e as NodeJS.ErrnoException).code ?? e.message}`),
    );
    socket.once('connect', () => {
      socket.write(encodeHello());
      socket.write(command);
    });
    const onData = (chunk: Buffer) => {
      const joined = new Uint8Array(buffered.length + chunk.length);
      joined.set(buffered);
      joined.set(chunk, buffered.length);
      buffered = joined;
      if (stage === 'hello' && buffered.length >= HELLO_SIZE) {
        if (!checkHello(buffered)) return fail('bad hello (is this a VPNKit socket?)');
        buffered = buffered.slice(HELLO_SIZE);
        stage = 'reply';
      }
      if (stage === 'reply' && buffered.length >= REPLY_SIZE) {
        const reply = decodeReply(buffered.subarray(0, REPLY_SIZE));
        const rest = buffered.slice(REPLY_SIZE);
        socket.off('data', onData);
        clearTimeout(timer);
        if (reply.kind !== 'vif') {
          fail(
            reply.kind === 'disconnect' ? `VPNKit refused: ${reply.reason}` : `unknown reply ${reply.code}`,
          );
          return;
        }
        socket.removeAllListeners('error');
        resolve({
          link: new SocketLink(socket, rest),
          mac: reply.mac,
          mtu: reply.mtu,
          maxPacketSize: reply.maxPacketSize,
        });
      }
    };
    socket.on('data', onData);
  });
}

/** Frames over a connected stream socket with u16 LE length prefixes. */
class SocketLink implements EthernetLink {
  private receiver: ((frame: Uint8Array) => void) | undefined;
  private readonly early: Uint8Array[] = [];
  private readonly splitter = new FrameSplitter((f) => {
    if (this.receiver) this.receiver(f);
    else if (this.early.length < 256) this.early.push(f.slice());
  });
  /** Frames dropped because the socket was not draining. */
  dropped = 0;

  constructor(
    private readonly socket: Socket,
    leftover: Uint8Array,
  ) {
    socket.on('data', (chunk: Buffer) =>
      this.splitter.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)),
    );
    socket.on('error', () => socket.destroy());
    if (leftover.length > 0) this.splitter.push(leftover);
  }

  send(frame: Uint8Array): void {
    if (frame.length > 0xffff || this.socket.destroyed) return;
    if (this.socket.writableLength > MAX_QUEUED_BYTES) {
      this.dropped++;
      return;
    }
    const out = Buffer.allocUnsafe(2 + frame.length);
    out.writeUInt16LE(frame.length, 0);
    out.set(frame, 2);
    this.socket.write(out);
  }

  onFrame(cb: (frame: Uint8Array) => void): void {
    this.receiver = cb;
    for (const f of this.early.splice(0)) cb(f);
  }

  close(): void {
    this.socket.destroy();
  }
}
