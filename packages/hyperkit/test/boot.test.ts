import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { riscvQemuArgs } from '@kitset/testkit';
import { DEFAULT_OPENSBI } from '../src/boot/loader.js';
import { createVM } from '../src/vm.js';
import { HAVE_QEMU, guestDir, repoRoot } from './harness.js';

const MARKER = 'KITSET-INIT-OK';
const guest = guestDir();
const noGuest = 'guest artefacts not built: run bash guest/riscv/build.sh (scripts/prepare.d does it in CI)';
/** The package's bin: the bundled build (scripts/bundle.mjs), what `hyperkit` runs. */
const CLI = join(repoRoot(), 'packages/hyperkit/dist/bundle/cli.js');
const tmp = mkdtempSync(join(tmpdir(), 'hk-boot-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function bootToMarker(
  firmware: 'builtin' | 'opensbi',
): Promise<{ output: string; ms: number; exit: unknown }> {
  const t0 = performance.now();
  const vm = await createVM({
    memory: '256M',
    kernel: join(guest!, 'Image'),
    initrd: join(guest!, 'initrd.cpio.gz'),
    cmdline: 'console=ttyS0',
    firmware,
  });
  let output = '';
  let ms = 0;
  vm.console.output.on('data', (d: Buffer) => {
    output += d.toString('latin1');
    if (ms === 0 && output.includes(MARKER)) ms = performance.now() - t0;
  });
  const timer = setTimeout(() => vm.stop(), 60_000);
  const exit = await vm.run();
  clearTimeout(timer);
  return { output, ms, exit };
}

describe('Linux guest boots to init', { concurrency: 1 }, () => {
  test('with the built-in SBI (kernel entered in S-mode)', { timeout: 90_000 }, async (t) => {
    if (!guest) return t.skip(noGuest);
    const r = await bootToMarker('builtin');
    assert.ok(r.output.includes(MARKER), `no marker in:\n${r.output.slice(-2000)}`);
    assert.match(r.output, /kitset-init: Linux 6\.1\.\d+ .* riscv64/);
    assert.deepEqual(r.exit, { kind: 'poweroff', code: 0 });
    t.diagnostic(`boot to marker ${r.ms.toFixed(0)} ms`);
  });

  test('through Debian OpenSBI fw_jump in M-mode', { timeout: 90_000 }, async (t) => {
    if (!guest) return t.skip(noGuest);
    if (!existsSync(DEFAULT_OPENSBI)) return t.skip(`${DEFAULT_OPENSBI} missing (apt-get install opensbi)`);
    const r = await bootToMarker('opensbi');
    assert.match(r.output, /OpenSBI v1\.\d/);
    assert.ok(r.output.includes(MARKER), `no marker in:\n${r.output.slice(-2000)}`);
    assert.deepEqual(r.exit, { kind: 'poweroff', code: 0 });
    t.diagnostic(`boot to marker ${r.ms.toFixed(0)} ms`);
  });

  test('the same artefacts on qemu-system-riscv64 (reference)', { timeout: 60_000 }, async (t) => {
    if (!guest) return t.skip(noGuest);
    if (!HAVE_QEMU) return t.skip('qemu-system-riscv64 not installed');
    const out = join(tmp, 'qemu-console.txt');
    const code = await new Promise<number | null>((resolve) => {
      const child = execFile(
        'qemu-system-riscv64',
        riscvQemuArgs({
          kernel: join(guest!, 'Image'),
          initrd: join(guest!, 'initrd.cpio.gz'),
          append: 'console=ttyS0',
          serial: `file:${out}`,
        }),
        { timeout: 50_000, killSignal: 'SIGKILL' },
        (error) => resolve(error ? (typeof error.code === 'number' ? error.code : null) : 0),
      );
      child.stdin?.end();
    });
    assert.equal(code, 0);
    assert.ok(readFileSync(out, 'latin1').includes(MARKER));
  });

  test('the hyperkit CLI boots it and exits 0 on power-off', { timeout: 90_000 }, (t) => {
    if (!guest) return t.skip(noGuest);
    const r = spawnSync(
      process.execPath,
      [
        CLI,
        '-m',
        '256M',
        '-l',
        'com1,stdio',
        '-f',
        `kexec,${join(guest, 'Image')},${join(guest, 'initrd.cpio.gz')},console=ttyS0`,
      ],
      { encoding: 'latin1', timeout: 80_000, input: '' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.includes(MARKER));
  });
});

/** A synthetic RISC-V Image: a valid header, `payload` bytes, claiming `imageSize`. */
function fakeImage(payload: number, imageSize: number): Uint8Array {
  const data = new Uint8Array(Math.max(payload, 64));
  const dv = new DataView(data.buffer);
  dv.setBigUint64(8, 0x200000n, true);
  dv.setBigUint64(16, BigInt(imageSize), true);
  data.set(new TextEncoder().encode('RISCV\0\0\0RSC\x05'), 48);
  return data.subarray(0, payload);
}

function cli(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000, input: '' });
  return { status: r.status, stderr: r.stderr };
}

describe('bad input is a clear error and exit status 1', () => {
  const goodImage = join(tmp, 'ok.Image');
  writeFileSync(goodImage, fakeImage(64 * 1024, 96 * 1024));
  const cpio = join(tmp, 'ok.cpio');
  // minimal newc archive: just the trailer
  const trailerName = 'TRAILER!!!\0';
  const header = `070701${'00000000'.repeat(11)}${trailerName.length.toString(16).padStart(8, '0')}00000000`;
  writeFileSync(cpio, Buffer.concat([Buffer.from(header + trailerName), Buffer.alloc(4)]));

  const cases: [string, () => string[], RegExp][] = [
    [
      'corrupt kernel',
      () => {
        writeFileSync(join(tmp, 'junk'), Buffer.alloc(4096, 0x41));
        return ['-f', `kexec,${join(tmp, 'junk')},,console=ttyS0`];
      },
      /kernel: not a RISC-V Linux Image/,
    ],
    [
      'truncated kernel (header only)',
      () => {
        writeFileSync(join(tmp, 'short'), fakeImage(40, 4096));
        return ['-f', `kexec,${join(tmp, 'short')},,console=ttyS0`];
      },
      /kernel: truncated/,
    ],
    [
      'truncated kernel (cut in the middle)',
      () => {
        const src = guest ? readFileSync(join(guest, 'Image')) : Buffer.from(fakeImage(1 << 20, 1 << 20));
        writeFileSync(join(tmp, 'cut'), src.subarray(0, src.length >> 2));
        return ['-f', `kexec,${join(tmp, 'cut')},,console=ttyS0`];
      },
      /kernel: truncated/,
    ],
    ['missing kernel file', () => ['-f', `kexec,${join(tmp, 'nope')},,x`], /cannot read kernel .*ENOENT/],
    [
      'truncated gzip initrd',
      () => {
        const gz = spawnSync('gzip', ['-c', cpio]).stdout as Buffer;
        writeFileSync(join(tmp, 'cut.gz'), gz.subarray(0, gz.length - 6));
        return ['-f', `kexec,${goodImage},${join(tmp, 'cut.gz')},x`];
      },
      /initrd: gzip data is corrupt or truncated/,
    ],
    [
      'initrd that is not a cpio archive',
      () => {
        writeFileSync(
          join(tmp, 'notcpio'),
          'hello world, not an archive at all........................................................................................',
        );
        return ['-f', `kexec,${goodImage},${join(tmp, 'notcpio')},x`];
      },
      /initrd: not a newc cpio archive/,
    ],
    [
      'corrupt DTB',
      () => {
        writeFileSync(join(tmp, 'bad.dtb'), Buffer.from('d00dfeed0000', 'hex'));
        return ['--dtb', join(tmp, 'bad.dtb'), '-f', `kexec,${goodImage},${cpio},x`];
      },
      /invalid device tree blob/,
    ],
    [
      'too little memory',
      () => ['-m', '8M', '-f', `kexec,${goodImage},${cpio},x`],
      /too little .* give at least \d+ MiB/,
    ],
    [
      'unknown -s device',
      () => ['-s', '3,virtio-bogus', '-f', `kexec,${goodImage},,x`],
      /unknown device "virtio-bogus"/,
    ],
    ['unknown option', () => ['--frobnicate'], /unknown option "--frobnicate"/],
    ['bad memory size', () => ['-m', 'lots', '-f', `kexec,${goodImage},,x`], /bad memory size "lots"/],
  ];
  for (const [name, args, message] of cases) {
    test(name, { timeout: 30_000 }, () => {
      const r = cli(args());
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /^hyperkit: /);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /internal error| {4}at /);
    });
  }
});

describe('a guest running nonsense gets architectural traps, never a host exception', () => {
  for (const firmware of ['none', 'builtin'] as const) {
    test(`random bytes as the kernel (firmware ${firmware})`, { timeout: 20_000 }, async () => {
      const image = fakeImage(256 * 1024, 256 * 1024);
      let seed = 12345;
      for (let i = 64; i < image.length; i++) {
        seed = (Math.imul(seed, 1103515245) + 12345) | 0;
        image[i] = seed >>> 24;
      }
      image.fill(0, 0, 8); // start with an illegal instruction
      const vm = await createVM({ memory: '64M', kernel: image, firmware });
      vm.console.output.resume();
      const timer = setTimeout(() => vm.stop(), 500);
      const exit = await vm.run();
      clearTimeout(timer);
      const hart = vm.machine.hart;
      // the first instruction is illegal; the trap vector is 0, where nothing is mapped: fetch faults forever
      if (firmware === 'none') {
        assert.deepEqual(exit, { kind: 'stopped' });
        assert.ok([1, 2, 5, 7].includes(hart.mcauseLo), `mcause ${hart.mcauseLo}`);
      } else {
        // traps are delegated to S; with stvec = 0 the guest faults in a loop until stopped
        assert.deepEqual(exit, { kind: 'stopped' });
        assert.ok([1, 2, 5, 7, 12, 13, 15].includes(hart.scauseLo), `scause ${hart.scauseLo}`);
      }
    });
  }
});

describe('VM API', () => {
  test('pause, resume and stop', { timeout: 30_000 }, async (t) => {
    if (!guest) return t.skip(noGuest);
    const vm = await createVM({
      memory: '128M',
      kernel: join(guest, 'Image'),
      initrd: join(guest, 'initrd.cpio.gz'),
    });
    vm.console.output.resume();
    const running = vm.run();
    await new Promise((r) => setTimeout(r, 100));
    vm.pause();
    await new Promise((r) => setTimeout(r, 50));
    const frozen = vm.instructionsRetired;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(vm.instructionsRetired, frozen, 'a paused VM executes nothing');
    vm.resume();
    await new Promise((r) => setTimeout(r, 50));
    vm.stop();
    const exit = await running;
    assert.ok(exit.kind === 'stopped' || exit.kind === 'poweroff');
    assert.ok(vm.instructionsRetired >= frozen);
  });
});
