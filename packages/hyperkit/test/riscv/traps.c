// Privileged architecture: every synchronous trap cause, delegation to S, interrupts (software, timer,
// delegated S interrupts), xRET stacking, WFI, CSR access rules and WARL masks.
#include "lib.h"
volatile u64 last_cause, last_epc, last_tval, trap_count;

u64 handle_trap(u64 cause, u64 epc, u64 tval, u64 *regs, int smode) {
  u64 resume;
  if (!smode && run_in_finished(cause, regs, &resume)) return resume;
  if (smode && cause == 8 && regs[17] == RUN_IN_MAGIC) asm volatile("li a7, 0x99\n ecall"); // on to M
  trap_count++;
  last_cause = cause; last_epc = epc; last_tval = tval;
  puts_(smode ? "S-trap " : "M-trap ");
  puthex(cause); putc_(' '); puthex(tval); putc_('\n');
  if ((long)cause < 0) {
    u64 code = cause & 0xff;
    if (code == 3) *(volatile u32 *)0x2000000 = 0;                   // clear msip
    if (code == 7) *(volatile u64 *)0x2004000 = -1UL;                // disarm mtimecmp
    if (code == 1) CSRC(sip, 2);                                     // clear SSIP
    if (code == 5) { if (smode) CSRC(sie, 0x20); else CSRC(mip, 0x20); }
    return epc;
  }
  if (cause == 1) return regs[1]; // fetch fault: resume at the caller (ra)
  return epc + insn_len(epc);
}

static void s_ecall(void) { asm volatile("li a7, 0\n ecall" ::: "a7"); }
static void u_ecall(void) { asm volatile("li a7, 0\n ecall" ::: "a7"); }
static void s_mret(void) { asm volatile("mret"); }
static void s_csr_m(void) { u64 v; asm volatile("csrr %0, mstatus" : "=r"(v)); }
static void u_csr_s(void) { u64 v; asm volatile("csrr %0, sstatus" : "=r"(v)); }
static void u_wfi(void) { asm volatile("wfi"); }
static void s_sret_tsr(void) { asm volatile("la t0, 1f\n csrw sepc, t0\n sret\n 1:" ::: "t0"); }
static void u_cycle(void) { u64 v; asm volatile("rdcycle %0" : "=r"(v)); }
static void s_time(void) { u64 v; asm volatile("rdtime %0" : "=r"(v)); }
static volatile u64 s_status_seen;
static void s_read_sstatus(void) { s_status_seen = CSRR(sstatus); }
static void s_wait_ssip(void) {
  CSRS(sie, 2);
  CSRS(sstatus, 2);
  CSRS(sip, 2);           // raise a supervisor software interrupt on ourselves
  asm volatile("nop");
  CSRC(sstatus, 2);
}
static void s_wait_stip(void) {
  CSRS(sie, 0x20);
  CSRS(sstatus, 2);
  for (volatile int i = 0; i < 10; i++) {}
  CSRC(sstatus, 2);
}
static volatile u64 spin_target;
static void u_spin(void) { for (volatile int i = 0; i < 1000 && trap_count < spin_target; i++) {} }

int main(void) {
  // CSR identity and WARL masks
  report("misa-mxl", CSRR(misa) >> 62);
  report("mhartid", CSRR(mhartid));
  // WARL masks, restricted to the bits the spec defines for RV64 without H/V (QEMU also keeps H/V bits)
  CSRW(medeleg, -1UL); report("medeleg-mask", CSRR(medeleg) & 0xf3ff); CSRW(medeleg, 0);
  CSRW(mideleg, -1UL); report("mideleg-mask", CSRR(mideleg) & 0xaaa); CSRW(mideleg, 0);
  CSRW(mie, -1UL); report("mie-mask", CSRR(mie) & 0xaaa); CSRW(mie, 0);
  CSRW(mtvec, CSRR(mtvec) | 1); report("mtvec-mode", CSRR(mtvec) & 3); CSRC(mtvec, 3);
  { u64 keep = CSRR(mscratch); CSRW(mscratch, 0x123456789UL); report("mscratch", CSRR(mscratch)); CSRW(mscratch, keep); }
  {
    // mstatus: set everything writable, read back, restore
    u64 old = CSRR(mstatus);
    CSRW(mstatus, -1UL);
    report("mstatus-mask", CSRR(mstatus) & 0x80000000007e19aaUL & ~0x8UL);
    CSRW(mstatus, old);
    report("sstatus-view", CSRR(sstatus));
  }
  CSRW(satp, (9UL << 60) | 5); report("satp-sv48", CSRR(satp));
  CSRW(satp, (7UL << 60) | 5); report("satp-reserved-ignored", CSRR(satp));
  CSRW(satp, 0);

  // synchronous exceptions in M
  asm volatile("ecall");                                               // 11
  asm volatile("ebreak");                                              // 3
  asm volatile(".4byte 0x0000007f");                                   // 2: unknown opcode
  asm volatile("csrr t0, 0x7c0" ::: "t0");                             // 2: no such CSR
  asm volatile("csrw mvendorid, zero");                                // 2: read-only CSR
  { u64 v; asm volatile("ld %0, 0(%1)" : "=r"(v) : "r"(8UL)); }        // 5: load access fault
  asm volatile("sd zero, 0(%0)" ::"r"(16UL) : "memory");               // 7: store access fault
  asm volatile("amoadd.d zero, zero, (%0)" ::"r"(24UL) : "memory");    // 7: AMO access fault
  asm volatile("jalr ra, 0(%0)" ::"r"(0x200UL) : "ra");                // 1: fetch access fault
  // misaligned loads/stores complete in hardware (no trap), as on QEMU
  {
    static u64 buf[2];
    asm volatile("sd %0, 3(%1)" ::"r"(0x1122334455667788UL), "r"(buf) : "memory");
    u64 v; asm volatile("ld %0, 3(%1)" : "=r"(v) : "r"(buf));
    report("misaligned", v);
  }
  // FS = off makes FP instructions illegal
  CSRC(mstatus, 0x6000);
  asm volatile("fadd.d ft0, ft0, ft0");
  asm volatile("csrr t0, fcsr" ::: "t0");
  CSRS(mstatus, 0x6000);

  // lower modes; run_in uses ecall to come back, which the handler recognises
  CSRW(mcounteren, 0);
  run_in(MPP_S, s_ecall);     // 9 (not delegated)
  run_in(MPP_U, u_ecall);     // 8
  run_in(MPP_S, s_mret);      // 2
  run_in(MPP_S, s_csr_m);     // 2
  run_in(MPP_U, u_csr_s);     // 2
  run_in(MPP_U, u_wfi);       // 2
  run_in(MPP_U, u_cycle);     // 2 (mcounteren.CY = 0)
  run_in(MPP_S, s_time);      // 2 (mcounteren.TM = 0)
  CSRW(mcounteren, 7);
  run_in(MPP_S, s_time);      // allowed now
  CSRS(mstatus, 1UL << 22);   // TSR
  run_in(MPP_S, s_sret_tsr);  // 2
  CSRC(mstatus, 1UL << 22);

  // delegation: U ecall and illegal instructions go to S
  extern char strap_entry[];
  CSRW(stvec, strap_entry);
  CSRW(medeleg, (1UL << 8) | (1UL << 2));
  run_in(MPP_U, u_ecall);     // S-trap 8
  run_in(MPP_U, u_csr_s);     // S-trap 2
  CSRW(medeleg, 0);

  // xRET stacking: MPIE/MPP after a trap from S with MIE set, observed by S via sstatus.SPP etc.
  CSRS(mstatus, 1UL << 8);    // SPP = S
  CSRS(mstatus, 1UL << 5);    // SPIE
  run_in(MPP_S, s_read_sstatus);
  report("sstatus-in-s", s_status_seen);

  // interrupts: machine software interrupt via the CLINT
  CSRS(mie, 1UL << 3);
  CSRS(mstatus, 8);
  {
    u64 before = trap_count;
    *(volatile u32 *)0x2000000 = 1;
    for (int i = 0; i < 1000 && trap_count == before; i++) asm volatile("nop"); // QEMU takes it lazily
  }
  CSRC(mstatus, 8);
  CSRC(mie, 1UL << 3);
  // machine timer interrupt, woken from WFI
  {
    volatile u64 *mtime = (volatile u64 *)0x200bff8;
    volatile u64 *mtimecmp = (volatile u64 *)0x2004000;
    *mtimecmp = *mtime + 2000;
    CSRS(mie, 1UL << 7);
    asm volatile("wfi");      // wakes when MTIP rises, even with MIE clear
    report("mtip-pending", (CSRR(mip) >> 7) & 1);
    CSRS(mstatus, 8);         // now take it
    asm volatile("nop");
    CSRC(mstatus, 8);
    CSRC(mie, 1UL << 7);
  }
  // an interrupt pending but disabled by mie is not taken
  *(volatile u32 *)0x2000000 = 1;
  CSRS(mstatus, 8);
  asm volatile("nop");
  CSRC(mstatus, 8);
  report("msip-pending", (CSRR(mip) >> 3) & 1);
  *(volatile u32 *)0x2000000 = 0;
  // delegated supervisor software interrupt taken in S
  CSRW(mideleg, (1UL << 1) | (1UL << 5));
  run_in(MPP_S, s_wait_ssip);
  // STIP set by M (as SBI firmware does without Sstc) and taken in S
  CSRS(mip, 1UL << 5);
  run_in(MPP_S, s_wait_stip);
  // M interrupts preempt S and U regardless of MIE
  CSRW(mideleg, 0);
  CSRS(mie, 1UL << 3);
  spin_target = trap_count + 1;
  *(volatile u32 *)0x2000000 = 1;
  run_in(MPP_U, u_spin);
  CSRC(mie, 1UL << 3);

  report("traps", trap_count);
  puts_("done\n");
  return 0;
}
