import type { Ipv4Packet } from '../wire/ipv4.js';

const MAX_DATAGRAM = 65535;

interface Pending {
  buf: Uint8Array;
  /** Received byte ranges [start, end) kept sorted and merged. */
  ranges: number[];
  totalLength: number; // -1 until the last fragment arrives
  headerLength: number;
  deadline: number;
}

/**
 * IPv4 fragment reassembly with hard bounds: at most `maxDatagrams` in progress (the oldest is dropped to
 * make room) and each one expires after `timeoutMs`. Overlapping fragments are accepted; later bytes win.
 */
export class Reassembler {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly maxDatagrams = 16,
    private readonly timeoutMs = 30_000,
  ) {}

  get inProgress(): number {
    return this.pending.size;
  }

  /** Adds a fragment; returns the whole datagram (header + payload, length = total) once complete. */
  add(packet: Ipv4Packet, now: number): Uint8Array | null {
    const key = `${packet.source}:${packet.destination}:${packet.protocol}:${packet.identification}`;
    const payload = packet.payload();
    const start = packet.fragmentOffset;
    const end = start + payload.length;
    const headerLength = packet.headerLength;
    if (headerLength + end > MAX_DATAGRAM) return null;
    if (packet.moreFragments && payload.length % 8 !== 0) return null;
    let entry = this.pending.get(key);
    if (!entry) {
      this.expire(now);
      if (this.pending.size >= this.maxDatagrams) {
        const oldest = this.pending.keys().next().value;
        if (oldest !== undefined) this.pending.delete(oldest);
      }
      entry = {
        buf: new Uint8Array(MAX_DATAGRAM),
        ranges: [],
        totalLength: -1,
        headerLength: 0,
        deadline: now + this.timeoutMs,
      };
      this.pending.set(key, entry);
    }
    if (start === 0) {
      entry.buf.set(packet.buf.subarray(0, headerLength), 0);
      entry.headerLength = headerLength;
    }
    // Payload goes after a maximal header slot; moved into place on completion.
    entry.buf.set(payload, 60 + start);
    if (!packet.moreFragments) {
      if (entry.totalLength >= 0 && entry.totalLength !== end) {
        this.pending.delete(key); // conflicting last fragments
        return null;
      }
      entry.totalLength = end;
    }
    addRange(entry.ranges, start, end);
    if (
      entry.totalLength >= 0 &&
      entry.headerLength > 0 &&
      entry.ranges.length === 2 &&
      entry.ranges[0] === 0 &&
      entry.ranges[1] === entry.totalLength
    ) {
      this.pending.delete(key);
      const h = entry.headerLength;
      const out = entry.buf;
      out.copyWithin(h, 60, 60 + entry.totalLength);
      const total = h + entry.totalLength;
      out[2] = total >>> 8;
      out[3] = total & 0xff;
      out[6] = 0; // no longer a fragment (checksum is not re-verified upstream)
      out[7] = 0;
      return out.subarray(0, total);
    }
    return null;
  }

  expire(now: number): void {
    for (const [key, entry] of this.pending) if (entry.deadline <= now) this.pending.delete(key);
  }
}

function addRange(ranges: number[], start: number, end: number): void {
  if (end <= start) return;
  const merged: number[] = [];
  let placed = false;
  for (let i = 0; i < ranges.length; i += 2) {
    const s = ranges[i]!;
    const e = ranges[i + 1]!;
    if (e < start) merged.push(s, e);
    else if (s > end) {
      if (!placed) {
        merged.push(start, end);
        placed = true;
      }
      merged.push(s, e);
    } else {
      start = Math.min(start, s);
      end = Math.max(end, e);
    }
  }
  if (!placed) merged.push(start, end);
  ranges.length = 0;
  ranges.push(...merged);
}
