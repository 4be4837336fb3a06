/** hyperkit's virtio-net-vpnkit wire format: hello, command, reply; then u16-LE-length-prefixed frames. */

export const VMNET_MAGIC = 'VMN3T';
export const VMNET_VERSION = 22;
export const HELLO_SIZE = 49;
export const COMMAND_SIZE = 41;
export const REPLY_SIZE = 258;
export const COMMAND_ETHERNET = 1;
export const REPLY_VIF = 1;
export const REPLY_DISCONNECT = 2;
const COMMIT = 'kitset-hyperkit'.padEnd(40, '0');

export function encodeHello(): Uint8Array {
  const b = new Uint8Array(HELLO_SIZE);
  b.set(new TextEncoder().encode(VMNET_MAGIC), 0);
  new DataView(b.buffer).setUint32(5, VMNET_VERSION, true);
  b.set(new TextEncoder().encode(COMMIT), 9);
  return b;
}

export function checkHello(b: Uint8Array): boolean {
  return b.length >= HELLO_SIZE && new TextDecoder('latin1').decode(b.subarray(0, 5)) === VMNET_MAGIC;
}

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export function encodeEthernetCommand(uuid: string): Uint8Array {
  if (!UUID_RE.test(uuid)) throw new RangeError(`not a UUID: "${uuid}"`);
  const b = new Uint8Array(COMMAND_SIZE);
  b[0] = COMMAND_ETHERNET;
  b.set(new TextEncoder().encode(uuid), 1);
  return b;
}

export type VmnetReply =
  | { kind: 'vif'; mtu: number; maxPacketSize: number; mac: Uint8Array }
  | { kind: 'disconnect'; reason: string }
  | { kind: 'unknown'; code: number };

export function decodeReply(b: Uint8Array): VmnetReply {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b[0] === REPLY_VIF) {
    return {
      kind: 'vif',
      mtu: v.getUint16(1, true),
      maxPacketSize: v.getUint16(3, true),
      mac: b.slice(5, 11),
    };
  }
  if (b[0] === REPLY_DISCONNECT) {
    const n = Math.min(b[1] ?? 0, REPLY_SIZE - 2);
    return { kind: 'disconnect', reason: new TextDecoder().decode(b.subarray(2, 2 + n)) };
  }
  return { kind: 'unknown', code: b[0] ?? 0 };
}

/** Cuts a byte stream into u16-LE-length-prefixed frames without copying complete frames in one chunk. */
export class FrameSplitter {
  private partial: Uint8Array | undefined;
  constructor(private readonly onFrame: (frame: Uint8Array) => void) {}

  push(chunk: Uint8Array): void {
    let data = chunk;
    if (this.partial) {
      const joined = new Uint8Array(this.partial.length + chunk.length);
      joined.set(this.partial);
      joined.set(chunk, this.partial.length);
      data = joined;
      this.partial = undefined;
    }
    let off = 0;
    while (data.length - off >= 2) {
      const len = data[off]! | (data[off + 1]! << 8);
      if (data.length - off - 2 < len) break;
      this.onFrame(data.subarray(off + 2, off + 2 + len));
      off += 2 + len;
    }
    if (off < data.length) this.partial = data.slice(off);
  }
}
