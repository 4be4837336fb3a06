import { EXPANDED_COMPRESSED, expandedCompressed } from './compressed.js';
import { ByteWriter, type FuncDef, I32, I64, Op, VOID, encodeModule } from './wasm-encoder.js';
import {
  ENTRY_MAP_SLOTS,
  ENTRY_MAP_SLOT_BYTES,
  HEAT_ENTRIES,
  INTERP_LOCALS,
  interpreterBody,
} from './wasm-interp.js';
import { RVC_LOCALS, rvcExpandBody } from './wasm-rvc.js';

/**
 * Translation of hot guest code into WebAssembly, which has the native 64-bit integers that JavaScript
 * lacks (the route v86 takes for x86).
 *
 * The unit is a *region*: the hot blocks of one 4 KiB physical page, plus the blocks reachable from them by
 * direct branches inside the page, compiled into one function. The function dispatches on a block index in
 * a loop, so a loop of guest code that stays within the page runs inside WebAssembly without returning to
 * JavaScript. Guest registers live in i64 locals, loaded from the register file on entry and written back on
 * every exit. Branches within the page keep the virtual page base (pages map whole), so regions are keyed by
 * physical page and valid under any mapping.
 *
 * Guest RAM, the register file, the TLB and the code-page map all live in the one WebAssembly.Memory that
 * backs GuestMemory (RAM at offset 0, the CPU area after it, see CpuArea). Loads and stores take an inline
 * fast path (bare mode: RAM range check; paging: TLB tag compare) and otherwise call the hart's JavaScript
 * slow path, which returns a status instead of throwing: 0 go on, 1 the access trapped (leave with the pc
 * of the instruction and the exact retired count), 2 it had side effects the run loop must see (leave at
 * the next block boundary). Stores to pages holding translated code always take the slow path, which drops
 * those translations (self-modifying code).
 *
 * Exits store the next pc and the number of retired instructions in the CPU area and return the status.
 * The instruction budget is checked at every block transition, so loops yield to timers and devices.
 */

/** Byte offsets inside the CPU area. */
export const CTL_REGS = 0;
export const CTL_NPC = 256;
export const CTL_RETIRED = 264;
/** 0: bare access to RAM; 1: through the TLB arrays; 2: always the slow path (PMP in force). */
export const CTL_DMODE = 268;
export const CTL_READ_TAG = 272;
export const CTL_READ_PHYS = 276;
export const CTL_WRITE_TAG = 280;
export const CTL_WRITE_PHYS = 284;
/** A loaded value handed back by the slow path (i64). */
export const CTL_VALUE = 288;
/** Visits at which the WebAssembly interpreter reports a block start hot (i32). */
export const CTL_HEAT_LIMIT = 296;
/** How the WebAssembly interpreter may change fetch page (see InterpLayout), and the exec TLB arrays. */
export const CTL_FETCH_MODE = 300;
export const CTL_EXEC_TAG = 304;
export const CTL_EXEC_PHYS = 308;
/** The WebAssembly interpreter's fetch page at exit (RAM offset, -1 unknown). */
export const CTL_FETCH_BASE = 312;
/** The LR reservation: valid (i32) and address (i64), shared by the hart and the WebAssembly interpreter. */
export const CTL_RESV_VALID = 320;
export const CTL_RESV_ADDR = 328;
/** mstatus (low word, i32) and the privilege level (i32), kept here by the hart for the WebAssembly loop. */
export const CTL_MSTATUS = 336;
export const CTL_PRIV = 340;
/** Page walks the WebAssembly interpreter may do (levels or 0), the root table, the data privilege. */
export const CTL_WALK_DATA = 344;
export const CTL_WALK_FETCH = 348;
export const CTL_SATP_ROOT = 352;
export const CTL_DATA_PRIV = 360;
/** mideleg, mie, mip's device bits, mip's software bits (i32 each), kept here by the hart. */
export const CTL_IRQ = 368;
export const CTL_TLB = 4096;
export const TLB_ARRAY_BYTES = 1024 * 8;
export const TLB_ARRAYS = 18;
/**
 * Chaining of warm blocks: a direct-mapped table from RAM offset (i32 key, -1 empty) to the block's index in
 * the shared function table (i32), so a block leaving for another translated block of its page continues
 * there inside WebAssembly.
 */
export const CTL_CHAIN = CTL_TLB + TLB_ARRAYS * TLB_ARRAY_BYTES;
export const CHAIN_ENTRIES = 16384;
/** Run counters of warm blocks by table index (a block reaching WARM_PROMOTE runs asks to be promoted). */
export const CTL_COUNTERS = CTL_CHAIN + CHAIN_ENTRIES * 8;
export const MAX_WARM_BLOCKS = 65536;
/** The WebAssembly interpreter's copy of the compressed-instruction expansions (filled by the hart). */
export const CTL_COMPRESSED = CTL_COUNTERS + MAX_WARM_BLOCKS * 4;
/** The WebAssembly interpreter's block-start visit counts (see wasm-interp.ts). */
export const CTL_HEAT = CTL_COMPRESSED + 65536 * 4;
/** Entry maps of pages holding regions (see wasm-interp.ts). */
export const CTL_ENTRY_MAP = CTL_HEAT + HEAT_ENTRIES * 8;
export const CTL_CODE_PAGES = CTL_ENTRY_MAP + ENTRY_MAP_SLOTS * ENTRY_MAP_SLOT_BYTES;
/** Runs of a warm block (counted inside WebAssembly) before it asks for its page's hot region. */
export const WARM_PROMOTE = 20000;
/** Results of a warm block or of the dispatcher, besides a next table index (>= 0). */
export const CHAIN_EXIT = -1;
export const CHAIN_TRAP = -2;
export const CHAIN_STOP = -3;
export const CHAIN_PROMOTE = -4;

/** Bytes of CPU area needed for `ramSize` bytes of RAM. */
export function cpuAreaBytes(ramSize: number): number {
  return CTL_CODE_PAGES + Math.ceil(ramSize / 4096);
}

export interface WasmRegion {
  /** Runs from block `entry` with an instruction budget; returns the status (1 = trap). */
  run: (entry: number, budget: number) => number;
  /** Its slot in the translator's region table (WasmTranslator.enter), -1 if none. */
  slot: number;
  /** Block index per halfword slot of the page, -1 where no block starts. */
  entries: Int16Array;
  /** Instructions translated. */
  instructions: number;
  /** RAM page number. */
  page: number;
  /** Registers kept in memory (a warm-tier region). */
  regsInMemory: boolean;
  /** The MMU mode it was compiled for (-1: any). */
  dmode: number;
  /** The page's contents when it was translated, and the entries it was asked for. */
  bytes: Int32Array;
  entryList: number[];
  /** Runs and instructions retired in them (the hart keeps regions whose runs are long enough). */
  calls: number;
  retired: number;
}

/** Slow paths the translated code calls (both return a status: 0 ok, 1 trap, 2 leave soon). */
export interface WasmSlowPaths {
  load(lo: number, hi: number, size: number): number;
  store(lo: number, hi: number, size: number, vLo: number, vHi: number): number;
}

interface WasmTable {
  readonly length: number;
  grow(delta: number): number;
  set(index: number, value: unknown): void;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Table: new (d: { initial: number; element: 'anyfunc' }) => WasmTable;
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Most blocks and instructions in one region (bounds compile time and code size). */
const MAX_REGION_BLOCKS = 96;
const MAX_REGION_INSTRUCTIONS = 2500;
const MAX_BLOCK = 128;

// locals of a region function
const P_ENTRY = 0;
const P_BUDGET = 1;
const regLocal = (r: number) => r + 1; // x1..x31 -> 2..32
const L_VB = 33;
const L_NPC = 34;
const L_ADDR = 35;
const L_T2 = 37;
const L_N = 38;
const L_CUR = 39;
const L_ST = 40;
const L_OFF = 41;
const L_DMODE = 42;
const L_NEXT = 43;
const L_T1 = 36;

// function indices
const F_LD = 0;
const F_ST = 1;
const F_RDX = 2;
const F_WRX = 3;
const F_MULHU = 4;
const FIRST_REGION = 5;

// type indices
const T_LD = 0;
const T_ST = 1;
const T_XLATE = 2;
const T_MUL = 3;
const T_REGION = 4;
const T_EXPAND = 5;

interface Insn {
  ins: number;
  off: number;
  len: number;
}

interface RegionBlock {
  start: number;
  insns: Insn[];
  /** Page offset after the last instruction (fall-through pc when the block does not end in a jump). */
  end: number;
  /** True when the last instruction is a branch or jump. */
  terminated: boolean;
  /** Length of the instruction that stopped the block when the interpreter must run it (0: none). */
  stopLength: number;
}

/** Decodes the instruction at page offset `off`; undefined if it does not fit in the page or is illegal. */
function fetchInsn(ram16: Uint16Array, pageOff: number, off: number): Insn | undefined {
  const half = ram16[(pageOff + off) >> 1]!;
  if ((half & 3) !== 3) {
    const ins = EXPANDED_COMPRESSED[half] || expandedCompressed(half);
    return ins === 0 ? undefined : { ins, off, len: 2 };
  }
  if (off + 4 > 4096) return undefined;
  return { ins: half | (ram16[((pageOff + off) >> 1) + 1]! << 16), off, len: 4 };
}

function isTerminator(ins: number): boolean {
  const op = ins & 0x7f;
  if (op === 0x6f) return true;
  if (op === 0x67) return ((ins >> 12) & 7) === 0;
  if (op === 0x63) {
    const f3 = (ins >> 12) & 7;
    return f3 !== 2 && f3 !== 3;
  }
  return false;
}

/** True when the non-terminating instruction can be translated (everything else ends the block). */
function translatable(ins: number): boolean {
  const f3 = (ins >> 12) & 7;
  const f7 = ins >>> 25;
  const imm = ins >> 20;
  switch (ins & 0x7f) {
    case 0x37:
    case 0x17:
      return true;
    case 0x13:
      if (f3 === 1) return imm >>> 6 === 0;
      if (f3 === 5) return imm >>> 6 === 0 || imm >>> 6 === 0x10;
      return true;
    case 0x1b:
      if (f3 === 0) return true;
      if (f3 === 1) return imm >>> 5 === 0;
      if (f3 === 5) return imm >>> 5 === 0 || imm >>> 5 === 0x20;
      return false;
    case 0x33:
      return f7 === 0 || f7 === 1 || (f7 === 0x20 && (f3 === 0 || f3 === 5));
    case 0x3b:
      if (f7 === 1) return f3 === 0 || f3 >= 4;
      return (f7 === 0 && (f3 === 0 || f3 === 1 || f3 === 5)) || (f7 === 0x20 && (f3 === 0 || f3 === 5));
    case 0x03:
      return f3 !== 7;
    case 0x23:
      return f3 <= 3;
    case 0x0f:
      return f3 === 0; // FENCE: memory is coherent here; FENCE.I goes to the interpreter
    default:
      return false;
  }
}

function branchTarget(ins: number): number {
  return (
    ((ins >> 31) << 12) | (((ins >> 7) & 1) << 11) | (((ins >> 25) & 0x3f) << 5) | (((ins >> 8) & 0xf) << 1)
  );
}

function jalTarget(ins: number): number {
  return (
    ((ins >> 31) << 20) |
    (((ins >> 12) & 0xff) << 12) |
    (((ins >> 20) & 1) << 11) |
    (((ins >> 21) & 0x3ff) << 1)
  );
}

function decodeBlock(ram16: Uint16Array, pageOff: number, start: number): RegionBlock {
  const insns: Insn[] = [];
  let off = start;
  let terminated = false;
  let stopLength = 0;
  while (insns.length < MAX_BLOCK && off < 4096) {
    const insn = fetchInsn(ram16, pageOff, off);
    if (insn === undefined) break;
    if (isTerminator(insn.ins)) {
      insns.push(insn);
      off += insn.len;
      terminated = true;
      break;
    }
    if (!translatable(insn.ins)) {
      stopLength = insn.len;
      break;
    }
    insns.push(insn);
    off += insn.len;
  }
  return { start, insns, end: off, terminated, stopLength };
}

/**
 * The blocks of a region: the entries first, then what direct branches inside the page reach (only code that
 * has run, when `executed` tells: smaller functions compile faster, and V8's optimizing tier with them).
 */
function discoverRegion(
  ram16: Uint16Array,
  pageOff: number,
  entries: number[],
  executed: ((offset: number) => boolean) | undefined,
): RegionBlock[] {
  const blocks: RegionBlock[] = [];
  const seen = new Set<number>();
  const queue = [...entries];
  const first = entries.length;
  let taken = 0;
  let total = 0;
  while (queue.length > 0 && blocks.length < MAX_REGION_BLOCKS && total < MAX_REGION_INSTRUCTIONS) {
    const start = queue.shift()!;
    const isEntry = taken++ < first;
    if (seen.has(start) || start < 0 || start >= 4096) continue;
    if (!isEntry && executed !== undefined && !executed(start)) continue;
    seen.add(start);
    const b = decodeBlock(ram16, pageOff, start);
    // after an instruction the interpreter runs (CSR access, ECALL, AMO...), execution comes back here
    if (b.stopLength !== 0) queue.push(b.end + b.stopLength);
    if (b.insns.length === 0) continue;
    blocks.push(b);
    total += b.insns.length;
    const last = b.insns[b.insns.length - 1]!;
    if (b.terminated) {
      const op = last.ins & 0x7f;
      if (op === 0x63) queue.push(last.off + branchTarget(last.ins), b.end);
      else if (op === 0x6f) {
        queue.push(last.off + jalTarget(last.ins));
        if (((last.ins >> 7) & 31) !== 0) queue.push(b.end); // the return point of a call
      } else if (((last.ins >> 7) & 31) !== 0) queue.push(b.end);
    } else if (b.stopLength === 0) queue.push(b.end);
  }
  // in address order, so that most transitions (fall-through, loop bodies) go forward: direct branches
  return blocks.sort((a, b) => a.start - b.start);
}

/** Emits one region function. */
class RegionEmitter {
  readonly w = new ByteWriter(1024);
  /** Open control structures, innermost last: 'exit', 'dispatch' or anything else. */
  private labels: string[] = [];
  used = 0;
  written = 0;
  private readonly index = new Map<number, number>();

  private current = -1;
  private selfIndex = -1;

  constructor(
    private readonly ctl: number,
    private readonly blocks: RegionBlock[],
    private readonly ramBase: number,
    private readonly ramSize: number,
    /** Guest registers stay in the register file (cheap entry and exit; for warm code) or live in locals. */
    private readonly regsInMemory: boolean,
    /** For a chained warm block: RAM offset of its page and its table index (counter slot); else -1. */
    private readonly chainPage = -1,
    private readonly tableIndex = -1,
    /** The MMU mode the code may assume (CTL_DMODE's value), or -1 to test it at each access. */
    private readonly dmode = -1,
  ) {
    blocks.forEach((b, i) => this.index.set(b.start, i));
  }

  private open(code: number, type: number, label = ''): void {
    this.w.op(code).byte(type);
    this.labels.push(label);
  }

  private close(): void {
    this.w.op(Op.end);
    this.labels.pop();
  }

  private br(label: 'exit' | 'dispatch' | 'self'): void {
    // exit and dispatch are the two outermost labels; the innermost self loop is the current block's
    const index = label === 'exit' ? 0 : label === 'dispatch' ? 1 : this.selfIndex;
    this.w.op(Op.br).u32(this.labels.length - 1 - index);
  }

  private getReg(r: number): void {
    if (r === 0) this.w.i64Const(0);
    else if (this.regsInMemory) this.w.i32Const(0).mem(Op.i64Load, 3, this.ctl + CTL_REGS + 8 * r);
    else {
      this.used |= 1 << r;
      this.w.get(regLocal(r));
    }
  }

  private setReg(r: number): void {
    if (this.regsInMemory) {
      // the register's local is free in this layout: it holds the value while the address goes under it
      this.w
        .set(regLocal(r))
        .i32Const(0)
        .get(regLocal(r))
        .mem(Op.i64Store, 3, this.ctl + CTL_REGS + 8 * r);
      return;
    }
    this.written |= 1 << r;
    this.w.set(regLocal(r));
  }

  /** npc = vb + offset (a page offset, possibly outside the page). */
  private setNpc(offset: number): void {
    this.w.get(L_VB).i64Const(offset).op(Op.i64Add).set(L_NPC);
  }

  private addN(k: number): void {
    if (k !== 0) this.w.get(L_N).i32Const(k).op(Op.i32Add).set(L_N);
  }

  /** Leaves after a trap at instruction k (status already 1). */
  private trapExit(k: number, off: number): void {
    this.setNpc(off);
    this.addN(k);
    this.br('exit');
  }

  /** Ends a block of `count` instructions by continuing at page offset `target`. */
  private goto(target: number, count: number): void {
    this.addN(count);
    const j = this.index.get(target);
    if (j === undefined) {
      if (this.chainPage >= 0 && target >= 0 && target < 4096) {
        // continue in the translated block there, if any (looked up at run time: it may come later)
        const key = this.chainPage + target;
        const at = this.ctl + CTL_CHAIN + ((key >> 1) & (CHAIN_ENTRIES - 1)) * 8;
        const w = this.w;
        w.i32Const(0).mem(Op.i32Load, 2, at).i32Const(key).op(Op.i32Eq);
        this.open(Op.if, I32);
        w.i32Const(0).mem(Op.i32Load, 2, at + 4);
        w.op(Op.else);
        w.i32Const(CHAIN_EXIT);
        this.close();
        w.set(L_NEXT);
      }
      this.setNpc(target);
      this.br('exit');
      return;
    }
    if (j > this.current) {
      // forward: straight to that block's code (its label encloses this one); no cycle without a
      // backward edge, so no budget check here
      const label = 2 + (this.blocks.length - 1 - j);
      this.w.op(Op.br).u32(this.labels.length - 1 - label);
      return;
    }
    this.w.get(L_N).get(P_BUDGET).op(Op.i32GeS);
    this.open(Op.if, VOID);
    this.setNpc(target);
    this.br('exit');
    this.close();
    if (j === this.current) {
      this.br('self');
      return;
    }
    this.w.i32Const(j).set(L_CUR);
    this.br('dispatch');
  }

  emit(): Uint8Array {
    const w = this.w;
    const m = this.blocks.length;
    this.open(Op.block, VOID, 'exit');
    this.open(Op.loop, VOID, 'dispatch');
    for (let i = m - 1; i >= 0; i--) this.open(Op.block, VOID, `b${i}`);
    w.get(L_CUR).op(Op.brTable).u32(m);
    for (let i = 0; i < m; i++) w.u32(i);
    w.u32(m - 1);
    for (let i = 0; i < m; i++) {
      this.close(); // end of block b_i: its code follows
      this.current = i;
      this.open(Op.loop, VOID, 'self'); // a block branching to itself loops here, without the dispatch
      this.selfIndex = this.labels.length - 1;
      this.emitBlock(this.blocks[i]!);
      w.op(Op.unreachable);
      this.close();
      w.op(Op.unreachable);
    }
    this.close(); // loop
    this.close(); // exit block
    // epilogue: write back, report
    for (let r = 1; r < 32; r++) {
      if (this.written & (1 << r))
        w.i32Const(0)
          .get(regLocal(r))
          .mem(Op.i64Store, 3, this.ctl + CTL_REGS + 8 * r);
    }
    w.i32Const(0)
      .get(L_NPC)
      .mem(Op.i64Store, 3, this.ctl + CTL_NPC);
    w.i32Const(0)
      .get(L_N)
      .mem(Op.i32Store, 2, this.ctl + CTL_RETIRED);
    if (this.chainPage >= 0) {
      // trap, a stop request (status 2, or a pending-value load that zeroed the budget), else the next block
      w.get(L_ST).i32Const(1).op(Op.i32Eq);
      this.open(Op.if, VOID);
      w.i32Const(CHAIN_TRAP).op(Op.return);
      this.close();
      w.get(L_ST).i32Const(2).op(Op.i32Eq).get(P_BUDGET).op(Op.i32Eqz).op(Op.i32Or);
      this.open(Op.if, VOID);
      w.i32Const(CHAIN_STOP).op(Op.return);
      this.close();
      w.get(L_NEXT).op(Op.end);
    } else w.get(L_ST).op(Op.end);
    const body = w.finish();
    // prologue: vb, the registers the region touches, the entry block
    const pro = new ByteWriter(512);
    pro
      .i32Const(0)
      .mem(Op.i64Load, 3, this.ctl + CTL_NPC)
      .i64Const(-4096)
      .op(Op.i64And)
      .set(L_VB);
    const live = this.used | this.written;
    for (let r = 1; r < 32; r++) {
      if (live & (1 << r))
        pro
          .i32Const(0)
          .mem(Op.i64Load, 3, this.ctl + CTL_REGS + 8 * r)
          .set(regLocal(r));
    }
    pro.get(P_ENTRY).set(L_CUR);
    if (this.chainPage >= 0) {
      pro.i32Const(CHAIN_EXIT).set(L_NEXT);
      if (this.tableIndex >= 0 && this.tableIndex < MAX_WARM_BLOCKS) {
        // count runs; at WARM_PROMOTE leave before running, asking for the hot tier
        const at = this.ctl + CTL_COUNTERS + this.tableIndex * 4;
        pro.i32Const(0).i32Const(0).mem(Op.i32Load, 2, at).i32Const(1).op(Op.i32Add).tee(L_OFF);
        pro.mem(Op.i32Store, 2, at);
        pro.get(L_OFF).i32Const(WARM_PROMOTE).op(Op.i32Eq);
        pro.op(Op.if).byte(VOID);
        pro
          .i32Const(0)
          .i32Const(0)
          .mem(Op.i32Store, 2, this.ctl + CTL_RETIRED);
        pro.i32Const(CHAIN_PROMOTE).op(Op.return);
        pro.op(Op.end);
      }
    }
    pro
      .i32Const(0)
      .mem(Op.i32Load, 2, this.ctl + CTL_DMODE)
      .set(L_DMODE);
    const out = new ByteWriter(pro.length + body.length);
    return out.bytes(pro.finish()).bytes(body).finish();
  }

  private emitBlock(b: RegionBlock): void {
    const n = b.insns.length;
    for (let k = 0; k < n; k++) {
      const insn = b.insns[k]!;
      if (k === n - 1 && b.terminated) {
        this.emitTerminator(insn, n);
        return;
      }
      this.emitInsn(insn, k);
    }
    this.goto(b.end, n);
  }

  private emitTerminator(insn: Insn, count: number): void {
    const w = this.w;
    const { ins, off, len } = insn;
    const rd = (ins >> 7) & 31;
    const rs1 = (ins >> 15) & 31;
    const rs2 = (ins >> 20) & 31;
    switch (ins & 0x7f) {
      case 0x6f:
        if (rd !== 0) {
          w.get(L_VB)
            .i64Const(off + len)
            .op(Op.i64Add);
          this.setReg(rd);
        }
        this.goto(off + jalTarget(ins), count);
        return;
      case 0x67:
        this.getReg(rs1);
        w.i64Const(ins >> 20)
          .op(Op.i64Add)
          .i64Const(-2)
          .op(Op.i64And)
          .set(L_NPC);
        if (rd !== 0) {
          w.get(L_VB)
            .i64Const(off + len)
            .op(Op.i64Add);
          this.setReg(rd);
        }
        this.addN(count);
        this.br('exit');
        return;
      default: {
        const f3 = (ins >> 12) & 7;
        this.getReg(rs1);
        this.getReg(rs2);
        w.op([Op.i64Eq, Op.i64Ne, 0, 0, Op.i64LtS, Op.i64GeS, Op.i64LtU, Op.i64GeU][f3]!);
        this.open(Op.if, VOID);
        this.goto(off + branchTarget(ins), count);
        w.op(Op.else);
        this.goto(off + len, count);
        this.close();
      }
    }
  }

  private emitInsn(insn: Insn, k: number): void {
    const w = this.w;
    const { ins, off } = insn;
    const rd = (ins >> 7) & 31;
    const rs1 = (ins >> 15) & 31;
    const rs2 = (ins >> 20) & 31;
    const f3 = (ins >> 12) & 7;
    const f7 = ins >>> 25;
    const imm = ins >> 20;
    switch (ins & 0x7f) {
      case 0x37:
        if (rd === 0) return;
        w.i64Const(ins & 0xfffff000);
        this.setReg(rd);
        return;
      case 0x17:
        if (rd === 0) return;
        w.get(L_VB)
          .i64Const(off + (ins & 0xfffff000))
          .op(Op.i64Add);
        this.setReg(rd);
        return;
      case 0x0f:
        return;
      case 0x13:
        if (rd === 0) return;
        this.getReg(rs1);
        switch (f3) {
          case 0:
            w.i64Const(imm).op(Op.i64Add);
            break;
          case 1:
            w.i64Const(imm & 63).op(Op.i64Shl);
            break;
          case 2:
            w.i64Const(imm).op(Op.i64LtS).op(Op.i64ExtendI32U);
            break;
          case 3:
            w.i64Const(imm).op(Op.i64LtU).op(Op.i64ExtendI32U);
            break;
          case 4:
            w.i64Const(imm).op(Op.i64Xor);
            break;
          case 5:
            w.i64Const(imm & 63).op(imm >>> 6 === 0x10 ? Op.i64ShrS : Op.i64ShrU);
            break;
          case 6:
            w.i64Const(imm).op(Op.i64Or);
            break;
          default:
            w.i64Const(imm).op(Op.i64And);
        }
        this.setReg(rd);
        return;
      case 0x1b:
        if (rd === 0) return;
        this.getReg(rs1);
        w.op(Op.i32WrapI64);
        if (f3 === 0) w.i32Const(imm).op(Op.i32Add);
        else if (f3 === 1) w.i32Const(imm & 31).op(Op.i32Shl);
        else w.i32Const(imm & 31).op(imm >>> 5 === 0x20 ? Op.i32ShrS : Op.i32ShrU);
        w.op(Op.i64ExtendI32S);
        this.setReg(rd);
        return;
      case 0x33:
        if (rd === 0) return;
        if (f7 === 1) this.emitMul(rs1, rs2, f3);
        else {
          this.getReg(rs1);
          this.getReg(rs2);
          switch (f3) {
            case 0:
              w.op(f7 === 0x20 ? Op.i64Sub : Op.i64Add);
              break;
            case 1:
              w.op(Op.i64Shl);
              break;
            case 2:
              w.op(Op.i64LtS).op(Op.i64ExtendI32U);
              break;
            case 3:
              w.op(Op.i64LtU).op(Op.i64ExtendI32U);
              break;
            case 4:
              w.op(Op.i64Xor);
              break;
            case 5:
              w.op(f7 === 0x20 ? Op.i64ShrS : Op.i64ShrU);
              break;
            case 6:
              w.op(Op.i64Or);
              break;
            default:
              w.op(Op.i64And);
          }
        }
        this.setReg(rd);
        return;
      case 0x3b:
        if (rd === 0) return;
        if (f7 === 1) this.emitMul32(rs1, rs2, f3);
        else {
          this.getReg(rs1);
          w.op(Op.i32WrapI64);
          this.getReg(rs2);
          w.op(Op.i32WrapI64);
          if (f3 === 0) w.op(f7 === 0x20 ? Op.i32Sub : Op.i32Add);
          else if (f3 === 1) w.op(Op.i32Shl);
          else w.op(f7 === 0x20 ? Op.i32ShrS : Op.i32ShrU);
          w.op(Op.i64ExtendI32S);
        }
        this.setReg(rd);
        return;
      case 0x03:
        this.emitLoad(rd, rs1, imm, f3, k, off);
        return;
      case 0x23:
        this.emitStore(rs1, rs2, ((ins >> 25) << 5) | ((ins >> 7) & 0x1f), f3, k, off, insn.len);
        return;
      default:
        throw new Error(`untranslatable instruction ${ins >>> 0}`);
    }
  }

  private emitMul(rs1: number, rs2: number, f3: number): void {
    const w = this.w;
    const a = () => this.getReg(rs1);
    const b = () => this.getReg(rs2);
    switch (f3) {
      case 0:
        a();
        b();
        w.op(Op.i64Mul);
        return;
      case 1: // MULH: mulhu - (a<0 ? b : 0) - (b<0 ? a : 0)
        a();
        b();
        w.call(F_MULHU);
        a();
        w.i64Const(63).op(Op.i64ShrS);
        b();
        w.op(Op.i64And).op(Op.i64Sub);
        b();
        w.i64Const(63).op(Op.i64ShrS);
        a();
        w.op(Op.i64And).op(Op.i64Sub);
        return;
      case 2: // MULHSU
        a();
        b();
        w.call(F_MULHU);
        a();
        w.i64Const(63).op(Op.i64ShrS);
        b();
        w.op(Op.i64And).op(Op.i64Sub);
        return;
      case 3:
        a();
        b();
        w.call(F_MULHU);
        return;
      case 4: // DIV: /0 -> -1; b = -1 -> -a (wrapping, so MIN / -1 = MIN without a wasm trap)
        b();
        w.tee(L_T2).op(Op.i64Eqz);
        this.open(Op.if, I64);
        w.i64Const(-1);
        w.op(Op.else);
        w.get(L_T2).i64Const(-1).op(Op.i64Eq);
        this.open(Op.if, I64);
        w.i64Const(0);
        a();
        w.op(Op.i64Sub);
        w.op(Op.else);
        a();
        w.get(L_T2).op(Op.i64DivS);
        this.close();
        this.close();
        return;
      case 5: // DIVU
        b();
        w.tee(L_T2).op(Op.i64Eqz);
        this.open(Op.if, I64);
        w.i64Const(-1);
        w.op(Op.else);
        a();
        w.get(L_T2).op(Op.i64DivU);
        this.close();
        return;
      case 6: // REM: /0 -> a; MIN % -1 = 0 (wasm's rem_s does not trap there)
        b();
        w.tee(L_T2).op(Op.i64Eqz);
        this.open(Op.if, I64);
        a();
        w.op(Op.else);
        a();
        w.get(L_T2).op(Op.i64RemS);
        this.close();
        return;
      default: // REMU
        b();
        w.tee(L_T2).op(Op.i64Eqz);
        this.open(Op.if, I64);
        a();
        w.op(Op.else);
        a();
        w.get(L_T2).op(Op.i64RemU);
        this.close();
    }
  }

  /** MULW/DIVW/DIVUW/REMW/REMUW: 32-bit operation, sign-extended result. */
  private emitMul32(rs1: number, rs2: number, f3: number): void {
    const w = this.w;
    const a = () => {
      this.getReg(rs1);
      w.op(Op.i32WrapI64);
    };
    const b = () => {
      this.getReg(rs2);
      w.op(Op.i32WrapI64);
    };
    if (f3 === 0) {
      a();
      b();
      w.op(Op.i32Mul).op(Op.i64ExtendI32S);
      return;
    }
    // b as i64 (sign-extended 32) in T2 for the zero test; the divide itself in i32
    b();
    w.op(Op.i64ExtendI32S).tee(L_T2).op(Op.i64Eqz);
    this.open(Op.if, I64);
    if (f3 === 4 || f3 === 5) w.i64Const(-1);
    else {
      a();
      w.op(Op.i64ExtendI32S);
    }
    w.op(Op.else);
    if (f3 === 4) {
      // DIVW: b === -1 -> -a (wrapping 32-bit), else a / b
      w.get(L_T2).i64Const(-1).op(Op.i64Eq);
      this.open(Op.if, I64);
      w.i32Const(0);
      a();
      w.op(Op.i32Sub).op(Op.i64ExtendI32S);
      w.op(Op.else);
      a();
      b();
      w.op(Op.i32DivS).op(Op.i64ExtendI32S);
      this.close();
    } else {
      a();
      b();
      w.op(f3 === 5 ? Op.i32DivU : f3 === 6 ? Op.i32RemS : Op.i32RemU).op(Op.i64ExtendI32S);
    }
    this.close();
  }

  /** addr = rs1 + imm into L_ADDR. */
  private address(rs1: number, imm: number): void {
    this.getReg(rs1);
    if (imm !== 0) this.w.i64Const(imm).op(Op.i64Add);
    this.w.set(L_ADDR);
  }

  /**
   * RAM offset of the access at L_ADDR into L_OFF (negative: take the slow path). Bare mode is inlined (the
   * mode cannot change inside a region: only CSR writes and traps change it, and both leave); paging calls
   * the TLB helper.
   */
  private ramOffset(size: number, write: boolean): void {
    const w = this.w;
    if (this.dmode === 1) {
      this.tlbOffset(size, write);
    } else if (this.dmode === 2) {
      w.i32Const(-1); // PMP in force: every access checks it in the slow path
    } else if (this.dmode === 0) {
      this.bareOffset(size, write);
    } else {
      w.get(L_DMODE);
      this.open(Op.if, I32);
      w.get(L_ADDR)
        .i32Const(size)
        .call(write ? F_WRX : F_RDX);
      w.op(Op.else);
      this.bareOffset(size, write);
      this.close();
    }
    w.tee(L_OFF).i32Const(0).op(Op.i32LtS);
  }

  /**
   * Paging: the RAM offset of L_ADDR through the TLB arrays (the same tag/phys entries the interpreter
   * fills), or -1 on a miss, a page-crossing access, outside RAM, or (writes) on a page holding code.
   */
  private tlbOffset(size: number, write: boolean): void {
    const w = this.w;
    const ctl = this.ctl;
    w.get(L_ADDR)
      .op(Op.i32WrapI64)
      .i32Const(4095)
      .op(Op.i32And)
      .i32Const(4096 - size)
      .op(Op.i32GtU);
    this.open(Op.if, I32);
    w.i32Const(-1);
    w.op(Op.else);
    w.get(L_ADDR).i64Const(12).op(Op.i64ShrS).tee(L_T1);
    w.op(Op.i32WrapI64).i32Const(1023).op(Op.i32And).i32Const(3).op(Op.i32Shl).set(L_OFF);
    w.get(L_OFF)
      .i32Const(0)
      .mem(Op.i32Load, 2, ctl + (write ? CTL_WRITE_TAG : CTL_READ_TAG))
      .op(Op.i32Add)
      .mem(Op.f64Load, 3, 0);
    w.get(L_T1).op(Op.f64ConvertI64S).op(Op.f64Ne);
    this.open(Op.if, I32);
    w.i32Const(-1);
    w.op(Op.else);
    w.get(L_OFF)
      .i32Const(0)
      .mem(Op.i32Load, 2, ctl + (write ? CTL_WRITE_PHYS : CTL_READ_PHYS))
      .op(Op.i32Add)
      .mem(Op.f64Load, 3, 0);
    w.op(Op.i64TruncF64U).get(L_ADDR).i64Const(4095).op(Op.i64And).op(Op.i64Add);
    w.i64Const(this.ramBase)
      .op(Op.i64Sub)
      .tee(L_T1)
      .i64Const(this.ramSize - size)
      .op(Op.i64GtU);
    this.open(Op.if, I32);
    w.i32Const(-1);
    w.op(Op.else);
    if (write) {
      w.get(L_T1)
        .op(Op.i32WrapI64)
        .i32Const(12)
        .op(Op.i32ShrU)
        .mem(Op.i32Load8U, 0, ctl + CTL_CODE_PAGES);
      this.open(Op.if, I32);
      w.i32Const(-1);
      w.op(Op.else);
      w.get(L_T1).op(Op.i32WrapI64);
      this.close();
    } else w.get(L_T1).op(Op.i32WrapI64);
    this.close();
    this.close();
    this.close();
  }

  /** Bare mode: the RAM offset of L_ADDR, or -1 outside RAM (or, for writes, on a page holding code). */
  private bareOffset(size: number, write: boolean): void {
    const w = this.w;
    w.get(L_ADDR)
      .i64Const(this.ramBase)
      .op(Op.i64Sub)
      .tee(L_T1)
      .i64Const(this.ramSize - size)
      .op(Op.i64GtU);
    this.open(Op.if, I32);
    w.i32Const(-1);
    w.op(Op.else);
    if (write) {
      // pages holding translated code take the slow path, which drops their translations; a misaligned
      // store may reach into the next page, so both ends are checked
      w.get(L_T1)
        .op(Op.i32WrapI64)
        .i32Const(12)
        .op(Op.i32ShrU)
        .mem(Op.i32Load8U, 0, this.ctl + CTL_CODE_PAGES);
      if (size > 1) {
        w.get(L_T1)
          .op(Op.i32WrapI64)
          .i32Const(size - 1)
          .op(Op.i32Add)
          .i32Const(12)
          .op(Op.i32ShrU)
          .mem(Op.i32Load8U, 0, this.ctl + CTL_CODE_PAGES)
          .op(Op.i32Or);
      }
      this.open(Op.if, I32);
      w.i32Const(-1);
      w.op(Op.else);
      w.get(L_T1).op(Op.i32WrapI64);
      this.close();
    } else w.get(L_T1).op(Op.i32WrapI64);
    this.close();
  }

  private addressHalves(): void {
    this.w.get(L_ADDR).op(Op.i32WrapI64).get(L_ADDR).i64Const(32).op(Op.i64ShrU).op(Op.i32WrapI64);
  }

  /**
   * After a slow-path call left its status on the stack: trap exit on 1; on 2 leave right after this
   * instruction (`next` = its length; 0 = at the next block boundary, for loads whose value is pending).
   */
  private checkStatus(k: number, off: number, next: number): void {
    const w = this.w;
    w.tee(L_ST);
    this.open(Op.if, VOID);
    w.get(L_ST).i32Const(1).op(Op.i32Eq);
    this.open(Op.if, VOID);
    this.trapExit(k, off);
    this.close();
    if (next === 0) w.i32Const(0).set(P_BUDGET);
    else {
      this.setNpc(off + next);
      this.addN(k + 1);
      this.br('exit');
    }
    this.close();
  }

  private emitLoad(rd: number, rs1: number, imm: number, f3: number, k: number, off: number): void {
    const w = this.w;
    const size = 1 << (f3 & 3);
    const op = [
      Op.i64Load8S,
      Op.i64Load16S,
      Op.i64Load32S,
      Op.i64Load,
      Op.i64Load8U,
      Op.i64Load16U,
      Op.i64Load32U,
    ][f3]!;
    this.address(rs1, imm);
    this.ramOffset(size, false);
    this.open(Op.if, I64);
    this.addressHalves();
    w.i32Const(size).call(F_LD);
    this.checkStatus(k, off, 0);
    w.i32Const(0).mem(op, 0, this.ctl + CTL_VALUE);
    w.op(Op.else);
    w.get(L_OFF).mem(op, 0, 0);
    this.close();
    if (rd === 0) w.op(Op.drop);
    else this.setReg(rd);
  }

  private emitStore(
    rs1: number,
    rs2: number,
    imm: number,
    f3: number,
    k: number,
    off: number,
    len: number,
  ): void {
    const w = this.w;
    const size = 1 << f3;
    this.address(rs1, imm);
    this.ramOffset(size, true);
    this.open(Op.if, VOID);
    this.addressHalves();
    w.i32Const(size);
    this.getReg(rs2);
    w.op(Op.i32WrapI64);
    this.getReg(rs2);
    w.i64Const(32).op(Op.i64ShrU).op(Op.i32WrapI64).call(F_ST);
    this.checkStatus(k, off, len);
    w.op(Op.else);
    w.get(L_OFF);
    this.getReg(rs2);
    w.mem([Op.i64Store8, Op.i64Store16, Op.i64Store32, Op.i64Store][f3]!, 0, 0);
    this.close();
  }
}

/** The address fast path shared by a module's regions: RAM offset, or -1 for the slow path. */
function xlateBody(ctl: number, ramBase: number, ramSize: number, write: boolean): Uint8Array {
  // params: 0 addr i64, 1 size i32; locals: 2 off64 i64, 3 vpn i64, 4 idx i32
  const w = new ByteWriter(256);
  const fail = () => w.op(Op.if).byte(VOID).i32Const(-1).op(Op.return).op(Op.end);
  const limit = () => w.i64Const(ramSize).get(1).op(Op.i64ExtendI32U).op(Op.i64Sub).op(Op.i64GtU);
  const codeCheck = () => {
    if (!write) return;
    w.get(2)
      .op(Op.i32WrapI64)
      .i32Const(12)
      .op(Op.i32ShrU)
      .mem(Op.i32Load8U, 0, ctl + CTL_CODE_PAGES);
    fail();
  };
  // bare mode
  w.i32Const(0)
    .mem(Op.i32Load, 2, ctl + CTL_DMODE)
    .op(Op.i32Eqz);
  w.op(Op.if).byte(VOID);
  w.get(0).i64Const(ramBase).op(Op.i64Sub).tee(2);
  limit();
  fail();
  codeCheck();
  w.get(2).op(Op.i32WrapI64).op(Op.return);
  w.op(Op.end);
  w.i32Const(0)
    .mem(Op.i32Load, 2, ctl + CTL_DMODE)
    .i32Const(1)
    .op(Op.i32Ne);
  fail();
  // paging: no page crossing, then the TLB
  w.get(0).op(Op.i32WrapI64).i32Const(4095).op(Op.i32And).i32Const(4096).get(1).op(Op.i32Sub).op(Op.i32GtU);
  fail();
  w.get(0).i64Const(12).op(Op.i64ShrS).tee(3).op(Op.i32WrapI64).i32Const(1023).op(Op.i32And).i32Const(3);
  w.op(Op.i32Shl).set(4);
  w.get(4)
    .i32Const(0)
    .mem(Op.i32Load, 2, ctl + (write ? CTL_WRITE_TAG : CTL_READ_TAG))
    .op(Op.i32Add)
    .mem(Op.f64Load, 3, 0);
  w.get(3).op(Op.f64ConvertI64S).op(Op.f64Ne);
  fail();
  w.get(4)
    .i32Const(0)
    .mem(Op.i32Load, 2, ctl + (write ? CTL_WRITE_PHYS : CTL_READ_PHYS))
    .op(Op.i32Add)
    .mem(Op.f64Load, 3, 0);
  w.op(Op.i64TruncF64U)
    .get(0)
    .i64Const(4095)
    .op(Op.i64And)
    .op(Op.i64Add)
    .i64Const(ramBase)
    .op(Op.i64Sub)
    .tee(2);
  limit();
  fail();
  codeCheck();
  w.get(2).op(Op.i32WrapI64).op(Op.end);
  return w.finish();
}

/** High 64 bits of the unsigned 128-bit product (params a, b; locals 2..9). */
function mulhuBody(): Uint8Array {
  const w = new ByteWriter(128);
  const M = 0xffffffff;
  w.get(0).i64Const(M).op(Op.i64And).set(2); // aL
  w.get(0).i64Const(32).op(Op.i64ShrU).set(3); // aH
  w.get(1).i64Const(M).op(Op.i64And).set(4); // bL
  w.get(1).i64Const(32).op(Op.i64ShrU).set(5); // bH
  w.get(2).get(4).op(Op.i64Mul).set(6); // ll
  w.get(2).get(5).op(Op.i64Mul).set(7); // lh
  w.get(3).get(4).op(Op.i64Mul).set(8); // hl
  // mid = (ll >> 32) + (lh & M) + (hl & M)
  w.get(6).i64Const(32).op(Op.i64ShrU).get(7).i64Const(M).op(Op.i64And).op(Op.i64Add);
  w.get(8).i64Const(M).op(Op.i64And).op(Op.i64Add).set(9);
  w.get(3).get(5).op(Op.i64Mul);
  w.get(7).i64Const(32).op(Op.i64ShrU).op(Op.i64Add);
  w.get(8).i64Const(32).op(Op.i64ShrU).op(Op.i64Add);
  w.get(9).i64Const(32).op(Op.i64ShrU).op(Op.i64Add);
  w.op(Op.end);
  return w.finish();
}

export interface RegionRequest {
  /** RAM byte offset of the page. */
  pageOff: number;
  /** Keep guest registers in memory rather than locals (see RegionEmitter). */
  regsInMemory?: boolean;
  /** MMU mode the region may assume (the hart runs it only in that mode); default: tested at run time. */
  dmode?: number;
  /** Whether code at a page offset has run (regions then leave out code that never did). */
  executed?: (offset: number) => boolean;
  /** Page offsets of hot block starts. */
  entries: number[];
}

/** A batch of regions translated and waiting for its module. */
interface RegionJob {
  requests: RegionRequest[];
  funcs: FuncDef[];
  made: { blocks: RegionBlock[]; func: number; req: number; count: number; bytes: Int32Array }[];
}

/** Compiles regions in batches: one WebAssembly module per batch. */
export class WasmTranslator {
  /** Modules compiled and instructions translated (for diagnostics and tests). */
  modules = 0;
  instructions = 0;
  compileMs = 0;

  constructor(
    private readonly memory: object,
    private readonly memoryPages: number,
    private readonly ctl: number,
    private readonly ramBase: number,
    private readonly ramSize: number,
    private readonly slow: WasmSlowPaths,
  ) {}

  private helpersBuilt: FuncDef[] | undefined;

  /** The functions every region module starts with (built on first use: a VM may never need regions). */
  private get helpers(): FuncDef[] {
    this.helpersBuilt ??= [
      {
        type: T_XLATE,
        locals: [
          [2, I64],
          [1, I32],
        ],
        body: xlateBody(this.ctl, this.ramBase, this.ramSize, false),
      },
      {
        type: T_XLATE,
        locals: [
          [2, I64],
          [1, I32],
        ],
        body: xlateBody(this.ctl, this.ramBase, this.ramSize, true),
      },
      { type: T_MUL, locals: [[8, I64]], body: mulhuBody() },
    ];
    return this.helpersBuilt;
  }

  /** Translates each requested page into a region (null where nothing there is translatable). */
  translate(ram16: Uint16Array, requests: RegionRequest[]): (WasmRegion | null)[] {
    const t0 = performance.now();
    const job = this.prepare(ram16, requests);
    if (job === null) return requests.map(() => null);
    const regions = this.finish(job, this.instantiate(job.funcs));
    this.compileMs += performance.now() - t0;
    return regions;
  }

  /** Discovers and emits the regions of a batch (the pages' contents are copied as they are now). */
  private prepare(ram16: Uint16Array, requests: RegionRequest[]): RegionJob | null {
    const funcs: FuncDef[] = [...this.helpers];
    const made: RegionJob['made'] = [];
    requests.forEach((req, i) => {
      const blocks = discoverRegion(ram16, req.pageOff, req.entries, req.executed);
      if (blocks.length === 0) return;
      const e = new RegionEmitter(
        this.ctl,
        blocks,
        this.ramBase,
        this.ramSize,
        req.regsInMemory === true,
        -1,
        -1,
        req.dmode ?? -1,
      );
      const body = e.emit();
      const name = `r${made.length}`;
      made.push({
        blocks,
        func: funcs.length,
        req: i,
        count: blocks.reduce((s, b) => s + b.insns.length, 0),
        bytes: new Int32Array(ram16.buffer, ram16.byteOffset + req.pageOff, 1024).slice(),
      });
      funcs.push({
        type: T_REGION,
        locals: [
          [36, I64],
          [6, I32],
        ],
        body,
        export: name,
      });
    });
    return made.length === 0 ? null : { requests, funcs, made };
  }

  /** The regions of a compiled batch. */
  private finish(job: RegionJob, instance: { exports: Record<string, unknown> }): (WasmRegion | null)[] {
    const { requests, made } = job;
    const out: (WasmRegion | null)[] = requests.map(() => null);
    this.modules++;
    made.forEach((m, i) => {
      const entries = new Int16Array(2048).fill(-1);
      m.blocks.forEach((b, j) => {
        entries[b.start >> 1] = j;
      });
      this.instructions += m.count;
      out[m.req] = {
        run: instance.exports[`r${i}`] as WasmRegion['run'],
        slot: -1,
        entries,
        instructions: m.count,
        page: requests[m.req]!.pageOff >>> 12,
        regsInMemory: requests[m.req]!.regsInMemory === true,
        dmode: requests[m.req]!.dmode ?? -1,
        bytes: m.bytes,
        entryList: [...requests[m.req]!.entries],
        calls: 0,
        retired: 0,
      };
    });
    return out;
  }

  /**
   * Translates single blocks, each into its own small function keeping registers in memory, all in one
   * module: the warm tier. Small functions matter with V8: its optimizing tier then recompiles only the
   * blocks that really get hot, and each quickly (one function per page region made it recompile whole
   * regions, costing seconds of CPU over a boot). Returns the function per item, null where nothing
   * translates.
   */
  translateBlocks(ram16: Uint16Array, items: { pageOff: number; start: number }[]): (WarmBlock | null)[] {
    const t0 = performance.now();
    const funcs: FuncDef[] = [...this.helpers];
    const made: { item: number; count: number; index: number }[] = [];
    items.forEach((item, i) => {
      // the shared table is bounded: once full, no more warm blocks until the next flush of all code
      if (this.nextIndex >= MAX_WARM_BLOCKS) return;
      const block = decodeBlock(ram16, item.pageOff, item.start);
      if (block.insns.length === 0) return;
      const index = this.nextIndex++;
      const e = new RegionEmitter(this.ctl, [block], this.ramBase, this.ramSize, true, item.pageOff, index);
      funcs.push({
        type: T_REGION,
        locals: [
          [36, I64],
          [6, I32],
        ],
        body: e.emit(),
        export: `b${made.length}`,
      });
      made.push({ item: i, count: block.insns.length, index });
    });
    const out: (WarmBlock | null)[] = items.map(() => null);
    if (made.length === 0) return out;
    const instance = this.instantiate(funcs, true);
    this.modules++;
    const table = this.table();
    const need = made[made.length - 1]!.index + 1;
    if (table.length < need)
      table.grow(Math.min(Math.max(need - table.length, 1024), MAX_WARM_BLOCKS - table.length));
    made.forEach((m, i) => {
      this.instructions += m.count;
      table.set(m.index, instance.exports[`b${i}`]);
      out[m.item] = { index: m.index, count: m.count };
    });
    this.compileMs += performance.now() - t0;
    return out;
  }

  private regionTable: WasmTable | undefined;
  private enterFn: ((slot: number, entry: number, budget: number) => number) | undefined;

  /**
   * Puts a region in slot `slot` of the region table (the caller keeps one live region per slot: its RAM
   * page), to be run by enter(). JavaScript calling many different WebAssembly functions, each a few hundred
   * times, goes through V8's generic (slow) JS-to-wasm wrapper; one function called often gets a compiled one.
   */
  placeRegion(region: WasmRegion, slot: number): void {
    this.regionTable ??= new WA.Table({ initial: 1024, element: 'anyfunc' });
    const table = this.regionTable;
    if (slot >= table.length) table.grow(Math.max(slot + 1 - table.length, Math.min(table.length, 1 << 16)));
    table.set(slot, region.run);
    region.slot = slot;
  }

  /** Runs the region in table slot `slot` from block `entry` (as its run function would). */
  enter(slot: number, entry: number, budget: number): number {
    if (this.enterFn === undefined) {
      // params: 0 slot, 1 entry, 2 budget
      const w = new ByteWriter(32);
      w.get(1).get(2).get(0).op(Op.callIndirect).u32(T_REGION).u32(0);
      w.op(Op.end);
      const instance = this.instance(
        new WA.Module(
          this.encode([...this.helpers, { type: T_LD, locals: [], body: w.finish(), export: 'enter' }], true),
        ),
        true,
        this.regionTable,
      );
      this.enterFn = instance.exports.enter as (slot: number, entry: number, budget: number) => number;
    }
    return this.enterFn(slot, entry, budget);
  }

  private interpFn: ((fetchBase: number, budget: number) => number) | undefined;

  /**
   * Runs the WebAssembly interpreter (wasm-interp.ts) from the pc in the CPU area, in the fetch page at RAM
   * offset `fetchBase`, for at most `budget` instructions; returns an INTERP_ status.
   */
  interpret(fetchBase: number, budget: number): number {
    if (this.interpFn === undefined) {
      const body = interpreterBody({
        regs: this.ctl + CTL_REGS,
        value: this.ctl + CTL_VALUE,
        npc: this.ctl + CTL_NPC,
        retired: this.ctl + CTL_RETIRED,
        heatLimit: this.ctl + CTL_HEAT_LIMIT,
        fetchMode: this.ctl + CTL_FETCH_MODE,
        execTag: this.ctl + CTL_EXEC_TAG,
        execPhys: this.ctl + CTL_EXEC_PHYS,
        fetchBase: this.ctl + CTL_FETCH_BASE,
        dataMode: this.ctl + CTL_DMODE,
        resvValid: this.ctl + CTL_RESV_VALID,
        resvAddr: this.ctl + CTL_RESV_ADDR,
        mstatus: this.ctl + CTL_MSTATUS,
        priv: this.ctl + CTL_PRIV,
        walkData: this.ctl + CTL_WALK_DATA,
        walkFetch: this.ctl + CTL_WALK_FETCH,
        satpRoot: this.ctl + CTL_SATP_ROOT,
        dataPriv: this.ctl + CTL_DATA_PRIV,
        irq: this.ctl + CTL_IRQ,
        readTag: this.ctl + CTL_READ_TAG,
        readPhys: this.ctl + CTL_READ_PHYS,
        writeTag: this.ctl + CTL_WRITE_TAG,
        writePhys: this.ctl + CTL_WRITE_PHYS,
        ramBase: this.ramBase,
        ramSize: this.ramSize,
        compressed: this.ctl + CTL_COMPRESSED,
        heat: this.ctl + CTL_HEAT,
        entryMap: this.ctl + CTL_ENTRY_MAP,
        codePages: this.ctl + CTL_CODE_PAGES,
      });
      // its module: the slow-path imports, MULHU's helper (function 2), the loop (3), RVC expansion (4)
      const instance = this.instantiate([
        { type: T_MUL, locals: [[8, I64]], body: mulhuBody() },
        { type: T_REGION, locals: INTERP_LOCALS, body, export: 'interp' },
        { type: T_EXPAND, locals: RVC_LOCALS, body: rvcExpandBody(), export: 'expand' },
      ]);
      this.interpFn = instance.exports.interp as (fetchBase: number, budget: number) => number;
      this.expandFn = instance.exports.expand as (parcel: number) => number;
    }
    return this.interpFn(fetchBase, budget);
  }

  private expandFn: ((parcel: number) => number) | undefined;

  /** The WebAssembly interpreter's expansion of a compressed parcel (tests compare it with compressed.ts). */
  expandCompressed(parcel: number): number {
    if (this.expandFn === undefined) this.interpret(0, 0);
    return this.expandFn!(parcel);
  }

  /** Runs chained warm blocks from table index `first`: returns CHAIN_EXIT, CHAIN_TRAP, CHAIN_STOP or PROMOTE. */
  dispatch(first: number, budget: number): number {
    return this.dispatcher()(first, budget);
  }

  private sharedTable: WasmTable | undefined;
  private dispatchFn: ((first: number, budget: number) => number) | undefined;
  private nextIndex = 0;

  /** Forgets every warm block (their table slots are reused). */
  resetBlocks(): void {
    this.nextIndex = 0;
  }

  private table(): WasmTable {
    this.sharedTable ??= new WA.Table({ initial: 1024, element: 'anyfunc' });
    return this.sharedTable;
  }

  /**
   * The dispatcher: calls block functions through the shared table while each names its successor,
   * summing retired instructions into the CPU area, until one leaves or the budget is spent.
   */
  private dispatcher(): (first: number, budget: number) => number {
    if (this.dispatchFn !== undefined) return this.dispatchFn;
    // params: 0 cur, 1 budget; locals: 2 total, 3 r
    const w = new ByteWriter(128);
    const retired = this.ctl + CTL_RETIRED;
    w.op(Op.loop).byte(VOID);
    w.i32Const(0).get(1).get(2).op(Op.i32Sub).get(0);
    w.op(Op.callIndirect).u32(T_REGION).u32(0).set(3);
    w.get(2).i32Const(0).mem(Op.i32Load, 2, retired).op(Op.i32Add).set(2);
    w.get(3).i32Const(0).op(Op.i32LtS);
    w.op(Op.if).byte(VOID);
    w.i32Const(0).get(2).mem(Op.i32Store, 2, retired).get(3).op(Op.return);
    w.op(Op.end);
    w.get(2).get(1).op(Op.i32GeS);
    w.op(Op.if).byte(VOID);
    w.i32Const(0).get(2).mem(Op.i32Store, 2, retired).i32Const(CHAIN_EXIT).op(Op.return);
    w.op(Op.end);
    w.get(3).set(0).op(Op.br).u32(0);
    w.op(Op.end);
    w.op(Op.unreachable).op(Op.end);
    const instance = this.instantiate(
      [...this.helpers, { type: T_REGION, locals: [[2, I32]], body: w.finish(), export: 'dispatch' }],
      true,
    );
    this.dispatchFn = instance.exports.dispatch as (first: number, budget: number) => number;
    return this.dispatchFn;
  }

  private instantiate(funcs: FuncDef[], withTable = false): { exports: Record<string, unknown> } {
    return this.instance(new WA.Module(this.encode(funcs, withTable)), withTable);
  }

  private encode(funcs: FuncDef[], withTable: boolean): Uint8Array {
    return encodeModule({
      types: [
        { params: [I32, I32, I32], results: [I32] },
        { params: [I32, I32, I32, I32, I32], results: [I32] },
        { params: [I64, I32], results: [I32] },
        { params: [I64, I64], results: [I64] },
        { params: [I32, I32], results: [I32] },
        { params: [I32], results: [I32] },
      ],
      memoryPages: this.memoryPages,
      imports: [
        { name: 'ld', type: T_LD },
        { name: 'st', type: T_ST },
      ],
      funcs,
      table: withTable,
    });
  }

  private instance(
    module: object,
    withTable: boolean,
    table: WasmTable | undefined = withTable ? this.table() : undefined,
  ): { exports: Record<string, unknown> } {
    return new WA.Instance(module, {
      m: table !== undefined ? { mem: this.memory, tab: table } : { mem: this.memory },
      f: this.bridge(),
    });
  }

  private bridgeExports: Record<string, unknown> | undefined;

  /**
   * The slow paths as WebAssembly functions of one small instance that calls the JavaScript ones: modules
   * importing them get direct WebAssembly calls, where importing JavaScript functions made V8 compile call
   * wrappers for every module it instantiated (most of the cost of instantiating a region).
   */
  private bridge(): Record<string, unknown> {
    if (this.bridgeExports !== undefined) return this.bridgeExports;
    const slow = this.slow;
    const forward = (params: number, callee: number) => {
      const w = new ByteWriter(32);
      for (let i = 0; i < params; i++) w.get(i);
      w.op(Op.call).u32(callee).op(Op.end);
      return w.finish();
    };
    const module = new WA.Module(
      this.encode(
        [
          { type: T_LD, locals: [], body: forward(3, 0), export: 'ld' },
          { type: T_ST, locals: [], body: forward(5, 1), export: 'st' },
        ],
        false,
      ),
    );
    this.bridgeExports = new WA.Instance(module, {
      m: { mem: this.memory },
      f: {
        ld: (lo: number, hi: number, size: number) => slow.load(lo, hi, size),
        st: (lo: number, hi: number, size: number, vLo: number, vHi: number) =>
          slow.store(lo, hi, size, vLo, vHi),
      },
    }).exports;
    return this.bridgeExports;
  }
}

/** A warm-tier block: its index in the shared function table and its instruction count. */
export interface WarmBlock {
  index: number;
  count: number;
}
