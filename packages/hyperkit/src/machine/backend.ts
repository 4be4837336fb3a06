import type { HartInterruptInputs } from './interrupts.js';

/** Why a backend returned from `run`. */
export enum StopReason {
  /** The instruction budget ran out; call again. */
  Budget = 0,
  /** The hart executed WFI with nothing pending: sleep until the next timer or interrupt. */
  Idle = 1,
  /** A device (e.g. the power-off device) asked the machine to stop. */
  Halt = 2,
}

export type Privilege = 'M' | 'S' | 'U';

/**
 * What the machine needs from a CPU. The pure-TypeScript RISC-V interpreter is one implementation; a KVM
 * backend would be another. Devices never see this: they see guest memory, the MMIO bus and interrupt lines.
 */
export interface CpuBackend extends HartInterruptInputs {
  /** Puts the hart at `pc` in the given mode with a0/a1 set, MMU off. */
  reset(pc: number, privilege: Privilege, a0: number, a1: number): void;
  /** Runs up to `budget` instructions. */
  run(budget: number): StopReason;
  /** Guest instructions retired so far (exact). */
  readonly instructionsRetired: number;
  /** Asks a running `run` to return at the next instruction boundary (e.g. a device halted the machine). */
  requestStop(): void;
}
