import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { GuestMemoryError } from '../src/errors.js';
import { MmioBus } from '../src/machine/bus.js';
import { buildVirtDeviceTree } from '../src/machine/devicetree.js';
import { parseFdt } from '../src/machine/fdt.js';
import { GuestMemory } from '../src/machine/memory.js';
import { VirtMachine } from '../src/machine/virt.js';

describe('GuestMemory', () => {
  test('reads and writes inside RAM, typed error outside', () => {
    const mem = new GuestMemory(0x80000000, 0x10000);
    mem.writeU32(0x80000010, 0xdeadbeef);
    assert.equal(mem.readU32(0x80000010), 0xdeadbeef);
    assert.equal(mem.readU8(0x80000010), 0xef);
    mem.writeU64(0x80000020, 0x1234_5678_9abc);
    assert.equal(mem.readU64(0x80000020), 0x1234_5678_9abc);
    for (const [addr, len] of [
      [0x7fffffff, 1],
      [0x8000fffd, 4],
      [0x80010000, 1],
      [0, 8],
      [Number.NaN, 1],
    ] as const) {
      assert.throws(() => mem.slice(addr, len), GuestMemoryError);
    }
    assert.throws(
      () => mem.readU64(0x8000fffc),
      (e: unknown) => (e as GuestMemoryError).code === 'ERR_GUEST_MEMORY_RANGE',
    );
    assert.equal(mem.slice(0x8000fff0, 16).length, 16);
  });
});

describe('MmioBus', () => {
  test('dispatches by range and rejects overlaps', () => {
    const bus = new MmioBus();
    const writes: number[] = [];
    bus.map(0x1000, 0x100, { name: 'a', read: (off) => off + 1, write: (off, _s, v) => writes.push(off, v) });
    assert.throws(() => bus.map(0x10f0, 0x100, { name: 'b', read: () => 0, write: () => {} }), /overlaps/);
    assert.equal(bus.read(0x1010, 4), 0x11);
    assert.equal(bus.read(0x2000, 4), -1);
    assert.equal(bus.write(0x1004, 1, 7), true);
    assert.equal(bus.write(0x10ff, 4, 7), false);
    assert.deepEqual(writes, [4, 7]);
  });
});

function hasDtc(): boolean {
  return spawnSync('dtc', ['--version']).status === 0;
}

describe('device tree', () => {
  const dtb = buildVirtDeviceTree({
    ramSize: 256 * 1024 * 1024,
    bootargs: 'console=ttyS0 earlycon',
    initrd: { start: 0x88000000, end: 0x88100000 },
    rngSeed: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]),
  });

  test('round-trips through our parser', () => {
    const root = parseFdt(dtb);
    const names = root.children.map((c) => c.name);
    assert.deepEqual(names, ['chosen', 'memory@80000000', 'cpus', 'soc']);
    const soc = root.children.find((c) => c.name === 'soc')!;
    const socNames = soc.children.map((c) => c.name);
    for (const n of ['serial@10000000', 'plic@c000000', 'clint@2000000', 'test@100000', 'rtc@101000']) {
      assert.ok(socNames.includes(n), n);
    }
    assert.equal(socNames.filter((n) => n.startsWith('virtio_mmio@')).length, 8);
  });

  test('dtc decompiles it to the virt layout', { timeout: 20_000 }, (t) => {
    if (!hasDtc()) return t.skip('dtc not installed (apt-get install device-tree-compiler)');
    const dir = mkdtempSync(join(tmpdir(), 'hk-dtb-'));
    try {
      writeFileSync(join(dir, 'virt.dtb'), dtb);
      const dts = execFileSync('dtc', ['-I', 'dtb', '-O', 'dts', join(dir, 'virt.dtb')], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      assert.match(dts, /timebase-frequency = <0x989680>/);
      assert.match(dts, /riscv,isa = "rv64imafdc_zicsr_zifencei_zihintpause"/);
      assert.match(dts, /bootargs = "console=ttyS0 earlycon"/);
      assert.match(dts, /rng-seed = <0x1020304 0x5060708>/);
      assert.match(dts, /linux,initrd-start = <0x00 0x88000000>/);
      assert.match(dts, /reg = <0x00 0x80000000 0x00 0x10000000>/);
      assert.match(dts, /compatible = "syscon-poweroff"/);
      assert.match(dts, /virtio_mmio@10008000/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('rejects corrupt and truncated blobs', () => {
    assert.throws(() => parseFdt(dtb.subarray(0, 20)), /ERR_BAD_DTB|header/);
    const truncated = dtb.slice(0, dtb.length - 64);
    assert.throws(() => parseFdt(truncated), /truncated/);
    const bad = dtb.slice();
    bad[0] = 0;
    assert.throws(() => parseFdt(bad), /magic/);
  });
});

describe('mip', () => {
  // csrrs/csrrc x0, mip, t0
  const csrMip = (f3: number) => ((0x344 << 20) | (5 << 15) | (f3 << 12) | 0x73) >>> 0;
  const MIP_STIP = 1 << 5;
  const MIP_SEIP = 1 << 9;

  for (const [name, f3] of [
    ['CSRRS', 2],
    ['CSRRC', 3],
  ] as const) {
    test(`${name} on mip does not latch the PLIC's SEIP into the software bit`, () => {
      const vm = new VirtMachine({ memorySize: 1 << 20 });
      const base = vm.memory.base;
      vm.memory.writeU32(base, csrMip(f3));
      vm.hart.reset(base, 'M', 0, 0);
      vm.hart.setX(5, f3 === 2 ? MIP_STIP : 0);
      vm.hart.setPending(MIP_SEIP, true); // the external interrupt line is high while the CSR is modified
      vm.hart.run(1);
      assert.equal(vm.hart.instructionsRetired, 1);
      vm.hart.setPending(MIP_SEIP, false); // the PLIC lowers it: mip.SEIP must follow
      assert.equal(vm.hart.mip & MIP_SEIP, 0);
      assert.equal(vm.hart.mip & MIP_STIP, f3 === 2 ? MIP_STIP : 0);
    });
  }
});
