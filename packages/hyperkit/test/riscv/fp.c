// F and D: arithmetic in all five rounding modes, fused multiply-add, conversions, compares, classify,
// sign injection, min/max, NaN boxing; each result hashed together with the fflags it raised.
#include "lib.h"
volatile u64 last_cause, last_epc, last_tval, trap_count;
u64 handle_trap(u64 cause, u64 epc, u64 tval, u64 *regs, int smode) {
  (void)regs; (void)smode;
  report("unexpected-trap", cause); report("epc", epc); report("tval", tval);
  exit_with(1);
}

static const u64 D[] = {
  0x0000000000000000UL, 0x8000000000000000UL, 0x3ff0000000000000UL, 0xbff0000000000000UL,
  0x7ff0000000000000UL, 0xfff0000000000000UL, 0x7ff8000000000000UL, 0x7ff4000000000000UL,
  0x0000000000000001UL, 0x800fffffffffffffUL, 0x0010000000000000UL, 0x7fefffffffffffffUL,
  0x3fd5555555555555UL, 0x400921fb54442d18UL, 0xc1e0000000000000UL, 0x43e0000000000000UL,
  0x41dfffffffc00000UL, 0x3fe0000000000000UL, 0x3ff8000000000000UL, 0xc004000000000000UL,
  0x4340000000000001UL, 0x3cb0000000000000UL, 0x47efffffe0000000UL, 0x380fffffffffffffUL,
};
static const u32 S[] = {
  0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7fa00000,
  0x00000001, 0x807fffff, 0x00800000, 0x7f7fffff, 0x3eaaaaab, 0x40490fdb, 0xcf000000, 0x4f000000,
  0x3f000000, 0x3fc00000, 0xc0200000, 0x4b800001, 0x33800000, 0x5f000000, 0xdf000000, 0x4effffff,
};
#define ND (sizeof(D) / sizeof(D[0]))
#define NS (sizeof(S) / sizeof(S[0]))

static inline u64 take_flags(void) { u64 f; asm volatile("csrrw %0, fflags, zero" : "=r"(f)); return f; }
static inline void set_rm(u64 rm) { asm volatile("csrw frm, %0" ::"r"(rm)); }

#define D2(op)                                                                          \
  {                                                                                     \
    hash_t h; hinit(&h);                                                                \
    for (u64 rm = 0; rm < 5; rm++) { set_rm(rm);                                        \
      for (unsigned i = 0; i < ND; i++) for (unsigned j = 0; j < ND; j++) {             \
        u64 r; asm volatile("fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n " #op " ft2, ft0, ft1\n fmv.x.d %0, ft2" \
                            : "=r"(r) : "r"(D[i]), "r"(D[j]) : "ft0", "ft1", "ft2");    \
        hadd(&h, r); hadd(&h, take_flags()); } }                                        \
    report(#op, h.h);                                                                   \
  }
#define S2(op)                                                                          \
  {                                                                                     \
    hash_t h; hinit(&h);                                                                \
    for (u64 rm = 0; rm < 5; rm++) { set_rm(rm);                                        \
      for (unsigned i = 0; i < NS; i++) for (unsigned j = 0; j < NS; j++) {             \
        u64 r; asm volatile("fmv.w.x ft0, %1\n fmv.w.x ft1, %2\n " #op " ft2, ft0, ft1\n fmv.x.d %0, ft2" \
                            : "=r"(r) : "r"((u64)S[i]), "r"((u64)S[j]) : "ft0", "ft1", "ft2"); \
        hadd(&h, r); hadd(&h, take_flags()); } }                                        \
    report(#op, h.h);                                                                   \
  }
#define D3(op)                                                                          \
  {                                                                                     \
    hash_t h; hinit(&h);                                                                \
    for (u64 rm = 0; rm < 5; rm += 2) { set_rm(rm);                                     \
      for (unsigned i = 0; i < ND; i++) for (unsigned j = 0; j < ND; j += 3) for (unsigned k = 0; k < ND; k += 2) { \
        u64 r; asm volatile("fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n fmv.d.x ft3, %3\n " #op " ft2, ft0, ft1, ft3\n fmv.x.d %0, ft2" \
                            : "=r"(r) : "r"(D[i]), "r"(D[j]), "r"(D[k]) : "ft0", "ft1", "ft2", "ft3"); \
        hadd(&h, r); hadd(&h, take_flags()); } }                                        \
    report(#op, h.h);                                                                   \
  }
#define S3(op)                                                                          \
  {                                                                                     \
    hash_t h; hinit(&h);                                                                \
    for (u64 rm = 0; rm < 5; rm += 2) { set_rm(rm);                                     \
      for (unsigned i = 0; i < NS; i++) for (unsigned j = 0; j < NS; j += 3) for (unsigned k = 0; k < NS; k += 2) { \
        u64 r; asm volatile("fmv.w.x ft0, %1\n fmv.w.x ft1, %2\n fmv.w.x ft3, %3\n " #op " ft2, ft0, ft1, ft3\n fmv.x.d %0, ft2" \
                            : "=r"(r) : "r"((u64)S[i]), "r"((u64)S[j]), "r"((u64)S[k]) : "ft0", "ft1", "ft2", "ft3"); \
        hadd(&h, r); hadd(&h, take_flags()); } }                                        \
    report(#op, h.h);                                                                   \
  }
/* one operand, result to an integer register (conversions, classify) or FP register */
#define DX(name, code)                                                                      \
  {                                                                                     \
    hash_t h; hinit(&h);                                                                \
    for (u64 rm = 0; rm < 5; rm++) { set_rm(rm);                                        \
      for (unsigned i = 0; i < ND; i++) {                                               \
        u64 r; asm volatile("fmv.d.x ft0, %1\n " code : "=r"(r) : "r"(D[i]) : "ft0", "ft2"); \
        hadd(&h, r); hadd(&h, take_flags()); } }                                        \
    report(name, h.h);                                                                  \
  }
#define SX(name, code)                                                                      \
  {                                                                                     \
    hash_t h; hinit(&h);                                                                \
    for (u64 rm = 0; rm < 5; rm++) { set_rm(rm);                                        \
      for (unsigned i = 0; i < NS; i++) {                                               \
        u64 r; asm volatile("fmv.w.x ft0, %1\n " code : "=r"(r) : "r"((u64)S[i]) : "ft0", "ft2"); \
        hadd(&h, r); hadd(&h, take_flags()); } }                                        \
    report(name, h.h);                                                                   \
  }
#define IX(name, code)                                                                      \
  {                                                                                     \
    static const u64 I[] = {0, 1, -1UL, 3, 0x7fffffff, 0x80000000UL, 0xffffffffUL, 0x7fffffffffffffffUL, \
      0x8000000000000000UL, 0x20000001UL, 0x1000001UL, 0x123456789abcdefUL, 0xfffffffffffffffbUL, 16777217}; \
    hash_t h; hinit(&h);                                                                \
    for (u64 rm = 0; rm < 5; rm++) { set_rm(rm);                                        \
      for (unsigned i = 0; i < sizeof(I) / sizeof(I[0]); i++) {                         \
        u64 r; asm volatile(code : "=r"(r) : "r"(I[i]) : "ft2");                \
        hadd(&h, r); hadd(&h, take_flags()); } }                                        \
    report(name, h.h);                                                                   \
  }

int main(void) {
  D2(fadd.d) D2(fsub.d) D2(fmul.d) D2(fdiv.d) D2(fmin.d) D2(fmax.d) D2(fsgnj.d) D2(fsgnjn.d) D2(fsgnjx.d)
  S2(fadd.s) S2(fsub.s) S2(fmul.s) S2(fdiv.s) S2(fmin.s) S2(fmax.s) S2(fsgnj.s) S2(fsgnjn.s) S2(fsgnjx.s)
  D3(fmadd.d) D3(fmsub.d) D3(fnmadd.d) D3(fnmsub.d) S3(fmadd.s) S3(fmsub.s) S3(fnmadd.s) S3(fnmsub.s)
  DX("fsqrt.d", "fsqrt.d ft2, ft0\n fmv.x.d %0, ft2") SX("fsqrt.s", "fsqrt.s ft2, ft0\n fmv.x.d %0, ft2")
  DX("fcvt.w.d", "fcvt.w.d %0, ft0") DX("fcvt.wu.d", "fcvt.wu.d %0, ft0") DX("fcvt.l.d", "fcvt.l.d %0, ft0")
  DX("fcvt.lu.d", "fcvt.lu.d %0, ft0") SX("fcvt.w.s", "fcvt.w.s %0, ft0") SX("fcvt.wu.s", "fcvt.wu.s %0, ft0")
  SX("fcvt.l.s", "fcvt.l.s %0, ft0") SX("fcvt.lu.s", "fcvt.lu.s %0, ft0")
  DX("fcvt.w.d-rtz", "fcvt.w.d %0, ft0, rtz") SX("fcvt.lu.s-rup", "fcvt.lu.s %0, ft0, rup")
  DX("fcvt.s.d", "fcvt.s.d ft2, ft0\n fmv.x.d %0, ft2") SX("fcvt.d.s", "fcvt.d.s ft2, ft0\n fmv.x.d %0, ft2")
  DX("fclass.d", "fclass.d %0, ft0") SX("fclass.s", "fclass.s %0, ft0")
  DX("feq.d", "feq.d %0, ft0, ft0") DX("flt.d", "flt.d %0, ft0, ft0") DX("fle.d", "fle.d %0, ft0, ft0")
  SX("feq.s", "feq.s %0, ft0, ft0") SX("flt.s", "flt.s %0, ft0, ft0") SX("fle.s", "fle.s %0, ft0, ft0")
  DX("fmv.x.w", "fmv.x.w %0, ft0") SX("fmv.x.w-s", "fmv.x.w %0, ft0")
  DX("unboxed.s", "fadd.s ft2, ft0, ft0\n fmv.x.d %0, ft2")
  IX("fcvt.d.l", "fcvt.d.l ft2, %1\n fmv.x.d %0, ft2") IX("fcvt.d.lu", "fcvt.d.lu ft2, %1\n fmv.x.d %0, ft2")
  IX("fcvt.d.w", "fcvt.d.w ft2, %1\n fmv.x.d %0, ft2") IX("fcvt.d.wu", "fcvt.d.wu ft2, %1\n fmv.x.d %0, ft2")
  IX("fcvt.s.l", "fcvt.s.l ft2, %1\n fmv.x.d %0, ft2") IX("fcvt.s.lu", "fcvt.s.lu ft2, %1\n fmv.x.d %0, ft2")
  IX("fcvt.s.w", "fcvt.s.w ft2, %1\n fmv.x.d %0, ft2") IX("fcvt.s.wu", "fcvt.s.wu ft2, %1\n fmv.x.d %0, ft2")
  /* compares between different values */
  {
    hash_t h; hinit(&h);
    for (unsigned i = 0; i < ND; i++) for (unsigned j = 0; j < ND; j++) {
      u64 a, b, c;
      asm volatile("fmv.d.x ft0, %3\n fmv.d.x ft1, %4\n feq.d %0, ft0, ft1\n flt.d %1, ft0, ft1\n fle.d %2, ft0, ft1"
                   : "=r"(a), "=r"(b), "=r"(c) : "r"(D[i]), "r"(D[j]) : "ft0", "ft1");
      hadd(&h, a | b << 1 | c << 2); hadd(&h, take_flags());
    }
    report("cmp.d", h.h);
  }
  /* loads/stores keep bits; flw NaN-boxes */
  {
    static u64 mem[2] = {0x7ff4000000000001UL, 0x123456787fa00000UL};
    u64 r1, r2;
    asm volatile("fld ft0, 0(%2)\n fsd ft0, 8(%2)\n flw ft1, 8(%2)\n fmv.x.d %0, ft1\n ld %1, 8(%2)"
                 : "=r"(r1), "=r"(r2) : "r"(mem) : "ft0", "ft1", "memory");
    report("flw-box", r1); report("fsd-bits", r2);
  }
  /* frm/fflags/fcsr CSR fields */
  {
    u64 v; asm volatile("csrw fcsr, %1\n csrr %0, fcsr" : "=r"(v) : "r"(0xffUL)); report("fcsr", v);
    asm volatile("csrr %0, frm" : "=r"(v)); report("frm", v);
    asm volatile("csrr %0, fflags" : "=r"(v)); report("fflags", v);
    asm volatile("csrw fcsr, zero");
  }
  puts_("done\n");
  return 0;
}
