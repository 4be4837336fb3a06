import { createHash } from 'node:crypto';
import net from 'node:net';
import { VpnkitError } from '../errors.js';
import type { Logger } from '../errors.js';
import { type MacAddress, readMac, writeMac } from '../wire/address.js';
import { StreamLink } from './stream.js';

// hyperkit's virtio-net-vpnkit protocol: a 49-byte hello each way, a 41-byte command, a 258-byte reply,
// then frames with a u16 little-endian length prefix.
export const VMNET_MAGIC = 'VMN3T';
export const VMNET_VERSION = 22;
export const VMNET_HELLO_LEN = 49;
export const VMNET_COMMAND_LEN = 41;
export const VMNET_RESPONSE_LEN = 258;
export const VMNET_COMMAND_ETHERNET = 1;
export const VMNET_COMMAND_PREFERRED_IPV4 = 8;
export const VMNET_RESPONSE_VIF = 1;
export const VMNET_RESPONSE_DISCONNECT = 2;
const OUR_COMMIT = 'kitset-vpnkit-0000000000000000000000000'.padEnd(40, '0');

/** A guest MAC derived from its UUID: the same UUID always gets the same locally administered address. */
export function macForUuid(uuid: string): MacAddress {
  const digest = createHash('sha256').update(uuid.toLowerCase()).digest();
  digest[0] = (digest[0]! & 0xfe) | 0x02; // unicast, locally administered
  return readMac(digest, 0);
}

export function encodeHello(commit = OUR_COMMIT): Buffer {
  const out = Buffer.alloc(VMNET_HELLO_LEN);
  out.write(VMNET_MAGIC, 0, 'latin1');
  out.writeUInt32LE(VMNET_VERSION, 5);
  out.write(commit.slice(0, 40).padEnd(40, '0'), 9, 'latin1');
  return out;
}

export interface VmnetCommand {
  command: number;
  uuid: string;
  /** Only for command 8: the address the guest asks for. */
  preferredIpv4?: number;
}

export function decodeCommand(bytes: Uint8Array): VmnetCommand {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const command = buf[0]!;
  const uuid = buf.toString('latin1', 1, 37);
  if (command === VMNET_COMMAND_PREFERRED_IPV4) return { command, uuid, preferredIpv4: buf.readUInt32LE(37) };
  return { command, uuid };
}

export function encodeVif(mtu: number, maxPacketSize: number, mac: MacAddress): Buffer {
  const out = Buffer.alloc(VMNET_RESPONSE_LEN);
  out[0] = VMNET_RESPONSE_VIF;
  out.writeUInt16LE(mtu, 1);
  out.writeUInt16LE(maxPacketSize, 3);
  writeMac(out, 5, mac);
  return out;
}

export function encodeDisconnect(reason: string): Buffer {
  const out = Buffer.alloc(VMNET_RESPONSE_LEN);
  out[0] = VMNET_RESPONSE_DISCONNECT;
  const text = Buffer.from(reason, 'utf8').subarray(0, 255);
  out[1] = text.length;
  text.copy(out, 2);
  return out;
}

export interface VmnetClient {
  link: StreamLink;
  uuid: string;
  mac: MacAddress;
  preferredIpv4?: number;
}

/** Reads exactly `length` bytes from a socket's data events; the rest is kept for the framer. */
class Reader {
  private buffered = Buffer.alloc(0);
  private waiting: { length: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  constructor(private readonly socket: net.Socket) {
    socket.on('data', this.onData);
    socket.once('close', () => this.waiting?.reject(new Error('connection closed during handshake')));
  }
  private readonly onData = (chunk: Buffer) => {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    this.check();
  };
  private check(): void {
    const w = this.waiting;
    if (w && this.buffered.length >= w.length) {
      this.waiting = null;
      const out = this.buffered.subarray(0, w.length);
      this.buffered = this.buffered.subarray(w.length);
      w.resolve(out);
    }
  }
  read(length: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.waiting = { length, resolve, reject };
      this.check();
    });
  }
  /** Stops reading; returns bytes received past the handshake. */
  detach(): Buffer {
    this.socket.off('data', this.onData);
    return this.buffered;
  }
}

/** Server side of the handshake on an accepted connection. */
export async function acceptVmnet(
  socket: net.Socket,
  mtu: number,
  description: string,
): Promise<VmnetClient> {
  const reader = new Reader(socket);
  const hello = await reader.read(VMNET_HELLO_LEN);
  if (hello.toString('latin1', 0, 5) !== VMNET_MAGIC)
    throw new VpnkitError('ERR_VPNKIT_PROTOCOL', `${description}: bad hello magic (not a vpnkit client)`);
  // We answer with our own version; hyperkit only warns on a mismatch.
  socket.write(encodeHello());
  const command = decodeCommand(await reader.read(VMNET_COMMAND_LEN));
  if (command.command !== VMNET_COMMAND_ETHERNET && command.command !== VMNET_COMMAND_PREFERRED_IPV4) {
    socket.write(encodeDisconnect(`unsupported command ${command.command}`));
    throw new VpnkitError('ERR_VPNKIT_PROTOCOL', `${description}: unsupported command ${command.command}`);
  }
  const mac = macForUuid(command.uuid);
  socket.write(encodeVif(mtu, mtu + 14, mac));
  const leftover = reader.detach();
  const link = new StreamLink(socket, 'u16le', `${description} uuid ${command.uuid}`, 65535, leftover);
  const client: VmnetClient = { link, uuid: command.uuid, mac };
  if (command.preferredIpv4 !== undefined) client.preferredIpv4 = command.preferredIpv4;
  return client;
}

/** Listens on a Unix socket for hyperkit-compatible VMMs. */
export function listenVmnet(
  path: string,
  mtu: number,
  onClient: (client: VmnetClient) => void,
  log: Logger,
): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => {
      acceptVmnet(socket, mtu, `vmnet ${path}`).then(onClient, (err: Error) => {
        log('warn', err.message);
        socket.destroy();
      });
    });
    server.once('error', (err) =>
      reject(new VpnkitError('ERR_VPNKIT_LINK', `cannot listen on vmnet socket ${path}: ${err.message}`)),
    );
    server.listen(path, () => resolve(server));
  });
}

/** Client side, as hyperkit does it (used by tests and by in-process wiring). */
export async function connectVmnet(
  path: string,
  uuid: string,
  preferredIpv4?: number,
): Promise<{ socket: net.Socket; mtu: number; maxPacketSize: number; mac: MacAddress; leftover: Buffer }> {
  const socket = net.connect(path);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const reader = new Reader(socket);
  socket.write(encodeHello('0123456789012345678901234567890123456789'));
  const hello = await reader.read(VMNET_HELLO_LEN);
  if (hello.toString('latin1', 0, 5) !== VMNET_MAGIC)
    throw new VpnkitError('ERR_VPNKIT_PROTOCOL', 'bad hello from server');
  const command = Buffer.alloc(VMNET_COMMAND_LEN);
  command[0] = preferredIpv4 === undefined ? VMNET_COMMAND_ETHERNET : VMNET_COMMAND_PREFERRED_IPV4;
  command.write(uuid.slice(0, 36), 1, 'latin1');
  if (preferredIpv4 !== undefined) command.writeUInt32LE(preferredIpv4 >>> 0, 37);
  socket.write(command);
  const reply = await reader.read(VMNET_RESPONSE_LEN);
  if (reply[0] !== VMNET_RESPONSE_VIF)
    throw new VpnkitError(
      'ERR_VPNKIT_PROTOCOL',
      `server refused: ${reply.toString('utf8', 2, 2 + (reply[1] ?? 0))}`,
    );
  return {
    socket,
    mtu: reply.readUInt16LE(1),
    maxPacketSize: reply.readUInt16LE(3),
    mac: readMac(reply, 5),
    leftover: reader.detach(),
  };
}
