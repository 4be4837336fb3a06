/* Shared runtime of the bare-metal ISA tests (see runtime.h and guest/riscv/README.md). */
#include "runtime.h"

#define UART_THR (*(volatile uint8_t *)(UART_BASE + 0))
#define UART_LSR (*(volatile uint8_t *)(UART_BASE + 5))
#define UART_LSR_THRE 0x20

volatile struct trap_record m_trap, s_trap;
volatile uint64_t trap_resume;
volatile uint64_t trap_log[TRAP_LOG_SIZE];
volatile uint64_t trap_log_length;

static void log_trap(uint64_t cause) {
  if (trap_log_length < TRAP_LOG_SIZE) trap_log[trap_log_length] = cause;
  trap_log_length++;
}

void uart_putc(char c) {
  while ((UART_LSR & UART_LSR_THRE) == 0) {
  }
  UART_THR = (uint8_t)c;
}

void print(const char *s) {
  while (*s) uart_putc(*s++);
}

void print_hex(uint64_t v, int digits) {
  for (int i = digits - 1; i >= 0; i--) uart_putc("0123456789abcdef"[(v >> (i * 4)) & 0xf]);
}

void check(const char *name, uint64_t value) {
  print(name);
  uart_putc(' ');
  print_hex(value, 16);
  uart_putc('\n');
}

void check2(const char *name, const char *suffix, uint64_t value) {
  print(name);
  check(suffix, value);
}

void check_indexed(const char *name, int index, uint64_t value) {
  print(name);
  uart_putc('.');
  print_hex((uint64_t)index, 2);
  uart_putc(' ');
  print_hex(value, 16);
  uart_putc('\n');
}

static void check_trap(const char *name, volatile struct trap_record *t) {
  check2(name, ".count", t->count);
  check2(name, ".cause", t->cause);
  check2(name, ".tval", t->tval);
  check2(name, ".mode", t->previous_mode);
}

void check_m_trap(const char *name) { check_trap(name, &m_trap); }
void check_s_trap(const char *name) { check_trap(name, &s_trap); }

void clear_traps(void) {
  m_trap.count = m_trap.cause = m_trap.tval = m_trap.epc = m_trap.previous_mode = m_trap.status = 0;
  s_trap.count = s_trap.cause = s_trap.tval = s_trap.epc = s_trap.previous_mode = s_trap.status = 0;
  trap_log_length = 0;
}

void check_trap_log(const char *name) {
  check2(name, ".length", trap_log_length);
  for (uint64_t i = 0; i < trap_log_length && i < TRAP_LOG_SIZE; i++) {
    print(name);
    check_indexed("", (int)i, trap_log[i]);
  }
}

void power_off(void) {
  *(volatile uint32_t *)TEST_DEVICE_BASE = 0x5555;
  for (;;) {
  }
}

void pmp_allow_all(void) {
  CSR_WRITE(pmpaddr0, ~0UL >> 10);
  CSR_WRITE(pmpcfg0, 0x1f); /* A = NAPOT, R W X */
}

/* Length of the instruction at pc (identity-mapped, readable from the current mode). */
static uint64_t instruction_length(uint64_t pc) {
  uint16_t low = *(volatile uint16_t *)pc;
  return (low & 3) == 3 ? 4 : 2;
}

static void unexpected(const char *where, uint64_t cause, uint64_t epc, uint64_t tval) {
  print("UNEXPECTED-TRAP ");
  print(where);
  print(" cause ");
  print_hex(cause, 16);
  print(" epc ");
  print_hex(epc, 16);
  print(" tval ");
  print_hex(tval, 16);
  uart_putc('\n');
  power_off();
}

/* Returns 1 to end a run_lower() call, 0 to mret. */
uint64_t m_trap_c(uint64_t *frame) {
  uint64_t cause = CSR_READ(mcause);
  uint64_t epc = CSR_READ(mepc);
  uint64_t tval = CSR_READ(mtval);
  uint64_t status = CSR_READ(mstatus);
  uint64_t a7 = frame[17];
  if ((cause == 8 || cause == 9) && a7 == ECALL_RETURN) return 1;
  if (cause == 9 && a7 == ECALL_CLEAR_STIP) {
    CSR_CLEAR(mip, 1UL << 5);
    CSR_WRITE(mepc, epc + 4);
    return 0;
  }
  m_trap.count++;
  m_trap.cause = cause;
  m_trap.tval = tval;
  m_trap.epc = epc;
  m_trap.previous_mode = (status >> 11) & 3;
  m_trap.status = status;
  log_trap(cause);
  if (m_trap.count > 1000) unexpected("M (trap storm)", cause, epc, tval);
  if (cause >> 63) {
    uint64_t code = cause & 0xff;
    if (code == 7) {
      *(volatile uint64_t *)CLINT_MTIMECMP = ~0UL; /* one shot */
    } else if (code == 3) {
      *(volatile uint32_t *)CLINT_MSIP = 0;
    } else {
      CSR_CLEAR(mie, 1UL << code); /* S-level interrupts we did not delegate: just record */
    }
    return 0;
  }
  if (trap_resume) {
    CSR_WRITE(mepc, trap_resume);
    trap_resume = 0;
  } else if (cause == 1 || cause == 12) {
    unexpected("M (fetch fault without a resume address)", cause, epc, tval);
  } else {
    CSR_WRITE(mepc, epc + instruction_length(epc));
  }
  return 0;
}

void s_trap_c(uint64_t *frame) {
  uint64_t cause = CSR_READ(scause);
  uint64_t epc = CSR_READ(sepc);
  uint64_t tval = CSR_READ(stval);
  uint64_t status = CSR_READ(sstatus);
  if (cause == 8 && frame[17] == ECALL_RETURN) {
    /* A delegated U-mode "return": pass it on to M-mode from S-mode. */
    register uint64_t a0 __asm__("a0") = frame[10];
    register uint64_t a7 __asm__("a7") = ECALL_RETURN;
    __asm__ volatile("ecall" ::"r"(a0), "r"(a7) : "memory");
  }
  s_trap.count++;
  s_trap.cause = cause;
  s_trap.tval = tval;
  s_trap.epc = epc;
  s_trap.previous_mode = (status >> 8) & 1;
  s_trap.status = status;
  log_trap(cause | S_MODE_LOG_FLAG);
  if (s_trap.count > 1000) unexpected("S (trap storm)", cause, epc, tval);
  if (cause >> 63) {
    uint64_t code = cause & 0xff;
    if (code == 1) {
      CSR_CLEAR(sip, 1UL << 1);
    } else if (code == 5) {
      register uint64_t a7 __asm__("a7") = ECALL_CLEAR_STIP;
      __asm__ volatile("ecall" ::"r"(a7) : "memory");
    } else {
      CSR_CLEAR(sie, 1UL << code);
    }
    return;
  }
  if (trap_resume) {
    CSR_WRITE(sepc, trap_resume);
    trap_resume = 0;
  } else if (cause == 1 || cause == 12) {
    unexpected("S (fetch fault without a resume address)", cause, epc, tval);
  } else {
    /* The code may sit on a U page: let S read it for the length. */
    uint64_t sum = CSR_READ(sstatus) & MSTATUS_SUM;
    CSR_SET(sstatus, MSTATUS_SUM);
    uint64_t len = instruction_length(epc);
    if (!sum) CSR_CLEAR(sstatus, MSTATUS_SUM);
    CSR_WRITE(sepc, epc + len);
  }
}

/* The compiler may emit calls to these for struct copies and zeroing. */
void *memset(void *dest, int c, unsigned long n) {
  uint8_t *d = dest;
  while (n--) *d++ = (uint8_t)c;
  return dest;
}

void *memcpy(void *dest, const void *src, unsigned long n) {
  uint8_t *d = dest;
  const uint8_t *s = src;
  while (n--) *d++ = *s++;
  return dest;
}
