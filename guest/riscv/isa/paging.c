/* Sv39 (and Sv48) paging from S and U mode: R/W/X and U permissions, invalid and reserved PTE
 * encodings, non-canonical addresses, SUM and MXR, execute-only pages, megapages (aligned and
 * misaligned), the A and D bits (QEMU's virt sets them in hardware rather than faulting, so that
 * is the behaviour compared), remapping after sfence.vma, MPRV from M-mode, page faults
 * delegated to S-mode and an Sv48 walk. Also what a decoded-block cache must notice: accesses
 * that straddle two pages mapped to non-adjacent frames (a misaligned load and store, and a
 * 4-byte instruction whose halves lie on two pages, which must fault with tval = the second page
 * when that one is not executable, and epc = the instruction), and code at one virtual address
 * that changes with satp or is rewritten through a writable alias.
 * Page faults are printed with their cause and tval (the faulting virtual address); loads print
 * the value read. */
#include "runtime.h"

#define PTE_V (1UL << 0)
#define PTE_R (1UL << 1)
#define PTE_W (1UL << 2)
#define PTE_X (1UL << 3)
#define PTE_U (1UL << 4)
#define PTE_A (1UL << 6)
#define PTE_D (1UL << 7)
#define PTE_N (1UL << 63)

#define PAGE 4096UL
#define TEST_VA 0x40000000UL           /* 4 KiB test pages: TEST_VA + i * PAGE */
#define MEGA_VA 0x40200000UL           /* megapage -> MEGA_PA */
#define MEGA_MISALIGNED_VA 0x40400000UL
#define MEGA_USER_VA 0x40600000UL
#define MEGA_PA 0x80400000UL
#define SV48_ONLY_VA (0x8000000000UL + TEST_VA)

static uint64_t *page_at(int index) { return (uint64_t *)(__pages_start + index * PAGE); }
#define ROOT_S page_at(0)
#define ROOT_U page_at(1)
#define L1 page_at(2)
#define L0 page_at(3)
#define ROOT_48 page_at(4)
#define ROOT_S2 page_at(5) /* like ROOT_S, but VA page 18 holds other code */
#define L1_2 page_at(6)
#define L0_2 page_at(7)
#define DATA(k) page_at(8 + (k))

static uint64_t pte(uint64_t pa, uint64_t flags) { return ((pa >> 12) << 10) | flags; }
static uint64_t value_of(int k) { return 0xda7a000000000000UL | (uint64_t)k; }
static uint64_t va(int i) { return TEST_VA + (uint64_t)i * PAGE; }

static void build_tables(void) {
  for (uint64_t *p = (uint64_t *)__pages_start; p < (uint64_t *)__pages_end; p++) *p = 0;
  for (int k = 0; k < 16; k++) DATA(k)[0] = value_of(k);
  ROOT_S[2] = pte(0x80000000UL, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
  ROOT_U[2] = pte(0x80000000UL, PTE_V | PTE_R | PTE_W | PTE_X | PTE_U | PTE_A | PTE_D);
  ROOT_S[1] = ROOT_U[1] = pte((uint64_t)L1, PTE_V);
  ROOT_48[0] = pte((uint64_t)ROOT_S, PTE_V);
  ROOT_48[1] = pte((uint64_t)ROOT_S, PTE_V);
  L1[0] = pte((uint64_t)L0, PTE_V);
  L1[1] = pte(MEGA_PA, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
  L1[2] = pte(MEGA_PA + PAGE, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
  L1[3] = pte(MEGA_PA, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D);
  L0[0] = pte((uint64_t)DATA(0), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
  L0[1] = pte((uint64_t)DATA(1), PTE_V | PTE_R | PTE_A);
  L0[2] = 0;
  L0[3] = pte((uint64_t)DATA(3), PTE_V | PTE_X | PTE_A);
  L0[4] = pte((uint64_t)DATA(4), PTE_V | PTE_R | PTE_W | PTE_X | PTE_U | PTE_A | PTE_D);
  L0[5] = pte((uint64_t)DATA(5), PTE_V | PTE_R | PTE_W);
  L0[6] = pte((uint64_t)DATA(6), PTE_V | PTE_R | PTE_W | PTE_A);
  L0[7] = pte((uint64_t)DATA(7), PTE_V | PTE_W | PTE_A | PTE_D);
  /* Code pages: "li a0, 42; ret". */
  DATA(8)[0] = 0x0000806702a00513UL;
  DATA(9)[0] = 0x0000806702a00513UL;
  L0[8] = pte((uint64_t)DATA(8), PTE_V | PTE_R | PTE_X | PTE_A);
  L0[9] = pte((uint64_t)DATA(9), PTE_V | PTE_R | PTE_X | PTE_U | PTE_A);
  L0[10] = pte((uint64_t)DATA(10), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D) | PTE_N;
  L0[11] = pte((uint64_t)L0, PTE_V);
  L0[12] = pte((uint64_t)DATA(12), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
  *(volatile uint64_t *)(MEGA_PA + 0x1238) = 0x3e9a000000001238UL;
  /* Straddling pages: VA 14/15 -> frames 20/22 (code), VA 16/17 -> frames 24/26 (data). */
  L0[14] = pte((uint64_t)DATA(20), PTE_V | PTE_R | PTE_X | PTE_A);
  L0[15] = pte((uint64_t)DATA(22), PTE_V | PTE_R | PTE_X | PTE_A);
  L0[16] = pte((uint64_t)DATA(24), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
  L0[17] = pte((uint64_t)DATA(26), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
  /* "li a0, 44" split over the end of frame 20 and the start of frame 22, then "ret". */
  ((volatile uint16_t *)DATA(20))[2047] = 0x0513;
  ((volatile uint16_t *)DATA(22))[0] = 0x02c0;
  ((volatile uint16_t *)DATA(22))[1] = 0x8067;
  ((volatile uint16_t *)DATA(22))[2] = 0x0000;
  DATA(24)[511] = 0x1716151413121110UL;
  DATA(26)[0] = 0x2726252423222120UL;
  /* VA page 18: "li a0, 1; ret" in frame 28 under ROOT_S, "li a0, 2; ret" in frame 30 under
   * ROOT_S2; VA page 19 is a writable alias of frame 28. */
  DATA(28)[0] = 0x0000806700100513UL;
  DATA(30)[0] = 0x0000806700200513UL;
  L0[18] = pte((uint64_t)DATA(28), PTE_V | PTE_R | PTE_X | PTE_A);
  L0[19] = pte((uint64_t)DATA(28), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
  for (int i = 0; i < 512; i++) {
    ROOT_S2[i] = ROOT_S[i];
    L1_2[i] = L1[i];
    L0_2[i] = L0[i];
  }
  ROOT_S2[1] = pte((uint64_t)L1_2, PTE_V);
  L1_2[0] = pte((uint64_t)L0_2, PTE_V);
  L0_2[18] = pte((uint64_t)DATA(30), PTE_V | PTE_R | PTE_X | PTE_A);
  __asm__ volatile("fence.i" ::: "memory");
}

static void use_table(uint64_t mode, uint64_t *root) {
  CSR_WRITE(satp, (mode << 60) | ((uint64_t)root >> 12));
  __asm__ volatile("sfence.vma" ::: "memory");
}

/* --- run in S or U mode --- */
static uint64_t lower_load(uint64_t address) {
  uint64_t r = 0;
  __asm__ volatile("ld %0, 0(%1)" : "+r"(r) : "r"(address) : "memory");
  return r;
}
static uint64_t lower_store(uint64_t address) {
  __asm__ volatile("sd %0, 0(%1)" ::"r"(0x5707e5707e000000UL | (address & 0xffffff)), "r"(address) : "memory");
  return 0;
}
static uint64_t lower_call(uint64_t target) {
  register uint64_t a0 __asm__("a0") = 0;
  __asm__ volatile("la t0, 1f\n\tla t1, trap_resume\n\tsd t0, 0(t1)\n\tjalr ra, 0(%1)\n"
                   "1:\n\tla t1, trap_resume\n\tsd zero, 0(t1)"
                   : "+r"(a0)
                   : "r"(target)
                   : "t0", "t1", "ra", "memory");
  return a0;
}

/* Same virtual address, other code after a satp switch; then code rewritten through a writable
 * alias of its frame and fence.i. Returns the four results, one per byte. */
static uint64_t lower_switch_code(uint64_t other_satp) {
  uint64_t first = lower_call(va(18));
  uint64_t original = CSR_READ(satp);
  CSR_WRITE(satp, other_satp);
  __asm__ volatile("sfence.vma" ::: "memory");
  uint64_t second = lower_call(va(18));
  CSR_WRITE(satp, original);
  __asm__ volatile("sfence.vma" ::: "memory");
  uint64_t third = lower_call(va(18));
  *(volatile uint32_t *)va(19) = 0x00300513; /* li a0, 3 */
  __asm__ volatile("fence.i" ::: "memory");
  uint64_t fourth = lower_call(va(18));
  return first << 24 | second << 16 | third << 8 | fourth;
}

/* Runs fn(arg) in MODE, prints "label.value" and the M-mode trap record. */
static void run(const char *label, int mode, uint64_t (*fn)(uint64_t), uint64_t arg) {
  clear_traps();
  uint64_t r = run_lower(mode, fn, arg);
  check2(label, ".value", r);
  check_m_trap(label);
}

static void test_supervisor(void) {
  use_table(8, ROOT_S);
  run("s.load.rw", MODE_S, lower_load, va(0));
  run("s.store.rw", MODE_S, lower_store, va(0) + 8);
  check("s.store.rw.memory", DATA(0)[1]);
  run("s.load.read-only", MODE_S, lower_load, va(1));
  run("s.store.read-only", MODE_S, lower_store, va(1));
  run("s.load.invalid", MODE_S, lower_load, va(2) + 0x10);
  run("s.store.invalid", MODE_S, lower_store, va(2) + 0x18);
  run("s.fetch.invalid", MODE_S, lower_call, va(2));
  run("s.load.execute-only", MODE_S, lower_load, va(3));
  CSR_SET(mstatus, MSTATUS_MXR);
  run("s.load.execute-only.mxr", MODE_S, lower_load, va(3));
  CSR_CLEAR(mstatus, MSTATUS_MXR);
  run("s.fetch.not-executable", MODE_S, lower_call, va(0));
  run("s.fetch.code", MODE_S, lower_call, va(8));
  run("s.load.user-page.sum0", MODE_S, lower_load, va(4));
  CSR_SET(mstatus, MSTATUS_SUM);
  run("s.load.user-page.sum1", MODE_S, lower_load, va(4));
  run("s.store.user-page.sum1", MODE_S, lower_store, va(4) + 8);
  run("s.fetch.user-code.sum1", MODE_S, lower_call, va(9));
  CSR_CLEAR(mstatus, MSTATUS_SUM);
  run("s.store.user-page.sum0", MODE_S, lower_store, va(4) + 16);
  run("s.load.w-only-reserved", MODE_S, lower_load, va(7));
  run("s.store.w-only-reserved", MODE_S, lower_store, va(7));
  run("s.load.n-bit-without-svnapot", MODE_S, lower_load, va(10));
  run("s.load.non-leaf-level0", MODE_S, lower_load, va(11));
  run("s.load.non-canonical", MODE_S, lower_load, 0x0000008000000000UL);
  run("s.load.high-unmapped", MODE_S, lower_load, 0xffffffc000000000UL);
  run("s.load.megapage", MODE_S, lower_load, MEGA_VA + 0x1238);
  run("s.load.megapage-misaligned", MODE_S, lower_load, MEGA_MISALIGNED_VA + 0x1238);
  run("s.load.sv48-only-address", MODE_S, lower_load, SV48_ONLY_VA);

  /* A and D. */
  check("ad.before", L0[5] & 0xff);
  run("s.load.a-clear", MODE_S, lower_load, va(5));
  check("ad.after-load", L0[5] & 0xff);
  run("s.store.d-clear", MODE_S, lower_store, va(5));
  check("ad.after-store", L0[5] & 0xff);
  run("s.store.a-set-d-clear", MODE_S, lower_store, va(6));
  check("ad.d-after-store", L0[6] & 0xff);
  run("s.store.read-only-keeps-d", MODE_S, lower_store, va(1));
  check("ad.read-only-after-store", L0[1] & 0xff);

  /* Remap, then sfence.vma. */
  run("s.remap.before", MODE_S, lower_load, va(12));
  L0[12] = pte((uint64_t)DATA(13), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
  __asm__ volatile("sfence.vma" ::: "memory");
  run("s.remap.after", MODE_S, lower_load, va(12));

  /* A second remap, fenced by address only. */
  L0[12] = pte((uint64_t)DATA(14), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
  __asm__ volatile("sfence.vma %0, zero" ::"r"(va(12)) : "memory");
  run("s.remap.after-va-fence", MODE_S, lower_load, va(12));

  /* Straddling two pages mapped to non-adjacent frames. */
  run("s.load.straddle", MODE_S, lower_load, va(16) + 4092);
  run("s.store.straddle", MODE_S, lower_store, va(16) + 4094);
  check("s.store.straddle.first-frame", DATA(24)[511]);
  check("s.store.straddle.second-frame", DATA(26)[0]);
  run("s.fetch.straddle", MODE_S, lower_call, va(14) + 4094);
  L0[15] = pte((uint64_t)DATA(22), PTE_V | PTE_R | PTE_A); /* second half not executable */
  __asm__ volatile("sfence.vma" ::: "memory");
  run("s.fetch.straddle.second-page-nx", MODE_S, lower_call, va(14) + 4094);
  check("s.fetch.straddle.second-page-nx.epc-offset", m_trap.epc - va(14));

  /* Code behind one virtual address changing with satp, and through an alias. */
  run("s.code.satp-switch-and-alias", MODE_S, lower_switch_code, (8UL << 60) | ((uint64_t)ROOT_S2 >> 12));

  /* Page faults delegated to S-mode. */
  CSR_WRITE(stvec, (uint64_t)s_trap_entry);
  CSR_WRITE(medeleg, (1UL << 12) | (1UL << 13) | (1UL << 15));
  run("s.deleg.load.invalid", MODE_S, lower_load, va(2) + 0x28);
  check_s_trap("s.deleg.load.invalid.s");
  run("s.deleg.store.read-only", MODE_S, lower_store, va(1) + 0x30);
  check_s_trap("s.deleg.store.read-only.s");
  run("s.deleg.fetch.invalid", MODE_S, lower_call, va(2));
  check_s_trap("s.deleg.fetch.invalid.s");
  CSR_WRITE(medeleg, 0);
}

static void test_user(void) {
  use_table(8, ROOT_U);
  run("u.load.user", MODE_U, lower_load, va(4));
  run("u.load.supervisor", MODE_U, lower_load, va(0));
  run("u.store.supervisor", MODE_U, lower_store, va(0));
  run("u.fetch.user-code", MODE_U, lower_call, va(9));
  run("u.fetch.supervisor-code", MODE_U, lower_call, va(8));
  run("u.load.megapage.user", MODE_U, lower_load, MEGA_USER_VA + 0x1238);
  run("u.load.megapage.supervisor", MODE_U, lower_load, MEGA_VA + 0x1238);
  CSR_SET(mstatus, MSTATUS_SUM); /* SUM does not open S pages to U */
  run("u.load.supervisor.sum1", MODE_U, lower_load, va(0));
  CSR_CLEAR(mstatus, MSTATUS_SUM);
}

static void test_mprv(void) {
  uint64_t r = 0;
  use_table(8, ROOT_S);
  CSR_CLEAR(mstatus, MSTATUS_MPP);
  CSR_SET(mstatus, (1UL << 11) | MSTATUS_MPRV);
  clear_traps();
  __asm__ volatile("ld %0, 0(%1)" : "+r"(r) : "r"(va(0)) : "memory");
  CSR_CLEAR(mstatus, MSTATUS_MPRV);
  check("m.mprv-s.load.value", r);
  check_m_trap("m.mprv-s.load");
  r = 0;
  CSR_SET(mstatus, MSTATUS_MPRV);
  clear_traps();
  __asm__ volatile("ld %0, 0(%1)" : "+r"(r) : "r"(va(2)) : "memory");
  CSR_CLEAR(mstatus, MSTATUS_MPRV);
  check_m_trap("m.mprv-s.load.invalid");
  use_table(8, ROOT_U);
  CSR_CLEAR(mstatus, MSTATUS_MPP); /* MPP = U */
  CSR_SET(mstatus, MSTATUS_MPRV);
  clear_traps();
  __asm__ volatile("ld %0, 0(%1)" : "+r"(r) : "r"(va(0)) : "memory");
  CSR_CLEAR(mstatus, MSTATUS_MPRV);
  check_m_trap("m.mprv-u.load.supervisor");
  /* M-mode itself is never translated. */
  clear_traps();
  __asm__ volatile("ld %0, 0(%1)" : "=r"(r) : "r"((uint64_t)DATA(2)) : "memory");
  check("m.untranslated.value", r);
  check_m_trap("m.untranslated");
}

static void test_sv48(void) {
  use_table(9, ROOT_48);
  check("sv48.satp-mode", CSR_READ(satp) >> 60);
  run("sv48.load", MODE_S, lower_load, va(0));
  run("sv48.load.sv48-only-address", MODE_S, lower_load, SV48_ONLY_VA);
  run("sv48.load.invalid", MODE_S, lower_load, va(2));
  run("sv48.load.non-canonical", MODE_S, lower_load, 0x0000800000000000UL);
  run("sv48.fetch.code", MODE_S, lower_call, va(8));
}

int main(void) {
  pmp_allow_all();
  build_tables();
  test_supervisor();
  test_user();
  test_mprv();
  test_sv48();
  CSR_WRITE(satp, 0);
  return 0;
}
