/** A level-triggered interrupt line from a device into an interrupt controller (the PLIC). */
export interface IrqLine {
  set(level: boolean): void;
}

/**
 * The hart-local interrupt inputs the CLINT and PLIC drive (bits of RISC-V `mip`). A CPU backend implements
 * this; devices only ever see this interface, never the CPU.
 */
export interface HartInterruptInputs {
  setPending(mask: number, level: boolean): void;
}

export const MIP_SSIP = 1 << 1;
export const MIP_MSIP = 1 << 3;
export const MIP_STIP = 1 << 5;
export const MIP_MTIP = 1 << 7;
export const MIP_SEIP = 1 << 9;
export const MIP_MEIP = 1 << 11;

/** An interrupt line that does nothing; for devices built outside a machine (tests). */
export const NO_IRQ: IrqLine = { set() {} };
