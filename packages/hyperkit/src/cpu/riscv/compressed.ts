/**
 * RV64C: expands a 16-bit compressed instruction into its 32-bit equivalent, or returns 0 when the encoding
 * is reserved/illegal (0 is itself an illegal 32-bit instruction, so callers treat it uniformly).
 * The encoders of the 32-bit formats below (int32 results) also serve the tests that write programs.
 */

export function iType(imm: number, rs1: number, f3: number, rd: number, op: number): number {
  return ((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}
export function sType(imm: number, rs2: number, rs1: number, f3: number, op: number): number {
  return (((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | op;
}
export function rType(f7: number, rs2: number, rs1: number, f3: number, rd: number, op: number): number {
  return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}
export function bType(imm: number, rs2: number, rs1: number, f3: number): number {
  return (
    (((imm >> 12) & 1) << 31) |
    (((imm >> 5) & 0x3f) << 25) |
    (rs2 << 20) |
    (rs1 << 15) |
    (f3 << 12) |
    (((imm >> 1) & 0xf) << 8) |
    (((imm >> 11) & 1) << 7) |
    0x63
  );
}
export function jType(imm: number, rd: number): number {
  return (
    (((imm >> 20) & 1) << 31) |
    (((imm >> 1) & 0x3ff) << 21) |
    (((imm >> 11) & 1) << 20) |
    (((imm >> 12) & 0xff) << 12) |
    (rd << 7) |
    0x6f
  );
}

const bit = (x: number, n: number) => (x >> n) & 1;
/** Sign-extends the low `bits` bits of x. */
const sext = (x: number, bits: number) => (x << (32 - bits)) >> (32 - bits);

export function expandCompressed(c: number): number {
  const f3 = (c >> 13) & 7;
  const rdFull = (c >> 7) & 0x1f;
  const rs2Full = (c >> 2) & 0x1f;
  const rdP = ((c >> 2) & 7) + 8; // rd'/rs2' in bits 4:2
  const rs1P = ((c >> 7) & 7) + 8; // rs1'/rd' in bits 9:7
  switch (c & 3) {
    case 0:
      switch (f3) {
        case 0: {
          // C.ADDI4SPN
          const imm = (((c >> 11) & 3) << 4) | (((c >> 7) & 0xf) << 6) | (bit(c, 6) << 2) | (bit(c, 5) << 3);
          if (imm === 0) return 0;
          return iType(imm, 2, 0, rdP, 0x13);
        }
        case 1: // C.FLD
          return iType((((c >> 10) & 7) << 3) | (((c >> 5) & 3) << 6), rs1P, 3, rdP, 0x07);
        case 2: // C.LW
          return iType((((c >> 10) & 7) << 3) | (bit(c, 6) << 2) | (bit(c, 5) << 6), rs1P, 2, rdP, 0x03);
        case 3: // C.LD
          return iType((((c >> 10) & 7) << 3) | (((c >> 5) & 3) << 6), rs1P, 3, rdP, 0x03);
        case 5: // C.FSD
          return sType((((c >> 10) & 7) << 3) | (((c >> 5) & 3) << 6), rdP, rs1P, 3, 0x27);
        case 6: // C.SW
          return sType((((c >> 10) & 7) << 3) | (bit(c, 6) << 2) | (bit(c, 5) << 6), rdP, rs1P, 2, 0x23);
        case 7: // C.SD
          return sType((((c >> 10) & 7) << 3) | (((c >> 5) & 3) << 6), rdP, rs1P, 3, 0x23);
        default:
          return 0;
      }
    case 1: {
      const imm6 = sext((bit(c, 12) << 5) | ((c >> 2) & 0x1f), 6);
      switch (f3) {
        case 0: // C.ADDI / C.NOP
          return iType(imm6, rdFull, 0, rdFull, 0x13);
        case 1: // C.ADDIW
          if (rdFull === 0) return 0;
          return iType(imm6, rdFull, 0, rdFull, 0x1b);
        case 2: // C.LI
          return iType(imm6, 0, 0, rdFull, 0x13);
        case 3:
          if (rdFull === 2) {
            // C.ADDI16SP
            const imm = sext(
              (bit(c, 12) << 9) |
                (bit(c, 6) << 4) |
                (bit(c, 5) << 6) |
                (((c >> 3) & 3) << 7) |
                (bit(c, 2) << 5),
              10,
            );
            if (imm === 0) return 0;
            return iType(imm, 2, 0, 2, 0x13);
          }
          // C.LUI
          if (imm6 === 0) return 0;
          return ((imm6 << 12) & 0xfffff000) | (rdFull << 7) | 0x37;
        case 4: {
          const shamt = (bit(c, 12) << 5) | ((c >> 2) & 0x1f);
          switch ((c >> 10) & 3) {
            case 0:
              return iType(shamt, rs1P, 5, rs1P, 0x13); // C.SRLI
            case 1:
              return iType(shamt | 0x400, rs1P, 5, rs1P, 0x13); // C.SRAI
            case 2:
              return iType(imm6, rs1P, 7, rs1P, 0x13); // C.ANDI
            default: {
              const op = (c >> 5) & 3;
              if (bit(c, 12) === 0) {
                if (op === 0) return rType(0x20, rdP, rs1P, 0, rs1P, 0x33); // C.SUB
                if (op === 1) return rType(0, rdP, rs1P, 4, rs1P, 0x33); // C.XOR
                if (op === 2) return rType(0, rdP, rs1P, 6, rs1P, 0x33); // C.OR
                return rType(0, rdP, rs1P, 7, rs1P, 0x33); // C.AND
              }
              if (op === 0) return rType(0x20, rdP, rs1P, 0, rs1P, 0x3b); // C.SUBW
              if (op === 1) return rType(0, rdP, rs1P, 0, rs1P, 0x3b); // C.ADDW
              return 0;
            }
          }
        }
        case 5: {
          // C.J
          const imm = sext(
            (bit(c, 12) << 11) |
              (bit(c, 11) << 4) |
              (((c >> 9) & 3) << 8) |
              (bit(c, 8) << 10) |
              (bit(c, 7) << 6) |
              (bit(c, 6) << 7) |
              (((c >> 3) & 7) << 1) |
              (bit(c, 2) << 5),
            12,
          );
          return jType(imm, 0);
        }
        default: {
          // C.BEQZ / C.BNEZ
          const imm = sext(
            (bit(c, 12) << 8) |
              (((c >> 10) & 3) << 3) |
              (((c >> 5) & 3) << 6) |
              (((c >> 3) & 3) << 1) |
              (bit(c, 2) << 5),
            9,
          );
          return bType(imm, 0, rs1P, f3 === 6 ? 0 : 1);
        }
      }
    }
    case 2:
      switch (f3) {
        case 0: // C.SLLI
          return iType((bit(c, 12) << 5) | ((c >> 2) & 0x1f), rdFull, 1, rdFull, 0x13);
        case 1: // C.FLDSP
          return iType((bit(c, 12) << 5) | (((c >> 5) & 3) << 3) | (((c >> 2) & 7) << 6), 2, 3, rdFull, 0x07);
        case 2: // C.LWSP
          if (rdFull === 0) return 0;
          return iType((bit(c, 12) << 5) | (((c >> 4) & 7) << 2) | (((c >> 2) & 3) << 6), 2, 2, rdFull, 0x03);
        case 3: // C.LDSP
          if (rdFull === 0) return 0;
          return iType((bit(c, 12) << 5) | (((c >> 5) & 3) << 3) | (((c >> 2) & 7) << 6), 2, 3, rdFull, 0x03);
        case 4:
          if (bit(c, 12) === 0) {
            if (rs2Full === 0) {
              if (rdFull === 0) return 0;
              return iType(0, rdFull, 0, 0, 0x67); // C.JR
            }
            return rType(0, rs2Full, 0, 0, rdFull, 0x33); // C.MV
          }
          if (rs2Full === 0) {
            if (rdFull === 0) return 0x00100073; // C.EBREAK
            return iType(0, rdFull, 0, 1, 0x67); // C.JALR
          }
          return rType(0, rs2Full, rdFull, 0, rdFull, 0x33); // C.ADD
        case 5: // C.FSDSP
          return sType((((c >> 10) & 7) << 3) | (((c >> 7) & 7) << 6), rs2Full, 2, 3, 0x27);
        case 6: // C.SWSP
          return sType((((c >> 9) & 0xf) << 2) | (((c >> 7) & 3) << 6), rs2Full, 2, 2, 0x23);
        default: // C.SDSP
          return sType((((c >> 10) & 7) << 3) | (((c >> 7) & 7) << 6), rs2Full, 2, 3, 0x23);
      }
    default:
      return 0;
  }
}

/**
 * Every 16-bit parcel's expansion, filled in on first use (`expandedCompressed`): building all 65,536 up
 * front cost ~7 ms of every process start. The interpreter and the translators read an entry and call
 * `expandedCompressed` when it is still 0 (not yet expanded, or illegal: those are expanded again each
 * time, as they trap anyway).
 */
export const EXPANDED_COMPRESSED: Int32Array = new Int32Array(65536);

/** The expansion of compressed parcel `half` (0 when illegal), memoised in EXPANDED_COMPRESSED. */
export function expandedCompressed(half: number): number {
  const ins = expandCompressed(half);
  EXPANDED_COMPRESSED[half] = ins;
  return ins;
}
