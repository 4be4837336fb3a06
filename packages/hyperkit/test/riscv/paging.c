// Sv39 and Sv48: permissions (R/W/X/U, SUM, MXR), invalid and malformed PTEs, superpages and their
// alignment, non-canonical addresses, hardware A/D updates, MPRV, SFENCE.VMA.
#include "lib.h"
volatile u64 last_cause, last_epc, last_tval, trap_count;

u64 handle_trap(u64 cause, u64 epc, u64 tval, u64 *regs, int smode) {
  u64 resume;
  if (!smode && run_in_finished(cause, regs, &resume)) return resume;
  trap_count++;
  puts_(smode ? "S-trap " : "M-trap ");
  puthex(cause); putc_(' '); puthex(tval); putc_('\n');
  if (cause == 12) return regs[1]; // fetch page fault: back to the caller
  return epc + insn_len(epc);
}

#define PTE_V 1UL
#define PTE_R 2UL
#define PTE_W 4UL
#define PTE_X 8UL
#define PTE_U 16UL
#define PTE_A 64UL
#define PTE_D 128UL
static u64 root[512] __attribute__((aligned(4096)));
static u64 l2[512] __attribute__((aligned(4096)));   // Sv48: level-2 table under root
static u64 l1[512] __attribute__((aligned(4096)));
static u64 l0[512] __attribute__((aligned(4096)));
static unsigned char pages[8][4096] __attribute__((aligned(4096)));
static u64 pte(void *pa, u64 flags) { return (((u64)pa) >> 12) << 10 | flags; }

// virtual layout: 0x0-0x3fffffff identity gigapage (MMIO), 0x80000000 identity gigapage (RAM, kernel),
// 0x40000000.. 4 KiB pages from pages[] with assorted permissions.
#define VBASE 0x40000000UL
static volatile u64 sink;
static void touch_read(u64 va) { sink = *(volatile u64 *)va; }
static void touch_write(u64 va) { *(volatile u64 *)va = 0x1234; }
typedef void (*fnp)(void);

static u64 ld(u64 va) { u64 v; asm volatile("ld %0, 0(%1)" : "=r"(v) : "r"(va)); return v; }
static void sd(u64 va, u64 v) { asm volatile("sd %0, 0(%1)" ::"r"(v), "r"(va) : "memory"); }

static void s_body(void) {
  report("r-ok", ld(VBASE + 0 * 4096));
  sd(VBASE + 0 * 4096, 1);                  // 15: read-only page
  sd(VBASE + 1 * 4096, 0xabc);              // RW ok
  report("rw", ld(VBASE + 1 * 4096));
  ld(VBASE + 2 * 4096);                     // 13: execute-only page
  CSRS(sstatus, 1UL << 19);                 // MXR
  ld(VBASE + 2 * 4096);                     // ok now
  CSRC(sstatus, 1UL << 19);
  ld(VBASE + 3 * 4096);                     // 13: invalid
  sd(VBASE + 3 * 4096, 0);                  // 15
  ld(VBASE + 4 * 4096);                     // 13: U page without SUM
  CSRS(sstatus, 1UL << 18);                 // SUM
  // (fetch first: QEMU 7.2 caches exec permission from an earlier SUM data access to the same page)
  ((fnp)(VBASE + 4 * 4096))();              // 12: S never executes U pages
  ld(VBASE + 4 * 4096);                     // ok
  CSRC(sstatus, 1UL << 18);
  ld(VBASE + 5 * 4096);                     // 13: W without R is reserved
  ((fnp)(VBASE + 3 * 4096))();              // 12: invalid
  ((fnp)(VBASE + 6 * 4096))();              // executable page holding "ret"
  puts_("exec-ok\n");
  ld(0x0000008000000000UL);                 // 13 (Sv39: non-canonical)
  ld(0xffffffc000000000UL);                 // 13 (unmapped, canonical)
  ld(VBASE + 0x200000);                     // 13: misaligned superpage at l1[1]
  { u64 v; asm volatile("amoadd.d %0, %1, (%2)" : "=r"(v) : "r"(1UL), "r"(VBASE) : "memory"); } // 15
  sd(VBASE + 7 * 4096, 5);                  // sets D
}

static void u_body(void) {
  report("u-read", ld(VBASE + 4 * 4096));
  ld(VBASE + 1 * 4096);                     // 13: S page from U
  ((fnp)(VBASE + 7 * 4096))();              // 12: not executable
}

static void setup(int sv48, int user_ram) {
  for (int i = 0; i < 512; i++) root[i] = l2[i] = l1[i] = l0[i] = 0;
  u64 *top = sv48 ? l2 : root;
  if (sv48) root[0] = pte(l2, PTE_V);
  top[0] = (0UL << 10) | PTE_V | PTE_R | PTE_W | PTE_A | PTE_D | (user_ram ? PTE_U : 0);  // 0..1G MMIO
  // RAM; for the U-mode phase the whole RAM gigapage is user-accessible so U code can run and use its stack
  top[2] = ((0x80000000UL >> 12) << 10) | PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D | (user_ram ? PTE_U : 0);
  top[1] = pte(l1, PTE_V);
  l1[0] = pte(l0, PTE_V);
  l1[1] = ((((u64)pages[0]) >> 12) + 1) << 10 | PTE_V | PTE_R;   // 2 MiB leaf with misaligned PPN
  l0[0] = pte(pages[0], PTE_V | PTE_R);
  l0[1] = pte(pages[1], PTE_V | PTE_R | PTE_W);
  l0[2] = pte(pages[2], PTE_V | PTE_X);
  l0[3] = pte(pages[3], 0);
  l0[4] = pte(pages[4], PTE_V | PTE_R | PTE_X | PTE_U);
  l0[5] = pte(pages[5], PTE_V | PTE_W);
  l0[6] = pte(pages[6], PTE_V | PTE_X | PTE_R);
  l0[7] = pte(pages[7], PTE_V | PTE_R | PTE_W | PTE_U);
  *(volatile unsigned *)pages[6] = 0x00008067;   // ret
  *(volatile unsigned *)pages[4] = 0x00008067;
  for (int i = 0; i < 8; i++) *(volatile u64 *)pages[i] = 0x1000 + i;
  *(volatile unsigned *)pages[6] = 0x00008067;
  *(volatile unsigned *)pages[4] = 0x00008067;
  asm volatile("fence.i");
  CSRW(satp, ((sv48 ? 9UL : 8UL) << 60) | (((u64)root) >> 12));
  asm volatile("sfence.vma");
}

int main(void) {
  for (int sv48 = 0; sv48 < 2; sv48++) {
    puts_(sv48 ? "== sv48\n" : "== sv39\n");
    setup(sv48, 0);
    run_in(MPP_S, s_body);
    report("ad-0", l0[0] & 0xc0);
    report("ad-1", l0[1] & 0xc0);
    report("ad-7", l0[7] & 0xc0);
    setup(sv48, 1);
    run_in(MPP_U, u_body);
    setup(sv48, 0);
    // MPRV: M-mode loads translated as S
    CSRS(mstatus, (1UL << 17) | MPP_S);
    u64 v = *(volatile u64 *)(VBASE + 1 * 4096);
    CSRC(mstatus, 1UL << 17);
    report("mprv", v);
    // SFENCE.VMA makes a changed PTE visible
    l0[0] = pte(pages[1], PTE_V | PTE_R | PTE_A);
    asm volatile("sfence.vma");
    CSRS(mstatus, 1UL << 17);
    v = *(volatile u64 *)(VBASE);
    CSRC(mstatus, (1UL << 17) | 0x1800);
    CSRS(mstatus, 0x1800);
    report("remap", v);
    CSRW(satp, 0);
  }
  report("traps", trap_count);
  puts_("done\n");
  return 0;
}
