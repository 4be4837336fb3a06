/* RV64I: register and immediate arithmetic, shifts (incl. W forms), compares, branches,
 * loads and stores of every width (sign extension, misaligned offsets), lui/auipc, jal/jalr,
 * fence/pause, and Zifencei: code rewritten in memory runs its new version after fence.i (what
 * a decoded-instruction cache must honour). */
#include "ops.h"
#include "runtime.h"

static const uint64_t values[] = {
    0, 1, ~0UL, 31, 32, 63, 0x7fffffff, 0x80000000, 0x7fffffffffffffff, 0x8000000000000000,
    0x0123456789abcdef, 0xfedcba9876543210,
};

DEFINE_RR(op_add, "add")
DEFINE_RR(op_sub, "sub")
DEFINE_RR(op_sll, "sll")
DEFINE_RR(op_srl, "srl")
DEFINE_RR(op_sra, "sra")
DEFINE_RR(op_slt, "slt")
DEFINE_RR(op_sltu, "sltu")
DEFINE_RR(op_xor, "xor")
DEFINE_RR(op_or, "or")
DEFINE_RR(op_and, "and")
DEFINE_RR(op_addw, "addw")
DEFINE_RR(op_subw, "subw")
DEFINE_RR(op_sllw, "sllw")
DEFINE_RR(op_srlw, "srlw")
DEFINE_RR(op_sraw, "sraw")

static const struct named_binary register_ops[] = {
    {"add", op_add},   {"sub", op_sub},   {"sll", op_sll},   {"srl", op_srl},   {"sra", op_sra},
    {"slt", op_slt},   {"sltu", op_sltu}, {"xor", op_xor},   {"or", op_or},     {"and", op_and},
    {"addw", op_addw}, {"subw", op_subw}, {"sllw", op_sllw}, {"srlw", op_srlw}, {"sraw", op_sraw},
};

DEFINE_RI(addi_0, "addi", 0)
DEFINE_RI(addi_1, "addi", 1)
DEFINE_RI(addi_m1, "addi", -1)
DEFINE_RI(addi_max, "addi", 2047)
DEFINE_RI(addi_min, "addi", -2048)
DEFINE_RI(slti_0, "slti", 0)
DEFINE_RI(slti_m1, "slti", -1)
DEFINE_RI(slti_max, "slti", 2047)
DEFINE_RI(sltiu_1, "sltiu", 1)
DEFINE_RI(sltiu_m1, "sltiu", -1)
DEFINE_RI(xori_m1, "xori", -1)
DEFINE_RI(xori_555, "xori", 0x555)
DEFINE_RI(ori_m2048, "ori", -2048)
DEFINE_RI(ori_2a, "ori", 0x2a)
DEFINE_RI(andi_m16, "andi", -16)
DEFINE_RI(andi_7ff, "andi", 0x7ff)
DEFINE_RI(slli_0, "slli", 0)
DEFINE_RI(slli_1, "slli", 1)
DEFINE_RI(slli_31, "slli", 31)
DEFINE_RI(slli_32, "slli", 32)
DEFINE_RI(slli_63, "slli", 63)
DEFINE_RI(srli_1, "srli", 1)
DEFINE_RI(srli_32, "srli", 32)
DEFINE_RI(srli_63, "srli", 63)
DEFINE_RI(srai_1, "srai", 1)
DEFINE_RI(srai_32, "srai", 32)
DEFINE_RI(srai_63, "srai", 63)
DEFINE_RI(addiw_0, "addiw", 0)
DEFINE_RI(addiw_1, "addiw", 1)
DEFINE_RI(addiw_m1, "addiw", -1)
DEFINE_RI(addiw_max, "addiw", 2047)
DEFINE_RI(slliw_0, "slliw", 0)
DEFINE_RI(slliw_1, "slliw", 1)
DEFINE_RI(slliw_31, "slliw", 31)
DEFINE_RI(srliw_0, "srliw", 0)
DEFINE_RI(srliw_1, "srliw", 1)
DEFINE_RI(srliw_31, "srliw", 31)
DEFINE_RI(sraiw_0, "sraiw", 0)
DEFINE_RI(sraiw_1, "sraiw", 1)
DEFINE_RI(sraiw_31, "sraiw", 31)

static const struct named_unary immediate_ops[] = {
    {"addi.0", addi_0},       {"addi.1", addi_1},       {"addi.-1", addi_m1},     {"addi.2047", addi_max},
    {"addi.-2048", addi_min}, {"slti.0", slti_0},       {"slti.-1", slti_m1},     {"slti.2047", slti_max},
    {"sltiu.1", sltiu_1},     {"sltiu.-1", sltiu_m1},   {"xori.-1", xori_m1},     {"xori.0x555", xori_555},
    {"ori.-2048", ori_m2048}, {"ori.0x2a", ori_2a},     {"andi.-16", andi_m16},   {"andi.0x7ff", andi_7ff},
    {"slli.0", slli_0},       {"slli.1", slli_1},       {"slli.31", slli_31},     {"slli.32", slli_32},
    {"slli.63", slli_63},     {"srli.1", srli_1},       {"srli.32", srli_32},     {"srli.63", srli_63},
    {"srai.1", srai_1},       {"srai.32", srai_32},     {"srai.63", srai_63},     {"addiw.0", addiw_0},
    {"addiw.1", addiw_1},     {"addiw.-1", addiw_m1},   {"addiw.2047", addiw_max}, {"slliw.0", slliw_0},
    {"slliw.1", slliw_1},     {"slliw.31", slliw_31},   {"srliw.0", srliw_0},     {"srliw.1", srliw_1},
    {"srliw.31", srliw_31},   {"sraiw.0", sraiw_0},     {"sraiw.1", sraiw_1},     {"sraiw.31", sraiw_31},
};

/* Each branch op returns 1 if taken. */
#define DEFINE_BRANCH(fn, insn)                                                         \
  static uint64_t fn(uint64_t a, uint64_t b) {                                          \
    uint64_t taken;                                                                     \
    __asm__ volatile("li %0, 1\n\t" insn " %1, %2, 1f\n\tli %0, 0\n1:"                  \
                     : "=&r"(taken)                                                     \
                     : "r"(a), "r"(b));                                                 \
    return taken;                                                                       \
  }
DEFINE_BRANCH(br_beq, "beq")
DEFINE_BRANCH(br_bne, "bne")
DEFINE_BRANCH(br_blt, "blt")
DEFINE_BRANCH(br_bge, "bge")
DEFINE_BRANCH(br_bltu, "bltu")
DEFINE_BRANCH(br_bgeu, "bgeu")
static const struct named_binary branch_ops[] = {
    {"beq", br_beq}, {"bne", br_bne}, {"blt", br_blt}, {"bge", br_bge}, {"bltu", br_bltu}, {"bgeu", br_bgeu},
};

static uint8_t memory[32] __attribute__((aligned(16)));

static void fill_memory(void) {
  for (int i = 0; i < ARRAY_LEN(memory); i++) memory[i] = (uint8_t)(0x71 + i * 0x1d);
}

#define LOAD(insn, offset)                                                      \
  ({                                                                            \
    uint64_t _r;                                                                \
    __asm__ volatile(insn " %0, " #offset "(%1)" : "=r"(_r) : "r"(memory) : "memory"); \
    _r;                                                                         \
  })
#define STORE(insn, offset, v) \
  __asm__ volatile(insn " %0, " #offset "(%1)" ::"r"((uint64_t)(v)), "r"(memory) : "memory")

#define LOADS_AT(off)                         \
  check("lb." #off, LOAD("lb", off));        \
  check("lbu." #off, LOAD("lbu", off));      \
  check("lh." #off, LOAD("lh", off));        \
  check("lhu." #off, LOAD("lhu", off));      \
  check("lw." #off, LOAD("lw", off));        \
  check("lwu." #off, LOAD("lwu", off));      \
  check("ld." #off, LOAD("ld", off));

#define STORES_AT(off)                                                  \
  fill_memory();                                                        \
  STORE("sb", off, 0xa1a2a3a4a5a6a7a8);                                 \
  check("sb." #off ".lo", *(volatile uint64_t *)&memory[0]);            \
  check("sb." #off ".hi", *(volatile uint64_t *)&memory[8]);            \
  fill_memory();                                                        \
  STORE("sh", off, 0xb1b2b3b4b5b6b7b8);                                 \
  check("sh." #off ".lo", *(volatile uint64_t *)&memory[0]);            \
  check("sh." #off ".hi", *(volatile uint64_t *)&memory[8]);            \
  fill_memory();                                                        \
  STORE("sw", off, 0xc1c2c3c4c5c6c7c8);                                 \
  check("sw." #off ".lo", *(volatile uint64_t *)&memory[0]);            \
  check("sw." #off ".hi", *(volatile uint64_t *)&memory[8]);            \
  fill_memory();                                                        \
  STORE("sd", off, 0xd1d2d3d4d5d6d7d8);                                 \
  check("sd." #off ".lo", *(volatile uint64_t *)&memory[0]);            \
  check("sd." #off ".hi", *(volatile uint64_t *)&memory[8]);

static void test_loads_stores(void) {
  fill_memory();
  LOADS_AT(0)
  LOADS_AT(1)
  LOADS_AT(2)
  LOADS_AT(3)
  LOADS_AT(4)
  LOADS_AT(5)
  LOADS_AT(6)
  LOADS_AT(7)
  STORES_AT(0)
  STORES_AT(1)
  STORES_AT(2)
  STORES_AT(3)
  STORES_AT(4)
  STORES_AT(5)
  STORES_AT(6)
  STORES_AT(7)
  /* Negative offsets. */
  uint64_t r;
  fill_memory();
  __asm__ volatile("lw %0, -4(%1)" : "=r"(r) : "r"(&memory[16]) : "memory");
  check("lw.neg", r);
  __asm__ volatile("ld %0, -2048(%1)" : "=r"(r) : "r"((uintptr_t)memory + 2048) : "memory");
  check("ld.-2048", r);
  __asm__ volatile("sd %0, 2047(%1)" ::"r"(0x1122334455667788UL), "r"((uintptr_t)memory - 2047) : "memory");
  check("sd.2047", *(volatile uint64_t *)&memory[0]);
}

static void test_upper_immediates_and_jumps(void) {
  uint64_t r, base;
  __asm__ volatile("lui %0, 0" : "=r"(r));
  check("lui.0", r);
  __asm__ volatile("lui %0, 0x12345" : "=r"(r));
  check("lui.0x12345", r);
  __asm__ volatile("lui %0, 0x80000" : "=r"(r));
  check("lui.0x80000", r);
  __asm__ volatile("lui %0, 0xfffff" : "=r"(r));
  check("lui.0xfffff", r);
  __asm__ volatile("1: auipc %0, 0\n\tla %1, 1b" : "=r"(r), "=r"(base));
  check("auipc.0", r - base);
  __asm__ volatile("1: auipc %0, 0x7ffff\n\tla %1, 1b" : "=r"(r), "=r"(base));
  check("auipc.0x7ffff", r - base);
  __asm__ volatile("1: auipc %0, 0x80000\n\tla %1, 1b" : "=r"(r), "=r"(base));
  check("auipc.0x80000", r - base);
  __asm__ volatile("1: auipc %0, 0xfffff\n\tla %1, 1b" : "=r"(r), "=r"(base));
  check("auipc.0xfffff", r - base);
  /* jal links the address of the next instruction and skips what lies between. */
  uint64_t skipped = 0;
  __asm__ volatile(".option push\n\t.option norvc\n\t"
                   "1: jal %0, 2f\n\tli %1, 1\n2:\n\tla %2, 1b\n\t.option pop"
                   : "=&r"(r), "+r"(skipped), "=&r"(base));
  check("jal.link", r - base);
  check("jal.skipped", skipped);
  /* jalr clears bit 0 of the target; rd = rs1 reads rs1 before writing the link. */
  uint64_t target;
  __asm__ volatile(".option push\n\t.option norvc\n\t"
                   "la %1, 2f\n\taddi %1, %1, 1\n"
                   "1: jalr %0, 0(%1)\n\tli %1, 0\n2:\n\tla %2, 1b\n\t.option pop"
                   : "=&r"(r), "=&r"(target), "=&r"(base));
  check("jalr.odd.link", r - base);
  __asm__ volatile(".option push\n\t.option norvc\n\t"
                   "la %0, 2f - 8\n"
                   "1: jalr %0, 8(%0)\n\tnop\n2:\n\tla %1, 1b\n\t.option pop"
                   : "=&r"(r), "=&r"(base));
  check("jalr.same.link", r - base);
  __asm__ volatile("li t0, 5\n\taddi x0, t0, 7\n\tmv %0, x0" : "=r"(r)::"t0");
  check("x0.write", r);
}

/* "li a0, IMM; ret" */
static uint32_t code_buffer[2] __attribute__((aligned(16)));

static uint64_t run_code_buffer(void) {
  uint64_t (*fn)(void) = (uint64_t(*)(void))(uintptr_t)code_buffer;
  return fn();
}

static void test_fences(void) {
  clear_traps();
  __asm__ volatile("fence\n\tfence rw, rw\n\tfence r, w\n\tfence.tso\n\t.word 0x0100000f" ::: "memory");
  check_m_trap("fence-and-pause");
  code_buffer[1] = 0x00008067; /* ret */
  for (uint32_t imm = 1; imm <= 8; imm++) {
    code_buffer[0] = 0x00000513 | (imm << 20); /* addi a0, zero, imm */
    __asm__ volatile("fence.i" ::: "memory");
    check_indexed("fence.i.rewrite", (int)imm, run_code_buffer());
  }
}

int main(void) {
  for (int op = 0; op < ARRAY_LEN(register_ops); op++)
    for (int i = 0; i < ARRAY_LEN(values); i++)
      for (int j = 0; j < ARRAY_LEN(values); j++) {
        print(register_ops[op].name);
        check_indexed("", i * 16 + j, register_ops[op].fn(values[i], values[j]));
      }
  for (int op = 0; op < ARRAY_LEN(immediate_ops); op++)
    for (int i = 0; i < ARRAY_LEN(values); i++) {
      print(immediate_ops[op].name);
      check_indexed("", i, immediate_ops[op].fn(values[i]));
    }
  /* Branches: bit i*12+j of the result says whether the branch on values i, j was taken. */
  for (int op = 0; op < ARRAY_LEN(branch_ops); op++) {
    uint64_t taken[3] = {0, 0, 0};
    for (int i = 0; i < ARRAY_LEN(values); i++)
      for (int j = 0; j < ARRAY_LEN(values); j++) {
        int bit = i * ARRAY_LEN(values) + j;
        taken[bit / 64] |= branch_ops[op].fn(values[i], values[j]) << (bit % 64);
      }
    for (int k = 0; k < 3; k++) {
      print(branch_ops[op].name);
      check_indexed(".taken", k, taken[k]);
    }
  }
  test_loads_stores();
  test_upper_immediates_and_jumps();
  test_fences();
  return 0;
}
