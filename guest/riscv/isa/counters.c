/* Counters: mcycle/minstret and their user views cycle/instret, time, writes to mcycle/minstret,
 * mcountinhibit, the always-present hpmcounter3 (no events configured), and access from S and U
 * through mcounteren/scounteren. Only orderings and deltas' signs are printed: QEMU's cycle and
 * instret follow host time, so their values are not comparable. */
#include "runtime.h"

#define MTIME (*(volatile uint64_t *)CLINT_MTIME)

static void spin(void) {
  for (volatile int i = 0; i < 2000; i++) {
  }
}

static uint64_t lower_read_counters(uint64_t arg) {
  (void)arg;
  uint64_t c1 = CSR_READ(cycle), t1 = CSR_READ(time), i1 = CSR_READ(instret);
  spin();
  uint64_t c2 = CSR_READ(cycle), t2 = CSR_READ(time), i2 = CSR_READ(instret);
  return (uint64_t)(c2 > c1) | ((uint64_t)(t2 > t1) << 1) | ((uint64_t)(i2 > i1) << 2);
}

static uint64_t lower_read_time(uint64_t arg) {
  (void)arg;
  return CSR_READ(time) != 0;
}

int main(void) {
  uint64_t c1 = CSR_READ(mcycle), i1 = CSR_READ(minstret), t1 = CSR_READ(time);
  spin();
  uint64_t c2 = CSR_READ(mcycle), i2 = CSR_READ(minstret), t2 = CSR_READ(time);
  check("mcycle.advances", c2 > c1);
  check("minstret.advances", i2 > i1);
  check("time.advances", t2 > t1);
  check("cycle.equals-view", CSR_READ(cycle) >= c2);
  check("instret.equals-view", CSR_READ(instret) >= i2);
  uint64_t m1 = MTIME, t = CSR_READ(time), m2 = MTIME;
  check("time.is-mtime", m1 <= t && t <= m2);

  CSR_WRITE(mcycle, 0x0100000000000000UL);
  uint64_t after = CSR_READ(mcycle);
  check("mcycle.write", after >= 0x0100000000000000UL && after < 0x0100000100000000UL);
  CSR_WRITE(minstret, 0x0200000000000000UL);
  after = CSR_READ(minstret);
  check("minstret.write", after >= 0x0200000000000000UL && after < 0x0200000100000000UL);

  /* mcountinhibit stops mcycle (CY) and minstret (IR). */
  CSR_WRITE(mcountinhibit, 0x5);
  c1 = CSR_READ(mcycle);
  i1 = CSR_READ(minstret);
  spin();
  c2 = CSR_READ(mcycle);
  i2 = CSR_READ(minstret);
  CSR_WRITE(mcountinhibit, 0);
  check("mcountinhibit.cycle-stopped", c2 == c1);
  check("mcountinhibit.instret-stopped", i2 == i1);
  spin();
  check("mcountinhibit.cycle-resumed", CSR_READ(mcycle) > c2);

  check("mhpmcounter3", CSR_READ(mhpmcounter3));
  check("mhpmevent3", CSR_READ(mhpmevent3));

  pmp_allow_all();
  CSR_WRITE(mcounteren, 0x7);
  CSR_WRITE(scounteren, 0x7);
  clear_traps();
  check("s.counters.advance", run_lower(MODE_S, lower_read_counters, 0));
  check_m_trap("s.counters");
  clear_traps();
  check("u.counters.advance", run_lower(MODE_U, lower_read_counters, 0));
  check_m_trap("u.counters");
  CSR_WRITE(scounteren, 0x5); /* no TM for U */
  clear_traps();
  run_lower(MODE_U, lower_read_time, 0);
  check_m_trap("u.time.scounteren-tm0");
  CSR_WRITE(mcounteren, 0x5); /* no TM for S */
  clear_traps();
  run_lower(MODE_S, lower_read_time, 0);
  check_m_trap("s.time.mcounteren-tm0");
  CSR_WRITE(mcounteren, 0);
  CSR_WRITE(scounteren, 0);
  return 0;
}
