// Checks for translated code (JavaScript blocks and WebAssembly regions) against the interpreter and QEMU:
// self-modifying code with and without FENCE.I, a trap in the middle of a hot loop (exact mepc and retired
// count at the trap), M-extension edge cases inside hot loops, and loops that yield to timer interrupts.
// Lines starting with "instret" hold exact retired counts: they are compared with our interpreter only
// (QEMU's minstret without -icount is not an instruction count).
#include "lib.h"
volatile u64 last_cause, last_epc, last_tval, trap_count;
static volatile u64 trap_instret, timer_ticks;

u64 handle_trap(u64 cause, u64 epc, u64 tval, u64 *regs, int smode) {
  (void)regs; (void)smode;
  if (cause == (1UL << 63 | 7)) {  // machine timer: count it and push the deadline far away
    timer_ticks++;
    *(volatile u64 *)0x2004000 = -1UL;
    return epc;
  }
  trap_instret = CSRR(minstret);
  last_cause = cause; last_epc = epc; last_tval = tval; trap_count++;
  return epc + insn_len(epc);
}

// a function we rewrite: addi a0, a0, K ; ret
static u32 code[64] __attribute__((aligned(64)));
typedef u64 (*fn_t)(u64);
static void set_k(int k) { code[0] = 0x00050513u | ((u32)(k & 0xfff) << 20); code[1] = 0x00008067u; }

static u64 data[16];

__attribute__((noinline)) static u64 hot_loads(u64 n, volatile u64 *bad, u64 at) {
  u64 acc = 0;
  for (u64 i = 0; i < n; i++) {
    volatile u64 *p = i == at ? bad : (volatile u64 *)&data[i & 15];
    acc += *p * 3 + i;
    data[(i + 1) & 15] = acc;
  }
  return acc;
}

__attribute__((noinline)) static u64 mix(u64 n) {
  u64 h = 0x9e3779b97f4a7c15UL;
  i64 divs[] = {0, -1, 1, 7, -7, (i64)0x8000000000000000UL};
  for (u64 i = 0; i < n; i++) {
    i64 a = (i64)(h ^ i), b = divs[i % 6];
    h = h * 31 + (u64)(a / (b ? b : 1)) + (u64)(b ? a % b : a);
    h ^= (u64)((__int128)a * b >> 64) + (u64)((unsigned __int128)h * (u64)a >> 64);
    int aw = (int)a, bw = (int)b;
    h += (u64)(i64)(aw * 3) + (u64)(bw ? aw / bw : -1) + (u64)(bw ? (unsigned)aw % (unsigned)bw : 0);
    h = (h << 7) | (h >> 57);
  }
  return h;
}

int main(void) {
  // self-modifying code: rewrite the function each round, with FENCE.I, then without
  u64 acc = 0;
  for (int k = 0; k < 400; k++) {
    set_k(k % 300);
    asm volatile("fence.i" ::: "memory");
    acc = ((fn_t)code)(acc);
  }
  report("smc-fence", acc);
  acc = 0;
  for (int k = 0; k < 400; k++) {
    set_k(k % 100 + 1);
    asm volatile("" ::: "memory");
    acc = ((fn_t)code)(acc);
  }
  report("smc-nofence", acc);

  // a load access fault in the middle of a hot loop
  for (int i = 0; i < 16; i++) data[i] = (u64)i * 0x0101010101010101UL;
  u64 i0 = CSRR(minstret);
  u64 r = hot_loads(5000, (volatile u64 *)8, 4000);
  report("loads", r);
  report("trap-cause", last_cause);
  report("trap-epc-in-hot_loads", last_epc - (u64)hot_loads);
  report("trap-tval", last_tval);
  report("instret-at-trap", trap_instret - i0);

  report("mix", mix(20000));

  // a hot loop must still take the timer interrupt
  *(volatile u64 *)0x2004000 = *(volatile u64 *)0x200bff8 + 2000;  // 200 us at 10 MHz
  CSRS(mie, 1UL << 7);
  CSRS(mstatus, 8UL);
  u64 spins = 0;
  while (timer_ticks == 0 && spins < 2000000000UL) spins++;
  CSRC(mstatus, 8UL);
  report("timer-ticks", timer_ticks);
  puts_("done\n");
  return 0;
}
