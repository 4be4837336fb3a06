/**
 * virtio-net offloads without I/O: the header's checksum and segmentation fields (virtio 1.2 §5.1.6), and
 * the two things a device does for a peer that cannot take them — finishing a partial checksum and
 * cutting a TSO frame into MSS-sized frames with full checksums.
 */

/** virtio_net_hdr flags. */
export const NET_HDR_F_NEEDS_CSUM = 1;
export const NET_HDR_F_DATA_VALID = 2;
/** virtio_net_hdr gso_type values. */
export const NET_HDR_GSO_NONE = 0;
export const NET_HDR_GSO_TCPV4 = 1;
export const NET_HDR_GSO_UDP = 3;
export const NET_HDR_GSO_TCPV6 = 4;
export const NET_HDR_GSO_ECN = 0x80;

/**
 * The offload fields of a frame (virtio_net_hdr without num_buffers). On a frame sent to a link:
 * NEEDS_CSUM means the TCP/UDP checksum at `checksumStart + checksumOffset` holds only the pseudo-header
 * sum, and a gsoType other than NONE asks for segmentation into `gsoSize` payload bytes per frame. On a
 * received frame, DATA_VALID means the link vouches for the checksums.
 */
export interface NetOffload {
  flags: number;
  gsoType: number;
  headerLength: number;
  gsoSize: number;
  checksumStart: number;
  checksumOffset: number;
}

/** What a link's `send` accepts beyond plain, fully checksummed frames of at most MTU bytes. */
export interface LinkOffloadSupport {
  /** Frames with NEEDS_CSUM (partial TCP/UDP checksums). */
  checksum: boolean;
  /** TCP frames larger than the MTU with gsoType TCPV4/TCPV6, segmented by the peer. */
  tso: boolean;
}

export function emptyOffload(): NetOffload {
  return { flags: 0, gsoType: 0, headerLength: 0, gsoSize: 0, checksumStart: 0, checksumOffset: 0 };
}

/** Reads the first 10 bytes of a virtio_net_hdr into `into`. */
export function readNetHeader(bytes: Uint8Array, into: NetOffload): NetOffload {
  into.flags = bytes[0]!;
  into.gsoType = bytes[1]!;
  into.headerLength = bytes[2]! | (bytes[3]! << 8);
  into.gsoSize = bytes[4]! | (bytes[5]! << 8);
  into.checksumStart = bytes[6]! | (bytes[7]! << 8);
  into.checksumOffset = bytes[8]! | (bytes[9]! << 8);
  return into;
}

/** Writes an offload as the first 10 bytes of a virtio_net_hdr (zeros for none). */
export function writeNetHeader(bytes: Uint8Array, offload: NetOffload | null | undefined): void {
  if (!offload) {
    bytes.fill(0, 0, 10);
    return;
  }
  bytes[0] = offload.flags;
  bytes[1] = offload.gsoType;
  bytes[2] = offload.headerLength & 0xff;
  bytes[3] = offload.headerLength >>> 8;
  bytes[4] = offload.gsoSize & 0xff;
  bytes[5] = offload.gsoSize >>> 8;
  bytes[6] = offload.checksumStart & 0xff;
  bytes[7] = offload.checksumStart >>> 8;
  bytes[8] = offload.checksumOffset & 0xff;
  bytes[9] = offload.checksumOffset >>> 8;
}

/** One's-complement sum (unfolded) of bytes [start, end), added to `sum`. */
export function onesSum(bytes: Uint8Array, start: number, end: number, sum = 0): number {
  let i = start;
  // Two 16-bit words per round; a 64 KiB frame adds at most 2^31 here, far inside exact doubles.
  for (; i + 3 < end; i += 4)
    sum += ((bytes[i]! << 8) | bytes[i + 1]!) + ((bytes[i + 2]! << 8) | bytes[i + 3]!);
  for (; i + 1 < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8;
  return sum;
}

function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/**
 * Completes a partial checksum in place: the one's-complement sum from `start` to the end of the frame
 * (which already includes the pseudo-header sum left in the checksum field) is stored, complemented, at
 * `start + offset`. False when the offsets do not fit the frame.
 */
export function finishChecksum(frame: Uint8Array, start: number, offset: number, udp = false): boolean {
  const at = start + offset;
  if (start < 14 || at + 2 > frame.length) return false;
  let c = ~fold(onesSum(frame, start, frame.length)) & 0xffff;
  if (c === 0 && udp) c = 0xffff;
  frame[at] = c >>> 8;
  frame[at + 1] = c & 0xff;
  return true;
}

/** Below any real MSS (Linux's least is 88): a malformed header must not make a frame into thousands. */
const MIN_GSO_SIZE = 64;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const IP_PROTOCOL_TCP = 6;
const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

/**
 * Cuts a TCP frame carrying more than one MSS (`gsoSize`) of payload into frames of one MSS each, with
 * IPv4 lengths, identifications and header checksums, IPv6 payload lengths, TCP sequence numbers, flags
 * (FIN and PSH on the last only, CWR on the first only) and full TCP checksums, as Linux's GSO does.
 * `emit` gets each frame as a view of `scratch`, valid during the call. Returns the number of frames,
 * or -1 when the frame is not a TCP frame that can be segmented or the MSS is below 64 (the caller
 * drops it).
 */
export function segmentTcp(
  frame: Uint8Array,
  gsoSize: number,
  scratch: Uint8Array,
  emit: (segment: Uint8Array) => void,
): number {
  if (frame.length < 14 + 20 + 20 || gsoSize < MIN_GSO_SIZE) return -1;
  const etherType = (frame[12]! << 8) | frame[13]!;
  let ipHeaderLength: number;
  let v4: boolean;
  if (etherType === ETHERTYPE_IPV4) {
    v4 = true;
    ipHeaderLength = (frame[14]! & 0x0f) * 4;
    if (ipHeaderLength < 20 || frame[14 + 9] !== IP_PROTOCOL_TCP) return -1;
  } else if (etherType === ETHERTYPE_IPV6) {
    v4 = false;
    ipHeaderLength = 40; // extension headers are not offloaded by Linux for TSO
    if (frame[14 + 6] !== IP_PROTOCOL_TCP) return -1;
  } else return -1;
  const tcp = 14 + ipHeaderLength;
  if (tcp + 20 > frame.length) return -1;
  const tcpHeaderLength = (frame[tcp + 12]! >>> 4) * 4;
  const headers = tcp + tcpHeaderLength;
  if (tcpHeaderLength < 20 || headers > frame.length || headers + gsoSize > scratch.length) return -1;
  const payload = frame.length - headers;
  const count = Math.max(1, Math.ceil(payload / gsoSize));
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const sequence = dv.getUint32(tcp + 4);
  const flags = frame[tcp + 13]!;
  const ipId = v4 ? dv.getUint16(14 + 4) : 0;
  // The pseudo-header's addresses are the same for every segment: sum them once.
  const addresses = v4 ? onesSum(frame, 14 + 12, 14 + 20) : onesSum(frame, 14 + 8, 14 + 40);
  const out = new DataView(scratch.buffer, scratch.byteOffset, scratch.byteLength);
  for (let i = 0; i < count; i++) {
    const from = headers + i * gsoSize;
    const size = Math.min(gsoSize, payload - i * gsoSize);
    scratch.set(frame.subarray(0, headers), 0);
    scratch.set(frame.subarray(from, from + size), headers);
    const length = headers + size;
    if (v4) {
      out.setUint16(14 + 2, length - 14);
      out.setUint16(14 + 4, (ipId + i) & 0xffff);
      out.setUint16(14 + 10, 0);
      out.setUint16(14 + 10, ~fold(onesSum(scratch, 14, tcp)) & 0xffff);
    } else out.setUint16(14 + 4, length - 14 - 40);
    out.setUint32(tcp + 4, (sequence + i * gsoSize) >>> 0);
    let f = flags;
    if (i < count - 1) f &= ~(TCP_FIN | TCP_PSH);
    if (i > 0) f &= ~TCP_CWR;
    scratch[tcp + 13] = f;
    out.setUint16(tcp + 16, 0);
    const tcpLength = length - tcp;
    const sum = onesSum(scratch, tcp, length, addresses + IP_PROTOCOL_TCP + tcpLength);
    out.setUint16(tcp + 16, ~fold(sum) & 0xffff);
    emit(scratch.subarray(0, length));
  }
  return count;
}
