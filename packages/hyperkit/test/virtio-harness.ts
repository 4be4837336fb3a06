import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { VirtioDevice } from '../src/virtio/device.js';
import { connectDeviceWakeups } from '../src/virtio/devices/index.js';
import { createVM } from '../src/vm.js';
import { guestDir } from './harness.js';

/** The device-test initramfs built by guest/riscv-devtest/build.sh (scripts/prepare.d/40-riscv-devtest.sh). */
export function devtestInitrd(): string | undefined {
  const cache = process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? '/root', '.cache');
  const path = join(cache, 'kitset', 'guest-riscv-devtest', 'current', 'initrd.cpio.gz');
  return existsSync(path) ? path : undefined;
}

export const NO_DEVTEST =
  'guest kernel or device-test initramfs not built: run bash guest/riscv/build.sh and bash guest/riscv-devtest/build.sh';

export interface DevtestRun {
  output: string;
  /** "KT ..." result lines by check name. */
  results: Map<string, string>;
  /** Guest instructions retired between the previous result line (or boot) and each check's result line. */
  instructions: Map<string, number>;
  exit: unknown;
  ms: number;
}

/**
 * Boots the Linux guest with the device-test init and the given devices (built-in SBI), runs the checks
 * named in `tests`, and resolves when the guest powers off (or after `timeoutMs`). `onLine` sees every
 * console line as it arrives (to drive the host side of a check).
 */
export async function runDevtest(
  devices: VirtioDevice[],
  tests: string[],
  opts: { timeoutMs?: number; extraCmdline?: string; onLine?: (line: string) => void } = {},
): Promise<DevtestRun> {
  const guest = guestDir();
  const initrd = devtestInitrd();
  if (!guest || !initrd) throw new Error(NO_DEVTEST);
  const t0 = performance.now();
  const vm = await createVM({
    memory: '128M',
    kernel: join(guest, 'Image'),
    initrd,
    cmdline: `console=ttyS0 quiet ${opts.extraCmdline ?? ''} kitset.test=${tests.join(',')}`,
    devices,
  });
  connectDeviceWakeups(vm.machine);
  let output = '';
  let pending = '';
  const results = new Map<string, string>();
  const instructions = new Map<string, number>();
  let lastRetired = 0;
  vm.console.output.on('data', (d: Buffer) => {
    const text = d.toString('latin1');
    output += text;
    pending += text;
    let nl = pending.indexOf('\n');
    while (nl >= 0) {
      const line = pending.slice(0, nl).replace(/\r$/, '');
      pending = pending.slice(nl + 1);
      const m = /^KT (\S+) (.*)$/.exec(line);
      if (m && m[2] !== 'ready') {
        results.set(m[1]!, m[2]!);
        const retired = vm.machine.hart.instructionsRetired;
        instructions.set(m[1]!, retired - lastRetired);
        lastRetired = retired;
      }
      opts.onLine?.(line);
      nl = pending.indexOf('\n');
    }
  });
  const timer = setTimeout(() => vm.stop(), opts.timeoutMs ?? 60_000);
  const exit = await vm.run();
  clearTimeout(timer);
  return { output, results, instructions, exit, ms: performance.now() - t0 };
}

/** FNV-1a 32-bit, as the guest computes it, in lower-case hex. */
export function fnv1a(bytes: Uint8Array): string {
  let h = 2166136261;
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h.toString(16).padStart(8, '0');
}
