import { RiscvHart } from '../cpu/riscv/hart.js';
import { Clint } from '../devices/clint.js';
import { GoldfishRtc } from '../devices/goldfish-rtc.js';
import { Plic } from '../devices/plic.js';
import { type PowerEvent, SifiveTest } from '../devices/syscon.js';
import { Ns16550a } from '../devices/uart.js';
import type { VirtioDevice } from '../virtio/device.js';
import { VirtioMmioTransport } from '../virtio/mmio.js';
import { StopReason } from './backend.js';
import { MmioBus } from './bus.js';
import { Clock } from './clock.js';
import { MIP_STIP } from './interrupts.js';
import { VIRT, virtioSlotBase } from './layout.js';
import { GuestMemory } from './memory.js';

/** How the machine stopped. */
export type MachineExit =
  | { kind: 'poweroff'; code: number }
  | { kind: 'reset' }
  | { kind: 'stopped' }
  | { kind: 'error'; message: string };

export interface VirtMachineOptions {
  memorySize: number;
  /** Bytes the guest writes to the UART. */
  onConsoleOutput?: (byte: number) => void;
  /** Devices for the virtio-mmio slots (index = slot). */
  virtioDevices?: VirtioDevice[];
  /** Called whenever the run loop yields to the host event loop (flush buffered output there). */
  onYield?: () => void;
}

/** Instructions per batch between device/timer polls; small enough for timer latency, big enough to be cheap. */
const BATCH = 20_000;
/** Batches between yields to the host event loop (console input, timers, stop requests). */
const BATCHES_PER_YIELD = 25;

/** The QEMU-`virt`-shaped machine: RAM, bus, hart, CLINT, PLIC, UART, test device, RTC, virtio slots. */
export class VirtMachine {
  readonly memory: GuestMemory;
  readonly bus = new MmioBus();
  readonly clock = new Clock();
  readonly hart: RiscvHart;
  readonly clint: Clint;
  readonly plic: Plic;
  readonly uart: Ns16550a;
  readonly rtc: GoldfishRtc;
  readonly virtio: VirtioMmioTransport[] = [];
  /** Set by the built-in SBI: S-mode timer deadline in ticks (drives STIP directly). */
  supervisorTimecmp = Number.MAX_SAFE_INTEGER;
  private exit: MachineExit | undefined;
  private paused = false;
  private wake: (() => void) | undefined;
  private wakeTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(opts: VirtMachineOptions) {
    this.memory = new GuestMemory(VIRT.ram.base, opts.memorySize, RiscvHart.cpuAreaBytes(opts.memorySize));
    this.hart = new RiscvHart({ memory: this.memory, bus: this.bus, readTime: () => this.clock.ticks() });
    this.clint = new Clint(this.hart, () => this.clock.ticks());
    this.plic = new Plic(this.hart, VIRT.plic.sources);
    this.onYield = opts.onYield;
    const out = opts.onConsoleOutput ?? (() => {});
    this.uart = new Ns16550a(this.plic.line(VIRT.uart.irq), out);
    this.rtc = new GoldfishRtc(this.plic.line(VIRT.rtc.irq));
    this.bus.map(VIRT.testDevice.base, VIRT.testDevice.size, new SifiveTest((e) => this.power(e)));
    this.bus.map(VIRT.rtc.base, VIRT.rtc.size, this.rtc);
    this.bus.map(VIRT.clint.base, VIRT.clint.size, this.clint);
    this.bus.map(VIRT.plic.base, VIRT.plic.size, this.plic);
    this.bus.map(VIRT.uart.base, VIRT.uart.size, this.uart);
    const devices = opts.virtioDevices ?? [];
    for (let slot = 0; slot < VIRT.virtio.count; slot++) {
      const transport = new VirtioMmioTransport(
        this.memory,
        this.plic.line(VIRT.virtio.firstIrq + slot),
        devices[slot],
      );
      this.virtio.push(transport);
      this.bus.map(virtioSlotBase(slot), VIRT.virtio.stride, transport);
    }
  }

  private readonly onYield: (() => void) | undefined;

  /** Power-off/reset requests from the test device or the SBI. The first request wins. */
  power(e: PowerEvent): void {
    if (!this.exit) this.exit = e;
    this.hart.requestStop();
  }

  /** Stops the machine with an error (e.g. a trap into M-mode with no firmware to take it). */
  fail(message: string): void {
    if (!this.exit) this.exit = { kind: 'error', message };
    this.hart.requestStop();
  }

  /** The built-in SBI's S-mode timer: STIP follows mtime >= deadline. */
  setSupervisorTimer(deadline: number): void {
    this.supervisorTimecmp = Math.min(deadline, Number.MAX_SAFE_INTEGER);
    this.hart.setPending(MIP_STIP, this.clock.ticks() >= this.supervisorTimecmp);
  }

  /** Host-side input for the UART; wakes an idle guest. */
  consoleInput(bytes: Uint8Array): number {
    const n = this.uart.receive(bytes);
    this.kick();
    return n;
  }

  /** Wakes the run loop if it sleeps in WFI (device interrupts call this). */
  kick(): void {
    const w = this.wake;
    if (w) {
      this.wake = undefined;
      if (this.wakeTimer) clearTimeout(this.wakeTimer);
      w();
    }
  }

  pause(): void {
    this.paused = true;
    this.clock.pause();
  }

  resume(): void {
    this.paused = false;
    this.clock.resume();
    this.kick();
  }

  stop(): void {
    if (!this.exit) this.exit = { kind: 'stopped' };
    this.hart.requestStop();
    this.kick();
  }

  private updateTimers(): void {
    this.clint.update();
    if (this.supervisorTimecmp !== Number.MAX_SAFE_INTEGER) {
      this.hart.setPending(MIP_STIP, this.clock.ticks() >= this.supervisorTimecmp);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.wakeTimer = setTimeout(() => this.kick(), Math.max(0, Math.min(ms, 1000)));
    });
  }

  /** Runs until power-off, reset or stop(). Idle guests sleep on host timers instead of spinning. */
  async run(): Promise<MachineExit> {
    for (;;) {
      for (let i = 0; i < BATCHES_PER_YIELD && !this.exit && !this.paused; i++) {
        this.updateTimers();
        const reason = this.hart.run(BATCH);
        if (reason === StopReason.Idle) {
          this.updateTimers();
          if (this.hart.hasWakeup()) continue;
          const deadline = Math.min(this.clint.mtimecmp, this.supervisorTimecmp);
          this.onYield?.();
          await this.sleep(this.clock.msUntil(deadline));
          i = 0;
        }
      }
      this.onYield?.();
      if (this.exit) break;
      if (this.paused) await this.sleep(1000);
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.rtc.close();
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.onYield?.();
    return this.exit;
  }
}
