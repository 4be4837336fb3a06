import { WireError, type WireErrorCode } from './errors.js';

export const DNS_PORT = 53;
export const DNS_HEADER_LEN = 12;
export const DnsType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  OPT: 41,
} as const;
export const DNS_CLASS_IN = 1;
export const DnsRcode = { NoError: 0, FormErr: 1, ServFail: 2, NXDomain: 3, NotImp: 4, Refused: 5 } as const;
export const DNS_FLAG_QR = 0x8000;
export const DNS_FLAG_AA = 0x0400;
export const DNS_FLAG_TC = 0x0200;
export const DNS_FLAG_RD = 0x0100;
export const DNS_FLAG_RA = 0x0080;

const MAX_POINTER_JUMPS = 64;
const MAX_NAME_LENGTH = 255;

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  data: Uint8Array;
}

export interface DnsMessageRepr {
  id: number;
  flags: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

/** A view over a DNS message header; the forwarder rewrites the ID in place without decoding the rest. */
export class DnsHeader {
  constructor(public buf: Uint8Array) {}

  validate(): WireErrorCode | null {
    return this.buf.length < DNS_HEADER_LEN ? 'ERR_WIRE_TRUNCATED' : null;
  }
  get id(): number {
    return (this.buf[0]! << 8) | this.buf[1]!;
  }
  set id(value: number) {
    this.buf[0] = value >>> 8;
    this.buf[1] = value & 0xff;
  }
  get flags(): number {
    return (this.buf[2]! << 8) | this.buf[3]!;
  }
  get questionCount(): number {
    return (this.buf[4]! << 8) | this.buf[5]!;
  }
  get answerCount(): number {
    return (this.buf[6]! << 8) | this.buf[7]!;
  }
}

/** Reads a possibly compressed name at `off`. Returns the name and the offset just past it in place. */
export function readDnsName(buf: Uint8Array, off: number): { name: string; end: number } {
  const labels: string[] = [];
  let length = 0;
  let jumps = 0;
  let end = -1;
  let i = off;
  for (;;) {
    if (i >= buf.length) throw new WireError('ERR_WIRE_TRUNCATED', 'DNS name overruns message');
    const len = buf[i]!;
    if (len === 0) {
      if (end < 0) end = i + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (i + 1 >= buf.length) throw new WireError('ERR_WIRE_TRUNCATED', 'DNS pointer overruns message');
      if (++jumps > MAX_POINTER_JUMPS) throw new WireError('ERR_WIRE_MALFORMED', 'DNS name pointer loop');
      if (end < 0) end = i + 2;
      i = ((len & 0x3f) << 8) | buf[i + 1]!;
      continue;
    }
    if ((len & 0xc0) !== 0) throw new WireError('ERR_WIRE_UNSUPPORTED', 'DNS label type');
    if (i + 1 + len > buf.length) throw new WireError('ERR_WIRE_TRUNCATED', 'DNS label overruns message');
    length += len + 1;
    if (length > MAX_NAME_LENGTH) throw new WireError('ERR_WIRE_MALFORMED', 'DNS name too long');
    labels.push(String.fromCharCode(...buf.subarray(i + 1, i + 1 + len)));
    i += 1 + len;
  }
  return { name: labels.join('.'), end };
}

function read16(buf: Uint8Array, off: number): number {
  if (off + 2 > buf.length) throw new WireError('ERR_WIRE_TRUNCATED', 'DNS message truncated');
  return (buf[off]! << 8) | buf[off + 1]!;
}

export function parseDns(buf: Uint8Array): DnsMessageRepr {
  if (buf.length < DNS_HEADER_LEN) throw new WireError('ERR_WIRE_TRUNCATED', 'DNS header truncated');
  const counts = [read16(buf, 4), read16(buf, 6), read16(buf, 8), read16(buf, 10)] as const;
  const message: DnsMessageRepr = {
    id: read16(buf, 0),
    flags: read16(buf, 2),
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
  };
  let off = DNS_HEADER_LEN;
  for (let q = 0; q < counts[0]; q++) {
    const { name, end } = readDnsName(buf, off);
    message.questions.push({ name, type: read16(buf, end), class: read16(buf, end + 2) });
    off = end + 4;
  }
  const sections = [message.answers, message.authorities, message.additionals];
  for (let s = 0; s < 3; s++) {
    for (let r = 0; r < counts[s + 1]!; r++) {
      const { name, end } = readDnsName(buf, off);
      const dataLength = read16(buf, end + 8);
      const dataStart = end + 10;
      if (dataStart + dataLength > buf.length)
        throw new WireError('ERR_WIRE_TRUNCATED', 'DNS rdata truncated');
      sections[s]!.push({
        name,
        type: read16(buf, end),
        class: read16(buf, end + 2),
        ttl: ((read16(buf, end + 4) << 16) | read16(buf, end + 6)) >>> 0,
        data: buf.subarray(dataStart, dataStart + dataLength),
      });
      off = dataStart + dataLength;
    }
  }
  return message;
}

/** Encodes a message, compressing repeated name suffixes (RFC 1035 §4.1.4). */
export function emitDns(message: DnsMessageRepr): Uint8Array {
  const parts: number[] = [];
  const suffixOffsets = new Map<string, number>();
  const push16 = (v: number) => parts.push(v >>> 8, v & 0xff);
  const pushName = (name: string) => {
    const labels = name === '' || name === '.' ? [] : name.replace(/\.$/, '').split('.');
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join('.').toLowerCase();
      const known = suffixOffsets.get(suffix);
      if (known !== undefined) {
        push16(0xc000 | known);
        return;
      }
      if (parts.length < 0x3fff) suffixOffsets.set(suffix, parts.length);
      const bytes = Buffer.from(labels[i]!, 'latin1');
      if (bytes.length === 0 || bytes.length > 63)
        throw new WireError('ERR_WIRE_MALFORMED', `bad label in ${name}`);
      parts.push(bytes.length, ...bytes);
    }
    parts.push(0);
  };
  push16(message.id);
  push16(message.flags);
  push16(message.questions.length);
  push16(message.answers.length);
  push16(message.authorities.length);
  push16(message.additionals.length);
  for (const q of message.questions) {
    pushName(q.name);
    push16(q.type);
    push16(q.class);
  }
  for (const section of [message.answers, message.authorities, message.additionals]) {
    for (const r of section) {
      pushName(r.name);
      push16(r.type);
      push16(r.class);
      push16(r.ttl >>> 16);
      push16(r.ttl & 0xffff);
      push16(r.data.length);
      for (const byte of r.data) parts.push(byte);
    }
  }
  return Uint8Array.from(parts);
}
