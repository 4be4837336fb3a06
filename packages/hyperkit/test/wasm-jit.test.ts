import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ByteWriter } from '../src/cpu/riscv/wasm-encoder.js';
import { GuestMemory } from '../src/machine/memory.js';
import {
  type ExecMode,
  HAVE_QEMU,
  HAVE_TOOLCHAIN,
  type RunResult,
  buildProgram,
  cleanupBuilds,
  runOurs,
  runQemu,
} from './harness.js';

after(cleanupBuilds);

describe('WebAssembly encoder', () => {
  test('LEB128 as the WebAssembly spec gives it', () => {
    const enc = (f: (w: ByteWriter) => void) => [
      ...(() => {
        const w = new ByteWriter(4);
        f(w);
        return w.finish();
      })(),
    ];
    assert.deepEqual(
      enc((w) => w.u32(624485)),
      [0xe5, 0x8e, 0x26],
    );
    assert.deepEqual(
      enc((w) => w.s32(-123456)),
      [0xc0, 0xbb, 0x78],
    );
    assert.deepEqual(
      enc((w) => w.s32(63)),
      [0x3f],
    );
    assert.deepEqual(
      enc((w) => w.s32(64)),
      [0xc0, 0x00],
    );
    assert.deepEqual(
      enc((w) => w.s32(-64)),
      [0x40],
    );
    assert.deepEqual(
      enc((w) => w.s64(-(2n ** 63n))),
      [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f],
    );
    assert.deepEqual(
      enc((w) => w.s64Number(0x1_0000_0000)),
      [0x80, 0x80, 0x80, 0x80, 0x10],
    );
  });
});

describe('guest memory backing', () => {
  test('with a CPU area RAM lives in a WebAssembly.Memory, views cover RAM only, bounds still checked', () => {
    const mem = new GuestMemory(0x8000_0000, 1 << 20, 200_000);
    assert.ok(mem.cpuArea);
    assert.equal(mem.cpuArea.offset, 1 << 20);
    assert.ok(mem.buffer.byteLength >= mem.cpuArea.offset + mem.cpuArea.size);
    assert.equal(mem.bytes.length, 1 << 20);
    assert.equal(mem.view.byteLength, 1 << 20);
    mem.writeU32(0x8000_0000 + (1 << 20) - 4, 0xdeadbeef);
    assert.equal(mem.readU32(0x8000_0000 + (1 << 20) - 4), 0xdeadbeef);
    assert.throws(() => mem.readU8(0x8000_0000 + (1 << 20)), { code: 'ERR_GUEST_MEMORY_RANGE' });
  });
  test('without one it is a plain ArrayBuffer of exactly the RAM size', () => {
    const mem = new GuestMemory(0x8000_0000, 1 << 16);
    assert.equal(mem.cpuArea, undefined);
    assert.equal(mem.buffer.byteLength, 1 << 16);
  });
});

/**
 * test/riscv/jitcheck.c run by the interpreter, with every block translated to JavaScript, and with every
 * block translated to WebAssembly: self-modifying code (with and without FENCE.I), a trap in the middle of
 * a hot loop (exact mepc and retired count), M-extension edge cases in hot loops, a timer interrupt reaching
 * a hot loop. The three transcripts must be identical; QEMU must agree on everything but retired counts.
 */
describe('translated code vs the interpreter and QEMU', { concurrency: 1 }, () => {
  const runs = new Map<ExecMode, RunResult>();
  for (const mode of ['interpreter', 'wasm-interp', 'jit-all', 'wasm-all', 'wasm-batched'] as ExecMode[]) {
    test(`jitcheck.c (${mode})`, { timeout: 60_000 }, async (t) => {
      if (!HAVE_TOOLCHAIN) return t.skip('riscv64-linux-gnu-gcc not installed');
      const ours = await runOurs(buildProgram('jitcheck.c'), 30_000, 128 << 20, mode);
      assert.deepEqual(ours.exit, { kind: 'poweroff', code: 0 });
      assert.match(ours.output, /\ntimer-ticks=0000000000000001\ndone\n$/);
      runs.set(mode, ours);
      if (mode === 'wasm-all' || mode === 'wasm-batched') {
        // most of the program must really have run as WebAssembly
        assert.ok(
          ours.wasmInstructions > 0.8 * ours.instructions,
          `${ours.wasmInstructions} of ${ours.instructions} instructions ran in WebAssembly`,
        );
      }
      if (mode === 'wasm-interp') {
        // the WebAssembly interpreter ran it, not the JavaScript one
        assert.ok(
          ours.interpInstructions > 0.8 * ours.instructions,
          `${ours.interpInstructions} of ${ours.instructions} instructions ran in the WebAssembly interpreter`,
        );
      }
      const reference = runs.get('interpreter');
      if (reference && mode !== 'interpreter') assert.equal(ours.output, reference.output);
    });
  }
  test('jitcheck.c on QEMU', { timeout: 60_000 }, async (t) => {
    if (!HAVE_TOOLCHAIN) return t.skip('riscv64-linux-gnu-gcc not installed');
    if (!HAVE_QEMU) return t.skip('qemu-system-riscv64 not installed');
    const ours = runs.get('interpreter');
    if (!ours) return t.skip('our run failed');
    const ref = await runQemu(buildProgram('jitcheck.c'), 30_000);
    assert.equal(ref.code, 0);
    const withoutCounts = (s: string) => s.replace(/^instret[^\n]*\n/gm, '');
    assert.equal(withoutCounts(ours.output), withoutCounts(ref.output));
    assert.match(ours.output, /^instret-at-trap=/m);
  });
});
