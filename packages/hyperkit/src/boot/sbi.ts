import type { RiscvHart, SbiHandler } from '../cpu/riscv/hart.js';
import { MIP_SSIP, MIP_STIP } from '../machine/interrupts.js';

/**
 * A built-in SBI (v1.0 subset) answered in TypeScript, so the kernel runs directly in S-mode with no M-mode
 * firmware: base, TIME, IPI, RFENCE, HSM, SRST and the legacy console/timer/shutdown calls.
 */
export interface SbiPlatform {
  /** Sets the S-mode timer deadline (mtime ticks); the machine raises STIP when it passes. */
  setTimer(deadline: number): void;
  putchar(byte: number): void;
  /** A byte of console input, or -1. */
  getchar(): number;
  shutdown(failure: boolean): void;
  reboot(): void;
  /** A trap reached M-mode, where no firmware runs: report and stop the VM. */
  machineTrap(cause: number, interrupt: boolean, pc: bigint): void;
}

const EXT_BASE = 0x10;
const EXT_TIME = 0x54494d45;
const EXT_IPI = 0x735049;
const EXT_RFENCE = 0x52464e43;
const EXT_HSM = 0x48534d;
const EXT_SRST = 0x53525354;

const SBI_SUCCESS = 0;
const SBI_ERR_NOT_SUPPORTED = -2;
const SBI_ERR_INVALID_PARAM = -3;
const SBI_ERR_ALREADY_AVAILABLE = -6;

/** Implementation id reported by sbi_get_impl_id (outside the range assigned to known firmwares). */
export const SBI_IMPL_ID = 0x4b49;

const A0 = 10;
const A1 = 11;
const A6 = 16;
const A7 = 17;

export class BuiltinSbi implements SbiHandler {
  constructor(private readonly platform: SbiPlatform) {}

  /** Prepares a hart to enter the kernel in S-mode the way an SBI firmware leaves it. */
  static configureHart(hart: RiscvHart): void {
    hart.medeleg = 0xb1ff; // everything delegable except ECALL from S (answered here)
    hart.mideleg = (1 << 1) | (1 << 5) | (1 << 9);
    hart.mcounteren = 7;
    // Linux 6.1 without a PMU driver never sets scounteren, so glibc's rdtime in user mode would trap
    // (QEMU 7.2 does not enforce scounteren for U-mode, which is why the same guest works there).
    hart.scounteren = 7;
    hart.mie = MIP_SSIP | MIP_STIP | (1 << 9);
  }

  private ret(hart: RiscvHart, error: number, value: number): void {
    hart.setXBig(A0, BigInt(error));
    hart.setXBig(A1, BigInt(value));
  }

  handleEcall(hart: RiscvHart): void {
    const ext = hart.getX(A7);
    const fid = hart.getX(A6);
    const p = this.platform;
    switch (ext) {
      case 0x00: // legacy set_timer
        this.setTimer(hart, hart.getX(A0));
        hart.setXBig(A0, 0n);
        return;
      case 0x01:
        p.putchar(hart.getX(A0) & 0xff);
        hart.setXBig(A0, 0n);
        return;
      case 0x02:
        hart.setXBig(A0, BigInt(p.getchar()));
        return;
      case 0x03: // legacy clear_ipi
        hart.setSoftwarePending(MIP_SSIP, false);
        hart.setXBig(A0, 0n);
        return;
      case 0x04: // legacy send_ipi: one hart, so it can only be us
        hart.setSoftwarePending(MIP_SSIP, true);
        hart.setXBig(A0, 0n);
        return;
      case 0x05:
      case 0x06:
      case 0x07:
        hart.flushTlb();
        hart.flushCode();
        hart.setXBig(A0, 0n);
        return;
      case 0x08:
        p.shutdown(false);
        return;
      case EXT_BASE: {
        this.base(hart, fid);
        return;
      }
      case EXT_TIME:
        if (fid !== 0) {
          this.ret(hart, SBI_ERR_NOT_SUPPORTED, 0);
          return;
        }
        this.setTimer(hart, hart.getX(A0));
        {
          this.ret(hart, SBI_SUCCESS, 0);
          return;
        }
      case EXT_IPI: {
        if (fid !== 0) {
          this.ret(hart, SBI_ERR_NOT_SUPPORTED, 0);
          return;
        }
        const mask = hart.getXBig(A0);
        const base = hart.getXBig(A1);
        const targetsUs = base === -1n || (base <= 0n && ((mask >> -base) & 1n) === 1n);
        if (targetsUs) {
          hart.setSoftwarePending(MIP_SSIP, true);
        }
        this.ret(hart, SBI_SUCCESS, 0);
        return;
      }
      case EXT_RFENCE:
        if (fid > 6) {
          this.ret(hart, SBI_ERR_NOT_SUPPORTED, 0);
          return;
        }
        hart.flushTlb();
        hart.flushCode();
        {
          this.ret(hart, SBI_SUCCESS, 0);
          return;
        }
      case EXT_HSM: {
        const hartId = hart.getX(A0);
        if (fid === 0) {
          this.ret(hart, hartId === 0 ? SBI_ERR_ALREADY_AVAILABLE : SBI_ERR_INVALID_PARAM, 0);
          return;
        }
        if (fid === 2) {
          this.ret(hart, hartId === 0 ? SBI_SUCCESS : SBI_ERR_INVALID_PARAM, 0);
          return;
        }
        this.ret(hart, SBI_ERR_NOT_SUPPORTED, 0);
        return;
      }
      case EXT_SRST: {
        if (fid !== 0) {
          this.ret(hart, SBI_ERR_NOT_SUPPORTED, 0);
          return;
        }
        const type = hart.getX(A0);
        const reason = hart.getX(A1);
        if (type === 0) p.shutdown(reason === 1);
        else if (type === 1 || type === 2) p.reboot();
        else {
          this.ret(hart, SBI_ERR_INVALID_PARAM, 0);
          return;
        }
        this.ret(hart, SBI_SUCCESS, 0);
        return;
      }
      default: {
        this.ret(hart, SBI_ERR_NOT_SUPPORTED, 0);
        return;
      }
    }
  }

  private setTimer(hart: RiscvHart, deadline: number): void {
    hart.setSoftwarePending(MIP_STIP, false);
    this.platform.setTimer(deadline);
  }

  private base(hart: RiscvHart, fid: number): void {
    switch (fid) {
      case 0: {
        this.ret(hart, SBI_SUCCESS, 1 << 24);
        return;
      } // spec version 1.0
      case 1: {
        this.ret(hart, SBI_SUCCESS, SBI_IMPL_ID);
        return;
      }
      case 2: {
        this.ret(hart, SBI_SUCCESS, 1);
        return;
      }
      case 3: {
        const probe = hart.getX(A0);
        const known = [EXT_BASE, EXT_TIME, EXT_IPI, EXT_RFENCE, EXT_HSM, EXT_SRST, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        this.ret(hart, SBI_SUCCESS, known.includes(probe) ? 1 : 0);
        return;
      }
      case 4:
      case 5:
      case 6: {
        this.ret(hart, SBI_SUCCESS, 0);
        return;
      }
      default: {
        this.ret(hart, SBI_ERR_NOT_SUPPORTED, 0);
        return;
      }
    }
  }

  handleMachineTrap(_hart: RiscvHart, cause: number, interrupt: boolean, pc: bigint): void {
    this.platform.machineTrap(cause, interrupt, pc);
  }
}
