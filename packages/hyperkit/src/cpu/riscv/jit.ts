import { EXPANDED_COMPRESSED, expandedCompressed } from './compressed.js';

/**
 * Translation of hot basic blocks into JavaScript functions (V8 then compiles them to machine code).
 *
 * A block is straight-line code within one 4 KiB physical page, ending at a branch/jump (included) or before
 * an instruction the interpreter must run itself (SYSTEM, FENCE, anything undecodable). Blocks are keyed by
 * physical address and compute pc-relative values from the pc at entry, so they are valid under any
 * virtual mapping. Before each instruction that can trap, the code records its index in `h.bi`: the run loop
 * then knows how many instructions retired and at which pc the trap happened.
 *
 * Generated code sees `h` (the hart: load/store/hi/insRaw/pcLo/pcHi and the interpreter's sub-handlers for
 * M, A, F and D) and `x` (the int32-pair register file).
 */
export interface Block {
  run: (h: unknown, x: Int32Array) => void;
  /** Instructions in the block. */
  count: number;
  /** Byte offset of each instruction from the block start (for trap pcs). */
  offsets: Uint16Array;
  /** Completed runs (the run loop counts them to pick code for WebAssembly). */
  runs: number;
}

export const MAX_BLOCK_INSTRUCTIONS = 96;

const lo = (r: number) => `x[${2 * r}]`;
const hi = (r: number) => `x[${2 * r + 1}]`;

/** Code computing the 64-bit sum of register pair (baseLo, baseHi) and a 32-bit signed constant. */
function add64Const(destLo: string, destHi: string, baseLo: string, baseHi: string, imm: number): string {
  if (imm === 0) return `${destLo} = ${baseLo}; ${destHi} = ${baseHi};`;
  return (
    `{ const b = ${baseLo}; const r = (b + ${imm | 0}) | 0; ` +
    `${destHi} = (${baseHi} + ${imm >> 31} + ((r >>> 0) < (b >>> 0) ? 1 : 0)) | 0; ${destLo} = r; }`
  );
}

/** Code for one non-terminating instruction, or undefined when the block must end before it. */
function translate(ins: number, raw: number, index: number, pcOffset: number): string | undefined {
  const rd = (ins >> 7) & 0x1f;
  const rs1 = (ins >> 15) & 0x1f;
  const rs2 = (ins >> 20) & 0x1f;
  const f3 = (ins >> 12) & 7;
  const f7 = ins >>> 25;
  const trapPoint = `h.bi = ${index};`;
  switch (ins & 0x7f) {
    case 0x37: // LUI
      if (rd === 0) return '';
      return `${lo(rd)} = ${ins & 0xfffff000}; ${hi(rd)} = ${ins >> 31};`;
    case 0x17: // AUIPC: entry pc + offset + imm
      if (rd === 0) return '';
      return pcPlus(lo(rd), hi(rd), pcOffset + (ins & 0xfffff000));
    case 0x13: {
      const imm = ins >> 20;
      if (rd === 0) return '';
      switch (f3) {
        case 0:
          return add64Const(lo(rd), hi(rd), lo(rs1), hi(rs1), imm);
        case 1: {
          if (imm >>> 6 !== 0) return undefined;
          const s = imm & 63;
          if (s === 0) return `${lo(rd)} = ${lo(rs1)}; ${hi(rd)} = ${hi(rs1)};`;
          if (s < 32)
            return `{ const l = ${lo(rs1)}; ${hi(rd)} = (${hi(rs1)} << ${s}) | (l >>> ${32 - s}); ${lo(rd)} = l << ${s}; }`;
          return `${hi(rd)} = ${lo(rs1)} << ${s - 32}; ${lo(rd)} = 0;`;
        }
        case 2:
          return `{ const ah = ${hi(rs1)}; ${lo(rd)} = ah < ${imm >> 31} || (ah === ${imm >> 31} && (${lo(rs1)} >>> 0) < ${imm >>> 0}) ? 1 : 0; ${hi(rd)} = 0; }`;
        case 3:
          return `{ const ah = ${hi(rs1)} >>> 0; ${lo(rd)} = ah < ${(imm >> 31) >>> 0} || (ah === ${(imm >> 31) >>> 0} && (${lo(rs1)} >>> 0) < ${imm >>> 0}) ? 1 : 0; ${hi(rd)} = 0; }`;
        case 4:
          return `${lo(rd)} = ${lo(rs1)} ^ ${imm}; ${hi(rd)} = ${hi(rs1)} ^ ${imm >> 31};`;
        case 6:
          return `${lo(rd)} = ${lo(rs1)} | ${imm}; ${hi(rd)} = ${hi(rs1)} | ${imm >> 31};`;
        case 7:
          return `${lo(rd)} = ${lo(rs1)} & ${imm}; ${hi(rd)} = ${hi(rs1)} & ${imm >> 31};`;
        default: {
          const top = imm >>> 6;
          const s = imm & 63;
          if (top !== 0 && top !== 0x10) return undefined;
          const arith = top === 0x10;
          if (s === 0) return `${lo(rd)} = ${lo(rs1)}; ${hi(rd)} = ${hi(rs1)};`;
          if (s < 32) {
            return `{ const h1 = ${hi(rs1)}; ${lo(rd)} = (${lo(rs1)} >>> ${s}) | (h1 << ${32 - s}); ${hi(rd)} = h1 ${arith ? '>>' : '>>>'} ${s}; }`;
          }
          return arith
            ? `{ const h1 = ${hi(rs1)}; ${lo(rd)} = h1 >> ${s - 32}; ${hi(rd)} = h1 >> 31; }`
            : `${lo(rd)} = ${hi(rs1)} >>> ${s - 32}; ${hi(rd)} = 0;`;
        }
      }
    }
    case 0x1b: {
      const imm = ins >> 20;
      let e: string;
      if (f3 === 0) e = `(${lo(rs1)} + ${imm}) | 0`;
      else if (f3 === 1 && imm >>> 5 === 0) e = `${lo(rs1)} << ${imm & 31}`;
      else if (f3 === 5 && imm >>> 5 === 0) e = `(${lo(rs1)} >>> ${imm & 31}) | 0`;
      else if (f3 === 5 && imm >>> 5 === 0x20) e = `${lo(rs1)} >> ${imm & 31}`;
      else return undefined;
      if (rd === 0) return '';
      return `{ const r = ${e}; ${lo(rd)} = r; ${hi(rd)} = r >> 31; }`;
    }
    case 0x33: {
      if (f7 === 1)
        return `${trapPoint} h.insRaw = ${raw}; h.executeOp(${ins}, ${rd}, ${rs1}, ${rs2}, ${f3}); x[0] = 0; x[1] = 0;`;
      if (f7 !== 0 && !(f7 === 0x20 && (f3 === 0 || f3 === 5))) return undefined;
      if (rd === 0) return '';
      const A = `const al = ${lo(rs1)}, ah = ${hi(rs1)}, bl = ${lo(rs2)}, bh = ${hi(rs2)};`;
      switch (f3) {
        case 0:
          if (f7 === 0x20) {
            return `{ ${A} ${lo(rd)} = (al - bl) | 0; ${hi(rd)} = (ah - bh - ((al >>> 0) < (bl >>> 0) ? 1 : 0)) | 0; }`;
          }
          return `{ ${A} const r = (al + bl) | 0; ${hi(rd)} = (ah + bh + ((r >>> 0) < (al >>> 0) ? 1 : 0)) | 0; ${lo(rd)} = r; }`;
        case 1:
          return `h.shiftLeft(${rd}, ${lo(rs1)}, ${hi(rs1)}, ${lo(rs2)} & 63);`;
        case 2:
          return `{ ${A} ${lo(rd)} = ah < bh || (ah === bh && (al >>> 0) < (bl >>> 0)) ? 1 : 0; ${hi(rd)} = 0; }`;
        case 3:
          return `{ ${A} ${lo(rd)} = (ah >>> 0) < (bh >>> 0) || (ah === bh && (al >>> 0) < (bl >>> 0)) ? 1 : 0; ${hi(rd)} = 0; }`;
        case 4:
          return `{ ${A} ${lo(rd)} = al ^ bl; ${hi(rd)} = ah ^ bh; }`;
        case 5:
          return f7 === 0x20
            ? `h.shiftRightArith(${rd}, ${lo(rs1)}, ${hi(rs1)}, ${lo(rs2)} & 63);`
            : `h.shiftRightLogical(${rd}, ${lo(rs1)}, ${hi(rs1)}, ${lo(rs2)} & 63);`;
        case 6:
          return `{ ${A} ${lo(rd)} = al | bl; ${hi(rd)} = ah | bh; }`;
        default:
          return `{ ${A} ${lo(rd)} = al & bl; ${hi(rd)} = ah & bh; }`;
      }
    }
    case 0x3b: {
      if (f7 === 1)
        return `${trapPoint} h.insRaw = ${raw}; h.executeOp32(${ins}, ${rd}, ${rs1}, ${rs2}, ${f3}); x[0] = 0; x[1] = 0;`;
      let e: string;
      if (f7 === 0 && f3 === 0) e = `(${lo(rs1)} + ${lo(rs2)}) | 0`;
      else if (f7 === 0x20 && f3 === 0) e = `(${lo(rs1)} - ${lo(rs2)}) | 0`;
      else if (f7 === 0 && f3 === 1) e = `${lo(rs1)} << (${lo(rs2)} & 31)`;
      else if (f7 === 0 && f3 === 5) e = `(${lo(rs1)} >>> (${lo(rs2)} & 31)) | 0`;
      else if (f7 === 0x20 && f3 === 5) e = `${lo(rs1)} >> (${lo(rs2)} & 31)`;
      else return undefined;
      if (rd === 0) return '';
      return `{ const r = ${e}; ${lo(rd)} = r; ${hi(rd)} = r >> 31; }`;
    }
    case 0x03: {
      if (f3 === 7) return undefined;
      const imm = ins >> 20;
      const size = [1, 2, 4, 8, 1, 2, 4][f3]!;
      const addr = `const b = ${lo(rs1)}; const al = (b + ${imm}) | 0; const ah = (${hi(rs1)} + ${imm >> 31} + ((al >>> 0) < (b >>> 0) ? 1 : 0)) | 0;`;
      const call = `h.load(al, ah, ${size})`;
      if (rd === 0) return `{ ${trapPoint} ${addr} ${call}; }`;
      let set: string;
      switch (f3) {
        case 0:
          set = `{ const v = (${call} << 24) >> 24; ${lo(rd)} = v; ${hi(rd)} = v >> 31; }`;
          break;
        case 1:
          set = `{ const v = (${call} << 16) >> 16; ${lo(rd)} = v; ${hi(rd)} = v >> 31; }`;
          break;
        case 2:
          set = `{ const v = ${call} | 0; ${lo(rd)} = v; ${hi(rd)} = v >> 31; }`;
          break;
        case 3:
          set = `{ const v = ${call} | 0; ${lo(rd)} = v; ${hi(rd)} = h.hi; }`;
          break;
        case 4:
          set = `${lo(rd)} = ${call} & 0xff; ${hi(rd)} = 0;`;
          break;
        case 5:
          set = `${lo(rd)} = ${call} & 0xffff; ${hi(rd)} = 0;`;
          break;
        default:
          set = `${lo(rd)} = ${call} | 0; ${hi(rd)} = 0;`;
      }
      return `{ ${trapPoint} ${addr} ${set} }`;
    }
    case 0x23: {
      if (f3 > 3) return undefined;
      const imm = ((ins >> 25) << 5) | ((ins >> 7) & 0x1f);
      return (
        `{ ${trapPoint} const b = ${lo(rs1)}; const al = (b + ${imm}) | 0; ` +
        `const ah = (${hi(rs1)} + ${imm >> 31} + ((al >>> 0) < (b >>> 0) ? 1 : 0)) | 0; ` +
        `h.store(al, ah, ${1 << f3}, ${lo(rs2)}, ${hi(rs2)}); }`
      );
    }
    case 0x2f:
      return `${trapPoint} h.insRaw = ${raw}; h.executeAtomic(${ins}, ${rd}, ${rs1}, ${rs2}, ${f3}); x[0] = 0; x[1] = 0;`;
    case 0x07:
    case 0x27:
    case 0x43:
    case 0x47:
    case 0x4b:
    case 0x4f:
    case 0x53:
      return `${trapPoint} h.insRaw = ${raw}; h.executeFloat(${ins}, ${rd}, ${rs1}, ${rs2}, ${f3}); x[0] = 0; x[1] = 0;`;
    default:
      return undefined;
  }
}

/** Code for a block-ending jump or branch (sets the pc and returns), or undefined if not one. */
function terminator(ins: number, pcOffset: number, length: number): string | undefined {
  const rd = (ins >> 7) & 0x1f;
  const rs1 = (ins >> 15) & 0x1f;
  const rs2 = (ins >> 20) & 0x1f;
  const f3 = (ins >> 12) & 7;
  const setPc = (offset: number) => pcPlus('h.pcLo', 'h.pcHi', offset);
  const link = rd === 0 ? '' : pcPlus(lo(rd), hi(rd), pcOffset + length);
  switch (ins & 0x7f) {
    case 0x6f: {
      const imm =
        ((ins >> 31) << 20) |
        (((ins >> 12) & 0xff) << 12) |
        (((ins >> 20) & 1) << 11) |
        (((ins >> 21) & 0x3ff) << 1);
      return `${link} ${setPc(pcOffset + imm)} return;`;
    }
    case 0x67: {
      if (f3 !== 0) return undefined;
      const imm = ins >> 20;
      return (
        `{ const b = ${lo(rs1)}; const s = (b + ${imm}) | 0; ` +
        `const th = (${hi(rs1)} + ${imm >> 31} + ((s >>> 0) < (b >>> 0) ? 1 : 0)) | 0; ` +
        `${link} h.pcLo = s & ~1; h.pcHi = th; return; }`
      );
    }
    case 0x63: {
      let cond: string;
      const A = `const al = ${lo(rs1)}, ah = ${hi(rs1)}, bl = ${lo(rs2)}, bh = ${hi(rs2)};`;
      switch (f3) {
        case 0:
          cond = 'al === bl && ah === bh';
          break;
        case 1:
          cond = 'al !== bl || ah !== bh';
          break;
        case 4:
          cond = 'ah < bh || (ah === bh && (al >>> 0) < (bl >>> 0))';
          break;
        case 5:
          cond = 'ah > bh || (ah === bh && (al >>> 0) >= (bl >>> 0))';
          break;
        case 6:
          cond = '(ah >>> 0) < (bh >>> 0) || (ah === bh && (al >>> 0) < (bl >>> 0))';
          break;
        case 7:
          cond = '(ah >>> 0) > (bh >>> 0) || (ah === bh && (al >>> 0) >= (bl >>> 0))';
          break;
        default:
          return undefined;
      }
      const imm =
        ((ins >> 31) << 12) |
        (((ins >> 7) & 1) << 11) |
        (((ins >> 25) & 0x3f) << 5) |
        (((ins >> 8) & 0xf) << 1);
      return `{ ${A} if (${cond}) ${setPc(pcOffset + imm)} else ${setPc(pcOffset + length)} return; }`;
    }
    default:
      return undefined;
  }
}

/** Code setting destLo:destHi to the entry pc (pl:ph) plus a constant c with |c| < 2^32. */
function pcPlus(destLo: string, destHi: string, c: number): string {
  const cLo = c | 0;
  const cHi = Math.floor(c / 0x1_0000_0000);
  return `{ const r = (pl + ${cLo}) | 0; ${destHi} = (ph + ${cHi} + ((r >>> 0) < (pl >>> 0) ? 1 : 0)) | 0; ${destLo} = r; }`;
}

/**
 * Translates the block starting at RAM byte offset `start` (which must be 2-aligned). Returns null when the
 * first instruction cannot be translated (the interpreter runs it).
 */
export function translateBlock(ram16: Uint16Array, start: number): Block | null {
  const pageEnd = (start | 4095) + 1;
  const parts: string[] = [];
  const offsets: number[] = [];
  let off = start;
  let ended = false;
  while (offsets.length < MAX_BLOCK_INSTRUCTIONS && off < pageEnd) {
    const half = ram16[off >> 1]!;
    let ins: number;
    let raw: number;
    let length: number;
    if ((half & 3) !== 3) {
      ins = EXPANDED_COMPRESSED[half] || expandedCompressed(half);
      if (ins === 0) break;
      raw = half;
      length = 2;
    } else {
      if (off + 4 > pageEnd) break; // spans the page end: the interpreter handles it
      ins = half | (ram16[(off >> 1) + 1]! << 16) | 0;
      raw = ins >>> 0;
      length = 4;
    }
    const index = offsets.length;
    const pcOffset = off - start;
    const term = terminator(ins, pcOffset, length);
    if (term !== undefined) {
      offsets.push(pcOffset);
      parts.push(term);
      ended = true;
      break;
    }
    const code = translate(ins, raw, index, pcOffset);
    if (code === undefined) break;
    offsets.push(pcOffset);
    parts.push(code);
    off += length;
  }
  if (offsets.length === 0) return null;
  if (!ended) parts.push(pcPlus('h.pcLo', 'h.pcHi', off - start));
  const body = `const pl = h.pcLo, ph = h.pcHi;\n${parts.join('\n')}`;
  const run = new Function('h', 'x', body) as Block['run'];
  return { run, count: offsets.length, offsets: Uint16Array.from(offsets), runs: 0 };
}
