// Tiny runtime for the ISA tests: UART output, hex printing, a rolling hash of results, trap records.
#pragma once
typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;

#define UART ((volatile unsigned char *)0x10000000)

static inline void putc_(char c) { *UART = (unsigned char)c; }
static inline void puts_(const char *s) { while (*s) putc_(*s++); }
static inline void puthex(u64 v) {
  for (int i = 60; i >= 0; i -= 4) putc_("0123456789abcdef"[(v >> i) & 15]);
}
static inline void report(const char *name, u64 v) { puts_(name); putc_('='); puthex(v); putc_('\n'); }

/** FNV-1a over 64-bit values: one line per operation keeps outputs short but sensitive. */
typedef struct { u64 h; } hash_t;
static inline void hinit(hash_t *h) { h->h = 0xcbf29ce484222325UL; }
static inline void hadd(hash_t *h, u64 v) {
  for (int i = 0; i < 8; i++) { h->h ^= (v >> (8 * i)) & 0xff; h->h *= 0x100000001b3UL; }
}

#define CSRR(csr) ({ u64 _v; asm volatile("csrr %0, " #csr : "=r"(_v)); _v; })
#define CSRW(csr, v) asm volatile("csrw " #csr ", %0" ::"r"((u64)(v)))
#define CSRS(csr, v) asm volatile("csrs " #csr ", %0" ::"r"((u64)(v)))
#define CSRC(csr, v) asm volatile("csrc " #csr ", %0" ::"r"((u64)(v)))

/* Trap log filled by handle_trap implementations. */
extern volatile u64 last_cause, last_epc, last_tval, trap_count;
void exit_with(u64 status) __attribute__((noreturn));

void run_in(u64 mpp_bits, void (*fn)(void));
extern char run_in_return[];
#define MPP_S 0x800UL
#define MPP_U 0x000UL
#define RUN_IN_MAGIC 0x99
/* In an M-mode handler: true (and arranges the return to M) when this trap is run_in's "done" ECALL. */
static inline int run_in_finished(u64 cause, u64 *regs, u64 *resume) {
  if ((cause == 8 || cause == 9) && regs[17] == RUN_IN_MAGIC) {
    CSRS(mstatus, 0x1800UL);
    *resume = (u64)run_in_return;
    return 1;
  }
  return 0;
}
static inline u64 insn_len(u64 epc) { return ((*(volatile unsigned short *)epc) & 3) == 3 ? 4 : 2; }
