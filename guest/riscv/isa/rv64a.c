/* RV64A: LR/SC success and failure (a second sc, a mismatched address, after a trap),
 * every AMO in .w and .d forms with sign extension, rd = rs2 and rd = x0, and the misaligned LR
 * trap.
 * Left out because QEMU 7.2 departs from the spec there (see README.md): misaligned AMOs (QEMU
 * reports cause 4, the spec says 6) and a misaligned sc without a reservation (QEMU fails it
 * without trapping). */
#include "ops.h"
#include "runtime.h"

static volatile uint64_t cell[4] __attribute__((aligned(16)));

#define DEFINE_AMO(fn, insn)                                                                 \
  static uint64_t fn(uint64_t operand) {                                                     \
    uint64_t old;                                                                            \
    __asm__ volatile(insn " %0, %1, (%2)" : "=r"(old) : "r"(operand), "r"(&cell[0]) : "memory"); \
    return old;                                                                              \
  }
DEFINE_AMO(amoswap_w, "amoswap.w")
DEFINE_AMO(amoadd_w, "amoadd.w")
DEFINE_AMO(amoxor_w, "amoxor.w")
DEFINE_AMO(amoand_w, "amoand.w")
DEFINE_AMO(amoor_w, "amoor.w")
DEFINE_AMO(amomin_w, "amomin.w")
DEFINE_AMO(amomax_w, "amomax.w")
DEFINE_AMO(amominu_w, "amominu.w")
DEFINE_AMO(amomaxu_w, "amomaxu.w")
DEFINE_AMO(amoswap_d, "amoswap.d")
DEFINE_AMO(amoadd_d, "amoadd.d")
DEFINE_AMO(amoxor_d, "amoxor.d")
DEFINE_AMO(amoand_d, "amoand.d")
DEFINE_AMO(amoor_d, "amoor.d")
DEFINE_AMO(amomin_d, "amomin.d")
DEFINE_AMO(amomax_d, "amomax.d")
DEFINE_AMO(amominu_d, "amominu.d")
DEFINE_AMO(amomaxu_d, "amomaxu.d")
DEFINE_AMO(amoadd_d_aqrl, "amoadd.d.aqrl")
DEFINE_AMO(amoswap_w_aq, "amoswap.w.aq")

static const struct named_unary amos[] = {
    {"amoswap.w", amoswap_w}, {"amoadd.w", amoadd_w},   {"amoxor.w", amoxor_w},   {"amoand.w", amoand_w},
    {"amoor.w", amoor_w},     {"amomin.w", amomin_w},   {"amomax.w", amomax_w},   {"amominu.w", amominu_w},
    {"amomaxu.w", amomaxu_w}, {"amoswap.d", amoswap_d}, {"amoadd.d", amoadd_d},   {"amoxor.d", amoxor_d},
    {"amoand.d", amoand_d},   {"amoor.d", amoor_d},     {"amomin.d", amomin_d},   {"amomax.d", amomax_d},
    {"amominu.d", amominu_d}, {"amomaxu.d", amomaxu_d}, {"amoadd.d.aqrl", amoadd_d_aqrl},
    {"amoswap.w.aq", amoswap_w_aq},
};

static const uint64_t memory_values[] = {0x0000000000000005, 0x12345678fffffff0, 0xffffffff7ffffffe, 0x8000000080000000};
static const uint64_t operands[] = {0x3, 0xfffffffffffffff8, 0x80000001, 0x7fffffff00000010};

static void test_lr_sc(void) {
  uint64_t value, failed;
  cell[0] = 0x1111222233334444;
  __asm__ volatile("lr.d %0, (%2)\n\tsc.d %1, %3, (%2)"
                   : "=&r"(value), "=&r"(failed)
                   : "r"(&cell[0]), "r"(0xaaaa5555aaaa5555UL)
                   : "memory");
  check("lr.d.value", value);
  check("sc.d.ok.result", failed);
  check("sc.d.ok.memory", cell[0]);

  cell[1] = 0x00000000fffffffe;
  __asm__ volatile("lr.w %0, (%2)\n\tsc.w %1, %3, (%2)"
                   : "=&r"(value), "=&r"(failed)
                   : "r"(&cell[1]), "r"(0x1234UL)
                   : "memory");
  check("lr.w.sign-extended", value);
  check("sc.w.ok.result", failed);
  check("sc.w.ok.memory", cell[1]);

  /* sc without a reservation fails and leaves memory alone. A second sc after a successful
   * one fails too: the reservation is consumed. */
  cell[0] = 0x5;
  __asm__ volatile("lr.d %0, (%2)\n\tsc.d %1, %3, (%2)\n\tsc.d %1, %4, (%2)"
                   : "=&r"(value), "=&r"(failed)
                   : "r"(&cell[0]), "r"(0x6UL), "r"(0x7UL)
                   : "memory");
  check("sc.d.second.result", failed != 0);
  check("sc.d.second.memory", cell[0]);

  /* sc to a different address than the lr. */
  cell[2] = 0x9;
  __asm__ volatile("lr.d %0, (%2)\n\tsc.d %1, %4, (%3)"
                   : "=&r"(value), "=&r"(failed)
                   : "r"(&cell[0]), "r"(&cell[2]), "r"(0x10UL)
                   : "memory");
  check("sc.d.other-address.result", failed != 0);
  check("sc.d.other-address.memory", cell[2]);

  /* An sc after a trap fails: taking a trap drops the reservation, as on QEMU. */
  cell[0] = 0x21;
  clear_traps();
  __asm__ volatile("lr.d %0, (%2)\n\tebreak\n\tsc.d %1, %3, (%2)"
                   : "=&r"(value), "=&r"(failed)
                   : "r"(&cell[0]), "r"(0x22UL)
                   : "memory");
  check_m_trap("sc.d.after-trap.trap");
  check("sc.d.after-trap.result", failed != 0);
  check("sc.d.after-trap.memory", cell[0]);
}

/* rd = rs2: the old memory value lands in rd, the old register value in memory. */
static void test_register_aliasing(void) {
  uint64_t r = 0x1111111111111111;
  cell[0] = 0x2222222222222222;
  __asm__ volatile("amoswap.d %0, %0, (%1)" : "+r"(r) : "r"(&cell[0]) : "memory");
  check("amoswap.d.rd=rs2.reg", r);
  check("amoswap.d.rd=rs2.mem", cell[0]);
  r = 0x7fffffff;
  cell[0] = 0x0000000100000001;
  __asm__ volatile("amoadd.w %0, %0, (%1)" : "+r"(r) : "r"(&cell[0]) : "memory");
  check("amoadd.w.rd=rs2.reg", r);
  check("amoadd.w.rd=rs2.mem", cell[0]);
  r = 0x3333333333333333;
  cell[0] = 0x4444444444444444;
  uint64_t loaded;
  __asm__ volatile("lr.d %1, (%2)\n\tsc.d %0, %0, (%2)" : "+r"(r), "=&r"(loaded) : "r"(&cell[0]) : "memory");
  check("sc.d.rd=rs2.reg", r);
  check("sc.d.rd=rs2.mem", cell[0]);
  /* rd = x0: the AMO still writes memory. */
  cell[0] = 5;
  __asm__ volatile("amoadd.d zero, %0, (%1)" ::"r"(3UL), "r"(&cell[0]) : "memory");
  check("amoadd.d.rd=x0.mem", cell[0]);
}

static void test_misaligned(void) {
  uint64_t r = 0;
  uintptr_t odd = (uintptr_t)&cell[0] + 4;
  clear_traps();
  __asm__ volatile("lr.d %0, (%1)" : "=r"(r) : "r"(odd) : "memory");
  check_m_trap("lr.d.misaligned");
}

int main(void) {
  test_lr_sc();
  for (int op = 0; op < ARRAY_LEN(amos); op++)
    for (int i = 0; i < ARRAY_LEN(memory_values); i++)
      for (int j = 0; j < ARRAY_LEN(operands); j++) {
        cell[0] = memory_values[i];
        uint64_t old = amos[op].fn(operands[j]);
        print(amos[op].name);
        check_indexed(".old", i * 16 + j, old);
        print(amos[op].name);
        check_indexed(".new", i * 16 + j, cell[0]);
      }
  test_register_aliasing();
  test_misaligned();
  return 0;
}
