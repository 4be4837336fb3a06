/** virtio-vsock wire format (virtio 1.2 §5.10): the 44-byte little-endian packet header. */

export const VSOCK_HEADER_SIZE = 44;
export const VSOCK_TYPE_STREAM = 1;
export const VSOCK_CID_HOST = 2;

export const VsockOp = {
  INVALID: 0,
  REQUEST: 1,
  RESPONSE: 2,
  RST: 3,
  SHUTDOWN: 4,
  RW: 5,
  CREDIT_UPDATE: 6,
  CREDIT_REQUEST: 7,
} as const;

/** SHUTDOWN flags: the sender will receive / send no more. */
export const SHUTDOWN_RECEIVE = 1;
export const SHUTDOWN_SEND = 2;

export interface VsockHeader {
  srcCid: number;
  dstCid: number;
  srcPort: number;
  dstPort: number;
  len: number;
  type: number;
  op: number;
  flags: number;
  bufAlloc: number;
  fwdCnt: number;
}

function getU64(v: DataView, off: number): number {
  return v.getUint32(off, true) + v.getUint32(off + 4, true) * 0x1_0000_0000;
}
function setU64(v: DataView, off: number, value: number): void {
  v.setUint32(off, value % 0x1_0000_0000, true);
  v.setUint32(off + 4, Math.floor(value / 0x1_0000_0000), true);
}

export function decodeVsockHeader(bytes: Uint8Array): VsockHeader {
  const v = new DataView(bytes.buffer, bytes.byteOffset, VSOCK_HEADER_SIZE);
  return {
    srcCid: getU64(v, 0),
    dstCid: getU64(v, 8),
    srcPort: v.getUint32(16, true),
    dstPort: v.getUint32(20, true),
    len: v.getUint32(24, true),
    type: v.getUint16(28, true),
    op: v.getUint16(30, true),
    flags: v.getUint32(32, true),
    bufAlloc: v.getUint32(36, true),
    fwdCnt: v.getUint32(40, true),
  };
}

export function encodeVsockHeader(
  h: VsockHeader,
  into: Uint8Array = new Uint8Array(VSOCK_HEADER_SIZE),
): Uint8Array {
  const v = new DataView(into.buffer, into.byteOffset, VSOCK_HEADER_SIZE);
  setU64(v, 0, h.srcCid);
  setU64(v, 8, h.dstCid);
  v.setUint32(16, h.srcPort, true);
  v.setUint32(20, h.dstPort, true);
  v.setUint32(24, h.len, true);
  v.setUint16(28, h.type, true);
  v.setUint16(30, h.op, true);
  v.setUint32(32, h.flags, true);
  v.setUint32(36, h.bufAlloc >>> 0, true);
  v.setUint32(40, h.fwdCnt >>> 0, true);
  return into;
}

/** hyperkit's socket names: "%08x.%08x" of CID and port. */
export function socketName(cid: number, port: number): string {
  return `${cid.toString(16).padStart(8, '0')}.${port.toString(16).padStart(8, '0')}`;
}

/** Parses the 18-byte "CCCCCCCC.PPPPPPPP\n" request written to hyperkit's `connect` socket. */
export function parseConnectRequest(line: string): { cid: number; port: number } | undefined {
  const m = /^([0-9a-fA-F]{8})\.([0-9a-fA-F]{8})\n$/.exec(line);
  if (!m) return undefined;
  return { cid: Number.parseInt(m[1]!, 16), port: Number.parseInt(m[2]!, 16) };
}
