/*
 * RV64C: every compressed instruction form, written with explicit c.* mnemonics, each result
 * printed as a "name value" line. Also the all-zero halfword (an illegal instruction) and
 * c.ebreak, which traps with a 2-byte mepc step.
 */
#include "runtime.h"

  .option rvc

/* CHECK name, reg: prints "name <reg in hex>" (clobbers caller-saved registers). */
.macro CHECK name, reg
  .pushsection .rodata
  98: .string "\name"
  .popsection
  mv a1, \reg
  la a0, 98b
  call check
.endm

.macro CHECK_TRAP name
  .pushsection .rodata
  98: .string "\name"
  .popsection
  la a0, 98b
  call check_m_trap
.endm

  .text
  .global main
main:
  addi sp, sp, -64
  sd ra, 56(sp)
  sd s0, 48(sp)
  sd s1, 40(sp)

  /* --- CI/CIW: immediates --- */
  c.li a0, 31
  CHECK c.li.31, a0
  c.li a0, -32
  CHECK c.li.-32, a0
  c.li a0, 5
  c.addi a0, -6
  CHECK c.addi.-6, a0
  c.li a0, 1
  c.addi a0, 31
  CHECK c.addi.31, a0
  li a0, 0x7fffffff
  c.addiw a0, 1
  CHECK c.addiw.overflow, a0
  li a0, 0x123456789
  c.addiw a0, 0
  CHECK c.addiw.sext, a0
  c.lui a0, 1
  CHECK c.lui.1, a0
  c.lui a0, 0x1f
  CHECK c.lui.0x1f, a0
  c.lui a0, 0xfffe0
  CHECK c.lui.0xfffe0, a0
  c.lui a0, 0xfffff
  CHECK c.lui.0xfffff, a0
  mv s1, sp
  c.addi16sp sp, -64
  sub a0, s1, sp
  c.addi16sp sp, 64
  CHECK c.addi16sp.-64, a0
  c.addi4spn s0, sp, 1020
  sub a0, s0, sp
  CHECK c.addi4spn.1020, a0
  c.addi4spn s0, sp, 4
  sub a0, s0, sp
  CHECK c.addi4spn.4, a0
  c.nop
  c.addi zero, 0
  CHECK c.nop, zero

  /* --- shifts and ALU --- */
  li a0, 0x8000000000000001
  c.slli a0, 1
  CHECK c.slli.1, a0
  li a0, 1
  c.slli a0, 63
  CHECK c.slli.63, a0
  li a0, 0x8000000000000000
  c.srli a0, 63
  CHECK c.srli.63, a0
  li a0, 0x8000000000000000
  c.srai a0, 32
  CHECK c.srai.32, a0
  li a0, 0x8000000000000000
  c.srai a0, 1
  CHECK c.srai.1, a0
  li a0, 0xffff0000ffff
  c.andi a0, -16
  CHECK c.andi.-16, a0
  li a0, 0xffff0000ffff
  c.andi a0, 15
  CHECK c.andi.15, a0
  li a0, 0x0f0f0f0f0f0f0f0f
  li a1, 0x00ff00ff00ff00ff
  c.sub a0, a1
  CHECK c.sub, a0
  li a0, 0x0f0f0f0f0f0f0f0f
  li a1, 0x00ff00ff00ff00ff
  c.xor a0, a1
  CHECK c.xor, a0
  li a0, 0x0f0f0f0f0f0f0f0f
  li a1, 0x00ff00ff00ff00ff
  c.or a0, a1
  CHECK c.or, a0
  li a0, 0x0f0f0f0f0f0f0f0f
  li a1, 0x00ff00ff00ff00ff
  c.and a0, a1
  CHECK c.and, a0
  li a0, 0x80000000
  li a1, 1
  c.subw a0, a1
  CHECK c.subw, a0
  li a0, 0x7fffffff
  li a1, 1
  c.addw a0, a1
  CHECK c.addw, a0
  li a0, 0x123456789
  li a1, 0x111111111
  c.add a0, a1
  CHECK c.add, a0
  li a1, 0x5555aaaa5555aaaa
  c.mv a0, a1
  CHECK c.mv, a0

  /* --- loads and stores: register-based (CL/CS) and sp-based (CI/CSS) --- */
  li a0, 0x8899aabbccddeeff
  sd a0, 0(sp)
  li a0, 0xf0e0d0c0b0a09080
  sd a0, 8(sp)
  mv s0, sp
  c.lw a0, 4(s0)
  CHECK c.lw.sext, a0
  c.ld a0, 8(s0)
  CHECK c.ld, a0
  c.lwsp a0, 12(sp)
  CHECK c.lwsp.sext, a0
  c.ldsp a0, 0(sp)
  CHECK c.ldsp, a0
  li a1, 0x0102030405060708
  c.sw a1, 0(s0)
  ld a0, 0(sp)
  CHECK c.sw, a0
  li a1, 0x1112131415161718
  c.sd a1, 8(s0)
  ld a0, 8(sp)
  CHECK c.sd, a0
  li a1, 0x2122232425262728
  c.swsp a1, 12(sp)
  ld a0, 8(sp)
  CHECK c.swsp, a0
  li a1, 0x3132333435363738
  c.sdsp a1, 0(sp)
  ld a0, 0(sp)
  CHECK c.sdsp, a0
  li a0, 0x400921fb54442d18
  sd a0, 16(sp)
  addi s0, sp, 8
  c.fld fa0, 8(s0)
  fmv.x.d a0, fa0
  CHECK c.fld, a0
  c.fldsp fa1, 16(sp)
  fmv.x.d a0, fa1
  CHECK c.fldsp, a0
  li a0, 0xc00921fb54442d18
  fmv.d.x fa2, a0
  c.fsd fa2, 16(s0)
  ld a0, 24(sp)
  CHECK c.fsd, a0
  c.fsdsp fa2, 32(sp)
  ld a0, 32(sp)
  CHECK c.fsdsp, a0

  /* --- control transfer --- */
  li a0, 0
  c.j 1f
  li a0, 1
1:
  CHECK c.j.skipped, a0
  li s0, 0
  li a0, 0
  c.beqz s0, 1f
  li a0, 1
1:
  CHECK c.beqz.taken, a0
  li s0, 7
  li a0, 0
  c.beqz s0, 1f
  li a0, 1
1:
  CHECK c.beqz.not-taken, a0
  li s0, 7
  li a0, 0
  c.bnez s0, 1f
  li a0, 1
1:
  CHECK c.bnez.taken, a0
  /* A backwards c.bnez loop. */
  li s0, 5
  li a0, 0
2:
  c.addi a0, 3
  c.addi s0, -1
  c.bnez s0, 2b
  CHECK c.bnez.loop, a0
  la a5, 1f
  li a0, 0
  c.jr a5
  li a0, 1
1:
  CHECK c.jr.skipped, a0
  la a5, 1f
3:
  c.jalr a5
1:
  la a0, 3b
  sub a0, ra, a0
  CHECK c.jalr.link, a0

  /* --- traps --- */
  call clear_traps
  c.ebreak
  CHECK_TRAP c.ebreak
  call clear_traps
  .2byte 0x0000
  CHECK_TRAP illegal.zero-halfword

  ld ra, 56(sp)
  ld s0, 48(sp)
  ld s1, 40(sp)
  addi sp, sp, 64
  li a0, 0
  ret
