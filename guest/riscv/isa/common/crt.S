/*
 * Start-up and trap entry for the bare-metal ISA tests (M-mode at 0x80000000 on QEMU's virt).
 *
 * Trap frames: 32 slots of 8 bytes, slot N holds xN (slot 2 the interrupted sp). The C
 * handlers (runtime.c) may edit the frame; the CSR epc is set by the C handler.
 */
#include "runtime.h"

  .section .text.init
  .option norvc
  .global _start
_start:
  j 1f
  /* At 0x80000008: a 64-bit little-endian parameter a loader may overwrite before starting the
   * hart (on QEMU: an 8-byte file and -device loader,file=F,addr=0x80000008,force-raw=on; the
   * data= form is overwritten by the ELF). cpubench reads it as its iteration count. */
  .balign 8
  .global kitset_parameter
kitset_parameter:
  .dword 1
1:
  la sp, __stack_top
  .option push
  .option norelax
  la gp, __global_pointer$
  .option pop
  la t0, m_trap_entry
  csrw mtvec, t0
  /* Clear .bss. */
  la t0, __bss_start
  la t1, __bss_end
1:
  bgeu t0, t1, 2f
  sd zero, 0(t0)
  addi t0, t0, 8
  j 1b
2:
  /* FPU on (mstatus.FS = Initial), every test starts with fcsr = 0. */
  li t0, (1 << 13)
  csrs mstatus, t0
  csrwi fcsr, 0
  call main
  la a0, end_line
  call print
  call power_off
3:
  j 3b

.macro SAVE_FRAME
  addi sp, sp, -FRAME_SIZE
  .irp n, 1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
  sd x\n, (\n * 8)(sp)
  .endr
  addi t0, sp, FRAME_SIZE
  sd t0, (2 * 8)(sp)
.endm

.macro RESTORE_FRAME
  .irp n, 1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
  ld x\n, (\n * 8)(sp)
  .endr
  ld sp, (2 * 8)(sp)
.endm

  .text
  .align 2
  .global m_trap_entry
m_trap_entry:
  SAVE_FRAME
  mv a0, sp
  call m_trap_c
  bnez a0, back_to_machine
  RESTORE_FRAME
  mret

  /* A lower-mode run asked to return (see run_lower): resume run_lower's caller in M-mode
   * with the lower code's a0 as the result. */
back_to_machine:
  ld a0, (10 * 8)(sp)
  la t0, lower_context
  ld ra, 0(t0)
  ld sp, 8(t0)
  ld s0, 16(t0)
  ld s1, 24(t0)
  ld s2, 32(t0)
  ld s3, 40(t0)
  ld s4, 48(t0)
  ld s5, 56(t0)
  ld s6, 64(t0)
  ld s7, 72(t0)
  ld s8, 80(t0)
  ld s9, 88(t0)
  ld s10, 96(t0)
  ld s11, 104(t0)
  ld gp, 112(t0)
  ld tp, 120(t0)
  ret

  .align 2
  .global s_trap_entry
s_trap_entry:
  SAVE_FRAME
  mv a0, sp
  call s_trap_c
  RESTORE_FRAME
  sret

/* uint64_t run_lower(int mode, uint64_t (*fn)(uint64_t), uint64_t arg):
 * runs fn(arg) in U-mode (0) or S-mode (1) with the current mstatus otherwise unchanged;
 * fn's return (an ecall with a7 = ECALL_RETURN) brings its a0 back here. */
  .global run_lower
run_lower:
  la t0, lower_context
  sd ra, 0(t0)
  sd sp, 8(t0)
  sd s0, 16(t0)
  sd s1, 24(t0)
  sd s2, 32(t0)
  sd s3, 40(t0)
  sd s4, 48(t0)
  sd s5, 56(t0)
  sd s6, 64(t0)
  sd s7, 72(t0)
  sd s8, 80(t0)
  sd s9, 88(t0)
  sd s10, 96(t0)
  sd s11, 104(t0)
  sd gp, 112(t0)
  sd tp, 120(t0)
  /* mstatus.MPP = mode */
  li t0, (3 << 11)
  csrc mstatus, t0
  slli t1, a0, 11
  csrs mstatus, t1
  csrw mepc, a1
  mv a0, a2
  la ra, lower_return
  mret

  .global lower_return
lower_return:
  li a7, ECALL_RETURN
  ecall
1:
  j 1b

  .section .rodata
end_line:
  .string "END\n"

  .bss
  .align 3
lower_context:
  .skip 16 * 8
