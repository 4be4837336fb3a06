/* F and D: add/sub/mul/div/sqrt/fmadd/fmsub/fnmadd/fnmsub under every rounding mode (dynamic via
 * frm, and static encodings) with fflags, conversions in every direction including saturation and
 * NaN inputs, fmin/fmax with NaNs and signed zeros, compares, fclass, sign injection, NaN boxing,
 * fmv, loads/stores, invalid rounding modes and FS = Off.
 * Result lines: "op.rmN.II value fflags", the value being the whole 64-bit f register
 * (so single-precision results show their NaN boxing) or the integer register. */
#include "ops.h"
#include "runtime.h"

static void result_line(const char *op, int rm, int index, uint64_t value, uint64_t flags) {
  print(op);
  print(".rm");
  uart_putc((char)('0' + rm));
  uart_putc('.');
  print_hex((uint64_t)index, 3);
  uart_putc(' ');
  print_hex(value, 16);
  uart_putc(' ');
  print_hex(flags, 2);
  uart_putc('\n');
}

static uint64_t last_flags;

typedef uint64_t (*fp_op)(uint64_t, uint64_t, uint64_t);

/* Inputs go in with fmv.w.x (NaN-boxing them) or fmv.d.x; results come out with fmv.x.d. */
#define FP_BINARY(fn, insn, load)                                                          \
  static uint64_t fn(uint64_t a, uint64_t b, uint64_t c) {                                 \
    uint64_t r, fl;                                                                        \
    (void)c;                                                                               \
    __asm__ volatile(load " ft0, %2\n\t" load " ft1, %3\n\tcsrw fflags, zero\n\t" insn       \
                     " ft2, ft0, ft1\n\tcsrr %1, fflags\n\tfmv.x.d %0, ft2"                 \
                     : "=r"(r), "=r"(fl)                                                   \
                     : "r"(a), "r"(b)                                                      \
                     : "ft0", "ft1", "ft2");                                               \
    last_flags = fl;                                                                       \
    return r;                                                                              \
  }
#define FP_TERNARY(fn, insn, load)                                                         \
  static uint64_t fn(uint64_t a, uint64_t b, uint64_t c) {                                 \
    uint64_t r, fl;                                                                        \
    __asm__ volatile(load " ft0, %2\n\t" load " ft1, %3\n\t" load                            \
                     " ft2, %4\n\tcsrw fflags, zero\n\t" insn                               \
                     " ft3, ft0, ft1, ft2\n\tcsrr %1, fflags\n\tfmv.x.d %0, ft3"            \
                     : "=r"(r), "=r"(fl)                                                   \
                     : "r"(a), "r"(b), "r"(c)                                              \
                     : "ft0", "ft1", "ft2", "ft3");                                        \
    last_flags = fl;                                                                       \
    return r;                                                                              \
  }
/* Float in, float out (sqrt, fcvt.s.d, fcvt.d.s). */
#define FP_UNARY(fn, insn, load)                                                           \
  static uint64_t fn(uint64_t a, uint64_t b, uint64_t c) {                                 \
    uint64_t r, fl;                                                                        \
    (void)b;                                                                               \
    (void)c;                                                                               \
    __asm__ volatile(load " ft0, %2\n\tcsrw fflags, zero\n\t" insn                          \
                     " ft2, ft0\n\tcsrr %1, fflags\n\tfmv.x.d %0, ft2"                      \
                     : "=r"(r), "=r"(fl)                                                   \
                     : "r"(a)                                                              \
                     : "ft0", "ft2");                                                      \
    last_flags = fl;                                                                       \
    return r;                                                                              \
  }
/* Float in, integer out (fcvt to integer, fclass, fmv.x.w). */
#define FP_TO_INT(fn, insn, load)                                                          \
  static uint64_t fn(uint64_t a, uint64_t b, uint64_t c) {                                 \
    uint64_t r, fl;                                                                        \
    (void)b;                                                                               \
    (void)c;                                                                               \
    __asm__ volatile(load " ft0, %2\n\tcsrw fflags, zero\n\t" insn                          \
                     " %0, ft0\n\tcsrr %1, fflags"                                          \
                     : "=&r"(r), "=&r"(fl)                                                 \
                     : "r"(a)                                                              \
                     : "ft0");                                                             \
    last_flags = fl;                                                                       \
    return r;                                                                              \
  }
/* Integer in, float out. */
#define INT_TO_FP(fn, insn)                                                                \
  static uint64_t fn(uint64_t a, uint64_t b, uint64_t c) {                                 \
    uint64_t r, fl;                                                                        \
    (void)b;                                                                               \
    (void)c;                                                                               \
    __asm__ volatile("csrw fflags, zero\n\t" insn " ft2, %2\n\tcsrr %1, fflags\n\tfmv.x.d %0, ft2" \
                     : "=r"(r), "=r"(fl)                                                   \
                     : "r"(a)                                                              \
                     : "ft2");                                                             \
    last_flags = fl;                                                                       \
    return r;                                                                              \
  }
/* Two floats in, integer out (compares). */
#define FP_COMPARE(fn, insn, load)                                                         \
  static uint64_t fn(uint64_t a, uint64_t b, uint64_t c) {                                 \
    uint64_t r, fl;                                                                        \
    (void)c;                                                                               \
    __asm__ volatile(load " ft0, %2\n\t" load " ft1, %3\n\tcsrw fflags, zero\n\t" insn       \
                     " %0, ft0, ft1\n\tcsrr %1, fflags"                                     \
                     : "=&r"(r), "=&r"(fl)                                                 \
                     : "r"(a), "r"(b)                                                      \
                     : "ft0", "ft1");                                                      \
    last_flags = fl;                                                                       \
    return r;                                                                              \
  }

#define LS "fmv.w.x"
#define LD "fmv.d.x"

FP_BINARY(fadd_s, "fadd.s", LS)
FP_BINARY(fsub_s, "fsub.s", LS)
FP_BINARY(fmul_s, "fmul.s", LS)
FP_BINARY(fdiv_s, "fdiv.s", LS)
FP_BINARY(fadd_d, "fadd.d", LD)
FP_BINARY(fsub_d, "fsub.d", LD)
FP_BINARY(fmul_d, "fmul.d", LD)
FP_BINARY(fdiv_d, "fdiv.d", LD)
FP_BINARY(fmin_s, "fmin.s", LS)
FP_BINARY(fmax_s, "fmax.s", LS)
FP_BINARY(fmin_d, "fmin.d", LD)
FP_BINARY(fmax_d, "fmax.d", LD)
FP_BINARY(fsgnj_s, "fsgnj.s", LS)
FP_BINARY(fsgnjn_s, "fsgnjn.s", LS)
FP_BINARY(fsgnjx_s, "fsgnjx.s", LS)
FP_BINARY(fsgnj_d, "fsgnj.d", LD)
FP_BINARY(fsgnjn_d, "fsgnjn.d", LD)
FP_BINARY(fsgnjx_d, "fsgnjx.d", LD)
FP_COMPARE(feq_s, "feq.s", LS)
FP_COMPARE(flt_s, "flt.s", LS)
FP_COMPARE(fle_s, "fle.s", LS)
FP_COMPARE(feq_d, "feq.d", LD)
FP_COMPARE(flt_d, "flt.d", LD)
FP_COMPARE(fle_d, "fle.d", LD)
FP_TERNARY(fmadd_s, "fmadd.s", LS)
FP_TERNARY(fmsub_s, "fmsub.s", LS)
FP_TERNARY(fnmadd_s, "fnmadd.s", LS)
FP_TERNARY(fnmsub_s, "fnmsub.s", LS)
FP_TERNARY(fmadd_d, "fmadd.d", LD)
FP_TERNARY(fmsub_d, "fmsub.d", LD)
FP_TERNARY(fnmadd_d, "fnmadd.d", LD)
FP_TERNARY(fnmsub_d, "fnmsub.d", LD)
FP_UNARY(fsqrt_s, "fsqrt.s", LS)
FP_UNARY(fsqrt_d, "fsqrt.d", LD)
FP_UNARY(fcvt_s_d, "fcvt.s.d", LD)
FP_UNARY(fcvt_d_s, "fcvt.d.s", LS)
FP_TO_INT(fcvt_w_s, "fcvt.w.s", LS)
FP_TO_INT(fcvt_wu_s, "fcvt.wu.s", LS)
FP_TO_INT(fcvt_l_s, "fcvt.l.s", LS)
FP_TO_INT(fcvt_lu_s, "fcvt.lu.s", LS)
FP_TO_INT(fcvt_w_d, "fcvt.w.d", LD)
FP_TO_INT(fcvt_wu_d, "fcvt.wu.d", LD)
FP_TO_INT(fcvt_l_d, "fcvt.l.d", LD)
FP_TO_INT(fcvt_lu_d, "fcvt.lu.d", LD)
FP_TO_INT(fclass_s, "fclass.s", LS)
FP_TO_INT(fclass_d, "fclass.d", LD)
FP_TO_INT(fmv_x_w, "fmv.x.w", LS)
INT_TO_FP(fcvt_s_w, "fcvt.s.w")
INT_TO_FP(fcvt_s_wu, "fcvt.s.wu")
INT_TO_FP(fcvt_s_l, "fcvt.s.l")
INT_TO_FP(fcvt_s_lu, "fcvt.s.lu")
INT_TO_FP(fcvt_d_w, "fcvt.d.w")
INT_TO_FP(fcvt_d_wu, "fcvt.d.wu")
INT_TO_FP(fcvt_d_l, "fcvt.d.l")
INT_TO_FP(fcvt_d_lu, "fcvt.d.lu")

/* +0 -0 1 -1.5 1/3 max min-normal subnormal max-subnormal inf -inf qNaN sNaN -qNaN 2^24+2 */
static const uint64_t singles[] = {
    0x00000000, 0x80000000, 0x3f800000, 0xbfc00000, 0x3eaaaaab, 0x7f7fffff, 0x00800000, 0x00000003,
    0x807fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffc00000, 0x4b800001,
};
static const uint64_t doubles[] = {
    0x0000000000000000, 0x8000000000000000, 0x3ff0000000000000, 0xbff8000000000000,
    0x3fd5555555555555, 0x7fefffffffffffff, 0x0010000000000000, 0x0000000000000003,
    0x800fffffffffffff, 0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000,
    0x7ff0000000000001, 0xfff8000000000000, 0x4340000000000001,
};
/* Conversion inputs: halves around integers, the 32/64-bit limits and just beyond them. */
static const uint64_t singles_to_int[] = {
    0x00000000, 0x80000000, 0x3f000000, 0xbf000000, 0x3fc00000, 0xbfc00000, 0x40200000, 0xc0200000,
    0x4effffff, 0x4f000000, 0xcf000000, 0xcf000001, 0x4f800000, 0x5effffff, 0x5f000000, 0xdf000000,
    0xdf000001, 0x5f800000, 0xbf800000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffc00000,
};
static const uint64_t doubles_to_int[] = {
    0x0000000000000000, 0x8000000000000000, 0x3fe0000000000000, 0xbfe0000000000000,
    0x3ff8000000000000, 0xbff8000000000000, 0x4004000000000000, 0xc004000000000000,
    0x41dfffffffe00000, 0x41dfffffffffffff, 0x41e0000000000000, 0xc1e0000000000000,
    0xc1e0000000200000, 0x41efffffffe00000, 0x41efffffffffffff, 0x41f0000000000000,
    0x43dfffffffffffff, 0x43e0000000000000, 0xc3e0000000000000, 0xc3e0000000000001,
    0x43f0000000000000, 0xbff0000000000000, 0x7ff0000000000000, 0xfff0000000000000,
    0x7ff8000000000000, 0x7ff0000000000001, 0xfff8000000000000,
};
static const uint64_t integers[] = {
    0, 1, ~0UL, 0x1000001, 0x1000003, 0x7fffffff, 0x80000000, 0xffffffff, 0x20000000000001,
    0x20000000000003, 0x7fffffffffffffff, 0x8000000000000000, 0xffffffff00000001, 0x0123456789abcdef,
};

struct fp_case {
  const char *name;
  fp_op fn;
  const uint64_t *inputs;
  int count;
  int arity;
  int rounding; /* 1: run under each of the five rounding modes, 0: once under RNE */
};

#define S_IN singles, ARRAY_LEN(singles)
#define D_IN doubles, ARRAY_LEN(doubles)
#define S_CVT singles_to_int, ARRAY_LEN(singles_to_int)
#define D_CVT doubles_to_int, ARRAY_LEN(doubles_to_int)
#define I_IN integers, ARRAY_LEN(integers)

static const struct fp_case cases[] = {
    {"fadd.s", fadd_s, S_IN, 2, 1},       {"fsub.s", fsub_s, S_IN, 2, 1},
    {"fmul.s", fmul_s, S_IN, 2, 1},       {"fdiv.s", fdiv_s, S_IN, 2, 1},
    {"fadd.d", fadd_d, D_IN, 2, 1},       {"fsub.d", fsub_d, D_IN, 2, 1},
    {"fmul.d", fmul_d, D_IN, 2, 1},       {"fdiv.d", fdiv_d, D_IN, 2, 1},
    {"fsqrt.s", fsqrt_s, S_IN, 1, 1},     {"fsqrt.d", fsqrt_d, D_IN, 1, 1},
    {"fmadd.s", fmadd_s, S_IN, 3, 1},     {"fmsub.s", fmsub_s, S_IN, 3, 0},
    {"fnmadd.s", fnmadd_s, S_IN, 3, 0},   {"fnmsub.s", fnmsub_s, S_IN, 3, 0},
    {"fmadd.d", fmadd_d, D_IN, 3, 1},     {"fmsub.d", fmsub_d, D_IN, 3, 0},
    {"fnmadd.d", fnmadd_d, D_IN, 3, 0},   {"fnmsub.d", fnmsub_d, D_IN, 3, 0},
    {"fmin.s", fmin_s, S_IN, 2, 0},       {"fmax.s", fmax_s, S_IN, 2, 0},
    {"fmin.d", fmin_d, D_IN, 2, 0},       {"fmax.d", fmax_d, D_IN, 2, 0},
    {"fsgnj.s", fsgnj_s, S_IN, 2, 0},     {"fsgnjn.s", fsgnjn_s, S_IN, 2, 0},
    {"fsgnjx.s", fsgnjx_s, S_IN, 2, 0},   {"fsgnj.d", fsgnj_d, D_IN, 2, 0},
    {"fsgnjn.d", fsgnjn_d, D_IN, 2, 0},   {"fsgnjx.d", fsgnjx_d, D_IN, 2, 0},
    {"feq.s", feq_s, S_IN, 2, 0},         {"flt.s", flt_s, S_IN, 2, 0},
    {"fle.s", fle_s, S_IN, 2, 0},         {"feq.d", feq_d, D_IN, 2, 0},
    {"flt.d", flt_d, D_IN, 2, 0},         {"fle.d", fle_d, D_IN, 2, 0},
    {"fclass.s", fclass_s, S_IN, 1, 0},   {"fclass.d", fclass_d, D_IN, 1, 0},
    {"fmv.x.w", fmv_x_w, S_IN, 1, 0},     {"fcvt.s.d", fcvt_s_d, D_IN, 1, 1},
    {"fcvt.d.s", fcvt_d_s, S_IN, 1, 0},   {"fcvt.s.d.cvt", fcvt_s_d, D_CVT, 1, 1},
    {"fcvt.w.s", fcvt_w_s, S_CVT, 1, 1},  {"fcvt.wu.s", fcvt_wu_s, S_CVT, 1, 1},
    {"fcvt.l.s", fcvt_l_s, S_CVT, 1, 1},  {"fcvt.lu.s", fcvt_lu_s, S_CVT, 1, 1},
    {"fcvt.w.d", fcvt_w_d, D_CVT, 1, 1},  {"fcvt.wu.d", fcvt_wu_d, D_CVT, 1, 1},
    {"fcvt.l.d", fcvt_l_d, D_CVT, 1, 1},  {"fcvt.lu.d", fcvt_lu_d, D_CVT, 1, 1},
    {"fcvt.s.w", fcvt_s_w, I_IN, 1, 1},   {"fcvt.s.wu", fcvt_s_wu, I_IN, 1, 1},
    {"fcvt.s.l", fcvt_s_l, I_IN, 1, 1},   {"fcvt.s.lu", fcvt_s_lu, I_IN, 1, 1},
    {"fcvt.d.w", fcvt_d_w, I_IN, 1, 0},   {"fcvt.d.wu", fcvt_d_wu, I_IN, 1, 0},
    {"fcvt.d.l", fcvt_d_l, I_IN, 1, 1},   {"fcvt.d.lu", fcvt_d_lu, I_IN, 1, 1},
};

/* Three-operand cases use a fixed list of triples (index into the inputs) rather than all cubes. */
static const uint8_t triples[][3] = {
    {2, 2, 2},  {2, 3, 4},  {4, 4, 3},  {3, 4, 2},  {5, 5, 10}, {5, 2, 10}, {6, 6, 0},  {7, 2, 8},
    {0, 9, 2},  {9, 0, 11}, {9, 2, 10}, {11, 2, 2}, {12, 2, 2}, {2, 2, 12}, {1, 2, 0},  {0, 3, 1},
    {4, 14, 3}, {14, 14, 5}, {6, 4, 1}, {8, 8, 7},
};

static void run_case(const struct fp_case *c, int rm) {
  CSR_WRITE(frm, rm);
  if (c->arity == 1) {
    for (int i = 0; i < c->count; i++) {
      uint64_t r = c->fn(c->inputs[i], 0, 0);
      result_line(c->name, rm, i, r, last_flags);
    }
  } else if (c->arity == 2) {
    for (int i = 0; i < c->count; i++)
      for (int j = 0; j < c->count; j++) {
        uint64_t r = c->fn(c->inputs[i], c->inputs[j], 0);
        result_line(c->name, rm, i * 16 + j, r, last_flags);
      }
  } else {
    for (int t = 0; t < ARRAY_LEN(triples); t++) {
      uint64_t r = c->fn(c->inputs[triples[t][0]], c->inputs[triples[t][1]], c->inputs[triples[t][2]]);
      result_line(c->name, rm, t, r, last_flags);
    }
  }
}

/* Static rounding modes override frm (set to RMM, which none of them is, except rmm). */
#define STATIC_RM(label, insn)                                                        \
  do {                                                                                \
    uint64_t _r;                                                                      \
    CSR_WRITE(frm, 4);                                                                \
    __asm__ volatile("fmv.w.x ft0, %1\n\tfmv.w.x ft1, %2\n\t" insn "\n\tfmv.x.d %0, ft2" \
                     : "=r"(_r)                                                       \
                     : "r"(0x3eaaaaabUL), "r"(0xbf800001UL)                            \
                     : "ft0", "ft1", "ft2");                                          \
    check(label, _r);                                                                 \
  } while (0)
#define STATIC_RM_INT(label, insn, input)                                             \
  do {                                                                                \
    uint64_t _r;                                                                      \
    CSR_WRITE(frm, 4);                                                                \
    __asm__ volatile("fmv.d.x ft0, %1\n\t" insn : "=r"(_r) : "r"((uint64_t)(input)) : "ft0"); \
    check(label, _r);                                                                 \
  } while (0)

static void test_static_rounding(void) {
  STATIC_RM("fadd.s.static.rne", "fadd.s ft2, ft0, ft1, rne");
  STATIC_RM("fadd.s.static.rtz", "fadd.s ft2, ft0, ft1, rtz");
  STATIC_RM("fadd.s.static.rdn", "fadd.s ft2, ft0, ft1, rdn");
  STATIC_RM("fadd.s.static.rup", "fadd.s ft2, ft0, ft1, rup");
  STATIC_RM("fadd.s.static.rmm", "fadd.s ft2, ft0, ft1, rmm");
  STATIC_RM("fmul.s.static.rtz", "fmul.s ft2, ft0, ft1, rtz");
  STATIC_RM("fdiv.s.static.rup", "fdiv.s ft2, ft0, ft1, rup");
  STATIC_RM("fmadd.s.static.rdn", "fmadd.s ft2, ft0, ft1, ft0, rdn");
  STATIC_RM_INT("fcvt.w.d.static.rne", "fcvt.w.d %0, ft0, rne", 0xc004000000000000UL);
  STATIC_RM_INT("fcvt.w.d.static.rtz", "fcvt.w.d %0, ft0, rtz", 0xc004000000000000UL);
  STATIC_RM_INT("fcvt.w.d.static.rdn", "fcvt.w.d %0, ft0, rdn", 0xc004000000000000UL);
  STATIC_RM_INT("fcvt.w.d.static.rup", "fcvt.w.d %0, ft0, rup", 0xc004000000000000UL);
  STATIC_RM_INT("fcvt.w.d.static.rmm", "fcvt.w.d %0, ft0, rmm", 0xc004000000000000UL);
  STATIC_RM_INT("fcvt.l.d.static.rmm", "fcvt.l.d %0, ft0, rmm", 0x4004000000000000UL);
  CSR_WRITE(frm, 0);
}

static void test_invalid_rounding_and_fs_off(void) {
  /* Static rm 5 and 6 are reserved; dynamic with frm = 5, 6, 7 is illegal. */
  clear_traps();
  __asm__ volatile(".insn r 0x53, 5, 0x00, ft2, ft0, ft1" ::: "ft2");
  check_m_trap("fadd.s.rm5");
  clear_traps();
  __asm__ volatile(".insn r 0x53, 6, 0x01, ft2, ft0, ft1" ::: "ft2");
  check_m_trap("fadd.d.rm6");
  for (int frm = 5; frm <= 7; frm++) {
    CSR_WRITE(frm, frm);
    clear_traps();
    __asm__ volatile("fadd.d ft2, ft0, ft1" ::: "ft2");
    print("fadd.d.frm");
    check_indexed("", frm, m_trap.cause | (m_trap.count << 8));
    /* Operations that do not round are fine with a bad frm. */
    clear_traps();
    __asm__ volatile("fsgnj.d ft2, ft0, ft1" ::: "ft2");
    print("fsgnj.d.frm");
    check_indexed("", frm, m_trap.count);
  }
  CSR_WRITE(frm, 0);
  /* FS = Off: every F/D instruction and fcsr access is illegal. */
  uint64_t status = CSR_READ(mstatus);
  CSR_CLEAR(mstatus, MSTATUS_FS);
  uint64_t r = 0;
  clear_traps();
  __asm__ volatile("fadd.s ft2, ft0, ft1" ::: "ft2");
  check_m_trap("fs-off.fadd.s");
  clear_traps();
  __asm__ volatile("fld ft2, 0(sp)" ::: "ft2");
  check_m_trap("fs-off.fld");
  clear_traps();
  __asm__ volatile("fmv.x.d %0, ft2" : "=r"(r));
  check_m_trap("fs-off.fmv.x.d");
  clear_traps();
  __asm__ volatile("csrr %0, fflags" : "=r"(r));
  check_m_trap("fs-off.csrr.fflags");
  CSR_WRITE(mstatus, status);
}

static void test_boxing_and_moves(void) {
  uint64_t r, fl;
  /* A single-precision operand whose upper half is not all ones reads as the canonical NaN. */
  __asm__ volatile("fmv.d.x ft0, %2\n\tfmv.w.x ft1, %3\n\tcsrw fflags, zero\n\tfadd.s ft2, ft0, ft1\n\t"
                   "csrr %1, fflags\n\tfmv.x.d %0, ft2"
                   : "=r"(r), "=r"(fl)
                   : "r"(0x000000003f800000UL), "r"(0x3f800000UL)
                   : "ft0", "ft1", "ft2");
  check("nan-boxing.unboxed-operand", r);
  check("nan-boxing.unboxed-operand.fflags", fl);
  __asm__ volatile("fmv.d.x ft0, %1\n\tfmv.x.w %0, ft0" : "=r"(r) : "r"(0x1234567880000001UL) : "ft0");
  check("fmv.x.w.unboxed", r);
  __asm__ volatile("fmv.d.x ft0, %1\n\tfsgnj.s ft1, ft0, ft0\n\tfmv.x.d %0, ft1"
                   : "=r"(r)
                   : "r"(0xffffffff00000000UL | 0xbf800000UL)
                   : "ft0", "ft1");
  check("fsgnj.s.boxed", r);
  __asm__ volatile("fmv.d.x ft0, %1\n\tfsgnj.s ft1, ft0, ft0\n\tfmv.x.d %0, ft1"
                   : "=r"(r)
                   : "r"(0x00000000bf800000UL)
                   : "ft0", "ft1");
  check("fsgnj.s.unboxed", r);
  __asm__ volatile("fmv.w.x ft0, %1\n\tfmv.x.d %0, ft0" : "=r"(r) : "r"(0x123456787f800001UL) : "ft0");
  check("fmv.w.x.boxes", r);
  __asm__ volatile("fmv.d.x ft0, %1\n\tfmv.x.d %0, ft0" : "=r"(r) : "r"(0x7ff0000000000001UL) : "ft0");
  check("fmv.d.x.snan-preserved", r);

  static volatile uint64_t memory[2] = {0x00000000c0490fdbUL, 0x400921fb54442d18UL};
  __asm__ volatile("flw ft0, 0(%1)\n\tfmv.x.d %0, ft0" : "=r"(r) : "r"(memory) : "ft0", "memory");
  check("flw.boxes", r);
  __asm__ volatile("fld ft0, 8(%1)\n\tfmv.x.d %0, ft0" : "=r"(r) : "r"(memory) : "ft0", "memory");
  check("fld", r);
  __asm__ volatile("fmv.d.x ft0, %0\n\tfsw ft0, 8(%1)" ::"r"(0xaaaaaaaa11223344UL), "r"(memory) : "ft0", "memory");
  check("fsw.low-half-only", memory[1]);
  __asm__ volatile("fmv.d.x ft0, %0\n\tfsd ft0, 0(%1)" ::"r"(0x7ff4000000000000UL), "r"(memory) : "ft0", "memory");
  check("fsd.snan-unchanged", memory[0]);

  /* Flags accumulate until cleared; fsflags/fsrm swap. */
  __asm__ volatile("csrw fflags, zero\n\tfmv.w.x ft0, %1\n\tfdiv.s ft1, ft0, ft0\n\tfmv.w.x ft0, zero\n\t"
                   "fmv.w.x ft2, %2\n\tfdiv.s ft1, ft2, ft0\n\tcsrr %0, fflags"
                   : "=r"(r)
                   : "r"(0UL), "r"(0x3f800000UL)
                   : "ft0", "ft1", "ft2");
  check("fflags.accumulate", r);
  __asm__ volatile("fsflags %0, %1" : "=r"(r) : "r"(0x3UL));
  check("fsflags.old", r);
  __asm__ volatile("fsrm %0, %1" : "=r"(r) : "r"(0x2UL));
  check("fsrm.old", r);
  check("fcsr.after", CSR_READ(fcsr));
  CSR_WRITE(fcsr, 0);
}

int main(void) {
  for (int c = 0; c < ARRAY_LEN(cases); c++) {
    if (cases[c].rounding) {
      for (int rm = 0; rm <= 4; rm++) run_case(&cases[c], rm);
    } else {
      run_case(&cases[c], 0);
    }
  }
  test_static_rounding();
  test_invalid_rounding_and_fs_off();
  test_boxing_and_moves();
  return 0;
}
