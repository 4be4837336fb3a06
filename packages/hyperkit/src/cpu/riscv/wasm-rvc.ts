import { ByteWriter, I32, Op, VOID } from './wasm-encoder.js';

/**
 * RV64C expansion as a WebAssembly function `(parcel: i32) -> i32`, the same mapping as compressed.ts's
 * `expandCompressed` (0 for reserved and illegal encodings), for the WebAssembly interpreter: a boot meets
 * ~7,600 distinct compressed parcels, and expanding each in JavaScript the first time, before V8 has
 * optimised the expander, cost ~7 ms of a fresh process's boot. Tests compare it with `expandCompressed`
 * on all 65,536 parcels.
 */

// param 0: the parcel; locals
const C = 0;
const RD = 1; // bits 11:7
const RS2 = 2; // bits 6:2
const RDP = 3; // rd'/rs2' (bits 4:2) + 8
const RS1P = 4; // rs1'/rd' (bits 9:7) + 8
const IMM = 5;
const T = 6;

export const RVC_LOCALS: [number, number][] = [[6, I32]];

/** A register operand: a local holding it, or a constant register number. */
type Reg = { local: number } | { fixed: number };
const rd: Reg = { local: RD };
const rs2: Reg = { local: RS2 };
const rdP: Reg = { local: RDP };
const rs1P: Reg = { local: RS1P };
const x0: Reg = { fixed: 0 };
const sp: Reg = { fixed: 2 };

class RvcEmitter {
  readonly w = new ByteWriter(2048);

  /** Pushes ((c >> shift) & mask) << to. */
  private bits(shift: number, mask: number, to: number): void {
    const w = this.w;
    w.get(C);
    if (shift !== 0) w.i32Const(shift).op(Op.i32ShrU);
    w.i32Const(mask).op(Op.i32And);
    if (to !== 0) w.i32Const(to).op(Op.i32Shl);
  }

  /** IMM = the OR of the bit fields [shift, mask, to], sign-extended from `signBits` when given. */
  private imm(fields: [number, number, number][], signBits = 0): void {
    const w = this.w;
    fields.forEach(([s, m, t], i) => {
      this.bits(s, m, t);
      if (i > 0) w.op(Op.i32Or);
    });
    if (signBits > 0)
      w.i32Const(32 - signBits)
        .op(Op.i32Shl)
        .i32Const(32 - signBits)
        .op(Op.i32ShrS);
    w.set(IMM);
  }

  private reg(r: Reg, shift: number): void {
    if ('fixed' in r) this.w.i32Const(r.fixed << shift);
    else this.w.get(r.local).i32Const(shift).op(Op.i32Shl);
  }

  /** Returns the I-type instruction with IMM. */
  private iType(rs1: Reg, f3: number, rdReg: Reg, op: number): void {
    const w = this.w;
    w.get(IMM).i32Const(0xfff).op(Op.i32And).i32Const(20).op(Op.i32Shl);
    this.reg(rs1, 15);
    w.op(Op.i32Or);
    this.reg(rdReg, 7);
    w.op(Op.i32Or)
      .i32Const((f3 << 12) | op)
      .op(Op.i32Or)
      .op(Op.return);
  }

  /** Returns the S-type instruction with IMM. */
  private sType(rs2Reg: Reg, rs1: Reg, f3: number, op: number): void {
    const w = this.w;
    w.get(IMM).i32Const(5).op(Op.i32ShrS).i32Const(0x7f).op(Op.i32And).i32Const(25).op(Op.i32Shl);
    this.reg(rs2Reg, 20);
    w.op(Op.i32Or);
    this.reg(rs1, 15);
    w.op(Op.i32Or);
    w.get(IMM).i32Const(0x1f).op(Op.i32And).i32Const(7).op(Op.i32Shl).op(Op.i32Or);
    w.i32Const((f3 << 12) | op)
      .op(Op.i32Or)
      .op(Op.return);
  }

  /** Returns the R-type instruction. */
  private rType(f7: number, rs2Reg: Reg, rs1: Reg, f3: number, rdReg: Reg, op: number): void {
    const w = this.w;
    this.reg(rs2Reg, 20);
    this.reg(rs1, 15);
    w.op(Op.i32Or);
    this.reg(rdReg, 7);
    w.op(Op.i32Or)
      .i32Const((f7 << 25) | (f3 << 12) | op)
      .op(Op.i32Or)
      .op(Op.return);
  }

  /** Returns the B-type instruction with IMM (offset), rs2 = x0. */
  private bType(rs1: Reg, f3: number): void {
    const w = this.w;
    const field = (shift: number, mask: number, to: number) => {
      w.get(IMM).i32Const(shift).op(Op.i32ShrS).i32Const(mask).op(Op.i32And).i32Const(to).op(Op.i32Shl);
    };
    field(12, 1, 31);
    field(5, 0x3f, 25);
    w.op(Op.i32Or);
    this.reg(rs1, 15);
    w.op(Op.i32Or);
    field(1, 0xf, 8);
    w.op(Op.i32Or);
    field(11, 1, 7);
    w.op(Op.i32Or)
      .i32Const((f3 << 12) | 0x63)
      .op(Op.i32Or)
      .op(Op.return);
  }

  /** Returns the J-type instruction with IMM (offset), rd = x0. */
  private jType(): void {
    const w = this.w;
    const field = (shift: number, mask: number, to: number) => {
      w.get(IMM).i32Const(shift).op(Op.i32ShrS).i32Const(mask).op(Op.i32And).i32Const(to).op(Op.i32Shl);
    };
    field(20, 1, 31);
    field(1, 0x3ff, 21);
    w.op(Op.i32Or);
    field(11, 1, 20);
    w.op(Op.i32Or);
    field(12, 0xff, 12);
    w.op(Op.i32Or).i32Const(0x6f).op(Op.i32Or).op(Op.return);
  }

  /** Returns 0 (illegal) when the i32 on the stack is non-zero. */
  private illegalIf(): void {
    this.w.op(Op.if).byte(VOID).i32Const(0).op(Op.return).op(Op.end);
  }

  emit(): Uint8Array {
    const w = this.w;
    this.bits(7, 0x1f, 0);
    w.set(RD);
    this.bits(2, 0x1f, 0);
    w.set(RS2);
    this.bits(2, 7, 0);
    w.i32Const(8).op(Op.i32Add).set(RDP);
    this.bits(7, 7, 0);
    w.i32Const(8).op(Op.i32Add).set(RS1P);
    // one block per (quadrant, funct3); quadrant 3 is not compressed
    const cases: (() => void)[] = [
      // quadrant 0
      () => {
        // C.ADDI4SPN (imm 0: reserved)
        this.imm([
          [11, 3, 4],
          [7, 0xf, 6],
          [6, 1, 2],
          [5, 1, 3],
        ]);
        w.get(IMM).op(Op.i32Eqz);
        this.illegalIf();
        this.iType(sp, 0, rdP, 0x13);
      },
      () => {
        this.imm([
          [10, 7, 3],
          [5, 3, 6],
        ]);
        this.iType(rs1P, 3, rdP, 0x07); // C.FLD
      },
      () => {
        this.imm([
          [10, 7, 3],
          [6, 1, 2],
          [5, 1, 6],
        ]);
        this.iType(rs1P, 2, rdP, 0x03); // C.LW
      },
      () => {
        this.imm([
          [10, 7, 3],
          [5, 3, 6],
        ]);
        this.iType(rs1P, 3, rdP, 0x03); // C.LD
      },
      () => w.i32Const(0).op(Op.return),
      () => {
        this.imm([
          [10, 7, 3],
          [5, 3, 6],
        ]);
        this.sType(rdP, rs1P, 3, 0x27); // C.FSD
      },
      () => {
        this.imm([
          [10, 7, 3],
          [6, 1, 2],
          [5, 1, 6],
        ]);
        this.sType(rdP, rs1P, 2, 0x23); // C.SW
      },
      () => {
        this.imm([
          [10, 7, 3],
          [5, 3, 6],
        ]);
        this.sType(rdP, rs1P, 3, 0x23); // C.SD
      },
      // quadrant 1: IMM = the 6-bit sign-extended immediate unless a case sets its own
      () => {
        this.imm6();
        this.iType(rd, 0, rd, 0x13); // C.ADDI / C.NOP
      },
      () => {
        w.get(RD).op(Op.i32Eqz);
        this.illegalIf();
        this.imm6();
        this.iType(rd, 0, rd, 0x1b); // C.ADDIW
      },
      () => {
        this.imm6();
        this.iType(x0, 0, rd, 0x13); // C.LI
      },
      () => {
        w.get(RD).i32Const(2).op(Op.i32Eq);
        w.op(Op.if).byte(VOID);
        // C.ADDI16SP (imm 0: reserved)
        this.imm(
          [
            [12, 1, 9],
            [6, 1, 4],
            [5, 1, 6],
            [3, 3, 7],
            [2, 1, 5],
          ],
          10,
        );
        w.get(IMM).op(Op.i32Eqz);
        this.illegalIf();
        this.iType(sp, 0, sp, 0x13);
        w.op(Op.end);
        // C.LUI (imm 0: reserved)
        this.imm6();
        w.get(IMM).op(Op.i32Eqz);
        this.illegalIf();
        w.get(IMM).i32Const(12).op(Op.i32Shl).i32Const(-4096).op(Op.i32And);
        this.reg(rd, 7);
        w.op(Op.i32Or).i32Const(0x37).op(Op.i32Or).op(Op.return);
      },
      () => this.arith(),
      () => {
        // C.J
        this.imm(
          [
            [12, 1, 11],
            [11, 1, 4],
            [9, 3, 8],
            [8, 1, 10],
            [7, 1, 6],
            [6, 1, 7],
            [3, 7, 1],
            [2, 1, 5],
          ],
          12,
        );
        this.jType();
      },
      () => this.branch(0), // C.BEQZ
      () => this.branch(1), // C.BNEZ
      // quadrant 2
      () => {
        this.imm([
          [12, 1, 5],
          [2, 0x1f, 0],
        ]);
        this.iType(rd, 1, rd, 0x13); // C.SLLI
      },
      () => {
        this.imm([
          [12, 1, 5],
          [5, 3, 3],
          [2, 7, 6],
        ]);
        this.iType(sp, 3, rd, 0x07); // C.FLDSP
      },
      () => {
        w.get(RD).op(Op.i32Eqz);
        this.illegalIf();
        this.imm([
          [12, 1, 5],
          [4, 7, 2],
          [2, 3, 6],
        ]);
        this.iType(sp, 2, rd, 0x03); // C.LWSP
      },
      () => {
        w.get(RD).op(Op.i32Eqz);
        this.illegalIf();
        this.imm([
          [12, 1, 5],
          [5, 3, 3],
          [2, 7, 6],
        ]);
        this.iType(sp, 3, rd, 0x03); // C.LDSP
      },
      () => this.jumpOrMove(),
      () => {
        this.imm([
          [10, 7, 3],
          [7, 7, 6],
        ]);
        this.sType(rs2, sp, 3, 0x27); // C.FSDSP
      },
      () => {
        this.imm([
          [9, 0xf, 2],
          [7, 3, 6],
        ]);
        this.sType(rs2, sp, 2, 0x23); // C.SWSP
      },
      () => {
        this.imm([
          [10, 7, 3],
          [7, 7, 6],
        ]);
        this.sType(rs2, sp, 3, 0x23); // C.SDSP
      },
    ];
    // blocks: cases[0] innermost; a default block for quadrant 3
    w.op(Op.block).byte(VOID); // quadrant 3 / anything else
    for (let i = cases.length - 1; i >= 0; i--) w.op(Op.block).byte(VOID);
    // index = (c & 3) * 8 + funct3
    w.get(C).i32Const(3).op(Op.i32And).i32Const(3).op(Op.i32Shl);
    this.bits(13, 7, 0);
    w.op(Op.i32Or);
    w.op(Op.brTable).u32(cases.length);
    for (let i = 0; i < cases.length; i++) w.u32(i);
    w.u32(cases.length);
    for (const body of cases) {
      w.op(Op.end);
      body();
    }
    w.op(Op.end);
    w.i32Const(0).op(Op.end);
    return w.finish();
  }

  /** IMM = sext(bit 12 << 5 | bits 6:2, 6). */
  private imm6(): void {
    this.imm(
      [
        [12, 1, 5],
        [2, 0x1f, 0],
      ],
      6,
    );
  }

  /** Quadrant 1, funct3 4: C.SRLI, C.SRAI, C.ANDI, and C.SUB/XOR/OR/AND/SUBW/ADDW. */
  private arith(): void {
    const w = this.w;
    // T = bits 11:10
    this.bits(10, 3, 0);
    w.set(T);
    w.get(T).i32Const(2).op(Op.i32LtU);
    w.op(Op.if).byte(VOID);
    // shamt = bit 12 << 5 | bits 6:2; SRAI sets bit 10 of the immediate
    this.imm([
      [12, 1, 5],
      [2, 0x1f, 0],
    ]);
    w.get(IMM).get(T).i32Const(10).op(Op.i32Shl).op(Op.i32Or).set(IMM);
    this.iType(rs1P, 5, rs1P, 0x13);
    w.op(Op.end);
    w.get(T).i32Const(2).op(Op.i32Eq);
    w.op(Op.if).byte(VOID);
    this.imm6();
    this.iType(rs1P, 7, rs1P, 0x13); // C.ANDI
    w.op(Op.end);
    // T = (bit 12 << 2) | bits 6:5: 0 SUB, 1 XOR, 2 OR, 3 AND, 4 SUBW, 5 ADDW, else reserved
    this.bits(12, 1, 2);
    this.bits(5, 3, 0);
    w.op(Op.i32Or).set(T);
    const ops: [number, number, number][] = [
      [0x20, 0, 0x33],
      [0, 4, 0x33],
      [0, 6, 0x33],
      [0, 7, 0x33],
      [0x20, 0, 0x3b],
      [0, 0, 0x3b],
    ];
    ops.forEach(([f7, f3, op], i) => {
      w.get(T).i32Const(i).op(Op.i32Eq);
      w.op(Op.if).byte(VOID);
      this.rType(f7, rdP, rs1P, f3, rs1P, op);
      w.op(Op.end);
    });
    w.i32Const(0).op(Op.return);
  }

  /** C.BEQZ / C.BNEZ on rs1'. */
  private branch(f3: number): void {
    this.imm(
      [
        [12, 1, 8],
        [10, 3, 3],
        [5, 3, 6],
        [3, 3, 1],
        [2, 1, 5],
      ],
      9,
    );
    this.bType(rs1P, f3);
  }

  /** Quadrant 2, funct3 4: C.JR, C.MV, C.EBREAK, C.JALR, C.ADD. */
  private jumpOrMove(): void {
    const w = this.w;
    this.bits(12, 1, 0);
    w.op(Op.i32Eqz);
    w.op(Op.if).byte(VOID);
    w.get(RS2).op(Op.i32Eqz);
    w.op(Op.if).byte(VOID);
    w.get(RD).op(Op.i32Eqz);
    this.illegalIf();
    w.i32Const(0).set(IMM);
    this.iType(rd, 0, x0, 0x67); // C.JR
    w.op(Op.end);
    this.rType(0, rs2, x0, 0, rd, 0x33); // C.MV
    w.op(Op.end);
    w.get(RS2).op(Op.i32Eqz);
    w.op(Op.if).byte(VOID);
    w.get(RD).op(Op.i32Eqz);
    w.op(Op.if).byte(VOID);
    w.i32Const(0x00100073).op(Op.return); // C.EBREAK
    w.op(Op.end);
    w.i32Const(0).set(IMM);
    this.iType(rd, 0, { fixed: 1 }, 0x67); // C.JALR
    w.op(Op.end);
    this.rType(0, rs2, rd, 0, rd, 0x33); // C.ADD
  }
}

/** The expander's body (type (i32) -> i32); its locals are RVC_LOCALS. */
export function rvcExpandBody(): Uint8Array {
  return new RvcEmitter().emit();
}
