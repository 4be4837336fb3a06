import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { PassThrough, Writable } from 'node:stream';
import { type BootPlan, DEFAULT_OPENSBI, type FirmwareKind, loadBoot } from './boot/loader.js';
import { BuiltinSbi } from './boot/sbi.js';
import { HyperkitError } from './errors.js';
import type { GuestMemory } from './machine/memory.js';
import { type MachineExit, VirtMachine } from './machine/virt.js';
import type { VirtioDevice } from './virtio/device.js';
import { connectDeviceWakeups } from './virtio/devices/wakeups.js';

export interface VmOptions {
  /** Guest RAM: bytes, or a size like "256M" / "1G". */
  memory: number | string;
  /** Kernel Image (optionally gzip-compressed) or ELF: a path or the bytes. */
  kernel: string | Uint8Array;
  initrd?: string | Uint8Array | undefined;
  cmdline?: string | undefined;
  /** Default `builtin` (kernel enters in S-mode, SBI in TypeScript). */
  firmware?: FirmwareKind | undefined;
  /** Firmware image for `opensbi`; defaults to Debian's fw_jump.elf. */
  firmwarePath?: string | undefined;
  /** A device tree blob to use instead of the generated one. */
  dtb?: string | Uint8Array | undefined;
  /** virtio devices, in virtio-mmio slot order. */
  devices?: VirtioDevice[] | undefined;
}

export type VmExit = MachineExit;

const MiB = 1024 * 1024;

/** Parses "256M", "1G", "512K" or a plain byte count. */
export function parseMemorySize(spec: number | string): number {
  if (typeof spec === 'number') return spec;
  const m = /^(\d+)([KMG]?)i?B?$/i.exec(spec.trim());
  if (!m) throw new HyperkitError('ERR_BAD_ARGUMENT', `bad memory size "${spec}" (use e.g. 256M or 1G)`);
  const unit = (m[2] ?? '').toUpperCase();
  const mult = unit === 'G' ? 1024 * MiB : unit === 'M' ? MiB : unit === 'K' ? 1024 : MiB; // bare = MiB, as hyperkit
  return Number(m[1]) * mult;
}

function readInput(
  what: string,
  code: 'ERR_BAD_KERNEL' | 'ERR_BAD_INITRD' | 'ERR_BAD_DTB' | 'ERR_BAD_FIRMWARE',
  v: string | Uint8Array,
): Uint8Array {
  if (typeof v !== 'string') return v;
  try {
    // a Buffer is a Uint8Array: no copy (a kernel Image is megabytes)
    return readFileSync(v);
  } catch (e) {
    throw new HyperkitError(
      code,
      `cannot read ${what} ${v}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

/**
 * Reads a RISC-V Linux Image file straight to where loadBoot places it (RAM base + its header's
 * text_offset), so the megabytes of a kernel are neither buffered nor copied; returns that view of guest
 * memory, or undefined when the file is anything else (gzip, ELF, unreadable, too big): then the caller
 * reads it the usual way, and loadBoot checks it and reports the error.
 */
function readImageInPlace(memory: GuestMemory, path: string): Uint8Array | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const header = new Uint8Array(64);
    if (readSync(fd, header, 0, 64, 0) !== 64) return undefined;
    const dv = new DataView(header.buffer);
    if (dv.getUint32(56, true) !== 0x05435352) return undefined; // "RSC\x05": an Image
    const textOffset = Number(dv.getBigUint64(8, true));
    const size = fstatSync(fd).size;
    if (textOffset % 4096 !== 0 || textOffset + size > memory.size) return undefined;
    const target = memory.bytes.subarray(textOffset, textOffset + size);
    for (let done = 0; done < size; ) {
      const n = readSync(fd, target, done, size - done, done);
      if (n <= 0) return undefined;
      done += n;
    }
    return target;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * A virtual machine: the virt board, one RISC-V hart, a booted kernel. `console.output` carries what the
 * guest prints; bytes written to `console.input` reach the guest's UART.
 */
export class VM {
  readonly machine: VirtMachine;
  readonly plan: BootPlan;
  readonly console: { output: PassThrough; input: Writable };
  private pendingOutput: number[] = [];
  private running: Promise<VmExit> | undefined;

  constructor(opts: VmOptions) {
    const memorySize = parseMemorySize(opts.memory);
    if (memorySize < 4 * MiB || memorySize % 4096 !== 0 || memorySize > 2048 * MiB) {
      throw new HyperkitError(
        'ERR_TOO_LITTLE_MEMORY',
        `guest memory must be a multiple of 4 KiB between 4 MiB and 2048 MiB, got ${memorySize} bytes`,
      );
    }
    const output = new PassThrough();
    this.machine = new VirtMachine({
      memorySize,
      virtioDevices: opts.devices,
      onConsoleOutput: (b) => {
        this.pendingOutput.push(b);
      },
      onYield: () => this.flushOutput(),
    });
    // devices completing work from host events (sockets, 9P) wake a guest idling in WFI
    connectDeviceWakeups(this.machine);
    const firmware = opts.firmware ?? 'builtin';
    const kernel =
      (typeof opts.kernel === 'string' ? readImageInPlace(this.machine.memory, opts.kernel) : undefined) ??
      readInput('kernel', 'ERR_BAD_KERNEL', opts.kernel);
    const initrd = opts.initrd === undefined ? undefined : readInput('initrd', 'ERR_BAD_INITRD', opts.initrd);
    const dtb = opts.dtb === undefined ? undefined : readInput('device tree', 'ERR_BAD_DTB', opts.dtb);
    const firmwareImage =
      firmware === 'opensbi'
        ? readInput('firmware', 'ERR_BAD_FIRMWARE', opts.firmwarePath ?? DEFAULT_OPENSBI)
        : undefined;
    this.plan = loadBoot(this.machine.memory, {
      kernel,
      initrd,
      cmdline: opts.cmdline ?? 'console=ttyS0',
      firmware,
      firmwareImage,
      dtb,
    });
    const hart = this.machine.hart;
    hart.reset(this.plan.entry, this.plan.privilege, this.plan.a0, this.plan.a1);
    if (firmware === 'builtin') {
      const m = this.machine;
      hart.sbi = new BuiltinSbi({
        setTimer: (deadline) => m.setSupervisorTimer(deadline),
        putchar: (b) => this.pendingOutput.push(b),
        getchar: () => m.uart.takeByte(),
        shutdown: (failure) => m.power({ kind: 'poweroff', code: failure ? 1 : 0 }),
        reboot: () => m.power({ kind: 'reset' }),
        machineTrap: (cause, interrupt, pc) =>
          m.fail(
            `the guest trapped into M-mode (${interrupt ? 'interrupt' : 'exception'} ${cause} at pc 0x${pc.toString(16)}), where the built-in SBI has no handler`,
          ),
      });
      BuiltinSbi.configureHart(hart);
    }
    const input = new Writable({
      write: (chunk: Buffer, _enc, callback) => {
        this.feedInput(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength), callback);
      },
    });
    this.console = { output, input };
  }

  /** Delivers console input as the UART FIFO drains (backpressure instead of unbounded buffering). */
  private feedInput(bytes: Uint8Array, done: () => void): void {
    const n = this.machine.consoleInput(bytes);
    if (n === bytes.length) done();
    else setTimeout(() => this.feedInput(bytes.subarray(n), done), 5);
  }

  private flushOutput(): void {
    if (this.pendingOutput.length === 0) return;
    const chunk = Buffer.from(this.pendingOutput);
    this.pendingOutput = [];
    this.console.output.write(chunk);
  }

  /** Runs until the guest powers off or resets, stop() is called, or the VM fails. */
  run(): Promise<VmExit> {
    this.running ??= this.machine.run().then((exit) => {
      this.flushOutput();
      this.console.output.end();
      return exit;
    });
    return this.running;
  }

  pause(): void {
    this.machine.pause();
  }

  resume(): void {
    this.machine.resume();
  }

  /** Stops the VM at the next instruction boundary; run() then resolves with `stopped`. */
  stop(): void {
    this.machine.stop();
  }

  get instructionsRetired(): number {
    return this.machine.hart.instructionsRetired;
  }
}

/** Creates a VM with the kernel, initrd and device tree loaded; call `run()` to start it. */
export async function createVM(opts: VmOptions): Promise<VM> {
  return new VM(opts);
}
