/* Macros that wrap one instruction in a function, for table-driven instruction tests. */
#ifndef KITSET_ISA_OPS_H
#define KITSET_ISA_OPS_H
#include <stdint.h>

#define ARRAY_LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

typedef uint64_t (*binary_op)(uint64_t, uint64_t);
typedef uint64_t (*unary_op)(uint64_t);

/* rd = op rs1, rs2 */
#define DEFINE_RR(fn, insn)                                               \
  static uint64_t fn(uint64_t a, uint64_t b) {                            \
    uint64_t r;                                                           \
    __asm__ volatile(insn " %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));      \
    return r;                                                             \
  }

/* rd = op rs1, imm */
#define DEFINE_RI(fn, insn, imm)                                          \
  static uint64_t fn(uint64_t a) {                                        \
    uint64_t r;                                                           \
    __asm__ volatile(insn " %0, %1, " #imm : "=r"(r) : "r"(a));           \
    return r;                                                             \
  }

struct named_binary {
  const char *name;
  binary_op fn;
};
struct named_unary {
  const char *name;
  unary_op fn;
};
#endif
