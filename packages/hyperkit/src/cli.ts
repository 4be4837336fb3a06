#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import type { FirmwareKind } from './boot/loader.js';
import { HyperkitError } from './errors.js';
import {
  type ClosableDevice,
  type DeviceSpec,
  closeDevices,
  createDevices,
  parseDeviceSpec,
} from './virtio/devices/registry.js';
import { type VmOptions, createVM } from './vm.js';

const USAGE = `usage: hyperkit -m SIZE -f kexec,KERNEL,INITRD,"CMDLINE" [-l com1,stdio] [-s SLOT,DEVICE]...
                [--firmware builtin|opensbi|none] [--firmware-path FILE] [--dtb FILE] [-c 1]

  -m SIZE        guest memory (e.g. 256M, 1G)
  -f kexec,...   boot a Linux kernel Image (or ELF) with an initrd (may be empty) and command line
  -l com1,stdio  connect the guest's serial console (NS16550A, ttyS0) to stdin/stdout
  -s [SLOT,]DEV  add a virtio device (hostbridge and lpc are accepted for compatibility):
                 virtio-blk,IMAGE[,ro]  (raw or qcow2)   virtio-9p,path=DIR,tag=TAG[,ro]
                 virtio-sock,guest_cid=N,path=DIR[,guest_forwards=P;Q]
                 virtio-vpnkit,path=SOCKET,uuid=UUID      virtio-rnd
                 virtio-console[,stdio|,socket=PATH]  (/dev/hvcN: output to stdout; stdio: stdin too;
                                socket: a Unix socket one client at a time reads and types on)
                 virtio-net,tap=NAME[,netns=PATH][,mac=MAC][,mtu=N][,offloads=off]  (a Linux TAP device,
                                with checksum/TSO offloads through vnet headers unless off; needs root)
  --firmware     builtin: kernel enters in S-mode, SBI answered by hyperkit (default)
                 opensbi: Debian's OpenSBI fw_jump in M-mode, as QEMU does
                 none:    run the kernel ELF/Image in M-mode with no firmware (bare metal)
exit status: 0 guest powered off, 2 guest reset, 1 error`;

export interface CliResult {
  options: VmOptions;
  consoleStdio: boolean;
  /** virtio devices from -s, created by main() (they may open files and sockets). */
  deviceSpecs: DeviceSpec[];
}

function usageError(msg: string): never {
  throw new HyperkitError('ERR_BAD_ARGUMENT', `${msg}\n${USAGE}`);
}

/** Parses hyperkit's command line into VM options. */
export function parseArgs(argv: string[]): CliResult {
  let memory: string | undefined;
  let kexec: { kernel: string; initrd?: string | undefined; cmdline: string } | undefined;
  let consoleStdio = false;
  let firmware: FirmwareKind = 'builtin';
  let firmwarePath: string | undefined;
  let dtb: string | undefined;
  const deviceSpecs: DeviceSpec[] = [];
  const value = (i: number, flag: string) => {
    const v = argv[i + 1];
    if (v === undefined) usageError(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    switch (a) {
      case '-m':
        memory = value(i++, a);
        break;
      case '-c': {
        const n = value(i++, a);
        if (n !== '1') usageError(`only one vCPU is supported (-c ${n})`);
        break;
      }
      case '-A':
      case '-u':
      case '-H':
      case '-P':
        break; // ACPI, RTC-in-UTC and halt/pause exits: meaningless or implied here
      case '-U':
        value(i++, a); // UUID: accepted for compatibility
        break;
      case '-l': {
        const spec = value(i++, a);
        if (spec !== 'com1,stdio') usageError(`unsupported console "${spec}" (only com1,stdio)`);
        consoleStdio = true;
        break;
      }
      case '-f': {
        const spec = value(i++, a);
        const parts = spec.split(',');
        if (parts[0] !== 'kexec' || parts.length < 2 || !parts[1]) {
          usageError(`bad -f "${spec}": expected kexec,KERNEL,INITRD,CMDLINE`);
        }
        kexec = { kernel: parts[1]!, initrd: parts[2] || undefined, cmdline: parts.slice(3).join(',') };
        break;
      }
      case '-s': {
        const device = parseDeviceSpec(value(i++, a));
        if (device) deviceSpecs.push(device);
        break;
      }
      case '--firmware': {
        const f = value(i++, a);
        if (f !== 'builtin' && f !== 'opensbi' && f !== 'none') usageError(`unknown firmware "${f}"`);
        firmware = f;
        break;
      }
      case '--firmware-path':
        firmwarePath = value(i++, a);
        break;
      case '--dtb':
        dtb = value(i++, a);
        break;
      case '-h':
      case '--help':
        usageError('');
        break;
      default:
        usageError(`unknown option "${a}"`);
    }
  }
  if (!kexec) usageError('no kernel: give -f kexec,KERNEL,INITRD,CMDLINE');
  const stdinConsoles = deviceSpecs.filter((d) => d.console === 'stdio').length + (consoleStdio ? 1 : 0);
  if (stdinConsoles > 1)
    usageError('stdin can feed one console only: -l com1,stdio or one -s virtio-console,stdio');
  return {
    options: {
      memory: memory ?? '256M',
      kernel: kexec.kernel,
      initrd: kexec.initrd,
      cmdline: kexec.cmdline || 'console=ttyS0',
      firmware,
      firmwarePath,
      dtb,
    },
    consoleStdio,
    deviceSpecs,
  };
}

/** Runs hyperkit; resolves with the process exit status (0 poweroff, 2 reset, 1 error). */
export async function main(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let vm: Awaited<ReturnType<typeof createVM>>;
  let consoleStdio: boolean;
  let devices: ClosableDevice[] = [];
  try {
    const parsed = parseArgs(argv);
    consoleStdio = parsed.consoleStdio;
    devices = await createDevices(parsed.deviceSpecs);
    vm = await createVM({ ...parsed.options, devices });
  } catch (e) {
    closeDevices(devices);
    if (e instanceof HyperkitError) {
      process.stderr.write(`hyperkit: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  if (consoleStdio) {
    vm.console.output.pipe(process.stdout, { end: false });
    process.stdin.pipe(vm.console.input);
  } else {
    vm.console.output.resume(); // discard
  }
  let signalled = false;
  const onSignal = () => {
    signalled = true;
    vm.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const exit = await vm.run();
  closeDevices(devices);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.stdin.unpipe(vm.console.input);
  process.stdin.pause();
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  switch (exit.kind) {
    case 'poweroff':
      if (exit.code === 0) return 0;
      process.stderr.write(`hyperkit: guest powered off reporting failure code ${exit.code}\n`);
      return 1;
    case 'reset':
      return 2;
    case 'error':
      process.stderr.write(`hyperkit: ${exit.message}\n`);
      return 1;
    default:
      if (signalled) process.stderr.write('hyperkit: stopped by signal\n');
      return 1;
  }
}

/**
 * V8 settings for a process whose work is running a guest (the `hyperkit` command; embedders may call it too).
 * WebAssembly regions move from V8's baseline compiler (Liftoff) to its optimising one only after 1e9 units of
 * tiering budget (1.8e6 by default): on a fresh process the boot's regions, each run for a few milliseconds,
 * otherwise kept V8's compiler threads busy (~100 ms of CPU) while the interpreter waited on the second core;
 * a CPU-bound guest's hot regions still tier up (2,018 vs 2,060 MIPS over 1.15 G instructions). Set before any
 * region is compiled; later changes of this flag only affect modules compiled after them.
 */
export function tuneV8ForVm(): void {
  setFlagsFromString('--wasm-tiering-budget=1000000000');
}

const invokedDirectly = (() => {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
})();
if (invokedDirectly) {
  tuneV8ForVm();
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(
        `hyperkit: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
      );
      process.exit(1);
    },
  );
}
