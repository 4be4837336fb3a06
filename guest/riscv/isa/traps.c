/* Exceptions: every cause an RV64GC hart with S and U modes and PMP can raise outside paging
 * (the page faults are in paging.c): illegal instructions, ebreak, ecall from U/S/M, load, store
 * and fetch access faults (an unmapped address and PMP), privileged instructions in lower modes
 * (mret/sret/wfi/sfence.vma, TVM/TW/TSR), M-CSR access from S and U, misaligned LR, the mstatus
 * stack (MPP/MPIE/MIE, SPP/SPIE/SIE) on trap and return, and delegation through medeleg to an
 * S-mode handler (which never applies to traps taken in M-mode).
 * Misaligned fetch cannot happen with C (every jump target is 2-byte aligned, jalr clears bit 0);
 * misaligned loads and stores do not trap on QEMU's virt (rv64i.c checks their values).
 * Not compared: AMO access faults (QEMU 7.2 reports a load access fault, cause 5, where the spec
 * says store/AMO, cause 7). */
#include "runtime.h"

#define UNMAPPED 0x0UL

/* Calls a (non-returning) target; a fetch fault there resumes after the call. */
static void call_faulting(uint64_t target) {
  __asm__ volatile("la t0, 1f\n\tla t1, trap_resume\n\tsd t0, 0(t1)\n\tjalr ra, 0(%0)\n1:"
                   :
                   : "r"(target)
                   : "t0", "t1", "ra", "memory");
}

static void test_machine_mode(void) {
  uint64_t r = 0;
  clear_traps();
  __asm__ volatile(".word 0x00000000");
  check_m_trap("illegal.zero-word"); /* two illegal 16-bit zero halfwords */
  clear_traps();
  __asm__ volatile(".word 0xffffffff");
  check_m_trap("illegal.ones-word");
  clear_traps();
  __asm__ volatile(".word 0x0000007f"); /* reserved >= 80-bit encoding space... a 32-bit custom */
  check_m_trap("illegal.opcode-7f");
  clear_traps();
  __asm__ volatile(".word 0x0000000b"); /* custom-0 */
  check_m_trap("illegal.custom-0");
  clear_traps();
  __asm__ volatile(".word 0x02000033 | (7 << 12) | (1 << 25) | (1 << 30)"); /* OP with bad funct7 */
  check_m_trap("illegal.op-funct7");
  clear_traps();
  __asm__ volatile("ebreak");
  check_m_trap("ebreak.m");
  check("ebreak.m.epc-is-the-ebreak", m_trap.epc != 0);
  clear_traps();
  __asm__ volatile("li a7, 0\n\tecall" ::: "a7");
  check_m_trap("ecall.m");
  clear_traps();
  __asm__ volatile("ld %0, 0(%1)" : "=r"(r) : "r"(UNMAPPED) : "memory");
  check_m_trap("load-access.unmapped");
  clear_traps();
  __asm__ volatile("lbu %0, 0x123(%1)" : "=r"(r) : "r"(UNMAPPED) : "memory");
  check_m_trap("load-access.unmapped.lbu");
  clear_traps();
  __asm__ volatile("sw %0, 8(%1)" ::"r"(r), "r"(UNMAPPED) : "memory");
  check_m_trap("store-access.unmapped");
  clear_traps();
  call_faulting(UNMAPPED + 0x40);
  check_m_trap("fetch-access.unmapped");
  clear_traps();
  __asm__ volatile("lr.w %0, (%1)" : "=r"(r) : "r"((uint64_t)&m_trap + 2) : "memory");
  check_m_trap("load-misaligned.lr.w");
  /* mstatus stack: a trap from M with MIE = 1 records MPIE = 1, MIE = 0, MPP = M. */
  CSR_WRITE(mie, 0);
  CSR_SET(mstatus, MSTATUS_MIE);
  clear_traps();
  __asm__ volatile("ebreak");
  check("trap.m.mstatus.mie", (m_trap.status >> 3) & 1);
  check("trap.m.mstatus.mpie", (m_trap.status >> 7) & 1);
  check("trap.m.mstatus.mpp", (m_trap.status >> 11) & 3);
  check("mret.restores-mie", (CSR_READ(mstatus) >> 3) & 1);
  CSR_CLEAR(mstatus, MSTATUS_MIE);
  /* Delegation never applies to traps taken in M-mode. */
  CSR_WRITE(medeleg, ~0UL);
  clear_traps();
  __asm__ volatile("ebreak");
  check("medeleg.from-m.m-count", m_trap.count);
  check("medeleg.from-m.s-count", s_trap.count);
  CSR_WRITE(medeleg, 0);
}

/* --- code run in S or U mode through run_lower() --- */

static uint64_t lower_ecall(uint64_t arg) {
  register uint64_t a0 __asm__("a0") = arg;
  register uint64_t a7 __asm__("a7") = 0;
  __asm__ volatile("ecall" : "+r"(a0) : "r"(a7) : "memory");
  return a0;
}
static uint64_t lower_ebreak(uint64_t arg) {
  __asm__ volatile("ebreak");
  return arg;
}
static uint64_t lower_read_mstatus(uint64_t arg) {
  uint64_t r = arg;
  __asm__ volatile("csrr %0, mstatus" : "+r"(r));
  return r;
}
static uint64_t lower_read_sstatus(uint64_t arg) {
  uint64_t r = arg;
  __asm__ volatile("csrr %0, sstatus" : "+r"(r));
  return r;
}
static uint64_t lower_read_satp(uint64_t arg) {
  uint64_t r = arg;
  __asm__ volatile("csrr %0, satp" : "+r"(r));
  return r;
}
static uint64_t lower_mret(uint64_t arg) {
  /* On a trap the handler steps over it. */
  __asm__ volatile("mret");
  return arg;
}
static uint64_t lower_sret(uint64_t arg) {
  __asm__ volatile("sret");
  return arg;
}
static uint64_t lower_wfi(uint64_t arg) {
  __asm__ volatile("wfi");
  return arg;
}
static uint64_t lower_sfence(uint64_t arg) {
  __asm__ volatile("sfence.vma");
  return arg;
}
static uint64_t lower_load(uint64_t address) {
  uint64_t r = 0;
  __asm__ volatile("ld %0, 0(%1)" : "=r"(r) : "r"(address) : "memory");
  return r;
}
static uint64_t lower_store(uint64_t address) {
  __asm__ volatile("sd zero, 0(%0)" ::"r"(address) : "memory");
  return 0;
}
static uint64_t lower_fetch(uint64_t address) {
  call_faulting(address);
  return 0;
}
static uint64_t lower_read_cycle(uint64_t arg) {
  uint64_t r = arg;
  __asm__ volatile("csrr %0, cycle" : "+r"(r));
  return r != 0;
}

#define IN_MODE(label, mode, fn, arg)  \
  do {                                 \
    clear_traps();                     \
    run_lower((mode), (fn), (arg));    \
    check_m_trap(label);               \
  } while (0)

static void test_lower_modes(void) {
  pmp_allow_all();
  IN_MODE("ecall.u", MODE_U, lower_ecall, 1);
  IN_MODE("ecall.s", MODE_S, lower_ecall, 1);
  IN_MODE("ebreak.u", MODE_U, lower_ebreak, 0);
  IN_MODE("ebreak.s", MODE_S, lower_ebreak, 0);
  IN_MODE("csr.mstatus.from-s", MODE_S, lower_read_mstatus, 0);
  IN_MODE("csr.mstatus.from-u", MODE_U, lower_read_mstatus, 0);
  IN_MODE("csr.sstatus.from-u", MODE_U, lower_read_sstatus, 0);
  IN_MODE("mret.from-s", MODE_S, lower_mret, 0);
  IN_MODE("mret.from-u", MODE_U, lower_mret, 0);
  IN_MODE("sret.from-u", MODE_U, lower_sret, 0);
  IN_MODE("wfi.from-u", MODE_U, lower_wfi, 0);
  IN_MODE("sfence.from-u", MODE_U, lower_sfence, 0);
  IN_MODE("load-access.unmapped.from-s", MODE_S, lower_load, UNMAPPED + 8);
  IN_MODE("store-access.unmapped.from-u", MODE_U, lower_store, UNMAPPED + 16);
  IN_MODE("fetch-access.unmapped.from-s", MODE_S, lower_fetch, UNMAPPED + 0x20);

  /* TVM, TW, TSR trap S-mode's satp access/sfence.vma, wfi and sret. */
  CSR_SET(mstatus, MSTATUS_TVM);
  IN_MODE("tvm.satp", MODE_S, lower_read_satp, 0);
  IN_MODE("tvm.sfence", MODE_S, lower_sfence, 0);
  CSR_CLEAR(mstatus, MSTATUS_TVM);
  IN_MODE("tvm-off.satp", MODE_S, lower_read_satp, 0);
  IN_MODE("tvm-off.sfence", MODE_S, lower_sfence, 0);
  CSR_SET(mstatus, MSTATUS_TW);
  IN_MODE("tw.wfi", MODE_S, lower_wfi, 0);
  CSR_CLEAR(mstatus, MSTATUS_TW);
  CSR_SET(mstatus, MSTATUS_TSR);
  IN_MODE("tsr.sret", MODE_S, lower_sret, 0);
  CSR_CLEAR(mstatus, MSTATUS_TSR);

  /* Counter access from lower modes: mcounteren gates S, scounteren gates U. */
  CSR_WRITE(mcounteren, 0);
  IN_MODE("cycle.from-s.mcounteren-0", MODE_S, lower_read_cycle, 0);
  CSR_WRITE(mcounteren, 1);
  CSR_WRITE(scounteren, 0);
  IN_MODE("cycle.from-s.mcounteren-1", MODE_S, lower_read_cycle, 0);
  IN_MODE("cycle.from-u.scounteren-0", MODE_U, lower_read_cycle, 0);
  CSR_WRITE(scounteren, 1);
  IN_MODE("cycle.from-u.scounteren-1", MODE_U, lower_read_cycle, 0);
  CSR_WRITE(mcounteren, 0);
  IN_MODE("cycle.from-u.mcounteren-0", MODE_U, lower_read_cycle, 0);
  CSR_WRITE(scounteren, 0);

  /* mret into M sets MPP to U and MPIE to 1. (That mret into a lower mode clears MPRV, new in
   * privileged spec 1.12, is not tested: QEMU 7.2 leaves MPRV set.) */
  uint64_t after_mret;
  __asm__ volatile("li t0, 0x1800\n\tcsrs mstatus, t0\n\tli t0, 0x88\n\tcsrc mstatus, t0\n\t"
                   "la t0, 1f\n\tcsrw mepc, t0\n\tmret\n1:\n\tcsrr %0, mstatus"
                   : "=r"(after_mret)
                   :
                   : "t0", "memory");
  check("mret.to-m.mpp", (after_mret >> 11) & 3);
  check("mret.to-m.mpie", (after_mret >> 7) & 1);
  check("mret.to-m.mie", (after_mret >> 3) & 1);

  /* ecall from S records MPP = S; the run returns the lower code's value. */
  clear_traps();
  check("run_lower.s.result", run_lower(MODE_S, lower_ecall, 0x1234));
  check("ecall.s.mpp", m_trap.previous_mode);
}

/* PMP: entry 0 makes a 4 KiB page read-only (NAPOT), entry 1 a TOR range no-access, entry 2
 * everything else RWX. M-mode ignores unlocked entries. */
static uint8_t pmp_page[4096] __attribute__((aligned(4096)));
static uint8_t pmp_tor[4096] __attribute__((aligned(4096)));

static void test_pmp(void) {
  uint64_t page = (uint64_t)pmp_page, tor = (uint64_t)pmp_tor;
  CSR_WRITE(pmpaddr0, (page >> 2) | ((4096 >> 3) - 1));
  CSR_WRITE(pmpaddr1, tor >> 2);
  CSR_WRITE(pmpaddr2, (tor + 4096) >> 2);
  CSR_WRITE(pmpaddr3, ~0UL >> 10);
  /* cfg0: NAPOT R; cfg1: OFF (TOR base); cfg2: TOR none; cfg3: NAPOT RWX */
  CSR_WRITE(pmpcfg0, (0x19UL) | (0x00UL << 8) | (0x08UL << 16) | (0x1fUL << 24));
  check("pmpcfg0", CSR_READ(pmpcfg0));
  check("pmpaddr0", CSR_READ(pmpaddr0));
  IN_MODE("pmp.read-only.load.s", MODE_S, lower_load, page + 8);
  IN_MODE("pmp.read-only.store.s", MODE_S, lower_store, page + 8);
  IN_MODE("pmp.read-only.store.u", MODE_U, lower_store, page + 4088);
  IN_MODE("pmp.read-only.fetch.s", MODE_S, lower_fetch, page);
  IN_MODE("pmp.tor.load.u", MODE_U, lower_load, tor + 64);
  IN_MODE("pmp.tor.store.s", MODE_S, lower_store, tor);
  IN_MODE("pmp.tor.above.load.s", MODE_S, lower_load, tor + 4096);
  clear_traps();
  pmp_tor[0] = 1; /* M-mode is not bound by unlocked entries */
  check_m_trap("pmp.tor.store.m");
  /* MPRV: M-mode loads with MPP = S are checked like S-mode loads. */
  uint64_t r = 0;
  CSR_CLEAR(mstatus, MSTATUS_MPP);
  CSR_SET(mstatus, (1UL << 11) | MSTATUS_MPRV);
  clear_traps();
  __asm__ volatile("ld %0, 0(%1)" : "=r"(r) : "r"(tor) : "memory");
  CSR_CLEAR(mstatus, MSTATUS_MPRV);
  check_m_trap("pmp.mprv.load");
  CSR_WRITE(pmpcfg0, 0);
  pmp_allow_all();
}

/* medeleg sends exceptions from S and U to the S-mode handler (stvec), which records them. */
static void test_delegation(void) {
  CSR_WRITE(stvec, (uint64_t)s_trap_entry);
  CSR_WRITE(medeleg, (1UL << 3) | (1UL << 2) | (1UL << 8) | (1UL << 5));
  clear_traps();
  run_lower(MODE_U, lower_ebreak, 0);
  check_m_trap("deleg.ebreak.u.m");
  check_s_trap("deleg.ebreak.u.s");
  check("deleg.ebreak.u.sstatus.spp", (s_trap.status >> 8) & 1);
  clear_traps();
  run_lower(MODE_S, lower_ebreak, 0);
  check_m_trap("deleg.ebreak.s.m");
  check_s_trap("deleg.ebreak.s.s");
  check("deleg.ebreak.s.sstatus.spp", (s_trap.status >> 8) & 1);
  clear_traps();
  run_lower(MODE_U, lower_ecall, 5);
  check_m_trap("deleg.ecall.u.m");
  check_s_trap("deleg.ecall.u.s");
  clear_traps();
  run_lower(MODE_S, lower_ecall, 5); /* ecall from S (9) is not delegated here */
  check_m_trap("deleg.ecall.s.m");
  check_s_trap("deleg.ecall.s.s");
  clear_traps();
  run_lower(MODE_S, lower_read_mstatus, 0);
  check_m_trap("deleg.illegal.s.m");
  check_s_trap("deleg.illegal.s.s");
  clear_traps();
  run_lower(MODE_S, lower_load, UNMAPPED);
  check_m_trap("deleg.load-access.s.m");
  check_s_trap("deleg.load-access.s.s");
  /* SIE/SPIE stack on a delegated trap, S-mode with SIE = 1. */
  CSR_SET(sstatus, MSTATUS_SIE);
  CSR_WRITE(sie, 0);
  clear_traps();
  run_lower(MODE_S, lower_ebreak, 0);
  check("deleg.sstatus.sie", (s_trap.status >> 1) & 1);
  check("deleg.sstatus.spie", (s_trap.status >> 5) & 1);
  check("deleg.after-sret.sie", (CSR_READ(sstatus) >> 1) & 1);
  CSR_CLEAR(sstatus, MSTATUS_SIE);
  CSR_WRITE(medeleg, 0);
}

int main(void) {
  test_machine_mode();
  test_lower_modes();
  test_pmp();
  test_delegation();
  return 0;
}
