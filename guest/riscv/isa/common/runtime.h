/* Shared runtime of the bare-metal ISA tests: UART output, power-off, trap capture, mode switches. */
#ifndef KITSET_ISA_RUNTIME_H
#define KITSET_ISA_RUNTIME_H

#define FRAME_SIZE (32 * 8)
/* a7 value of the ecall that ends a run_lower() call. */
#define ECALL_RETURN 0x4b495453
/* a7 value of an ecall asking M-mode to clear mip.STIP (S-mode cannot). */
#define ECALL_CLEAR_STIP 0x4b495454

#define UART_BASE 0x10000000UL
#define TEST_DEVICE_BASE 0x100000UL
#define CLINT_BASE 0x2000000UL
#define CLINT_MSIP (CLINT_BASE + 0x0)
#define CLINT_MTIMECMP (CLINT_BASE + 0x4000)
#define CLINT_MTIME (CLINT_BASE + 0xbff8)

#ifndef __ASSEMBLER__
#include <stdint.h>

#define MODE_U 0
#define MODE_S 1
#define MODE_M 3

#define MSTATUS_SIE (1UL << 1)
#define MSTATUS_MIE (1UL << 3)
#define MSTATUS_SPIE (1UL << 5)
#define MSTATUS_MPIE (1UL << 7)
#define MSTATUS_SPP (1UL << 8)
#define MSTATUS_MPP (3UL << 11)
#define MSTATUS_FS (3UL << 13)
#define MSTATUS_MPRV (1UL << 17)
#define MSTATUS_SUM (1UL << 18)
#define MSTATUS_MXR (1UL << 19)
#define MSTATUS_TVM (1UL << 20)
#define MSTATUS_TW (1UL << 21)
#define MSTATUS_TSR (1UL << 22)

#define CSR_READ(csr)                                   \
  ({                                                    \
    uint64_t _v;                                        \
    __asm__ volatile("csrr %0, " #csr : "=r"(_v)::"memory"); \
    _v;                                                 \
  })
#define CSR_WRITE(csr, v) __asm__ volatile("csrw " #csr ", %0" ::"r"((uint64_t)(v)) : "memory")
#define CSR_SET(csr, v) __asm__ volatile("csrs " #csr ", %0" ::"r"((uint64_t)(v)) : "memory")
#define CSR_CLEAR(csr, v) __asm__ volatile("csrc " #csr ", %0" ::"r"((uint64_t)(v)) : "memory")

/* What the last trap taken into M-mode (m_trap) or S-mode (s_trap) looked like. */
struct trap_record {
  uint64_t count;
  uint64_t cause;
  uint64_t tval;
  uint64_t epc;
  uint64_t previous_mode; /* MPP / SPP at the trap */
  uint64_t status;        /* mstatus / sstatus as the handler found it */
};
extern volatile struct trap_record m_trap, s_trap;
/* Causes of every trap since clear_traps(), M-mode ones as-is, S-mode ones with bit 62 set. */
#define TRAP_LOG_SIZE 16
extern volatile uint64_t trap_log[TRAP_LOG_SIZE];
extern volatile uint64_t trap_log_length;
#define S_MODE_LOG_FLAG (1UL << 62)
/* If nonzero, the next trap resumes here instead of after the trapping instruction. */
extern volatile uint64_t trap_resume;

void uart_putc(char c);
void print(const char *s);
void print_hex(uint64_t v, int digits);
/* One result line: "name 0123456789abcdef". */
void check(const char *name, uint64_t value);
/* "name.cause ..", "name.tval ..", "name.mode .." of the last M-mode trap since clear_traps(). */
void check_m_trap(const char *name);
void check_s_trap(const char *name);
void clear_traps(void);
/* Prints the trap log as name.NN lines and a name.length line. */
void check_trap_log(const char *name);
/* Prints "name" + suffix as the line name (for table-driven tests). */
void check2(const char *name, const char *suffix, uint64_t value);
void check_indexed(const char *name, int index, uint64_t value);
__attribute__((noreturn)) void power_off(void);

uint64_t run_lower(int mode, uint64_t (*fn)(uint64_t), uint64_t arg);
/* Lets S and U mode reach all of physical memory through PMP entry 0 (NAPOT, RWX). */
void pmp_allow_all(void);

uint64_t m_trap_c(uint64_t *frame);
void s_trap_c(uint64_t *frame);
void s_trap_entry(void);
void m_trap_entry(void);
extern char __pages_start[], __pages_end[];
/* The 64-bit word at 0x80000008 (see crt.S); 1 unless a loader changed it. */
extern volatile uint64_t kitset_parameter;
#endif
#endif
