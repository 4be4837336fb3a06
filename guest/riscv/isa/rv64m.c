/* RV64M: mul/mulh/mulhsu/mulhu, div/divu/rem/remu incl. division by zero and signed overflow,
 * and the W forms. */
#include "ops.h"
#include "runtime.h"

static const uint64_t values[] = {
    0, 1, 2, 3, ~0UL, ~1UL, 0x7fffffff, 0x80000000, 0xffffffff, 0xffffffff80000000,
    0x7fffffffffffffff, 0x8000000000000000, 0x0123456789abcdef, 0xfedcba9876543210,
};

DEFINE_RR(op_mul, "mul")
DEFINE_RR(op_mulh, "mulh")
DEFINE_RR(op_mulhsu, "mulhsu")
DEFINE_RR(op_mulhu, "mulhu")
DEFINE_RR(op_div, "div")
DEFINE_RR(op_divu, "divu")
DEFINE_RR(op_rem, "rem")
DEFINE_RR(op_remu, "remu")
DEFINE_RR(op_mulw, "mulw")
DEFINE_RR(op_divw, "divw")
DEFINE_RR(op_divuw, "divuw")
DEFINE_RR(op_remw, "remw")
DEFINE_RR(op_remuw, "remuw")

static const struct named_binary ops[] = {
    {"mul", op_mul},   {"mulh", op_mulh}, {"mulhsu", op_mulhsu}, {"mulhu", op_mulhu}, {"div", op_div},
    {"divu", op_divu}, {"rem", op_rem},   {"remu", op_remu},     {"mulw", op_mulw},   {"divw", op_divw},
    {"divuw", op_divuw}, {"remw", op_remw}, {"remuw", op_remuw},
};

int main(void) {
  for (int op = 0; op < ARRAY_LEN(ops); op++)
    for (int i = 0; i < ARRAY_LEN(values); i++)
      for (int j = 0; j < ARRAY_LEN(values); j++) {
        print(ops[op].name);
        check_indexed("", i * 16 + j, ops[op].fn(values[i], values[j]));
      }
  /* The result register equal to a source register (the hardware must read before writing). */
  uint64_t a = 7, b = 0;
  __asm__ volatile("div %0, %0, %1" : "+r"(a) : "r"(b));
  check("div.rd=rs1.by0", a);
  a = 0x8000000000000000;
  b = ~0UL;
  __asm__ volatile("rem %0, %1, %0" : "+r"(b) : "r"(a));
  check("rem.rd=rs2.overflow", b);
  return 0;
}
