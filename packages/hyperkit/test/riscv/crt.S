# Bare-metal start-up for HyperKit's ISA tests: M-mode at 0x80000000, one hart.
# Traps taken in M land in trap_entry (in S, if delegated and stvec = strap_entry, in strap_entry); both
# save the integer registers on a private trap stack and call
#   uintptr_t handle_trap(uintptr_t cause, uintptr_t epc, uintptr_t tval, uintptr_t *regs, int smode)
# whose return value is the pc to resume at (xRET; the handler may change xstatus first).
  .section .text.init
  .globl _start
_start:
  la sp, stack_top
  la t0, trap_entry
  csrw mtvec, t0
  la t0, mtrap_stack_top
  csrw mscratch, t0
  la t0, strap_stack_top
  csrw sscratch, t0
  li t0, -1              # PMP entry 0: NAPOT over everything, RWX, so S/U may access memory
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  li t0, 0x6000          # FS = dirty: let tests use the FPU
  csrs mstatus, t0
  csrw fcsr, zero
  call main
  .globl exit_with
exit_with:               # a0 = status, 0 = pass
  li t1, 0x100000
  bnez a0, 1f
  li t0, 0x5555
  sw t0, 0(t1)
  j .
1:
  slli a0, a0, 16
  li t0, 0x3333
  or t0, t0, a0
  sw t0, 0(t1)
  j .

.macro SAVE_REGS scratch
  csrrw sp, \scratch, sp
  addi sp, sp, -256
  .irp r,1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
  sd x\r, (\r*8)(sp)
  .endr
  csrr t0, \scratch
  sd t0, 16(sp)
.endm

.macro RESTORE_REGS scratch
  ld t0, 16(sp)
  csrw \scratch, t0
  .irp r,1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
  ld x\r, (\r*8)(sp)
  .endr
  addi sp, sp, 256
  csrrw sp, \scratch, sp
.endm

  .align 4
  .globl trap_entry
trap_entry:
  SAVE_REGS mscratch
  csrr a0, mcause
  csrr a1, mepc
  csrr a2, mtval
  mv a3, sp
  li a4, 0
  call handle_trap
  csrw mepc, a0
  RESTORE_REGS mscratch
  mret

  .align 4
  .globl strap_entry
strap_entry:
  SAVE_REGS sscratch
  csrr a0, scause
  csrr a1, sepc
  csrr a2, stval
  mv a3, sp
  li a4, 1
  call handle_trap
  csrw sepc, a0
  RESTORE_REGS sscratch
  sret

# void run_in(u64 mpp_bits, void (*fn)(void)): runs fn in the mode given by MPP bits (0x800 = S, 0 = U).
# fn returns normally into run_in_done (in that mode), which ECALLs with a7 = 0x99; the M handler then
# calls back into run_in_return in M-mode (see lib.h: RUN_IN_MAGIC).
  .globl run_in
run_in:
  addi sp, sp, -16
  sd ra, 0(sp)
  la t0, saved_sp
  sd sp, 0(t0)
  la t0, strap_stack_top
  csrw sscratch, t0
  li t1, 0x1800
  csrc mstatus, t1
  csrs mstatus, a0
  csrw mepc, a1
  la ra, run_in_done
  mret
run_in_done:
  li a7, 0x99
  ecall
  .globl run_in_return
run_in_return:
  la t0, saved_sp
  ld sp, 0(t0)
  ld ra, 0(sp)
  addi sp, sp, 16
  ret

  .data
saved_sp: .dword 0

  .bss
  .align 12
  .space 16384
stack_top:
  .space 4096
mtrap_stack_top:
  .space 4096
strap_stack_top:
