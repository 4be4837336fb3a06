import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { GuestMemory } from '../src/machine/memory.js';
import { VirtioVsock } from '../src/virtio/devices/vsock/device.js';
import {
  VSOCK_HEADER_SIZE,
  type VsockHeader,
  VsockOp,
  decodeVsockHeader,
  encodeVsockHeader,
} from '../src/virtio/devices/vsock/packet.js';
import { activateDevice } from './virtio-driver.js';

const tmp = mkdtempSync(join(tmpdir(), 'hk-vsock-rate-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const RAM = 0x8000_0000;
const QSIZE = 256;
const RX_BUF = 4096;

/** A stream packet from the guest (cid 3) to host port 7, with the fields given. */
function guestHeader(h: Partial<VsockHeader>): VsockHeader {
  return {
    srcCid: 3,
    dstCid: 2,
    srcPort: 0,
    dstPort: 7,
    len: 0,
    type: 1,
    op: 0,
    flags: 0,
    bufAlloc: 65536,
    fwdCnt: 0,
    ...h,
  };
}

/** A vsock device behind the MMIO transport, driven to DRIVER_OK with three queues. */
function activate(dir: string, irq: { set(level: boolean): void }) {
  const vsock = new VirtioVsock({ guestCid: 3, path: dir });
  const mem = new GuestMemory(RAM, 8 << 20);
  const { transport, queues } = activateDevice(mem, vsock, irq, [QSIZE, QSIZE, 16], RAM);
  return { vsock, mem, transport, rxq: queues[0]!, txq: queues[1]! };
}

test(
  'virtio-vsock handles over 1,000 guest-initiated connections a second (device and host side)',
  { timeout: 60_000 },
  async (t) => {
    const dir = join(tmp, 's');
    mkdirSync(dir);
    const echo = createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echo.listen(join(dir, '00000002.00000007'), resolve));
    const { vsock, mem, transport, rxq, txq } = activate(dir, { set() {} });
    const rxBase = RAM + 0x100000;
    for (let i = 0; i < QSIZE; i++) rxq.post(rxBase + i * RX_BUF, RX_BUF, true);
    transport.write(0x050, 4, 0);

    const txBase = RAM + 0x200000;
    let txSlot = 0;
    const send = (h: Partial<VsockHeader>, payload?: Uint8Array) => {
      const addr = txBase + (txSlot++ % 4096) * 128;
      mem.write(addr, encodeVsockHeader(guestHeader({ len: payload?.length ?? 0, ...h })));
      if (payload) mem.write(addr + VSOCK_HEADER_SIZE, payload);
      assert.ok(txq.post(addr, VSOCK_HEADER_SIZE + (payload?.length ?? 0), false), 'tx ring full');
    };

    // A wall-clock rate on a shared CI machine is noisy: run up to four rounds of 1,000 connections
    // (ports never reused) and require the best round to reach 1,000 a second.
    const TOTAL = 1000;
    const PARALLEL = 32;
    let nextPort = 40_000;
    const rates: number[] = [];
    for (let round = 0; round < 4 && !(rates.length > 0 && Math.max(...rates) >= 1000); round++) {
      let started = 0;
      let completed = 0;
      let echoed = 0;
      const open = new Set<number>();
      const t0 = performance.now();
      while (completed < TOTAL && performance.now() - t0 < 10_000) {
        while (open.size < PARALLEL && started < TOTAL) {
          started++;
          const port = nextPort++;
          open.add(port);
          send({ op: VsockOp.REQUEST, srcPort: port });
        }
        for (const _ of txq.takeUsed());
        transport.write(0x050, 4, 1);
        await new Promise((r) => setImmediate(r));
        let reposted = false;
        for (const [addr, len] of rxq.takeUsed()) {
          const h = decodeVsockHeader(mem.slice(addr, VSOCK_HEADER_SIZE));
          assert.ok(len >= VSOCK_HEADER_SIZE);
          const port = h.dstPort;
          if (h.op === VsockOp.RESPONSE)
            send({ op: VsockOp.RW, srcPort: port, dstPort: h.srcPort }, Uint8Array.of(port & 0xff));
          else if (h.op === VsockOp.RW) {
            assert.equal(mem.readU8(addr + VSOCK_HEADER_SIZE), port & 0xff, 'echoed byte');
            echoed++;
            send({ op: VsockOp.SHUTDOWN, flags: 3, srcPort: port, dstPort: h.srcPort, fwdCnt: 1 });
          } else if (h.op === VsockOp.RST) {
            if (open.delete(port)) completed++;
          }
          rxq.post(addr, RX_BUF, true);
          reposted = true;
        }
        if (reposted) transport.write(0x050, 4, 0);
      }
      const seconds = (performance.now() - t0) / 1000;
      assert.equal(completed, TOTAL, `round ${round}: every connection completed`);
      assert.equal(echoed, TOTAL, `round ${round}: every connection echoed`);
      rates.push(completed / seconds);
    }
    vsock.close();
    echo.close();
    t.diagnostic(
      `rounds of ${TOTAL} connect/echo/close cycles: ${rates.map((r) => r.toFixed(0)).join(', ')} per second`,
    );
    assert.ok(Math.max(...rates) >= 1000, `best ${Math.max(...rates).toFixed(0)} connections/s`);
    assert.equal(transport.failure, undefined);
  },
);

test(
  'virtio-vsock: transmit completions and a closing RST wait briefly to share an interrupt, never indefinitely',
  { timeout: 30_000 },
  async () => {
    const dir = join(tmp, 'irq');
    mkdirSync(dir);
    const echo = createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echo.listen(join(dir, '00000002.00000007'), resolve));
    let raised = 0;
    let level = false;
    const { vsock, mem, transport, rxq, txq } = activate(dir, {
      set(on: boolean) {
        if (on && !level) raised++;
        level = on;
      },
    });
    const ack = () => transport.write(0x064, 4, transport.read(0x060, 4));
    try {
      for (let i = 0; i < 16; i++) rxq.post(RAM + 0x100000 + i * RX_BUF, RX_BUF, true);
      transport.write(0x050, 4, 0);
      let txSlot = 0;
      const send = (h: Partial<VsockHeader>) => {
        const addr = RAM + 0x200000 + txSlot++ * 128;
        mem.write(addr, encodeVsockHeader(guestHeader({ srcPort: 1000, ...h })));
        assert.ok(txq.post(addr, VSOCK_HEADER_SIZE, false));
        transport.write(0x050, 4, 1);
      };
      const rxOps = () =>
        rxq.takeUsed().map(([addr]) => decodeVsockHeader(mem.slice(addr, VSOCK_HEADER_SIZE)).op);
      const waitFor = async (what: () => boolean, ms: number) => {
        const t0 = performance.now();
        while (!what() && performance.now() - t0 < ms) await new Promise((r) => setTimeout(r, 1));
        return what();
      };

      send({ op: VsockOp.REQUEST });
      assert.equal(raised, 0, 'the REQUEST completion waits for the RESPONSE');
      assert.equal(txq.takeUsed().length, 1, 'the REQUEST buffer is back in the ring at once');
      const ops: number[] = [];
      const collect = () => {
        ops.push(...rxOps());
        return ops.length > 0;
      };
      assert.ok(await waitFor(collect, 2000), 'RESPONSE');
      assert.deepEqual(ops, [VsockOp.RESPONSE]);
      // The interrupt line is level-triggered and not yet acknowledged: one interrupt announced both
      // (whether the RESPONSE came within the 2 ms or the completion's timer went off first).
      assert.equal(raised, 1);
      ack();

      // A packet that draws no answer: its completion is in the used ring at once, its interrupt soon.
      send({ op: VsockOp.CREDIT_UPDATE });
      assert.equal(txq.takeUsed().length, 1);
      assert.equal(raised, 1);
      assert.ok(await waitFor(() => raised === 2, 1000), 'deferred transmit interrupt arrives');
      ack();

      // The guest closes: the RST is in the ring at once, its interrupt follows within milliseconds.
      send({ op: VsockOp.SHUTDOWN, flags: 3 });
      assert.deepEqual(rxOps(), [VsockOp.RST]);
      assert.ok(await waitFor(() => raised === 3, 1000), 'deferred RST interrupt arrives');
      assert.equal(vsock.connectionCount, 0);
      assert.ok(vsock.stats.interruptsDeferred >= 3);
      assert.equal(transport.failure, undefined);
    } finally {
      vsock.close();
      echo.close();
    }
  },
);

test(
  'virtio-vsock: the host events of one event-loop turn wake the guest once, after all of them',
  { timeout: 30_000 },
  async () => {
    const dir = join(tmp, 'wake');
    mkdirSync(dir);
    const echo = createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echo.listen(join(dir, '00000002.00000007'), resolve));
    const { vsock, mem, transport, rxq, txq } = activate(dir, { set() {} });
    // Each wake records how many RESPONSEs were in the receive ring by then.
    const wakes: number[] = [];
    let responses = 0;
    vsock.wakeGuest = () => {
      for (const [addr] of rxq.takeUsed())
        if (decodeVsockHeader(mem.slice(addr, VSOCK_HEADER_SIZE)).op === VsockOp.RESPONSE) responses++;
      wakes.push(responses);
    };
    try {
      for (let i = 0; i < 32; i++) rxq.post(RAM + 0x100000 + i * RX_BUF, RX_BUF, true);
      transport.write(0x050, 4, 0);
      // Eight connection requests in one kick: eight Unix connects, whose results Node reports together.
      const CONNECTIONS = 8;
      for (let i = 0; i < CONNECTIONS; i++) {
        const addr = RAM + 0x200000 + i * 128;
        mem.write(addr, encodeVsockHeader(guestHeader({ op: VsockOp.REQUEST, srcPort: 2000 + i })));
        assert.ok(txq.post(addr, VSOCK_HEADER_SIZE, false));
      }
      transport.write(0x050, 4, 1);
      const t0 = performance.now();
      while (responses < CONNECTIONS && performance.now() - t0 < 5000)
        await new Promise((r) => setTimeout(r, 1));
      assert.equal(responses, CONNECTIONS, 'every connection answered');
      assert.ok(
        wakes.length < CONNECTIONS,
        `woken ${wakes.length} times for ${CONNECTIONS} answers (RESPONSEs seen at each wake: ${wakes.join(', ')})`,
      );
      assert.equal(transport.failure, undefined);
    } finally {
      vsock.close();
      echo.close();
    }
  },
);
