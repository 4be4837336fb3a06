/* Interrupts: the CLINT (mtime, mtimecmp, msip), the time CSR, machine timer and software
 * interrupts, pending-but-disabled interrupts and wfi, priority between simultaneous interrupts,
 * delegation of S-level interrupts through mideleg (taken in S, never in M; always enabled when
 * running in U), M-level interrupts preempting S-mode regardless of mstatus.MIE, and vectored
 * mtvec. Each sequence of traps is printed as a log of causes (S-mode ones with bit 62 set). */
#include "runtime.h"

#define MTIME (*(volatile uint64_t *)CLINT_MTIME)
#define MTIMECMP (*(volatile uint64_t *)CLINT_MTIMECMP)
#define MSIP (*(volatile uint32_t *)CLINT_MSIP)

#define IP_SSI (1UL << 1)
#define IP_MSI (1UL << 3)
#define IP_STI (1UL << 5)
#define IP_MTI (1UL << 7)

/* Waits (wfi) until a trap has been logged or the pending bits in MASK are set; bounded. */
static void wait_for_trap_or_pending(uint64_t mask) {
  for (int i = 0; i < 100000 && trap_log_length == 0 && (CSR_READ(mip) & mask) == 0; i++) {
    __asm__ volatile("wfi");
  }
}

static void test_clint(void) {
  uint64_t t1 = MTIME;
  for (volatile int i = 0; i < 1000; i++) {
  }
  uint64_t t2 = MTIME;
  check("mtime.advances", t2 > t1);
  uint64_t before = MTIME;
  uint64_t csr_time = CSR_READ(time);
  uint64_t after = MTIME;
  check("time-csr.between-mtime-reads", before <= csr_time && csr_time <= after);
  MTIMECMP = 0x123456789abcdef0;
  check("mtimecmp.readback", MTIMECMP);
  MTIMECMP = ~0UL;
  check("mip.after-mtimecmp-max", CSR_READ(mip) & (IP_MTI | IP_MSI));
  MSIP = 0xffffffff;
  check("msip.readback", MSIP);
  check("mip.msip-set", CSR_READ(mip) & (IP_MTI | IP_MSI));
  MSIP = 0;
  check("mip.msip-clear", CSR_READ(mip) & (IP_MTI | IP_MSI));
}

static void test_machine_interrupts(void) {
  /* Timer, taken. */
  CSR_WRITE(mie, IP_MTI);
  clear_traps();
  uint64_t deadline = MTIME + 1000;
  MTIMECMP = deadline;
  CSR_SET(mstatus, MSTATUS_MIE);
  wait_for_trap_or_pending(0);
  CSR_CLEAR(mstatus, MSTATUS_MIE);
  check_trap_log("timer");
  check("timer.after-deadline", MTIME >= deadline);
  check("timer.mtip-cleared", CSR_READ(mip) & IP_MTI);
  check("timer.mstatus.mpie", (m_trap.status >> 7) & 1);
  check("timer.mstatus.mie", (m_trap.status >> 3) & 1);

  /* Timer firing during a busy loop (no wfi): taken within the loop. */
  clear_traps();
  MTIMECMP = MTIME + 1000;
  CSR_SET(mstatus, MSTATUS_MIE);
  uint64_t spins = 0;
  while (trap_log_length == 0 && spins < 100000000) spins++;
  CSR_CLEAR(mstatus, MSTATUS_MIE);
  check_trap_log("timer.busy-loop");

  /* Timer pending with mstatus.MIE = 0: wfi still wakes, nothing is taken until MIE is set. */
  clear_traps();
  MTIMECMP = MTIME + 1000;
  wait_for_trap_or_pending(IP_MTI);
  check("pending.mtip", (CSR_READ(mip) & IP_MTI) != 0);
  check_trap_log("pending.before-mie");
  CSR_SET(mstatus, MSTATUS_MIE);
  __asm__ volatile("nop");
  CSR_CLEAR(mstatus, MSTATUS_MIE);
  check_trap_log("pending.after-mie");

  /* Software interrupt. */
  CSR_WRITE(mie, IP_MSI);
  clear_traps();
  MSIP = 1;
  check("msi.pending", CSR_READ(mip) & IP_MSI);
  CSR_SET(mstatus, MSTATUS_MIE);
  __asm__ volatile("nop");
  CSR_CLEAR(mstatus, MSTATUS_MIE);
  check_trap_log("msi");
  check("msi.cleared", CSR_READ(mip) & IP_MSI);

  /* Two at once: MSI before MTI, and SSI before STI (not delegated: all to M). Pairs only:
   * QEMU 7.2 without AIA takes the lowest-numbered pending interrupt first, which matches the
   * spec's order (MEI, MSI, MTI, SEI, SSI, STI) within these pairs but not across them. */
  CSR_WRITE(mideleg, 0);
  CSR_WRITE(mie, IP_MSI | IP_MTI);
  clear_traps();
  MSIP = 1;
  MTIMECMP = 0;
  CSR_SET(mstatus, MSTATUS_MIE);
  __asm__ volatile("nop");
  CSR_CLEAR(mstatus, MSTATUS_MIE);
  check_trap_log("priority.msi-mti");
  CSR_WRITE(mie, IP_SSI | IP_STI);
  clear_traps();
  CSR_SET(mip, IP_SSI | IP_STI);
  CSR_SET(mstatus, MSTATUS_MIE);
  __asm__ volatile("nop");
  CSR_CLEAR(mstatus, MSTATUS_MIE);
  check_trap_log("priority.ssi-sti");
  CSR_CLEAR(mip, IP_SSI | IP_STI);
  CSR_WRITE(mie, 0);
}

/* --- S and U mode --- */
static uint64_t lower_nop(uint64_t arg) {
  __asm__ volatile("nop");
  return arg;
}
static uint64_t lower_set_ssip(uint64_t arg) {
  CSR_SET(sip, IP_SSI);
  __asm__ volatile("nop");
  return arg;
}
static uint64_t lower_sstatus(uint64_t arg) {
  (void)arg;
  return CSR_READ(sstatus);
}

static void test_delegated_interrupts(void) {
  pmp_allow_all();
  CSR_WRITE(stvec, (uint64_t)s_trap_entry);
  CSR_WRITE(mideleg, IP_SSI | IP_STI);
  CSR_WRITE(mie, IP_SSI | IP_STI);

  /* STIP raised by M, taken in S with SIE = 1. */
  CSR_SET(sstatus, MSTATUS_SIE);
  clear_traps();
  CSR_SET(mip, IP_STI);
  run_lower(MODE_S, lower_nop, 0);
  check_trap_log("deleg.sti.s-sie1");
  check("deleg.sti.s-sie1.stip-after", CSR_READ(mip) & IP_STI);

  /* Same with SIE = 0: not taken in S, and never in M; stays pending. */
  CSR_CLEAR(sstatus, MSTATUS_SIE);
  clear_traps();
  CSR_SET(mip, IP_STI);
  run_lower(MODE_S, lower_nop, 0);
  check_trap_log("deleg.sti.s-sie0");
  check("deleg.sti.s-sie0.stip-after", CSR_READ(mip) & IP_STI);

  /* In U-mode, S-level interrupts are enabled whatever SIE says. */
  clear_traps();
  run_lower(MODE_U, lower_nop, 0);
  check_trap_log("deleg.sti.u-sie0");
  check("deleg.sti.u-sie0.stip-after", CSR_READ(mip) & IP_STI);

  /* S-mode sets its own software interrupt. */
  CSR_SET(sstatus, MSTATUS_SIE);
  clear_traps();
  run_lower(MODE_S, lower_set_ssip, 0);
  check_trap_log("deleg.ssi.s");
  check("deleg.ssi.s.sstatus.spp", (s_trap.status >> 8) & 1);
  check("deleg.ssi.s.sstatus.spie", (s_trap.status >> 5) & 1);
  check("deleg.ssi.s.sstatus.sie", (s_trap.status >> 1) & 1);
  check("deleg.ssi.s.sip-after", CSR_READ(mip) & IP_SSI);
  CSR_CLEAR(sstatus, MSTATUS_SIE);

  /* An M-level interrupt preempts S-mode even with mstatus.MIE = 0. */
  CSR_WRITE(mie, IP_MSI);
  CSR_CLEAR(mstatus, MSTATUS_MIE);
  clear_traps();
  MSIP = 1;
  run_lower(MODE_S, lower_nop, 0);
  check_trap_log("msi.preempts-s");
  check("msi.preempts-s.mpp", m_trap.previous_mode);
  CSR_WRITE(mie, 0);
  CSR_WRITE(mideleg, 0);
  clear_traps();
  check("sstatus.in-s", run_lower(MODE_S, lower_sstatus, 0) & 0x122);
}

/* Vectored mtvec: interrupts go to base + 4 * cause, exceptions to base. */
volatile uint64_t vector_hits[8];
void vector_table(void);
__asm__(".text\n"
        ".balign 256\n"
        ".option push\n"
        ".option norvc\n"
        "vector_table:\n"
        "  j vector_0\n"
        "  j m_trap_entry\n"
        "  j m_trap_entry\n"
        "  j vector_3\n"
        "  j m_trap_entry\n"
        "  j m_trap_entry\n"
        "  j m_trap_entry\n"
        "  j vector_7\n"
        "  j m_trap_entry\n"
        "  j m_trap_entry\n"
        "  j m_trap_entry\n"
        "  j m_trap_entry\n"
        ".macro VECTOR n\n"
        "vector_\\n:\n"
        "  csrw mscratch, t0\n"
        "  la t0, vector_hits + \\n * 8\n"
        "  sd t0, 0(t0)\n"
        "  csrr t0, mscratch\n"
        "  j m_trap_entry\n"
        ".endm\n"
        "VECTOR 0\n"
        "VECTOR 3\n"
        "VECTOR 7\n"
        ".option pop\n");

static void test_vectored(void) {
  uint64_t saved = CSR_READ(mtvec);
  CSR_WRITE(mtvec, (uint64_t)vector_table | 1);
  CSR_WRITE(mie, IP_MTI | IP_MSI);
  clear_traps();
  MTIMECMP = 0;
  MSIP = 1;
  CSR_SET(mstatus, MSTATUS_MIE);
  __asm__ volatile("nop");
  CSR_CLEAR(mstatus, MSTATUS_MIE);
  __asm__ volatile("ebreak");
  CSR_WRITE(mtvec, saved);
  CSR_WRITE(mie, 0);
  check_trap_log("vectored");
  for (int i = 0; i < 8; i++) check_indexed("vectored.hit", i, vector_hits[i] != 0);
}

int main(void) {
  test_clint();
  test_machine_interrupts();
  test_delegated_interrupts();
  test_vectored();
  return 0;
}
