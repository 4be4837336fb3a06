// RV64I + M: every register-register and immediate ALU op over edge values; one hash line per op.
#include "lib.h"
volatile u64 last_cause, last_epc, last_tval, trap_count;
u64 handle_trap(u64 cause, u64 epc, u64 tval, u64 *regs, int smode) {
  (void)regs; (void)smode;
  report("unexpected-trap", cause); report("epc", epc); report("tval", tval);
  exit_with(1);
}

static const u64 V[] = {
  0, 1, 2, 3, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000UL, 0xffffffffUL,
  0x100000000UL, 0x7fffffffffffffffUL, 0x8000000000000000UL, 0xffffffffffffffffUL, 0xfffffffffffffffeUL,
  0x123456789abcdef0UL, 0xfedcba9876543210UL, 0x00000000deadbeefUL, 0xffffffff80000000UL, 63, 64, 31, 32,
  0x5555555555555555UL, 0xaaaaaaaaaaaaaaaaUL, 0x0000000100000001UL, 0xffffffff00000000UL,
};
#define N (sizeof(V) / sizeof(V[0]))

#define RR(op)                                                                 \
  {                                                                            \
    hash_t h; hinit(&h);                                                       \
    for (unsigned i = 0; i < N; i++)                                           \
      for (unsigned j = 0; j < N; j++) {                                       \
        u64 r; asm volatile(#op " %0, %1, %2" : "=r"(r) : "r"(V[i]), "r"(V[j])); \
        hadd(&h, r);                                                           \
      }                                                                        \
    report(#op, h.h);                                                          \
  }
#define RI(op, imm)                                                            \
  {                                                                            \
    hash_t h; hinit(&h);                                                       \
    for (unsigned i = 0; i < N; i++) {                                         \
      u64 r; asm volatile(#op " %0, %1, " #imm : "=r"(r) : "r"(V[i]));         \
      hadd(&h, r);                                                             \
    }                                                                          \
    report(#op "_" #imm, h.h);                                                 \
  }

int main(void) {
  RR(add) RR(sub) RR(sll) RR(srl) RR(sra) RR(slt) RR(sltu) RR(xor) RR(or) RR(and)
  RR(addw) RR(subw) RR(sllw) RR(srlw) RR(sraw)
  RR(mul) RR(mulh) RR(mulhu) RR(mulhsu) RR(mulw)
  RR(div) RR(divu) RR(rem) RR(remu) RR(divw) RR(divuw) RR(remw) RR(remuw)
  RI(addi, -1) RI(addi, 2047) RI(addi, -2048) RI(slti, -1) RI(slti, 5) RI(sltiu, -1) RI(sltiu, 5)
  RI(xori, -1) RI(xori, 0x555) RI(ori, -2048) RI(andi, 0x7ff) RI(andi, -16)
  RI(slli, 0) RI(slli, 1) RI(slli, 31) RI(slli, 32) RI(slli, 63) RI(srli, 1) RI(srli, 32) RI(srli, 63)
  RI(srai, 1) RI(srai, 31) RI(srai, 32) RI(srai, 63)
  RI(addiw, -1) RI(addiw, 2047) RI(slliw, 0) RI(slliw, 31) RI(srliw, 1) RI(srliw, 31) RI(sraiw, 1)
  RI(sraiw, 31)
  {
    u64 r; asm volatile("lui %0, 0x80000" : "=r"(r)); report("lui", r);
    asm volatile("lui %0, 0x7ffff" : "=r"(r)); report("lui2", r);
    u64 pc1, pc2;
    asm volatile("auipc %0, 0\n auipc %1, 0x80000" : "=r"(pc1), "=r"(pc2));
    report("auipc", pc2 - pc1);
  }
  // branches: taken/not-taken matrix
  {
    hash_t h; hinit(&h);
    for (unsigned i = 0; i < N; i++)
      for (unsigned j = 0; j < N; j++) {
        u64 bits = 0, a = V[i], b = V[j];
#define BR(op, bit) asm volatile(#op " %1, %2, 1f\n j 2f\n 1: ori %0, %0, " #bit "\n 2:" : "+r"(bits) : "r"(a), "r"(b));
        BR(beq, 1) BR(bne, 2) BR(blt, 4) BR(bge, 8) BR(bltu, 16) BR(bgeu, 32)
        hadd(&h, bits);
      }
    report("branches", h.h);
  }
  // loads and stores of every width, sign/zero extension, misaligned
  {
    static unsigned char buf[64] __attribute__((aligned(16)));
    for (int i = 0; i < 64; i++) buf[i] = (unsigned char)(i * 37 + 0x80);
    hash_t h; hinit(&h);
    for (int off = 0; off < 16; off++) {
      u64 r;
      asm volatile("lb %0, 0(%1)" : "=r"(r) : "r"(buf + off)); hadd(&h, r);
      asm volatile("lbu %0, 0(%1)" : "=r"(r) : "r"(buf + off)); hadd(&h, r);
      asm volatile("lh %0, 0(%1)" : "=r"(r) : "r"(buf + off)); hadd(&h, r);
      asm volatile("lhu %0, 0(%1)" : "=r"(r) : "r"(buf + off)); hadd(&h, r);
      asm volatile("lw %0, 0(%1)" : "=r"(r) : "r"(buf + off)); hadd(&h, r);
      asm volatile("lwu %0, 0(%1)" : "=r"(r) : "r"(buf + off)); hadd(&h, r);
      asm volatile("ld %0, 0(%1)" : "=r"(r) : "r"(buf + off)); hadd(&h, r);
    }
    report("loads", h.h);
    hinit(&h);
    for (int off = 0; off < 8; off++) {
      asm volatile("sb %0, 0(%1)" ::"r"(0x1122334455667788UL), "r"(buf + off) : "memory");
      asm volatile("sh %0, 9(%1)" ::"r"(0x99aabbccddeeff00UL), "r"(buf + off) : "memory");
      asm volatile("sw %0, 17(%1)" ::"r"(0x0123456789abcdefUL), "r"(buf + off) : "memory");
      asm volatile("sd %0, 33(%1)" ::"r"(0xfedcba9876543210UL), "r"(buf + off) : "memory");
      for (int i = 0; i < 64; i += 8) hadd(&h, *(volatile u64 *)(buf + i));
    }
    report("stores", h.h);
  }
  // jal/jalr link values and x0
  {
    u64 link, target, z;
    asm volatile("jal %0, 1f\n 1: auipc %1, 0" : "=r"(link), "=r"(target));
    report("jal-link", target - link);
    asm volatile("la t0, 1f\n addi t0, t0, 1\n jalr %0, 0(t0)\n 1: auipc %1, 0" : "=r"(link), "=r"(target)::"t0");
    report("jalr-link", target - link);
    asm volatile("addi x0, x0, 5\n mv %0, x0" : "=r"(z));
    report("x0", z);
  }
  puts_("done\n");
  return 0;
}
