/* External interrupts through the PLIC, raised by the NS16550A's transmitter-empty interrupt
 * (UART IRQ 10): priority registers, pending bits, enables and thresholds per context (0 = hart 0
 * M-mode, 1 = hart 0 S-mode), mip.MEIP/SEIP, the trap (cause 11, or 9 in S-mode through
 * mideleg), claim and complete, and a claim with nothing pending. The UART is only printed to
 * while its interrupt is off: values are collected first. */
#include "runtime.h"

#define PLIC_BASE 0x0c000000UL
#define PLIC_PRIORITY(src) (*(volatile uint32_t *)(PLIC_BASE + 4 * (src)))
#define PLIC_PENDING (*(volatile uint32_t *)(PLIC_BASE + 0x1000))
#define PLIC_ENABLE(ctx) (*(volatile uint32_t *)(PLIC_BASE + 0x2000 + 0x80 * (ctx)))
#define PLIC_THRESHOLD(ctx) (*(volatile uint32_t *)(PLIC_BASE + 0x200000 + 0x1000 * (ctx)))
#define PLIC_CLAIM(ctx) (*(volatile uint32_t *)(PLIC_BASE + 0x200004 + 0x1000 * (ctx)))
#define UART_IER (*(volatile uint8_t *)(UART_BASE + 1))
#define UART_IRQ 10
#define IER_THRE 0x02
#define IP_SEI (1UL << 9)
#define IP_MEI (1UL << 11)

static uint64_t values[32];
static const char *names[32];
static int count;

static void record(const char *name, uint64_t value) {
  names[count] = name;
  values[count] = value;
  count++;
}

static void flush(void) {
  for (int i = 0; i < count; i++) check(names[i], values[i]);
  count = 0;
}

static uint64_t lower_nop(uint64_t arg) {
  __asm__ volatile("nop");
  return arg;
}

int main(void) {
  PLIC_PRIORITY(UART_IRQ) = 0xffffffff;
  check("priority.ones", PLIC_PRIORITY(UART_IRQ));
  PLIC_PRIORITY(UART_IRQ) = 1;
  check("priority.one", PLIC_PRIORITY(UART_IRQ));
  check("claim.nothing-pending", PLIC_CLAIM(0));

  /* Context 0 (M): pending, MEIP, then the trap. */
  PLIC_ENABLE(0) = 1U << UART_IRQ;
  PLIC_ENABLE(1) = 0;
  PLIC_THRESHOLD(0) = 0;
  CSR_WRITE(mie, IP_MEI);
  clear_traps();
  UART_IER = IER_THRE;
  record("m.pending", (PLIC_PENDING >> UART_IRQ) & 1);
  record("m.meip", (CSR_READ(mip) & IP_MEI) != 0);
  CSR_SET(mstatus, MSTATUS_MIE);
  __asm__ volatile("nop");
  CSR_CLEAR(mstatus, MSTATUS_MIE);
  record("m.trap.count", m_trap.count);
  record("m.trap.cause", m_trap.cause);
  uint32_t claimed = PLIC_CLAIM(0);
  record("m.claim", claimed);
  record("m.pending-after-claim", (PLIC_PENDING >> UART_IRQ) & 1);
  record("m.meip-after-claim", (CSR_READ(mip) & IP_MEI) != 0);
  UART_IER = 0;
  PLIC_CLAIM(0) = claimed; /* complete */
  record("m.meip-after-complete", (CSR_READ(mip) & IP_MEI) != 0);
  flush();

  /* A threshold equal to the priority masks it. */
  PLIC_THRESHOLD(0) = 1;
  UART_IER = IER_THRE;
  record("threshold.pending", (PLIC_PENDING >> UART_IRQ) & 1);
  record("threshold.meip", (CSR_READ(mip) & IP_MEI) != 0);
  PLIC_THRESHOLD(0) = 0;
  record("threshold-lowered.meip", (CSR_READ(mip) & IP_MEI) != 0);
  claimed = PLIC_CLAIM(0);
  UART_IER = 0;
  PLIC_CLAIM(0) = claimed;
  record("threshold.claim", claimed);
  flush();

  /* Context 1 (S), delegated: taken by the S-mode handler as cause 9. */
  pmp_allow_all();
  PLIC_ENABLE(0) = 0;
  PLIC_ENABLE(1) = 1U << UART_IRQ;
  PLIC_THRESHOLD(1) = 0;
  CSR_WRITE(stvec, (uint64_t)s_trap_entry);
  CSR_WRITE(mideleg, IP_SEI);
  CSR_WRITE(mie, IP_SEI);
  CSR_SET(sstatus, MSTATUS_SIE);
  clear_traps();
  UART_IER = IER_THRE;
  record("s.seip", (CSR_READ(mip) & IP_SEI) != 0);
  record("s.meip", (CSR_READ(mip) & IP_MEI) != 0);
  run_lower(MODE_S, lower_nop, 0);
  record("s.trap.m-count", m_trap.count);
  record("s.trap.s-count", s_trap.count);
  record("s.trap.s-cause", s_trap.cause);
  claimed = PLIC_CLAIM(1);
  record("s.claim", claimed);
  UART_IER = 0;
  PLIC_CLAIM(1) = claimed;
  record("s.seip-after-complete", (CSR_READ(mip) & IP_SEI) != 0);
  CSR_CLEAR(sstatus, MSTATUS_SIE);
  CSR_WRITE(mideleg, 0);
  CSR_WRITE(mie, 0);
  PLIC_ENABLE(1) = 0;
  flush();
  return 0;
}
