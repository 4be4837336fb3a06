import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { GuestMemory } from '../src/machine/memory.js';
import type { VirtioDevice } from '../src/virtio/device.js';
import { VirtioBlk } from '../src/virtio/devices/blk/device.js';
import { RawDisk } from '../src/virtio/devices/blk/disk.js';
import type { DeviceBase } from '../src/virtio/devices/common.js';
import { VirtioConsole } from '../src/virtio/devices/console.js';
import { VirtioNet } from '../src/virtio/devices/net/device.js';
import { linkPair } from '../src/virtio/devices/net/link.js';
import { Virtio9p } from '../src/virtio/devices/ninep.js';
import { VirtioRng } from '../src/virtio/devices/rng.js';
import { VirtioVsock } from '../src/virtio/devices/vsock/device.js';
import { STATUS_DEVICE_NEEDS_RESET, VirtioMmioTransport } from '../src/virtio/mmio.js';

const tmp = mkdtempSync(join(tmpdir(), 'hk-fuzz-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const RAM_BASE = 0x8000_0000;
const RAM_SIZE = 1 << 20;
const QSIZE = 16;
/** Ring layout per queue: descriptors, available ring, used ring, then a data area. */
const QUEUE_AREA = 0x4000;
const DATA_BASE = RAM_BASE + 0x40000;
const DATA_SIZE = RAM_SIZE - 0x40000;

/** Small deterministic PRNG (xorshift32) so a failure can be replayed from its seed. */
function prng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

interface Driver {
  transport: VirtioMmioTransport;
  memory: GuestMemory;
  availIdx: number[];
  queues: number;
}

function initialise(d: Driver): void {
  const t = d.transport;
  t.write(0x070, 4, 0); // reset
  t.write(0x070, 4, 1 | 2); // ACKNOWLEDGE | DRIVER
  for (const sel of [0, 1]) {
    t.write(0x014, 4, sel);
    const f = t.read(0x010, 4);
    t.write(0x024, 4, sel);
    t.write(0x020, 4, f);
  }
  t.write(0x070, 4, 1 | 2 | 8);
  for (let q = 0; q < d.queues; q++) {
    const base = RAM_BASE + q * QUEUE_AREA;
    t.write(0x030, 4, q);
    t.write(0x038, 4, QSIZE);
    t.write(0x080, 4, base);
    t.write(0x084, 4, 0);
    t.write(0x090, 4, base + 0x1000);
    t.write(0x094, 4, 0);
    t.write(0x0a0, 4, base + 0x2000);
    t.write(0x0a4, 4, 0);
    d.memory.slice(base, QUEUE_AREA).fill(0);
    t.write(0x044, 4, 1);
    d.availIdx[q] = 0;
  }
  t.write(0x070, 4, 1 | 2 | 8 | 4);
}

const F_NEXT = 1;
const F_WRITE = 2;
const F_INDIRECT = 4;

/** Writes one descriptor; addresses may point anywhere, including outside RAM. */
function writeDesc(
  mem: GuestMemory,
  table: number,
  i: number,
  addr: number,
  len: number,
  flags: number,
  next: number,
) {
  const d = table + 16 * i;
  mem.writeU32(d, addr % 0x1_0000_0000);
  mem.writeU32(d + 4, Math.floor(addr / 0x1_0000_0000));
  mem.writeU32(d + 8, len);
  mem.writeU16(d + 12, flags);
  mem.writeU16(d + 14, next);
}

/** A random, often malformed, chain: what a buggy or hostile driver might post. */
function postChain(d: Driver, q: number, rnd: (n: number) => number): void {
  const mem = d.memory;
  const base = RAM_BASE + q * QUEUE_AREA;
  const kind = rnd(10);
  const randomAddr = () => {
    switch (rnd(6)) {
      case 0:
        return rnd(0x1_0000); // below RAM
      case 1:
        return RAM_BASE + RAM_SIZE - rnd(64); // straddles the end
      case 2:
        return 0xffff_ffff_f000 + rnd(0x1000); // far outside
      default:
        return DATA_BASE + rnd(DATA_SIZE - 4096);
    }
  };
  const randomLen = () => (rnd(8) === 0 ? 0xffff_ffff - rnd(16) : rnd(8) === 0 ? 0 : 1 + rnd(3000));
  const n = 1 + rnd(6);
  for (let i = 0; i < n; i++) {
    let flags = rnd(4) === 0 ? rnd(8) : (i < n - 1 ? F_NEXT : 0) | (rnd(2) ? F_WRITE : 0);
    let next = i + 1;
    if (kind === 0) next = rnd(QSIZE); // may loop
    if (kind === 1 && i === n - 1) {
      flags |= F_NEXT;
      next = 0; // a loop back to the head
    }
    if (kind === 2 && i === 0) {
      // indirect table, sometimes holding another indirect descriptor
      const table = DATA_BASE + rnd(DATA_SIZE - 4096) - (DATA_BASE % 16);
      const entries = 1 + rnd(8);
      for (let j = 0; j < entries; j++) {
        writeDesc(
          mem,
          table,
          j,
          randomAddr(),
          randomLen(),
          rnd(3) === 0 ? F_INDIRECT | F_NEXT : rnd(8),
          rnd(entries + 2),
        );
      }
      writeDesc(
        mem,
        base,
        i,
        table,
        rnd(4) === 0 ? 16 * entries + 8 : 16 * entries,
        F_INDIRECT | (rnd(4) === 0 ? F_NEXT : 0),
        next,
      );
      continue;
    }
    if (kind === 3) {
      // well-formed: readable then writable, all in RAM, with random content for the device to parse
      const addr = DATA_BASE + rnd(DATA_SIZE - 4096);
      const len = 1 + rnd(2048);
      const bytes = mem.slice(addr, len);
      for (let k = 0; k < bytes.length; k++) bytes[k] = rnd(256);
      flags = (i < n - 1 ? F_NEXT : 0) | (i >= n / 2 ? F_WRITE : 0);
      writeDesc(mem, base, i, addr, len, flags, next);
      continue;
    }
    writeDesc(mem, base, i, randomAddr(), randomLen(), flags, next);
  }
  const avail = base + 0x1000;
  const idx = d.availIdx[q]!;
  mem.writeU16(avail + 4 + 2 * (idx % QSIZE), kind === 4 ? rnd(0x10000) : 0);
  // sometimes the index jumps by more than the ring holds
  const step = kind === 5 ? 1 + rnd(0xffff) : 1;
  d.availIdx[q] = (idx + step) & 0xffff;
  mem.writeU16(avail + 2, d.availIdx[q]!);
  if (rnd(8) === 0) mem.writeU16(avail + 4 + 2 * QSIZE, rnd(0x10000)); // used_event
}

async function fuzz(
  name: string,
  device: VirtioDevice & DeviceBase,
  queues: number,
  seed: number,
  budgetMs: number,
): Promise<{ iterations: number; resets: number; reasons: Set<string> }> {
  device.log = () => {}; // reasons are checked below instead of printed
  const memory = new GuestMemory(RAM_BASE, RAM_SIZE);
  const transport = new VirtioMmioTransport(memory, { set() {} }, device);
  const d: Driver = { transport, memory, availIdx: [], queues };
  const rnd = prng(seed);
  const reasons = new Set<string>();
  let resets = 0;
  let iterations = 0;
  initialise(d);
  const t0 = performance.now();
  while (performance.now() - t0 < budgetMs && iterations < 200_000) {
    iterations++;
    const q = rnd(queues);
    postChain(d, q, rnd);
    // The transport catches malformed-chain errors; anything else escaping here fails the test.
    transport.write(0x050, 4, q);
    if (rnd(16) === 0) transport.read(0x100 + rnd(16), 1 + rnd(4) === 3 ? 4 : 1);
    if (transport.read(0x070, 4) & STATUS_DEVICE_NEEDS_RESET) {
      assert.ok(transport.failure, `${name}: needs reset without a reason`);
      reasons.add(transport.failure.replace(/0x[0-9a-f]+|\d+/g, 'N'));
      resets++;
      initialise(d);
    }
    // let asynchronous backends (9P, sockets) run now and then
    if (iterations % 64 === 0) await new Promise((r) => setImmediate(r));
  }
  transport.write(0x070, 4, 0);
  return { iterations, resets, reasons };
}

describe('virtio devices fuzzed with malformed descriptor chains', { concurrency: 1 }, () => {
  const budget = 1200;
  const cases: [string, () => VirtioDevice & DeviceBase, number][] = [
    ['rng', () => new VirtioRng(), 1],
    ['console', () => new VirtioConsole(), 2],
    [
      'blk',
      () => {
        const p = join(tmp, 'disk.raw');
        writeFileSync(p, Buffer.alloc(1 << 20));
        return new VirtioBlk(new RawDisk(p));
      },
      1,
    ],
    [
      '9p',
      () => {
        const dir = join(tmp, 'share');
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'f'), 'x');
        return Virtio9p.hostDirectory(dir, 'fuzz');
      },
      1,
    ],
    [
      'vsock',
      () => {
        const dir = join(tmp, 'vsock');
        mkdirSync(dir, { recursive: true });
        return new VirtioVsock({ guestCid: 3, path: dir });
      },
      3,
    ],
    ['net', () => new VirtioNet(linkPair()[0], { mac: Uint8Array.of(2, 0, 0, 0, 0, 1) }), 2],
  ];
  for (const [name, make, queues] of cases) {
    test(`${name}: needs-reset with a reason, never a host exception`, { timeout: 30_000 }, async (t) => {
      const device = make();
      const r = await fuzz(name, device, queues, 0x9e3779b9 ^ name.length, budget);
      t.diagnostic(
        `${r.iterations} chains, ${r.resets} resets; reasons: ${[...r.reasons].slice(0, 8).join(' | ')}`,
      );
      assert.ok(r.iterations > 100, 'the fuzzer ran');
      assert.ok(r.resets > 0, 'malformed chains were detected');
      const all = [...r.reasons].join('\n');
      assert.match(all, /outside guest memory/);
      assert.match(all, /loops|too long/);
      if (device instanceof VirtioVsock) device.close();
      await new Promise((resolve) => setTimeout(resolve, 20)); // late async completions must not throw either
    });
  }
});
