/* Zicsr: csrrw/csrrs/csrrc and their immediate forms (old value, new value, no write when
 * rs1 = x0 / uimm = 0), read-only and unknown CSRs, and the write masks of the machine and
 * supervisor CSRs (misa, mstatus/sstatus fields, mie/mip, medeleg/mideleg, mtvec, mepc, counter
 * enables, satp modes, fcsr).
 *
 * Write masks are printed ANDed with the bits whose value the privileged spec fixes for an
 * RV64GC hart with S and U modes: QEMU 7.2 lets some other bits stick (hypervisor and LCOFI
 * bits with H off, mstatus.UXL = 3, mepc bit 0, mcountinhibit.TM, bits above 31 of the counter
 * enables) where another valid implementation would not, so those are not compared. */
#include "runtime.h"

#define SWAP(insn, csr, value)                                                      \
  ({                                                                                \
    uint64_t _old;                                                                  \
    __asm__ volatile(insn " %0, " #csr ", %1" : "=r"(_old) : "r"((uint64_t)(value)) : "memory"); \
    _old;                                                                           \
  })
#define SWAP_IMM(insn, csr, imm)                                    \
  ({                                                                \
    uint64_t _old;                                                  \
    __asm__ volatile(insn " %0, " #csr ", " #imm : "=r"(_old)::"memory"); \
    _old;                                                           \
  })

/* Writes all ones then zeros, prints what stuck (within MASK), restores the old value. */
#define WRITE_MASK(name, csr, mask)                \
  do {                                             \
    uint64_t _saved = CSR_READ(csr);               \
    CSR_WRITE(csr, ~0UL);                          \
    check(name ".ones", CSR_READ(csr) & (mask));   \
    CSR_WRITE(csr, 0);                             \
    check(name ".zeros", CSR_READ(csr) & (mask));  \
    CSR_WRITE(csr, _saved);                        \
  } while (0)

/* mstatus fields with a spec-defined value here: SIE MIE SPIE UBE MPIE SPP MPP FS XS MPRV SUM
 * MXR TVM TW TSR SBE MBE SD (not VS, optional without V; not UXL/SXL, see above). */
#define MSTATUS_DEFINED 0x80000030007ff9eaUL
/* sstatus: SIE SPIE UBE SPP FS XS SUM MXR SD. */
#define SSTATUS_DEFINED 0x80000000000de162UL
#define S_INTERRUPTS 0x222UL
#define ALL_INTERRUPTS 0xaaaUL
/* Exceptions 0-9, 12, 13, 15: the delegable ones (11, ecall from M, is not). */
#define DELEGABLE_EXCEPTIONS 0xb3ffUL

static void test_access_forms(void) {
  CSR_WRITE(mscratch, 0x00ff00ff00ff00ff);
  check("csrrw.old", SWAP("csrrw", mscratch, 0x123456789abcdef0));
  check("csrrw.new", CSR_READ(mscratch));
  check("csrrs.old", SWAP("csrrs", mscratch, 0x0f0f0f0f0f0f0f0f));
  check("csrrs.new", CSR_READ(mscratch));
  check("csrrc.old", SWAP("csrrc", mscratch, 0xff000000000000ff));
  check("csrrc.new", CSR_READ(mscratch));
  check("csrrwi.old", SWAP_IMM("csrrwi", mscratch, 31));
  check("csrrwi.new", CSR_READ(mscratch));
  check("csrrsi.old", SWAP_IMM("csrrsi", mscratch, 16));
  check("csrrsi.new", CSR_READ(mscratch));
  check("csrrci.old", SWAP_IMM("csrrci", mscratch, 5));
  check("csrrci.new", CSR_READ(mscratch));
  /* csrrw with rd = x0 still writes; rd = rs1 reads the old value first. */
  __asm__ volatile("csrw mscratch, %0" ::"r"(0x55UL));
  uint64_t r = 0xaa;
  __asm__ volatile("csrrw %0, mscratch, %0" : "+r"(r));
  check("csrrw.rd=rs1.old", r);
  check("csrrw.rd=rs1.new", CSR_READ(mscratch));
  CSR_WRITE(sscratch, 0xdeadbeefcafef00d);
  check("sscratch", CSR_READ(sscratch));
}

static void test_read_only_and_unknown(void) {
  check("misa", CSR_READ(misa));
  check("mhartid", CSR_READ(mhartid));
  check("mvendorid", CSR_READ(mvendorid));
  /* Reads with csrrs/csrrc rs1 = x0 and csrrsi/csrrci uimm = 0 do not write: no trap. */
  clear_traps();
  uint64_t r;
  __asm__ volatile("csrrs %0, mhartid, x0" : "=r"(r));
  __asm__ volatile("csrrc %0, mhartid, x0" : "=r"(r));
  __asm__ volatile("csrrsi %0, mhartid, 0" : "=r"(r));
  __asm__ volatile("csrrci %0, mvendorid, 0" : "=r"(r));
  check_m_trap("read-only.reads");
  clear_traps();
  __asm__ volatile("csrw mhartid, %0" ::"r"(1UL));
  check_m_trap("read-only.csrw");
  check("read-only.after", CSR_READ(mhartid));
  clear_traps();
  __asm__ volatile("csrrs %0, mvendorid, %1" : "=r"(r) : "r"(1UL));
  check_m_trap("read-only.csrrs");
  clear_traps();
  __asm__ volatile("csrrsi %0, cycle, 1" : "=r"(r));
  check_m_trap("read-only.cycle.csrrsi");
  clear_traps();
  __asm__ volatile("csrr %0, 0x7c0" : "=r"(r));
  check_m_trap("unknown.0x7c0");
  clear_traps();
  __asm__ volatile("csrw 0x5c0, %0" ::"r"(r));
  check_m_trap("unknown.0x5c0");
  /* misa writes: whatever QEMU keeps. */
  uint64_t misa = CSR_READ(misa);
  clear_traps();
  CSR_WRITE(misa, misa & ~(1UL << 2));
  check_m_trap("misa.write");
  check("misa.after-write", CSR_READ(misa));
  CSR_WRITE(misa, misa);
}

static void test_status(void) {
  uint64_t saved = CSR_READ(mstatus);
  check("mstatus.initial", saved);
  /* All ones: keeps MPP = M, every writable field set. MIE is set too, with mie = 0. */
  CSR_WRITE(mie, 0);
  CSR_WRITE(mstatus, ~0UL);
  uint64_t all = CSR_READ(mstatus);
  CSR_WRITE(mstatus, saved);
  check("mstatus.ones", all & MSTATUS_DEFINED);
  CSR_WRITE(mstatus, MSTATUS_FS & saved);
  check("mstatus.zeros-but-fs", CSR_READ(mstatus) & MSTATUS_DEFINED);
  check("mstatus.uxl", (saved >> 32) & 3);
  check("mstatus.sxl", (saved >> 34) & 3);
  CSR_WRITE(mstatus, saved);
  /* MPP = S and U round trip. */
  CSR_CLEAR(mstatus, MSTATUS_MPP);
  CSR_SET(mstatus, 1UL << 11);
  check("mstatus.mpp.s", (CSR_READ(mstatus) >> 11) & 3);
  CSR_CLEAR(mstatus, MSTATUS_MPP);
  check("mstatus.mpp.u", (CSR_READ(mstatus) >> 11) & 3);
  CSR_WRITE(mstatus, saved);
  /* FS = Off/Initial/Clean/Dirty and SD. */
  for (uint64_t fs = 0; fs < 4; fs++) {
    CSR_CLEAR(mstatus, MSTATUS_FS);
    CSR_SET(mstatus, fs << 13);
    check_indexed("mstatus.fs", (int)fs, CSR_READ(mstatus) & MSTATUS_DEFINED);
  }
  CSR_WRITE(mstatus, saved);
  /* sstatus is a view of mstatus. */
  CSR_WRITE(sstatus, ~0UL);
  check("sstatus.ones", CSR_READ(sstatus) & SSTATUS_DEFINED);
  check("sstatus.ones.mstatus", CSR_READ(mstatus) & MSTATUS_DEFINED);
  CSR_WRITE(sstatus, 0);
  check("sstatus.zeros", CSR_READ(sstatus) & SSTATUS_DEFINED);
  check("sstatus.zeros.mstatus", CSR_READ(mstatus) & MSTATUS_DEFINED);
  CSR_WRITE(mstatus, saved);
  /* A floating-point write marks FS dirty. */
  CSR_CLEAR(mstatus, MSTATUS_FS);
  CSR_SET(mstatus, 1UL << 13);
  __asm__ volatile("fmv.w.x ft0, zero");
  check("mstatus.fs.after-fp-write", (CSR_READ(mstatus) >> 13) & 3);
  check("mstatus.sd.after-fp-write", CSR_READ(mstatus) >> 63);
  CSR_WRITE(mstatus, saved);
}

static void test_masks(void) {
  WRITE_MASK("mie", mie, ALL_INTERRUPTS);
  /* mip: M-mode writes SSIP, STIP, SEIP; MTIP is pending from reset (mtimecmp = 0). */
  WRITE_MASK("mip", mip, ALL_INTERRUPTS);
  WRITE_MASK("medeleg", medeleg, DELEGABLE_EXCEPTIONS);
  WRITE_MASK("mideleg", mideleg, ALL_INTERRUPTS);
  CSR_WRITE(mideleg, ~0UL);
  WRITE_MASK("sie.delegated", sie, ALL_INTERRUPTS);
  WRITE_MASK("sip.delegated", sip, ALL_INTERRUPTS);
  CSR_WRITE(mideleg, 0);
  WRITE_MASK("sie.undelegated", sie, ALL_INTERRUPTS);
  WRITE_MASK("mcounteren", mcounteren, 0x7UL);
  WRITE_MASK("scounteren", scounteren, 0x7UL);
  WRITE_MASK("mcountinhibit", mcountinhibit, 0x5UL);
  WRITE_MASK("mepc", mepc, ~1UL);
  WRITE_MASK("sepc", sepc, ~1UL);
  WRITE_MASK("mtval", mtval, ~0UL);
  WRITE_MASK("stval", stval, ~0UL);
  CSR_WRITE(mcause, 0x8000000000000007UL);
  check("mcause.interrupt", CSR_READ(mcause));
  CSR_WRITE(mcause, 13);
  check("mcause.exception", CSR_READ(mcause));
  CSR_WRITE(scause, 0x8000000000000001UL);
  check("scause.interrupt", CSR_READ(scause));
  CSR_WRITE(scause, 15);
  check("scause.exception", CSR_READ(scause));
  WRITE_MASK("fcsr", fcsr, ~0UL);
  CSR_WRITE(fcsr, 0);
  WRITE_MASK("frm", frm, ~0UL);
  WRITE_MASK("fflags", fflags, ~0UL);
  CSR_WRITE(fcsr, 0xe5);
  check("fcsr.frm-view", CSR_READ(frm));
  check("fcsr.fflags-view", CSR_READ(fflags));
  CSR_WRITE(fcsr, 0);

  uint64_t saved = CSR_READ(mtvec);
  CSR_WRITE(mtvec, 0x80001001);
  check("mtvec.vectored", CSR_READ(mtvec));
  CSR_WRITE(mtvec, saved);
  CSR_WRITE(stvec, 0x80002001);
  check("stvec.vectored", CSR_READ(stvec));
  CSR_WRITE(stvec, 0x80002000);
  check("stvec.direct", CSR_READ(stvec));

  CSR_WRITE(satp, (8UL << 60) | 0x80123);
  check("satp.sv39", CSR_READ(satp));
  CSR_WRITE(satp, (9UL << 60) | 0x80456);
  check("satp.sv48", CSR_READ(satp));
  CSR_WRITE(satp, (1UL << 60) | 0x80789);
  check("satp.mode1-ignored", CSR_READ(satp));
  CSR_WRITE(satp, 0);
  check("satp.bare", CSR_READ(satp));
  __asm__ volatile("sfence.vma");
}

int main(void) {
  test_access_forms();
  test_read_only_and_unknown();
  test_status();
  test_masks();
  return 0;
}
