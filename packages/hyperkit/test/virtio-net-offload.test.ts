import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { finishChecksum, segmentTcp } from '../src/index.js';

/** Textbook RFC 1071 sum over 16-bit words, folded (the reference the device's code is checked against). */
function rfc1071(parts: Uint8Array[]): number {
  const all = Buffer.concat(parts);
  let sum = 0;
  for (let i = 0; i < all.length; i += 2) sum += (all[i]! << 8) + (i + 1 < all.length ? all[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function pseudoHeaderV4(frame: Uint8Array, tcpLength: number): Uint8Array {
  const p = new Uint8Array(12);
  p.set(frame.subarray(14 + 12, 14 + 20), 0);
  p[9] = 6;
  p[10] = tcpLength >>> 8;
  p[11] = tcpLength & 0xff;
  return p;
}

/** An Ethernet + IPv4 + TCP frame (with 12 bytes of TCP options) around `payload`. */
function tcpFrame(payload: Uint8Array, flags: number): Uint8Array {
  const tcpHeader = 32;
  const frame = new Uint8Array(14 + 20 + tcpHeader + payload.length);
  const v = new DataView(frame.buffer);
  v.setUint16(12, 0x0800);
  frame[14] = 0x45;
  v.setUint16(14 + 2, 20 + tcpHeader + payload.length);
  v.setUint16(14 + 4, 0x1234);
  frame[14 + 8] = 64;
  frame[14 + 9] = 6;
  frame.set([192, 168, 65, 3, 192, 168, 65, 254], 14 + 12);
  v.setUint16(14 + 10, ~rfc1071([frame.subarray(14, 34)]) & 0xffff);
  const t = 34;
  v.setUint16(t, 40000);
  v.setUint16(t + 2, 80);
  v.setUint32(t + 4, 0xfffff000); // the sequence wraps inside the segment train
  v.setUint32(t + 8, 7);
  frame[t + 12] = (tcpHeader / 4) << 4;
  frame[t + 13] = flags;
  v.setUint16(t + 14, 65535);
  frame.set([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], t + 20); // NOP NOP timestamps
  frame.set(payload, t + tcpHeader);
  return frame;
}

/** What Linux leaves in a CHECKSUM_PARTIAL frame: the pseudo-header sum, not complemented. */
function makePartial(frame: Uint8Array): void {
  const tcpLength = frame.length - 34;
  const sum = rfc1071([pseudoHeaderV4(frame, tcpLength)]);
  frame[34 + 16] = sum >>> 8;
  frame[34 + 17] = sum & 0xff;
}

function tcpChecksumOk(frame: Uint8Array): boolean {
  const tcpLength = frame.length - 34;
  return rfc1071([pseudoHeaderV4(frame, tcpLength), frame.subarray(34)]) === 0xffff;
}

test('finishChecksum completes a partial TCP checksum as a NIC would', () => {
  for (const size of [0, 1, 2, 3, 1459, 1460, 65000]) {
    const frame = tcpFrame(randomBytes(size), 0x18);
    makePartial(frame);
    assert.ok(finishChecksum(frame, 34, 16));
    assert.ok(tcpChecksumOk(frame), `payload ${size}`);
  }
  assert.equal(finishChecksum(new Uint8Array(40), 34, 16), false, 'checksum field past the end');
  assert.equal(finishChecksum(new Uint8Array(100), 4, 16), false, 'start inside the Ethernet header');
});

test('segmentTcp cuts a TSO frame into MSS frames as Linux GSO does', () => {
  const mss = 1448;
  const payload = randomBytes(10 * mss + 77);
  const frame = tcpFrame(payload, 0x80 | 0x18 | 0x01); // CWR PSH ACK FIN
  makePartial(frame);
  const scratch = new Uint8Array(65600);
  const segments: Uint8Array[] = [];
  const n = segmentTcp(frame, mss, scratch, (s) => segments.push(s.slice()));
  assert.equal(n, 11);
  assert.equal(segments.length, 11);
  const joined: Uint8Array[] = [];
  segments.forEach((s, i) => {
    const v = new DataView(s.buffer, s.byteOffset, s.byteLength);
    const last = i === segments.length - 1;
    assert.equal(s.length, 14 + 20 + 32 + (last ? 77 : mss));
    assert.equal(v.getUint16(14 + 2), s.length - 14, 'IPv4 total length');
    assert.equal(v.getUint16(14 + 4), 0x1234 + i, 'IPv4 identification');
    assert.equal(rfc1071([s.subarray(14, 34)]), 0xffff, 'IPv4 header checksum');
    assert.equal(v.getUint32(34 + 4), (0xfffff000 + i * mss) >>> 0, 'sequence');
    const flags = s[34 + 13]!;
    assert.equal(flags & 0x01, last ? 0x01 : 0, 'FIN on the last only');
    assert.equal(flags & 0x08, last ? 0x08 : 0, 'PSH on the last only');
    assert.equal(flags & 0x80, i === 0 ? 0x80 : 0, 'CWR on the first only');
    assert.equal(flags & 0x10, 0x10, 'ACK on all');
    assert.ok(tcpChecksumOk(s), `TCP checksum of segment ${i}`);
    assert.deepEqual(s.subarray(34 + 20, 34 + 32), frame.subarray(34 + 20, 34 + 32), 'options copied');
    joined.push(s.subarray(66));
  });
  assert.deepEqual(Buffer.concat(joined), Buffer.from(payload));
});

test('segmentTcp refuses what it cannot segment', () => {
  const scratch = new Uint8Array(65600);
  const frame = tcpFrame(randomBytes(3000), 0x10);
  const udp = frame.slice();
  udp[14 + 9] = 17;
  assert.equal(
    segmentTcp(udp, 1000, scratch, () => {}),
    -1,
    'not TCP',
  );
  const arp = frame.slice();
  arp[12] = 0x08;
  arp[13] = 0x06;
  assert.equal(
    segmentTcp(arp, 1000, scratch, () => {}),
    -1,
    'not IP',
  );
  assert.equal(
    segmentTcp(frame, 0, scratch, () => {}),
    -1,
    'no MSS',
  );
  assert.equal(
    segmentTcp(frame.subarray(0, 50), 1000, scratch, () => {}),
    -1,
    'truncated',
  );
  const badOffset = frame.slice();
  badOffset[34 + 12] = 0x20; // data offset 8 bytes
  assert.equal(
    segmentTcp(badOffset, 1000, scratch, () => {}),
    -1,
    'TCP header too short',
  );
});
