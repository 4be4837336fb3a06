/**
 * `npm run bench -- hyperkit`: HyperKit's RISC-V VM against qemu-system-riscv64 (-M virt, TCG, rv64 with H
 * and Sstc off) in one run, on the same guest artefacts from guest/riscv/build.sh:
 *   - wall time from start to the init marker (KITSET-INIT-OK) booting Image + initrd.cpio.gz
 *     (ours with the built-in SBI and with OpenSBI fw_jump; QEMU with its default OpenSBI). Ours twice: the
 *     `hyperkit` command in a fresh process (spawn to marker, as QEMU), and createVM in this process (the
 *     embedded case; after the first boot V8 has optimised the interpreter and caches identical translations)
 *   - guest instructions per second on a CPU-bound program of ours (packages/hyperkit/test/riscv/cpubound.c:
 *     sieve, insertion sort, hashing, matrix multiply). The program times itself with the `time` CSR on both
 *     machines; the instruction count is our exact retired count (the same binary takes the same path
 *     everywhere; QEMU's minstret without -icount is not an instruction count).
 * Options: --rounds N (median of N boots, default 3), --cpu-rounds N (work rounds in the program, default 40).
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_OPENSBI, createVM } from '@kitset/hyperkit';
import { findRepoRoot, hasCommand, riscvBareMetalGccArgs, riscvQemuArgs } from '@kitset/testkit';
import { type BenchRow, printTable } from './_table.js';

const MARKER = 'KITSET-INIT-OK';
const argv = process.argv.slice(2);
function option(name: string, fallback: number): number {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}
const ROUNDS = option('rounds', 3);
const CPU_ROUNDS = option('cpu-rounds', 40);
const QEMU_CPU = 'rv64,h=false,sstc=false';

function guestDir(): string {
  const cache = process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? '/root', '.cache');
  const dir = join(cache, 'kitset', 'guest-riscv', 'current');
  if (!existsSync(join(dir, 'Image'))) {
    throw new Error(
      `guest artefacts missing in ${dir}: run bash guest/riscv/build.sh (or scripts/prepare.sh)`,
    );
  }
  return dir;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function oursBoot(
  guest: string,
  firmware: 'builtin' | 'opensbi',
): Promise<{ ms: number; instructions: number; split: string }> {
  const t0 = performance.now();
  const vm = await createVM({
    memory: '256M',
    kernel: join(guest, 'Image'),
    initrd: join(guest, 'initrd.cpio.gz'),
    cmdline: 'console=ttyS0',
    firmware,
  });
  let text = '';
  let ms = 0;
  let instructions = 0;
  let split = '';
  vm.console.output.on('data', (d: Buffer) => {
    if (ms !== 0) return;
    text += d.toString('latin1');
    if (text.includes(MARKER)) {
      ms = performance.now() - t0;
      instructions = vm.instructionsRetired;
      split = executionSplit(vm.machine.hart, instructions);
    }
  });
  const timer = setTimeout(() => vm.stop(), 120_000);
  await vm.run();
  clearTimeout(timer);
  if (ms === 0) throw new Error(`our VM (${firmware}) never printed ${MARKER}`);
  return { ms, instructions, split };
}

/** Where our instructions ran: interpreter, JavaScript blocks, WebAssembly regions (percent). */
function executionSplit(
  hart: { wasmRetired: number; blockRetired: number; interpRetired: number },
  total: number,
): string {
  const pct = (n: number) => `${((100 * n) / Math.max(1, total)).toFixed(0)}%`;
  const interpreted = total - hart.wasmRetired - hart.blockRetired - hart.interpRetired;
  return `WebAssembly interpreter ${pct(hart.interpRetired)}, JavaScript interpreter ${pct(interpreted)}, JS blocks ${pct(hart.blockRetired)}, WebAssembly regions ${pct(hart.wasmRetired)}`;
}

/** Resolves with the time from spawning `command` until the marker appears on its stdout. */
function spawnBoot(what: string, command: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    let done = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (!done && text.includes(MARKER)) {
        done = true;
        resolve(performance.now() - t0);
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      if (!done) reject(new Error(`${what} exited without printing the marker`));
    });
  });
}

/**
 * Our `hyperkit` command (the package's bin: the bundled build) in a fresh Node process, timed like QEMU
 * from spawn to the marker: this pays Node's start and V8's warm-up, which boots after the first in one
 * process do not.
 */
function cliBoot(root: string, guest: string): Promise<number> {
  return spawnBoot('hyperkit', process.execPath, [
    join(root, 'packages/hyperkit/dist/bundle/cli.js'),
    '-m',
    '256M',
    '-l',
    'com1,stdio',
    '-f',
    `kexec,${join(guest, 'Image')},${join(guest, 'initrd.cpio.gz')},console=ttyS0`,
  ]);
}

/** Boots QEMU and resolves with the time until the marker appears on its serial port. */
function qemuBoot(guest: string): Promise<number> {
  return spawnBoot(
    'QEMU',
    'qemu-system-riscv64',
    riscvQemuArgs({
      kernel: join(guest, 'Image'),
      initrd: join(guest, 'initrd.cpio.gz'),
      append: 'console=ttyS0',
    }),
  );
}

function buildCpuBound(root: string, dir: string): string {
  const src = join(root, 'packages/hyperkit/test/riscv');
  const out = join(dir, 'cpubound.elf');
  const r = spawnSync(
    'riscv64-linux-gnu-gcc',
    riscvBareMetalGccArgs({
      dir: src,
      sources: ['cpubound.c'],
      out,
      optimize: '-O2',
      defines: [`ROUNDS=${CPU_ROUNDS}`],
    }),
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`building cpubound.c failed:\n${r.stderr}`);
  return out;
}

function parseReport(output: string): { result: string; instructions: number; ticks: number } {
  const field = (name: string) => {
    const m = new RegExp(`^${name}=([0-9a-f]{16})$`, 'm').exec(output);
    if (!m) throw new Error(`cpubound printed no ${name}:\n${output}`);
    return m[1]!;
  };
  return {
    result: field('result'),
    instructions: Number.parseInt(field('instructions'), 16),
    ticks: Number.parseInt(field('ticks'), 16),
  };
}

async function oursCpu(elf: string): Promise<{ output: string; retired: number; split: string }> {
  const vm = await createVM({ memory: '128M', kernel: elf, firmware: 'none' });
  let output = '';
  vm.console.output.on('data', (d: Buffer) => {
    output += d.toString('latin1');
  });
  await vm.run();
  return {
    output,
    retired: vm.instructionsRetired,
    split: executionSplit(vm.machine.hart, vm.instructionsRetired),
  };
}

function qemuCpu(elf: string, dir: string): Promise<string> {
  const out = join(dir, 'qemu-uart.txt');
  return new Promise((resolve, reject) => {
    execFile(
      'qemu-system-riscv64',
      [
        '-M',
        'virt',
        '-cpu',
        QEMU_CPU,
        '-m',
        '128M',
        '-display',
        'none',
        '-monitor',
        'none',
        '-serial',
        `file:${out}`,
        '-bios',
        'none',
        '-kernel',
        elf,
      ],
      { timeout: 120_000, killSignal: 'SIGKILL' },
      (error) => (error ? reject(error) : resolve(readFileSync(out, 'latin1'))),
    );
  });
}

async function main(): Promise<void> {
  for (const tool of ['qemu-system-riscv64', 'riscv64-linux-gnu-gcc']) {
    if (!hasCommand(tool)) throw new Error(`${tool} is not installed: run scripts/install-deps.sh`);
  }
  const guest = guestDir();
  const root = findRepoRoot();
  const dir = mkdtempSync(join(tmpdir(), 'kitset-bench-hyperkit-'));
  try {
    const rows: BenchRow[] = [];
    console.log(`hyperkit bench: booting ${guest}/Image to ${MARKER}, median of ${ROUNDS}`);
    const builtin: number[] = [];
    const opensbi: number[] = [];
    const qemu: number[] = [];
    let bootInstructions = 0;
    let bootSplit = '';
    let opensbiInstructions = 0;
    const fresh: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // the two fresh processes back to back, before this process runs VMs itself: its V8 threads may
      // still be compiling after those, on the cores QEMU and our CLI would share with them
      fresh.push(await cliBoot(root, guest));
      qemu.push(await qemuBoot(guest));
      const b = await oursBoot(guest, 'builtin');
      builtin.push(b.ms);
      bootInstructions = b.instructions;
      bootSplit = b.split;
      if (existsSync(DEFAULT_OPENSBI)) {
        const o = await oursBoot(guest, 'opensbi');
        opensbi.push(o.ms);
        opensbiInstructions = o.instructions;
      }
    }
    const qemuMs = median(qemu);
    console.log(
      `  boot instructions to the marker: ${(bootInstructions / 1e6).toFixed(1)} M (built-in SBI), ` +
        `${(opensbiInstructions / 1e6).toFixed(1)} M (OpenSBI); built-in boot ran ${bootSplit}`,
    );
    rows.push({
      metric: 'boot to init, built-in SBI, fresh process',
      unit: 'ms',
      ours: median(fresh),
      anchor: qemuMs,
      anchorName: 'QEMU + OpenSBI',
      higherIsBetter: false,
    });
    rows.push({
      metric: 'boot to init, built-in SBI, in one process',
      unit: 'ms',
      ours: median(builtin),
      anchor: qemuMs,
      anchorName: 'QEMU + OpenSBI',
      higherIsBetter: false,
    });
    if (opensbi.length > 0) {
      rows.push({
        metric: 'boot to init, OpenSBI fw_jump',
        unit: 'ms',
        ours: median(opensbi),
        anchor: qemuMs,
        anchorName: 'QEMU + OpenSBI',
        higherIsBetter: false,
      });
    }

    console.log(`hyperkit bench: CPU-bound program (${CPU_ROUNDS} rounds), self-timed with the time CSR`);
    const elf = buildCpuBound(root, dir);
    const ours = await oursCpu(elf);
    const oursReport = parseReport(ours.output);
    const qemuReport = parseReport(await qemuCpu(elf, dir));
    if (oursReport.result !== qemuReport.result) {
      throw new Error(`results differ: ours ${oursReport.result}, QEMU ${qemuReport.result}`);
    }
    const n = oursReport.instructions; // exact on ours; the same path on QEMU
    const oursMips = n / (oursReport.ticks / 10_000_000) / 1e6;
    const qemuMips = n / (qemuReport.ticks / 10_000_000) / 1e6;
    console.log(
      `  ${(n / 1e6).toFixed(1)} M instructions; ours ${(oursReport.ticks / 1e4).toFixed(0)} ms, QEMU ${(qemuReport.ticks / 1e4).toFixed(0)} ms; ours ran ${ours.split}`,
    );
    rows.push({
      metric: 'guest instructions per second (CPU-bound)',
      unit: 'MIPS',
      ours: oursMips,
      anchor: qemuMips,
      anchorName: 'QEMU TCG',
      higherIsBetter: true,
    });
    printTable(
      'hyperkit: RISC-V VM vs qemu-system-riscv64 (goals: boot ratio <= 1.0, MIPS ratio >= 0.25)',
      rows,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`bench hyperkit: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
