// An idle guest: WFI until a timer 300 ms ahead fires. The host should sleep, not spin.
#include "lib.h"
volatile u64 last_cause, last_epc, last_tval, trap_count;
u64 handle_trap(u64 cause, u64 epc, u64 tval, u64 *regs, int smode) {
  (void)regs; (void)smode; (void)tval;
  report("unexpected-trap", cause); report("epc", epc);
  exit_with(1);
}
int main(void) {
  volatile u64 *mtime = (volatile u64 *)0x200bff8;
  volatile u64 *mtimecmp = (volatile u64 *)0x2004000;
  u64 start = *mtime;
  *mtimecmp = start + 3000000; // 300 ms at 10 MHz
  CSRS(mie, 1UL << 7);         // MTIE, with mstatus.MIE off: WFI wakes, no trap is taken
  u64 wakeups = 0;
  while (!(CSRR(mip) & (1UL << 7)) && wakeups < 1000000) { asm volatile("wfi"); wakeups++; }
  report("slept-enough", *mtime - start >= 3000000);
  puts_("done\n");
  return 0;
}
