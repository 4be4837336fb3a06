// A extension (LR/SC, every AMO, .W and .D) and explicit compressed instructions.
#include "lib.h"
volatile u64 last_cause, last_epc, last_tval, trap_count;
u64 handle_trap(u64 cause, u64 epc, u64 tval, u64 *regs, int smode) {
  (void)regs; (void)smode;
  report("trap", cause); report("tval-low", tval & 0xfff);
  trap_count++;
  u32 ins = *(volatile unsigned short *)epc;
  return epc + ((ins & 3) == 3 ? 4 : 2);
}

static const u64 V[] = {0, 1, -1UL, 0x7fffffff, 0x80000000UL, 0x7fffffffffffffffUL, 0x8000000000000000UL,
                        0x123456789abcdef0UL, 0xffffffff00000001UL};
#define N (sizeof(V) / sizeof(V[0]))
static volatile u64 cell[4] __attribute__((aligned(16)));

#define AMO(op)                                                                    \
  {                                                                                \
    hash_t h; hinit(&h);                                                           \
    for (unsigned i = 0; i < N; i++) for (unsigned j = 0; j < N; j++) {            \
      cell[0] = V[i]; u64 old;                                                     \
      asm volatile(#op " %0, %1, (%2)" : "=r"(old) : "r"(V[j]), "r"(&cell[0]) : "memory"); \
      hadd(&h, old); hadd(&h, cell[0]);                                            \
    }                                                                              \
    report(#op, h.h);                                                              \
  }

int main(void) {
  AMO(amoswap.d) AMO(amoadd.d) AMO(amoxor.d) AMO(amoand.d) AMO(amoor.d) AMO(amomin.d) AMO(amomax.d)
  AMO(amominu.d) AMO(amomaxu.d)
  AMO(amoswap.w) AMO(amoadd.w) AMO(amoxor.w) AMO(amoand.w) AMO(amoor.w) AMO(amomin.w) AMO(amomax.w)
  AMO(amominu.w) AMO(amomaxu.w)
  AMO(amoadd.d.aqrl) AMO(amoswap.w.aq)
  {
    u64 v, sc1, sc2, sc3;
    cell[1] = 41;
    asm volatile("lr.d %0, (%4)\n addi %0, %0, 1\n sc.d %1, %0, (%4)\n sc.d %2, %0, (%4)\n"
                 "lr.w %0, (%4)\n sc.w %3, %0, (%5)"
                 : "=&r"(v), "=&r"(sc1), "=&r"(sc2), "=&r"(sc3) : "r"(&cell[1]), "r"(&cell[2]) : "memory");
    report("lrsc-value", cell[1]); report("sc-ok", sc1); report("sc-again", sc2); report("sc-other", sc3);
  }
  // misaligned atomics trap (cause 6 for AMO/SC, 4 for LR)
  {
    u64 old;
    asm volatile("amoadd.w %0, %1, (%2)" : "=r"(old) : "r"(1UL), "r"((char *)&cell[0] + 2) : "memory");
    asm volatile("lr.d %0, (%1)" : "=r"(old) : "r"((char *)&cell[0] + 4) : "memory");
    asm volatile("sc.w %0, %1, (%2)" : "=r"(old) : "r"(1UL), "r"((char *)&cell[0] + 1) : "memory");
  }
  // explicit compressed forms
  {
    u64 a = 5, b = 7, r;
    asm volatile(".option push\n .option rvc\n c.mv %0, %1\n c.add %0, %2\n c.addi %0, -3\n c.slli %0, 3\n"
                 " c.srli %0, 1\n c.andi %0, 0x1e\n .option pop" : "=&r"(r) : "r"(a), "r"(b));
    report("c-alu", r);
    u64 s0v;
    asm volatile("mv s0, %1\n mv s1, %2\n c.sub s0, s1\n c.xor s0, s1\n c.or s0, s1\n c.and s0, s1\n c.addw s0, s1\n"
                 " c.subw s0, s1\n c.srai s0, 2\n c.addiw s0, 7\n mv %0, s0"
                 : "=r"(s0v) : "r"(0x123456789UL), "r"(0xfedcbaUL) : "s0", "s1");
    report("c-alu2", s0v);
    u64 lui; asm volatile("c.lui %0, 0xfffe1" : "=r"(lui)); report("c-lui", lui);
    u64 li; asm volatile("c.li %0, -17" : "=r"(li)); report("c-li", li);
    static u64 slots[8];
    u64 ld1, lw1;
    asm volatile("mv s0, %2\n li s1, -9\n c.sd s1, 8(s0)\n c.sw s1, 20(s0)\n c.ld a4, 8(s0)\n c.lw a5, 20(s0)\n"
                 " mv %0, a4\n mv %1, a5"
                 : "=r"(ld1), "=r"(lw1) : "r"(slots) : "s0", "s1", "a4", "a5", "memory");
    report("c-ldsd", ld1); report("c-lwsw", lw1);
    u64 spv;
    asm volatile("mv t0, sp\n addi sp, sp, -64\n li t1, 99\n c.sdsp t1, 16(sp)\n c.swsp t1, 28(sp)\n"
                 " c.ldsp t2, 16(sp)\n c.lwsp t3, 28(sp)\n add %0, t2, t3\n c.addi16sp sp, 64\n c.addi4spn s0, sp, 12\n"
                 " sub %0, %0, s0\n add %0, %0, sp" : "=r"(spv) :: "t0", "t1", "t2", "t3", "s0", "memory");
    report("c-sp", spv);
    u64 br = 0;
    asm volatile("li s0, 0\n c.beqz s0, 1f\n addi %0, %0, 1\n 1: c.bnez s0, 2f\n addi %0, %0, 2\n 2: c.j 3f\n addi %0, %0, 4\n 3:"
                 : "+r"(br) :: "s0");
    report("c-branch", br);
    u64 link;
    asm volatile("la t0, 1f\n c.jalr t0\n 1: mv %0, ra" : "=r"(link) :: "t0", "ra");
    u64 here; asm volatile("auipc %0, 0" : "=r"(here));
    report("c-jalr", here - link);
    static double dd[2] = {1.5, 0};
    u64 fbits;
    asm volatile("mv s0, %1\n c.fld fs0, 0(s0)\n c.fsd fs0, 8(s0)\n ld %0, 8(s0)" : "=r"(fbits) : "r"(dd) : "s0", "fs0", "memory");
    report("c-fld", fbits);
    asm volatile("c.ebreak");
    asm volatile(".2byte 0x0000"); // the all-zero parcel is illegal
  }
  report("traps", trap_count);
  puts_("done\n");
  return 0;
}
