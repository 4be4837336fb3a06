import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  type EthernetLink,
  type LinkOffloadSupport,
  NET_HDR_F_DATA_VALID,
  NET_HDR_F_NEEDS_CSUM,
  NET_HDR_GSO_TCPV4,
  type NetOffload,
  VirtioNet,
  finishChecksum,
  segmentTcp,
} from '../src/index.js';
import { GuestMemory } from '../src/machine/memory.js';
import { activateDevice } from './virtio-driver.js';

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

// ---------------------------------------------------------------- the device between a guest and a link

const RAM = 0x8000_0000;
const F_GUEST_CSUM = 1 << 1;
const F_GUEST_TSO4 = 1 << 7;
const F_GUEST_TSO6 = 1 << 8;
const F_MRG_RXBUF = 1 << 15;
const HDR = 12;
const MSS = 1448;

/** A link that records what the device sends and lets the test play the peer. */
function testLink(offloads?: LinkOffloadSupport) {
  const sent: Array<{ frame: Uint8Array; offload: NetOffload | null }> = [];
  let deliver: (frame: Uint8Array, offload?: NetOffload | null) => void = () => {};
  const link: EthernetLink = {
    ...(offloads ? { offloads } : {}),
    send: (frame, offload) => sent.push({ frame: frame.slice(), offload: offload ? { ...offload } : null }),
    onFrame: (cb) => {
      deliver = cb;
    },
    close: () => {},
  };
  return { link, sent, fromPeer: (frame: Uint8Array, offload?: NetOffload) => deliver(frame, offload) };
}

/** A VirtioNet activated by a test driver accepting the features `accept` keeps; RX buffers of `rxBuffer`. */
function netDevice(link: EthernetLink, accept: (f: number) => number, rxBuffer: number) {
  const mem = new GuestMemory(RAM, 16 << 20);
  const net = new VirtioNet(link, { mac: Uint8Array.of(2, 0, 0, 0, 0, 1), mtu: 1500 });
  const { transport, queues } = activateDevice(mem, net, { set() {} }, [64, 64], RAM, accept);
  const [rxq, txq] = [queues[0]!, queues[1]!];
  for (let i = 0; i < 32; i++) rxq.post(RAM + 0x100000 + i * 0x10000, rxBuffer, true);
  transport.write(0x050, 4, 0);
  return { mem, net, transport, rxq, txq };
}

const tsoOffload = (_frame: Uint8Array): NetOffload => ({
  flags: NET_HDR_F_NEEDS_CSUM,
  gsoType: NET_HDR_GSO_TCPV4,
  headerLength: 66,
  gsoSize: MSS,
  checksumStart: 34,
  checksumOffset: 16,
});

test('a guest without offloads gets a TSO frame from the link as MSS frames with full checksums', () => {
  const peer = testLink();
  const noOffloads = (f: number) => f & ~(F_GUEST_CSUM | F_GUEST_TSO4 | F_GUEST_TSO6 | F_MRG_RXBUF);
  const { mem, net, rxq } = netDevice(peer.link, noOffloads, 2048);
  const payload = randomBytes(4 * MSS + 100);
  const frame = tcpFrame(payload, 0x18);
  makePartial(frame);
  peer.fromPeer(frame, tsoOffload(frame));
  const used = rxq.takeUsed();
  assert.equal(used.length, 5);
  const joined: Uint8Array[] = [];
  for (const [addr, len] of used) {
    const header = mem.slice(addr, HDR);
    assert.deepEqual([...header.subarray(0, 10)], new Array(10).fill(0), 'no offload fields for this guest');
    assert.equal(header[10], 1, 'num_buffers');
    const segment = mem.slice(addr + HDR, len - HDR).slice();
    assert.ok(tcpChecksumOk(segment));
    assert.ok(segment.length <= 1514);
    joined.push(segment.subarray(66));
  }
  assert.deepEqual(Buffer.concat(joined), Buffer.from(payload));
  assert.equal(net.counters.rxSegmented, 1);

  // A partial checksum alone is finished in the device.
  const small = tcpFrame(randomBytes(300), 0x18);
  makePartial(small);
  peer.fromPeer(small, { ...tsoOffload(small), gsoType: 0, gsoSize: 0 });
  const [[addr, len]] = rxq.takeUsed() as [[number, number]];
  assert.ok(tcpChecksumOk(mem.slice(addr + HDR, len - HDR).slice()));
  assert.equal(net.counters.rxChecksummed, 1);
});

test('a guest with offloads gets the TSO frame whole, its offload in the header, over mergeable buffers', () => {
  const peer = testLink();
  const { mem, rxq } = netDevice(peer.link, (f) => f, 4096);
  const frame = tcpFrame(randomBytes(5000), 0x18);
  makePartial(frame);
  peer.fromPeer(frame, tsoOffload(frame));
  const used = rxq.takeUsed();
  assert.equal(used.length, 2, 'a 5 KB frame spans two 4 KiB buffers');
  const [first, second] = used as [[number, number], [number, number]];
  const h = mem.slice(first[0], HDR);
  const v = new DataView(h.buffer, h.byteOffset, HDR);
  assert.equal(h[0], NET_HDR_F_NEEDS_CSUM);
  assert.equal(h[1], NET_HDR_GSO_TCPV4);
  assert.equal(v.getUint16(4, true), MSS, 'gso_size');
  assert.equal(v.getUint16(6, true), 34, 'csum_start');
  assert.equal(v.getUint16(8, true), 16, 'csum_offset');
  assert.equal(v.getUint16(10, true), 2, 'num_buffers');
  const received = Buffer.concat([
    mem.slice(first[0] + HDR, first[1] - HDR),
    mem.slice(second[0], second[1]),
  ]);
  assert.deepEqual(received, Buffer.from(frame));

  // A frame the link vouches for arrives marked DATA_VALID: the guest skips verifying it.
  const plain = tcpFrame(randomBytes(100), 0x18);
  peer.fromPeer(plain, {
    flags: NET_HDR_F_DATA_VALID,
    gsoType: 0,
    headerLength: 0,
    gsoSize: 0,
    checksumStart: 0,
    checksumOffset: 0,
  });
  const [[addr]] = rxq.takeUsed() as [[number, number]];
  assert.equal(mem.readU8(addr), NET_HDR_F_DATA_VALID);
});

test("the guest's TSO frame goes whole to a link that takes offloads, cut into MSS frames for one that does not", () => {
  const payload = randomBytes(3 * MSS + 10);
  const frame = tcpFrame(payload, 0x18);
  makePartial(frame);
  const header = new Uint8Array(HDR);
  const hv = new DataView(header.buffer);
  header[0] = NET_HDR_F_NEEDS_CSUM;
  header[1] = NET_HDR_GSO_TCPV4;
  hv.setUint16(2, 66, true);
  hv.setUint16(4, MSS, true);
  hv.setUint16(6, 34, true);
  hv.setUint16(8, 16, true);
  const transmit = (peer: ReturnType<typeof testLink>) => {
    const { mem, transport, txq } = netDevice(peer.link, (f) => f, 2048);
    const at = RAM + 0x800000;
    mem.write(at, header);
    mem.write(at + HDR, frame);
    assert.ok(txq.post(at, HDR + frame.length, false));
    transport.write(0x050, 4, 1);
    assert.equal(txq.takeUsed().length, 1);
  };

  const offloading = testLink({ checksum: true, tso: true });
  transmit(offloading);
  assert.equal(offloading.sent.length, 1);
  assert.deepEqual(offloading.sent[0]!.frame, frame);
  assert.deepEqual(offloading.sent[0]!.offload, tsoOffload(frame));

  const plain = testLink();
  transmit(plain);
  assert.equal(plain.sent.length, 4);
  const joined: Uint8Array[] = [];
  for (const { frame: segment, offload } of plain.sent) {
    assert.equal(offload, null);
    assert.ok(tcpChecksumOk(segment));
    joined.push(segment.subarray(66));
  }
  assert.deepEqual(Buffer.concat(joined), Buffer.from(payload));
});
