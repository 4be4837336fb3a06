import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { riscvBareMetalGccArgs } from '@kitset/testkit';
import { loadElf } from '../src/boot/elf.js';
import { type MachineExit, VirtMachine } from '../src/machine/virt.js';

/** The repository root: the nearest ancestor holding `.ci/`. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, '.ci'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('repository root (.ci/) not found');
    dir = up;
  }
  return dir;
}

export const TEST_SRC = join(repoRoot(), 'packages/hyperkit/test/riscv');

export function haveCommand(cmd: string, args: string[] = ['--version']): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

export const HAVE_TOOLCHAIN = haveCommand('riscv64-linux-gnu-gcc');
export const HAVE_QEMU = haveCommand('qemu-system-riscv64');

let buildDir: string | undefined;

/** Removes the temporary directory of built programs (call from an `after` hook). */
export function cleanupBuilds(): void {
  if (buildDir) rmSync(buildDir, { recursive: true, force: true });
  buildDir = undefined;
}

/** Compiles a bare-metal test program (C or assembly plus crt.S) into a temp dir; returns the ELF path. */
export function buildProgram(source: string): string {
  buildDir ??= mkdtempSync(join(tmpdir(), 'hk-isa-'));
  const out = join(buildDir, `${source.replace(/\.[cS]$/, '')}.elf`);
  if (existsSync(out)) return out;
  const r = spawnSync(
    'riscv64-linux-gnu-gcc',
    riscvBareMetalGccArgs({ dir: TEST_SRC, sources: [source], out }),
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`building ${source} failed:\n${r.stderr}`);
  return out;
}

export interface RunResult {
  output: string;
  exit: MachineExit | { kind: 'timeout' };
  instructions: number;
  /** Instructions retired inside WebAssembly regions. */
  wasmInstructions: number;
  /** Instructions retired in the WebAssembly interpreter. */
  interpInstructions: number;
}

/** Runs a bare-metal ELF on our machine (M-mode at its entry) with a wall-clock limit. */
/**
 * How the hart executes: interpreter only; the WebAssembly interpreter with no translation ('wasm-interp');
 * every block translated on first sight to JavaScript ('jit-all')
 * or to WebAssembly regions ('wasm-all'); warm code queued for WebAssembly and compiled in batches of
 * several pages per module ('wasm-batched'); or the defaults.
 */
export type ExecMode = 'interpreter' | 'wasm-interp' | 'jit-all' | 'wasm-all' | 'wasm-batched' | 'default';

export async function runOurs(
  elf: string,
  timeoutMs = 20_000,
  memorySize = 128 << 20,
  mode: ExecMode = 'default',
): Promise<RunResult> {
  let output = '';
  const vm = new VirtMachine({
    memorySize,
    onConsoleOutput: (b) => {
      output += String.fromCharCode(b);
    },
  });
  const image = loadElf(readFileSync(elf), vm.memory);
  vm.hart.reset(image.entry, 'M', 0, 0);
  if (mode === 'interpreter') vm.hart.jit = false;
  if (mode === 'wasm-interp') {
    vm.hart.wasmThreshold = 0x7fffffff;
    vm.hart.jitThreshold = 65535;
  }
  // the translation modes translate on first sight: block starts stay with the run loop
  if (mode !== 'wasm-interp' && mode !== 'default') vm.hart.wasmInterp = false;
  if (mode === 'jit-all' || mode === 'wasm-all') {
    vm.hart.jit = true;
    vm.hart.wasm = mode === 'wasm-all';
    vm.hart.jitThreshold = 1;
    vm.hart.wasmThreshold = 1;
    vm.hart.wasmAdaptive = false;
    vm.hart.wasmMaxCompiles = 64;
  }
  if (mode === 'wasm-batched') {
    vm.hart.jit = true;
    vm.hart.wasm = true;
    vm.hart.wasmWarmThreshold = 2;
    vm.hart.wasmBatch = 2;
    vm.hart.wasmAdaptive = false;
  }
  const timer = setTimeout(() => vm.stop(), timeoutMs);
  const exit = await vm.run();
  clearTimeout(timer);
  return {
    output,
    exit: exit.kind === 'stopped' ? { kind: 'timeout' } : exit,
    instructions: vm.hart.instructionsRetired,
    wasmInstructions: vm.hart.wasmRetired,
    interpInstructions: vm.hart.interpRetired,
  };
}

/**
 * Runs the same ELF on qemu-system-riscv64 (the reference) and resolves with its UART output. The UART goes
 * to a file: QEMU drops serial output written to a full non-blocking stdout pipe.
 */
export function runQemu(elf: string, timeoutMs = 20_000): Promise<{ output: string; code: number | null }> {
  const outFile = join(mkdtempSync(join(tmpdir(), 'hk-qemu-')), 'uart.txt');
  return new Promise((resolve) => {
    const child = execFile(
      'qemu-system-riscv64',
      [
        '-M',
        'virt',
        '-cpu',
        'rv64,h=false,sstc=false',
        '-bios',
        'none',
        '-kernel',
        elf,
        '-display',
        'none',
        '-serial',
        `file:${outFile}`,
        '-monitor',
        'none',
        '-m',
        '128M',
      ],
      { timeout: timeoutMs, killSignal: 'SIGKILL' },
      (error) => {
        const output = existsSync(outFile) ? readFileSync(outFile, 'latin1') : '';
        rmSync(dirname(outFile), { recursive: true, force: true });
        resolve({ output, code: error ? (typeof error.code === 'number' ? error.code : null) : 0 });
      },
    );
    child.stdin?.end();
  });
}

/** The guest artefacts built by guest/riscv/build.sh, or undefined when they are not built. */
export function guestDir(): string | undefined {
  const cache = process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? '/root', '.cache');
  const dir = join(cache, 'kitset', 'guest-riscv', 'current');
  return existsSync(join(dir, '.complete')) || existsSync(join(dir, 'Image')) ? dir : undefined;
}
