// CPU-bound benchmark: integer arithmetic, memory traffic and data-dependent branches (sieve, insertion
// sort, a hash over a table, a small matrix multiply). Prints elapsed mtime ticks and minstret, so the
// same binary measures itself on any machine.
#include "lib.h"
volatile u64 last_cause, last_epc, last_tval, trap_count;
u64 handle_trap(u64 cause, u64 epc, u64 tval, u64 *regs, int smode) {
  (void)regs; (void)smode;
  report("unexpected-trap", cause); report("epc", epc); report("tval", tval);
  exit_with(1);
}

#ifndef ROUNDS
#define ROUNDS 40
#endif
static unsigned char sieve[65536];
static u32 arr[1024];
static u64 table[4096];
static i64 ma[24][24], mb[24][24], mc[24][24];

static u64 work(u64 seed) {
  u64 acc = seed;
  // sieve of Eratosthenes
  for (unsigned i = 0; i < sizeof sieve; i++) sieve[i] = 1;
  for (unsigned i = 2; i * i < sizeof sieve; i++)
    if (sieve[i]) for (unsigned j = i * i; j < sizeof sieve; j += i) sieve[j] = 0;
  for (unsigned i = 0; i < sizeof sieve; i++) acc += sieve[i] ? i : 0;
  // insertion sort of pseudo-random data
  u64 x = seed | 1;
  for (unsigned i = 0; i < 1024; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; arr[i] = (u32)x; }
  for (unsigned i = 1; i < 1024; i++) {
    u32 v = arr[i]; int j = (int)i - 1;
    while (j >= 0 && arr[j] > v) { arr[j + 1] = arr[j]; j--; }
    arr[j + 1] = v;
  }
  acc += arr[0] + arr[511] + arr[1023];
  // open-addressing hash table
  for (unsigned i = 0; i < 4096; i++) table[i] = 0;
  for (unsigned i = 0; i < 3000; i++) {
    u64 k = (i * 0x9e3779b97f4a7c15UL) ^ seed;
    unsigned h = (unsigned)(k >> 52);
    while (table[h] != 0 && table[h] != k) h = (h + 1) & 4095;
    table[h] = k;
  }
  for (unsigned i = 0; i < 4096; i++) acc = acc * 31 + table[i];
  // matrix multiply
  for (int i = 0; i < 24; i++) for (int j = 0; j < 24; j++) { ma[i][j] = (i * 7 + j + (i64)seed) % 13; mb[i][j] = (i + j * 3) % 11; }
  for (int i = 0; i < 24; i++) for (int j = 0; j < 24; j++) {
    i64 s = 0;
    for (int k = 0; k < 24; k++) s += ma[i][k] * mb[k][j];
    mc[i][j] = s;
  }
  for (int i = 0; i < 24; i++) acc += (u64)mc[i][i] / 3;
  return acc;
}

int main(void) {
  u64 t0 = CSRR(time), i0 = CSRR(minstret);
  u64 acc = 0;
  for (u64 r = 0; r < ROUNDS; r++) acc ^= work(r + acc);
  u64 i1 = CSRR(minstret), t1 = CSRR(time);
  report("result", acc);
  report("instructions", i1 - i0);
  report("ticks", t1 - t0);
  puts_("done\n");
  return 0;
}
