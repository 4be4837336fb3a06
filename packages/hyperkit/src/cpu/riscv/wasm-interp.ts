import { ByteWriter, I32, I64, Op, VOID } from './wasm-encoder.js';

/**
 * The interpreter's inner loop as one WebAssembly function, built once per VM.
 *
 * In a fresh process V8 runs the JavaScript interpreter (hart.ts `interpret`) in its bytecode interpreter and
 * baseline tiers for the first hundreds of milliseconds, and deoptimises it again whenever the guest reaches
 * a path it had not seen: the Linux boot's first 300 k instructions ran at ~7 MIPS. WebAssembly is compiled
 * before it runs (V8's baseline compiler takes about a millisecond for this function), so the commonest
 * instructions run at compiled speed from the first one.
 *
 * It runs from the pc: RV64IM and A (AMOs; LR/SC with the reservation in the CPU area), loads and stores
 * (the data TLB inline, Sv39/Sv48 page walks on a miss, a last-page cache), LUI/AUIPC, branches and jumps
 * (moving to other pages through the exec TLB, walking on a miss), FENCE, sstatus reads and SIE changes in
 * S-mode while no S-level interrupt is pending, and compressed parcels (expanded by wasm-rvc.ts into a
 * table on first use). It leaves to the hart for anything else: an instruction it does not run (other CSRs
 * and SYSTEM, floating point, FENCE.I, illegal ones), a fault, a slow-path access with side effects, a page
 * change or walk it cannot do (PMP, a PTE outside RAM), a block start that has grown hot (the hart then
 * compiles its region), a block start the entry map hands to a region, or the budget. Guest registers stay
 * in the register file; the retired count and the next pc go to the CPU area as for regions.
 */

/** Results of the interpreter function. */
export const INTERP_BLOCK = 0; // at a block start (another page, translated code, the budget)
export const INTERP_TRAP = 1; // the access at the pc trapped
export const INTERP_LEAVE = 2; // a slow-path access had side effects: stopped after it
export const INTERP_UNHANDLED = 3; // the instruction at the pc is the hart's
export const INTERP_HOT = 4; // the block start at the pc reached the heat limit

/** Word indices of the interrupt CSRs the hart keeps in the CPU area (InterpLayout.irq). */
export const IRQ_MIDELEG = 0;
export const IRQ_MIE = 1;
export const IRQ_MIP_HW = 2;
export const IRQ_MIP_SW = 3;

/** Heat table: direct-mapped (RAM offset of a block start, visits), HEAT_ENTRIES pairs of i32. */
export const HEAT_ENTRIES = 65536;

/**
 * Entry maps of pages holding regions, direct-mapped by RAM page: per slot an i32 key (page + 1, 0 empty) and
 * a bitmap of the page's 2048 halfword slots where the hart wants block starts (region entries). On a page
 * holding translated code without a map (JavaScript blocks, warm blocks, a colliding page) every block
 * start leaves. A stale map only costs speed: the loop reads guest memory itself, so it never runs stale code.
 */
export const ENTRY_MAP_SLOTS = 1024;
export const ENTRY_MAP_SLOT_BYTES = 4 + 256;

/** Absolute addresses (in the WebAssembly memory) of what the loop uses in the CPU area. */
export interface InterpLayout {
  regs: number;
  value: number;
  npc: number;
  retired: number;
  heatLimit: number;
  /** i32: 0 bare fetches from RAM, 1 through the exec TLB (pointers below), 2 every page change is the hart's. */
  fetchMode: number;
  execTag: number;
  execPhys: number;
  /** i32 out: RAM offset of the page the pc is in at exit, -1 when the loop did not translate it. */
  fetchBase: number;
  /** i32: 0 bare data accesses, 1 through the data TLB (pointers below), 2 every access is the hart's. */
  dataMode: number;
  /** The LR reservation: i32 valid, i64 address. */
  resvValid: number;
  resvAddr: number;
  /** mstatus's low word and the privilege level (i32 each). */
  mstatus: number;
  priv: number;
  /**
   * Page walks the loop may do itself (i32: the number of levels, 3 or 4; 0 when the hart must walk: no
   * paging, or PMP in force), for data accesses and fetches; the root table's physical address (i64); the
   * privilege data accesses are checked at (i32, MPRV).
   */
  walkData: number;
  walkFetch: number;
  satpRoot: number;
  dataPriv: number;
  /** mideleg, mie, mip (device bits), mip (software bits): i32 each. */
  irq: number;
  readTag: number;
  readPhys: number;
  writeTag: number;
  writePhys: number;
  ramBase: number;
  ramSize: number;
  compressed: number;
  heat: number;
  entryMap: number;
  codePages: number;
}

// function indices in the module (imports first, then the translator's helpers)
const F_LD = 0;
const F_ST = 1;
const F_MULHU = 2; // the module's first function (the translator's mulhuBody)
const F_EXPAND = 4; // after the loop itself: wasm-rvc.ts's expander

// params
const P_FB = 0; // RAM offset of the fetch page
const P_BUDGET = 1;
// i64 locals
const L_PC = 2;
const L_A = 3;
const L_B = 4;
const L_ADDR = 5;
const L_T = 6; // branch target, or scratch
const L_V = 7; // value for rd
const L_WT = 8; // page walk: table, then the page's physical address
const L_WP = 9; // page walk: the PTE
// i32 locals
const L_N = 10;
const L_INS = 11;
const L_LEN = 12;
const L_RD = 13;
const L_F3 = 14;
const L_OFF = 15;
const L_ST = 16;
const L_K = 17;
const L_IMM = 18;
const L_SIZE = 19;
const L_WL = 20; // page walk: level
const L_WO = 21; // page walk: RAM offset of the PTE
const L_WQ = 22; // page walk: the privilege checked
// the page of the last translated read and write under paging (its VPN, i64; its RAM offset, i32): most
// accesses follow one to the same page, and then skip the TLB (nothing changes it while the loop runs)
const L_RVPN = 23;
const L_WVPN = 24;
const L_RPAGE = 25;
const L_WPAGE = 26;

/** Locals after the two i32 parameters. */
export const INTERP_LOCALS: [number, number][] = [
  [8, I64],
  [13, I32],
  [2, I64],
  [2, I32],
];
/** A VPN no address has (addresses' VPNs are 52-bit). */
const NO_VPN = 0x7fff_ffff_ffff_ffffn;

/** Opcode groups ((ins & 0x7f) >> 2) the loop runs; the rest leave as unhandled. */
const G_LOAD = 0;
const G_MISC_MEM = 3;
const G_OP_IMM = 4;
const G_AUIPC = 5;
const G_OP_IMM_32 = 6;
const G_AMO = 11;
const G_STORE = 8;
const G_OP = 12;
const G_LUI = 13;
const G_OP_32 = 14;
const G_BRANCH = 24;
const G_JALR = 25;
const G_JAL = 27;
const G_SYSTEM = 28;

const CSR_SSTATUS = 0x100;
const SSTATUS_SIE = 1 << 1;
/** sstatus's bits of mstatus (SIE, SPIE, SPP, FS, SUM, MXR), and FS alone. */
const SSTATUS_MASK = (1 << 1) | (1 << 5) | (1 << 8) | (3 << 13) | (1 << 18) | (1 << 19);
const MSTATUS_FS = 3 << 13;
const PRIV_S = 1;

type Label = 'exit' | 'next' | 'bstart' | 'advance' | 'write' | string;

class InterpEmitter {
  readonly w = new ByteWriter(8192);
  private labels: Label[] = [];

  constructor(private readonly l: InterpLayout) {}

  private open(code: number, type: number, label: Label = ''): void {
    this.w.op(code).byte(type);
    this.labels.push(label);
  }

  private close(): void {
    this.w.op(Op.end);
    this.labels.pop();
  }

  private depth(label: Label): number {
    const i = this.labels.lastIndexOf(label);
    if (i < 0) throw new Error(`no label ${label}`);
    return this.labels.length - 1 - i;
  }

  private br(label: Label): void {
    this.w.op(Op.br).u32(this.depth(label));
  }

  /** Leaves with status `st` (pc and count as they are). */
  private exit(st: number): void {
    this.w.i32Const(st).set(L_ST);
    this.br('exit');
  }

  /** Leaves with status `st` when the i32 on the stack is non-zero. */
  private exitIf(st: number): void {
    this.open(Op.if, VOID);
    this.exit(st);
    this.close();
  }

  /** Pushes x[reg] where reg is an i32 register number (pushed by `index`). */
  private loadReg(index: () => void): void {
    index();
    this.w.i32Const(3).op(Op.i32Shl).mem(Op.i64Load, 3, this.l.regs);
  }

  /** x[rd] = value (pushed by `value`), keeping x0 zero. */
  private writeRd(value: () => void): void {
    const w = this.w;
    w.get(L_RD).i32Const(3).op(Op.i32Shl);
    value();
    w.mem(Op.i64Store, 3, this.l.regs);
    w.i32Const(0).i64Const(0).mem(Op.i64Store, 3, this.l.regs);
  }

  /** Field (ins >> shift) & mask as i32. */
  private field(shift: number, mask: number): void {
    this.w.get(L_INS).i32Const(shift).op(Op.i32ShrU).i32Const(mask).op(Op.i32And);
  }

  emit(): Uint8Array {
    const w = this.w;
    const l = this.l;
    this.open(Op.block, VOID, 'exit');
    this.open(Op.loop, VOID, 'next');
    // the budget
    w.get(L_N).get(P_BUDGET).op(Op.i32GeS);
    this.exitIf(INTERP_BLOCK);
    w.i32Const(0).set(L_ST);
    // fetch: page offset in K
    w.get(L_PC).op(Op.i32WrapI64).i32Const(4095).op(Op.i32And).set(L_K);
    w.get(P_FB).get(L_K).op(Op.i32Add).mem(Op.i32Load16U, 1, 0).set(L_INS);
    w.get(L_INS).i32Const(3).op(Op.i32And).i32Const(3).op(Op.i32Ne);
    this.open(Op.if, VOID);
    // compressed: the expansion table, filled here on a parcel's first use (0 after that: illegal, the hart
    // raises it)
    w.get(L_INS).i32Const(2).op(Op.i32Shl).mem(Op.i32Load, 2, l.compressed).tee(L_K).op(Op.i32Eqz);
    this.open(Op.if, VOID);
    w.get(L_INS).i32Const(2).op(Op.i32Shl);
    w.get(L_INS).call(F_EXPAND).tee(L_K);
    w.mem(Op.i32Store, 2, l.compressed);
    w.get(L_K).op(Op.i32Eqz);
    this.exitIf(INTERP_UNHANDLED);
    this.close();
    w.get(L_K).set(L_INS);
    w.i32Const(2).set(L_LEN);
    w.op(Op.else);
    w.get(L_K).i32Const(4094).op(Op.i32Eq);
    this.open(Op.if, VOID);
    // across the page end: its upper half from the next page's first halfword
    w.get(L_PC).i64Const(2).op(Op.i64Add).set(L_ADDR);
    this.translateFetch(() => this.exit(INTERP_UNHANDLED));
    w.get(L_INS).get(L_OFF).mem(Op.i32Load16U, 1, 0).i32Const(16).op(Op.i32Shl).op(Op.i32Or).set(L_INS);
    w.op(Op.else);
    w.get(P_FB).get(L_K).op(Op.i32Add).mem(Op.i32Load, 1, 0).set(L_INS);
    this.close();
    w.i32Const(4).set(L_LEN);
    this.close();
    // decode what every handler uses
    this.field(7, 31);
    w.set(L_RD);
    this.field(12, 7);
    w.set(L_F3);
    this.loadReg(() => this.field(15, 31));
    w.set(L_A);
    w.get(L_INS).i32Const(20).op(Op.i32ShrS).set(L_IMM);

    this.open(Op.block, VOID, 'bstart');
    this.open(Op.block, VOID, 'advance');
    this.open(Op.block, VOID, 'write');
    const handlers: [number, () => void][] = [
      [G_LOAD, () => this.load()],
      [G_MISC_MEM, () => this.fence()],
      [G_OP_IMM, () => this.opImm()],
      [G_AUIPC, () => this.upper(true)],
      [G_OP_IMM_32, () => this.opImm32()],
      [G_STORE, () => this.store()],
      [G_AMO, () => this.amo()],
      [G_OP, () => this.registerOp(false)],
      [G_LUI, () => this.upper(false)],
      [G_OP_32, () => this.registerOp(true)],
      [G_BRANCH, () => this.branch()],
      [G_JALR, () => this.jump(true)],
      [G_JAL, () => this.jump(false)],
      [G_SYSTEM, () => this.system()],
    ];
    // blocks: unhandled innermost (index 0), then each handler
    const count = handlers.length + 1;
    for (let i = count - 1; i >= 0; i--) this.open(Op.block, VOID, `h${i}`);
    w.get(L_INS).i32Const(2).op(Op.i32ShrU).i32Const(31).op(Op.i32And);
    w.op(Op.brTable).u32(32);
    for (let g = 0; g < 32; g++) {
      const h = handlers.findIndex(([group]) => group === g);
      w.u32(h < 0 ? 0 : h + 1);
    }
    w.u32(0);
    this.close(); // h0: unhandled
    this.exit(INTERP_UNHANDLED);
    for (let i = 0; i < handlers.length; i++) {
      this.close();
      handlers[i]![1]();
    }
    this.close(); // write: x[rd] = V
    this.writeRd(() => w.get(L_V));
    this.close(); // advance
    w.get(L_PC).get(L_LEN).op(Op.i64ExtendI32U).op(Op.i64Add).set(L_PC);
    w.get(L_N).i32Const(1).op(Op.i32Add).set(L_N);
    // a slow-path access asked to leave: after this instruction (maybe in the next page: the hart translates)
    w.get(L_ST);
    this.open(Op.if, VOID);
    w.i32Const(-1).set(P_FB);
    this.br('exit');
    this.close();
    // into the next page: a block start there
    w.get(L_PC).op(Op.i32WrapI64).i32Const(4095).op(Op.i32And).get(L_LEN).op(Op.i32LtU);
    this.open(Op.if, VOID);
    this.fetchPage();
    this.enterBlock();
    this.close();
    this.br('next');
    this.close(); // bstart: a control transfer to L_T retired
    this.blockStart();
    this.close(); // loop
    this.close(); // exit
    w.i32Const(0).get(L_PC).mem(Op.i64Store, 3, l.npc);
    w.i32Const(0).get(L_N).mem(Op.i32Store, 2, l.retired);
    w.i32Const(0).get(P_FB).mem(Op.i32Store, 2, l.fetchBase);
    w.get(L_ST).op(Op.end);
    const body = w.finish();
    const pro = new ByteWriter(32);
    pro.i32Const(0).mem(Op.i64Load, 3, l.npc).set(L_PC);
    pro.byte(Op.i64Const).s64(NO_VPN).set(L_RVPN);
    pro.byte(Op.i64Const).s64(NO_VPN).set(L_WVPN);
    return new ByteWriter(pro.length + body.length).bytes(pro.finish()).bytes(body).finish();
  }

  /** After a branch or jump retired with target L_T: stay in the page unless the hart must look. */
  private blockStart(): void {
    const w = this.w;
    const l = this.l;
    w.get(L_N).i32Const(1).op(Op.i32Add).set(L_N);
    w.get(L_T).get(L_PC).op(Op.i64Xor).i64Const(12).op(Op.i64ShrU).op(Op.i64Eqz).op(Op.i32Eqz);
    w.get(L_T).set(L_PC);
    this.open(Op.if, VOID);
    this.fetchPage();
    this.close();
    this.enterBlock();
  }

  /**
   * The pc moved to another page: its RAM offset into P_FB from the exec TLB (or bare RAM), else leave for
   * the hart (a miss, a fault, PMP) with the fetch base marked unknown.
   */
  private fetchPage(): void {
    this.w.get(L_PC).set(L_ADDR);
    this.translateFetch(() => {
      this.w.i32Const(-1).set(P_FB);
      this.exit(INTERP_BLOCK);
    });
    this.w.get(L_OFF).set(P_FB);
  }

  /**
   * The RAM offset of the page holding the instruction address in L_ADDR into L_OFF, from the exec TLB (or
   * bare RAM); `fail` (which must leave) where the hart must translate: a miss, a fault, PMP.
   */
  private translateFetch(fail: () => void): void {
    const w = this.w;
    const l = this.l;
    w.i32Const(0).mem(Op.i32Load, 2, l.fetchMode).tee(L_K).op(Op.i32Eqz);
    this.open(Op.if, VOID);
    // bare: a physical address in RAM
    w.get(L_ADDR).i64Const(32).op(Op.i64ShrU).op(Op.i64Eqz).op(Op.i32Eqz);
    this.open(Op.if, VOID);
    fail();
    this.close();
    w.get(L_ADDR).i64Const(l.ramBase).op(Op.i64Sub).tee(L_ADDR).i64Const(l.ramSize).op(Op.i64GeU);
    this.open(Op.if, VOID);
    fail();
    this.close();
    w.get(L_ADDR).op(Op.i32WrapI64).i32Const(-4096).op(Op.i32And).set(L_OFF);
    w.op(Op.else);
    w.get(L_K).i32Const(1).op(Op.i32Ne);
    this.open(Op.if, VOID);
    fail();
    this.close();
    // the exec TLB: tag = address >> 12 (as the hart keeps it, a double), phys = the page's physical address
    w.get(L_ADDR).i64Const(12).op(Op.i64ShrS).tee(L_ADDR);
    w.op(Op.i32WrapI64).i32Const(1023).op(Op.i32And).i32Const(3).op(Op.i32Shl).set(L_OFF);
    w.get(L_OFF).i32Const(0).mem(Op.i32Load, 2, l.execTag).op(Op.i32Add).mem(Op.f64Load, 3, 0);
    w.get(L_ADDR).op(Op.f64ConvertI64S).op(Op.f64Ne);
    this.open(Op.if, VOID);
    // a miss: walk here (the walk wants the address and the entry's index: K, and ADDR restored)
    w.get(L_OFF).set(L_K);
    w.get(L_ADDR).i64Const(12).op(Op.i64Shl).set(L_ADDR);
    this.walk('exec', fail);
    w.get(L_K).set(L_OFF);
    w.get(L_ADDR).i64Const(12).op(Op.i64ShrS).set(L_ADDR);
    this.close();
    w.get(L_OFF).i32Const(0).mem(Op.i32Load, 2, l.execPhys).op(Op.i32Add).mem(Op.f64Load, 3, 0);
    w.op(Op.i64TruncF64U).i64Const(l.ramBase).op(Op.i64Sub).tee(L_ADDR).i64Const(l.ramSize).op(Op.i64GeU);
    this.open(Op.if, VOID);
    fail();
    this.close();
    w.get(L_ADDR).op(Op.i32WrapI64).set(L_OFF);
    this.close();
  }

  /** At a block start in the fetch page: leave if the hart has translated code there, count heat. */
  private enterBlock(): void {
    const w = this.w;
    const l = this.l;
    // translated code on this page: leave where the page's entry map says (or no map covers the page)
    w.get(P_FB).i32Const(12).op(Op.i32ShrU).tee(L_K).mem(Op.i32Load8U, 0, l.codePages);
    this.open(Op.if, VOID);
    w.get(L_K)
      .i32Const(ENTRY_MAP_SLOTS - 1)
      .op(Op.i32And)
      .i32Const(ENTRY_MAP_SLOT_BYTES)
      .op(Op.i32Mul)
      .tee(L_OFF)
      .mem(Op.i32Load, 2, l.entryMap)
      .get(L_K)
      .i32Const(1)
      .op(Op.i32Add)
      .op(Op.i32Ne);
    this.exitIf(INTERP_BLOCK);
    // bit (pc & 4095) >> 1 of the map
    w.get(L_PC).op(Op.i32WrapI64).i32Const(4095).op(Op.i32And).i32Const(1).op(Op.i32ShrU).set(L_K);
    w.get(L_OFF)
      .get(L_K)
      .i32Const(3)
      .op(Op.i32ShrU)
      .op(Op.i32Add)
      .mem(Op.i32Load8U, 0, l.entryMap + 4);
    w.get(L_K).i32Const(7).op(Op.i32And).op(Op.i32ShrU).i32Const(1).op(Op.i32And);
    this.exitIf(INTERP_BLOCK);
    this.close();
    // heat: K = RAM offset of the block start, OFF = its entry's address
    w.get(P_FB).get(L_PC).op(Op.i32WrapI64).i32Const(4095).op(Op.i32And).op(Op.i32Add).set(L_K);
    w.get(L_K)
      .i32Const(1)
      .op(Op.i32ShrU)
      .i32Const(HEAT_ENTRIES - 1)
      .op(Op.i32And)
      .i32Const(3)
      .op(Op.i32Shl)
      .set(L_OFF);
    // visits: one more if the entry is this block start's, else the entry becomes its, at 1
    w.get(L_OFF).mem(Op.i32Load, 2, l.heat).get(L_K).op(Op.i32Eq);
    this.open(Op.if, I32);
    w.get(L_OFF)
      .mem(Op.i32Load, 2, l.heat + 4)
      .i32Const(1)
      .op(Op.i32Add);
    w.op(Op.else);
    w.get(L_OFF).get(L_K).mem(Op.i32Store, 2, l.heat);
    w.i32Const(1);
    this.close();
    w.set(L_SIZE);
    w.get(L_OFF)
      .get(L_SIZE)
      .mem(Op.i32Store, 2, l.heat + 4);
    w.get(L_SIZE).i32Const(0).mem(Op.i32Load, 2, l.heatLimit).op(Op.i32Eq);
    this.exitIf(INTERP_HOT);
    this.br('next');
  }

  /**
   * Pushes the RAM offset of the L_SIZE-byte access at L_ADDR, or -1 for the slow path: outside RAM, a TLB
   * miss, a page crossing under paging, PMP, or (writes) a page holding translated code (either end). The
   * same checks as the translator's helpers, inline: a call per access cost a fifth of the loop's time.
   */
  private dataOffset(write: boolean): void {
    const w = this.w;
    const l = this.l;
    const failIf = () => {
      this.open(Op.if, VOID);
      w.i32Const(-1).set(L_OFF);
      this.br('xlate');
      this.close();
    };
    // T = RAM offset (i64) of the access
    const inRam = () => {
      // T > ramSize - size, as unsigned (T is "negative" below RAM)
      w.get(L_T).i64Const(l.ramSize).get(L_SIZE).op(Op.i64ExtendI32U).op(Op.i64Sub).op(Op.i64GtU);
      failIf();
      if (write) {
        w.get(L_T).op(Op.i32WrapI64).i32Const(12).op(Op.i32ShrU).mem(Op.i32Load8U, 0, l.codePages);
        w.get(L_T)
          .op(Op.i32WrapI64)
          .get(L_SIZE)
          .op(Op.i32Add)
          .i32Const(1)
          .op(Op.i32Sub)
          .i32Const(12)
          .op(Op.i32ShrU)
          .mem(Op.i32Load8U, 0, l.codePages)
          .op(Op.i32Or);
        failIf();
      }
      w.get(L_T).op(Op.i32WrapI64).set(L_OFF);
    };
    this.open(Op.block, VOID, 'xlate');
    w.i32Const(0).mem(Op.i32Load, 2, l.dataMode).tee(L_K).op(Op.i32Eqz);
    this.open(Op.if, VOID);
    w.get(L_ADDR).i64Const(l.ramBase).op(Op.i64Sub).set(L_T);
    inRam();
    w.op(Op.else);
    w.get(L_K).i32Const(1).op(Op.i32Ne);
    failIf();
    // paging: within one page, then the last page (no TLB lookup), else the TLB (tag = addr >> 12, a double)
    w.get(L_ADDR).op(Op.i32WrapI64).i32Const(4095).op(Op.i32And).i32Const(4096).get(L_SIZE).op(Op.i32Sub);
    w.op(Op.i32GtU);
    failIf();
    w.get(L_ADDR)
      .i64Const(12)
      .op(Op.i64ShrS)
      .get(write ? L_WVPN : L_RVPN)
      .op(Op.i64Eq);
    this.open(Op.if, VOID);
    w.get(write ? L_WPAGE : L_RPAGE)
      .get(L_ADDR)
      .op(Op.i32WrapI64)
      .i32Const(4095)
      .op(Op.i32And)
      .op(Op.i32Add);
    w.set(L_OFF);
    this.br('xlate');
    this.close();
    w.get(L_ADDR).i64Const(12).op(Op.i64ShrS).tee(L_T);
    w.op(Op.i32WrapI64).i32Const(1023).op(Op.i32And).i32Const(3).op(Op.i32Shl).set(L_K);
    w.get(L_K)
      .i32Const(0)
      .mem(Op.i32Load, 2, write ? l.writeTag : l.readTag)
      .op(Op.i32Add);
    w.mem(Op.f64Load, 3, 0).get(L_T).op(Op.f64ConvertI64S).op(Op.f64Ne);
    this.open(Op.if, VOID);
    // a miss: walk the page table here (filling the TLB entry at K), or take the slow path
    this.walk(write ? 'write' : 'read', () => {
      w.i32Const(-1).set(L_OFF);
      this.br('xlate');
    });
    this.close();
    w.get(L_K)
      .i32Const(0)
      .mem(Op.i32Load, 2, write ? l.writePhys : l.readPhys)
      .op(Op.i32Add);
    w.mem(Op.f64Load, 3, 0).op(Op.i64TruncF64U);
    w.get(L_ADDR).i64Const(4095).op(Op.i64And).op(Op.i64Add).i64Const(l.ramBase).op(Op.i64Sub).set(L_T);
    inRam();
    // a page in RAM (for writes: holding no translated code): the last page from now on
    w.get(L_ADDR)
      .i64Const(12)
      .op(Op.i64ShrS)
      .set(write ? L_WVPN : L_RVPN);
    w.get(L_OFF)
      .i32Const(-4096)
      .op(Op.i32And)
      .set(write ? L_WPAGE : L_RPAGE);
    this.close();
    this.close();
    w.get(L_OFF);
  }

  /**
   * Sv39/Sv48 page walk for the address in L_ADDR, as the hart's translateSlow does it (leaf permissions with
   * SUM and MXR, superpage alignment, A and D set in the PTE), filling the TLB entry whose byte index is in K
   * (for a write also the read entry when the page is readable). Anything else — a fault, a PTE outside
   * RAM, PMP, no walk allowed — runs `fail`, which must leave: the hart then walks and raises the fault.
   */
  private walk(access: 'read' | 'write' | 'exec', fail: () => void): void {
    const w = this.w;
    const l = this.l;
    const failIf = () => {
      this.open(Op.if, VOID);
      fail();
      this.close();
    };
    // levels (0: the hart walks)
    w.i32Const(0)
      .mem(Op.i32Load, 2, access === 'exec' ? l.walkFetch : l.walkData)
      .tee(L_WL)
      .op(Op.i32Eqz);
    failIf();
    // canonical: the bits above the top level's VPN all equal (addr >> (9 * levels + 11) is 0 or -1)
    w.get(L_ADDR)
      .get(L_WL)
      .i32Const(9)
      .op(Op.i32Mul)
      .i32Const(11)
      .op(Op.i32Add)
      .op(Op.i64ExtendI32U)
      .op(Op.i64ShrS)
      .tee(L_WP)
      .op(Op.i64Eqz)
      .get(L_WP)
      .i64Const(-1)
      .op(Op.i64Eq)
      .op(Op.i32Or)
      .op(Op.i32Eqz);
    failIf();
    w.i32Const(0).mem(Op.i64Load, 3, l.satpRoot).set(L_WT);
    w.get(L_WL).i32Const(1).op(Op.i32Sub).set(L_WL);
    this.open(Op.loop, VOID, 'level');
    // PTE at table + vpn[level] * 8, in RAM
    w.get(L_WT)
      .get(L_ADDR)
      .get(L_WL)
      .i32Const(9)
      .op(Op.i32Mul)
      .i32Const(12)
      .op(Op.i32Add)
      .op(Op.i64ExtendI32U)
      .op(Op.i64ShrU)
      .i64Const(0x1ff)
      .op(Op.i64And)
      .i64Const(3)
      .op(Op.i64Shl)
      .op(Op.i64Add)
      .i64Const(l.ramBase)
      .op(Op.i64Sub)
      .tee(L_WP)
      .i64Const(l.ramSize - 8)
      .op(Op.i64GtU);
    failIf();
    w.get(L_WP).op(Op.i32WrapI64).tee(L_WO).mem(Op.i64Load, 3, 0).set(L_WP);
    // invalid: V clear, W without R, reserved bits 63:54 set
    w.get(L_WP).op(Op.i32WrapI64).i32Const(1).op(Op.i32And).op(Op.i32Eqz);
    w.get(L_WP).op(Op.i32WrapI64).i32Const(6).op(Op.i32And).i32Const(4).op(Op.i32Eq).op(Op.i32Or);
    w.get(L_WP).i64Const(54).op(Op.i64ShrU).op(Op.i64Eqz).op(Op.i32Eqz).op(Op.i32Or);
    failIf();
    // a pointer (R = X = 0): to the next level, unless at level 0 or with D, A or U set
    w.get(L_WP).op(Op.i32WrapI64).i32Const(0xa).op(Op.i32And).op(Op.i32Eqz);
    this.open(Op.if, VOID);
    w.get(L_WL).op(Op.i32Eqz);
    w.get(L_WP).op(Op.i32WrapI64).i32Const(0xd0).op(Op.i32And).op(Op.i32Or);
    failIf();
    w.get(L_WP).i64Const(10).op(Op.i64ShrU).i64Const(12).op(Op.i64Shl).set(L_WT);
    w.get(L_WL).i32Const(1).op(Op.i32Sub).set(L_WL);
    w.op(Op.br).u32(this.depth('level'));
    this.close();
    this.close();
    // a leaf: permissions (K keeps the TLB index; T is free)
    const pte = () => w.get(L_WP).op(Op.i32WrapI64);
    // booleans (0 or 1), so that they combine with and/or
    const bit = (b: number) => {
      pte();
      w.i32Const(b).op(Op.i32And).i32Const(0).op(Op.i32Ne);
    };
    const status = (b: number) =>
      w.i32Const(0).mem(Op.i32Load, 2, l.mstatus).i32Const(b).op(Op.i32And).i32Const(0).op(Op.i32Ne);
    if (access === 'exec') bit(8);
    else if (access === 'write') bit(4);
    else {
      // R, or X with MXR
      bit(2);
      bit(8);
      status(1 << 19);
      w.op(Op.i32And).op(Op.i32Or);
    }
    w.op(Op.i32Eqz);
    failIf();
    // privilege: U needs U pages; S reaches U pages only for data with SUM
    w.i32Const(0)
      .mem(Op.i32Load, 2, access === 'exec' ? l.priv : l.dataPriv)
      .set(L_WQ);
    w.get(L_WQ).op(Op.i32Eqz);
    bit(16);
    w.op(Op.i32Eqz).op(Op.i32And);
    w.get(L_WQ).i32Const(PRIV_S).op(Op.i32Eq);
    bit(16);
    w.op(Op.i32And);
    if (access === 'exec') w.i32Const(1);
    else {
      status(1 << 18);
      w.op(Op.i32Eqz);
    }
    w.op(Op.i32And).op(Op.i32Or);
    failIf();
    // a superpage's PPN is aligned to its size: T = the in-superpage mask of page numbers
    w.i64Const(1).get(L_WL).i32Const(9).op(Op.i32Mul).op(Op.i64ExtendI32U).op(Op.i64Shl).i64Const(1);
    w.op(Op.i64Sub).set(L_T);
    w.get(L_WP).i64Const(10).op(Op.i64ShrU).get(L_T).op(Op.i64And).op(Op.i64Eqz).op(Op.i32Eqz);
    failIf();
    // A (and D for a write), as the hart does (its low word)
    w.get(L_WO);
    pte();
    w.i32Const(access === 'write' ? 0xc0 : 0x40).op(Op.i32Or);
    w.mem(Op.i32Store, 2, 0);
    // the page: PPN's page plus the address's page number bits inside the superpage
    w.get(L_WP).i64Const(10).op(Op.i64ShrU).i64Const(0xfff_ffff_ffff).op(Op.i64And);
    w.get(L_ADDR).i64Const(12).op(Op.i64ShrU).get(L_T).op(Op.i64And).op(Op.i64Or);
    w.i64Const(12).op(Op.i64Shl).set(L_WT);
    // fill the TLB entry at K: tag = addr >> 12 (a double), phys = the page
    const fill = (tag: number, phys: number) => {
      w.get(L_K).i32Const(0).mem(Op.i32Load, 2, tag).op(Op.i32Add);
      w.get(L_ADDR).i64Const(12).op(Op.i64ShrS).op(Op.f64ConvertI64S).mem(Op.f64Store, 3, 0);
      w.get(L_K).i32Const(0).mem(Op.i32Load, 2, phys).op(Op.i32Add);
      w.get(L_WT).op(Op.f64ConvertI64S).mem(Op.f64Store, 3, 0);
    };
    if (access === 'exec') fill(l.execTag, l.execPhys);
    else if (access === 'read') fill(l.readTag, l.readPhys);
    else {
      fill(l.writeTag, l.writePhys);
      bit(2);
      this.open(Op.if, VOID);
      fill(l.readTag, l.readPhys);
      this.close();
    }
  }

  /** addr = A + imm (i32 in L_IMM). */
  private address(): void {
    this.w.get(L_A).get(L_IMM).op(Op.i64ExtendI32S).op(Op.i64Add).set(L_ADDR);
  }

  private addressHalves(): void {
    this.w.get(L_ADDR).op(Op.i32WrapI64).get(L_ADDR).i64Const(32).op(Op.i64ShrU).op(Op.i32WrapI64);
  }

  /** After a slow-path call's status (on the stack): leave on a trap; remember "leave after" (2). */
  private slowStatus(): void {
    const w = this.w;
    w.tee(L_ST).i32Const(1).op(Op.i32Eq);
    this.open(Op.if, VOID);
    this.br('exit');
    this.close();
  }

  private load(): void {
    const w = this.w;
    const l = this.l;
    w.get(L_F3).i32Const(7).op(Op.i32Eq);
    this.exitIf(INTERP_UNHANDLED);
    w.i32Const(1).get(L_F3).i32Const(3).op(Op.i32And).op(Op.i32Shl).set(L_SIZE);
    this.address();
    this.dataOffset(false);
    w.tee(L_OFF).i32Const(0).op(Op.i32LtS);
    this.open(Op.if, I64);
    this.addressHalves();
    w.get(L_SIZE).call(F_LD);
    this.slowStatus();
    w.i32Const(0).mem(Op.i64Load, 3, l.value);
    w.op(Op.else);
    // up to 7 bytes past the access: RAM is followed by the CPU area in the same memory
    w.get(L_OFF).mem(Op.i64Load, 0, 0);
    this.close();
    // shift the value to the top and back: sign- or zero-extends by f3
    w.set(L_V);
    w.i64Const(64).get(L_SIZE).i32Const(3).op(Op.i32Shl).op(Op.i64ExtendI32U).op(Op.i64Sub).set(L_T);
    w.get(L_V).get(L_T).op(Op.i64Shl).set(L_V);
    w.get(L_F3).i32Const(4).op(Op.i32And);
    this.open(Op.if, I64);
    w.get(L_V).get(L_T).op(Op.i64ShrU);
    w.op(Op.else);
    w.get(L_V).get(L_T).op(Op.i64ShrS);
    this.close();
    w.set(L_V);
    this.br('write');
  }

  private store(): void {
    const w = this.w;
    w.get(L_F3).i32Const(3).op(Op.i32GtU);
    this.exitIf(INTERP_UNHANDLED);
    w.i32Const(1).get(L_F3).op(Op.i32Shl).set(L_SIZE);
    // imm = ins[31:25] << 5 | ins[11:7]
    w.get(L_INS).i32Const(25).op(Op.i32ShrS).i32Const(5).op(Op.i32Shl).get(L_RD).op(Op.i32Or).set(L_IMM);
    this.address();
    this.loadReg(() => this.field(20, 31));
    w.set(L_B);
    this.dataOffset(true);
    w.tee(L_OFF).i32Const(0).op(Op.i32LtS);
    this.open(Op.if, VOID);
    this.addressHalves();
    w.get(L_SIZE).get(L_B).op(Op.i32WrapI64).get(L_B).i64Const(32).op(Op.i64ShrU).op(Op.i32WrapI64);
    w.call(F_ST);
    this.slowStatus();
    this.br('advance');
    this.close();
    // by width: f3 0..3
    this.open(Op.block, VOID, 's3');
    this.open(Op.block, VOID, 's2');
    this.open(Op.block, VOID, 's1');
    this.open(Op.block, VOID, 's0');
    w.get(L_F3).op(Op.brTable).u32(4).u32(0).u32(1).u32(2).u32(3).u32(3);
    const stores = [Op.i64Store8, Op.i64Store16, Op.i64Store32, Op.i64Store];
    for (let i = 0; i < 4; i++) {
      this.close();
      w.get(L_OFF).get(L_B).mem(stores[i]!, 0, 0);
      this.br('advance');
    }
  }

  /**
   * AMOs on RAM (one hart: a read-modify-write is atomic); LR/SC (the reservation is the hart's), misaligned
   * ones and anything the inline translation refuses are the hart's. rd gets the old value; a W operation
   * works on sign-extended values and stores the low half.
   */
  private amo(): void {
    const w = this.w;
    const l = this.l;
    // f3 other than 2 (W) and 3 (D) is illegal: the hart's
    w.get(L_F3).i32Const(2).op(Op.i32Ne).get(L_F3).i32Const(3).op(Op.i32Ne).op(Op.i32And);
    this.exitIf(INTERP_UNHANDLED);
    w.i32Const(1).get(L_F3).op(Op.i32Shl).set(L_SIZE);
    w.get(L_A).set(L_ADDR);
    // misaligned: the hart raises the fault
    w.get(L_ADDR).op(Op.i32WrapI64).get(L_SIZE).i32Const(1).op(Op.i32Sub).op(Op.i32And);
    this.exitIf(INTERP_UNHANDLED);
    this.loadReg(() => this.field(20, 31));
    w.set(L_B);
    // funct5 in IMM (dataOffset uses K)
    w.get(L_INS).i32Const(27).op(Op.i32ShrU).set(L_IMM);
    w.get(L_IMM).i32Const(2).op(Op.i32Eq);
    this.open(Op.if, VOID);
    this.loadReserved();
    this.close();
    w.get(L_IMM).i32Const(3).op(Op.i32Eq);
    this.open(Op.if, VOID);
    this.storeConditional();
    this.close();
    this.dataOffset(true);
    w.tee(L_OFF).i32Const(0).op(Op.i32LtS);
    this.exitIf(INTERP_UNHANDLED);
    // V = old value, B = operand, both sign-extended for W
    w.get(L_F3).i32Const(2).op(Op.i32Eq);
    this.open(Op.if, VOID);
    w.get(L_OFF).mem(Op.i64Load32S, 2, 0).set(L_V);
    w.get(L_B).op(Op.i32WrapI64).op(Op.i64ExtendI32S).set(L_B);
    w.op(Op.else);
    w.get(L_OFF).mem(Op.i64Load, 3, 0).set(L_V);
    this.close();
    // T = the new value, by funct5: 0 add, 1 swap, 4 xor, 8 or, 12 and, 16 min, 20 max, 24 minu, 28 maxu
    this.open(Op.block, VOID, 'amoNew');
    const cases: [number, () => void][] = [
      [0, () => w.get(L_V).get(L_B).op(Op.i64Add)],
      [1, () => w.get(L_B)],
      [4, () => w.get(L_V).get(L_B).op(Op.i64Xor)],
      [8, () => w.get(L_V).get(L_B).op(Op.i64Or)],
      [12, () => w.get(L_V).get(L_B).op(Op.i64And)],
      [16, () => w.get(L_V).get(L_B).get(L_V).get(L_B).op(Op.i64LtS).op(Op.select)],
      [20, () => w.get(L_B).get(L_V).get(L_V).get(L_B).op(Op.i64LtS).op(Op.select)],
      [24, () => w.get(L_V).get(L_B).get(L_V).get(L_B).op(Op.i64LtU).op(Op.select)],
      [28, () => w.get(L_B).get(L_V).get(L_V).get(L_B).op(Op.i64LtU).op(Op.select)],
    ];
    for (const [funct5, value] of cases) {
      w.get(L_IMM).i32Const(funct5).op(Op.i32Eq);
      this.open(Op.if, VOID);
      value();
      w.set(L_T);
      this.br('amoNew');
      this.close();
    }
    this.exit(INTERP_UNHANDLED);
    this.close();
    w.get(L_F3).i32Const(2).op(Op.i32Eq);
    this.open(Op.if, VOID);
    w.get(L_OFF).get(L_T).mem(Op.i64Store32, 2, 0);
    w.op(Op.else);
    w.get(L_OFF).get(L_T).mem(Op.i64Store, 3, 0);
    this.close();
    this.br('write');
  }

  /**
   * CSRRS/CSRRC(I) on sstatus in S-mode that read it or change only SIE (Linux's local_irq_save and
   * local_irq_restore run them in pairs around short critical sections); setting SIE while an S-level
   * interrupt is pending and enabled, any other change (SUM/MXR change translation) and every other SYSTEM
   * instruction are the hart's.
   */
  private system(): void {
    const w = this.w;
    const l = this.l;
    // f3 2, 3, 6, 7 (CSRRS, CSRRC, CSRRSI, CSRRCI) on sstatus, from S-mode
    w.get(L_F3).i32Const(3).op(Op.i32And).i32Const(2).op(Op.i32LtU);
    w.get(L_F3).i32Const(4).op(Op.i32Eq).op(Op.i32Or);
    w.get(L_INS).i32Const(20).op(Op.i32ShrU).i32Const(CSR_SSTATUS).op(Op.i32Ne).op(Op.i32Or);
    w.i32Const(0).mem(Op.i32Load, 2, l.priv).i32Const(PRIV_S).op(Op.i32Ne).op(Op.i32Or);
    this.exitIf(INTERP_UNHANDLED);
    // K = the mask: uimm (rs1 field) for the I forms, else x[rs1]'s low word
    w.get(L_F3).i32Const(4).op(Op.i32And);
    this.open(Op.if, I32);
    this.field(15, 31);
    w.op(Op.else);
    w.get(L_A).op(Op.i32WrapI64);
    this.close();
    w.set(L_K);
    // OFF = old mstatus; SIZE = the new one
    w.i32Const(0).mem(Op.i32Load, 2, l.mstatus).set(L_OFF);
    w.get(L_K).i32Const(SSTATUS_MASK).op(Op.i32And).set(L_K);
    w.get(L_F3).i32Const(1).op(Op.i32And);
    this.open(Op.if, I32);
    w.get(L_OFF).get(L_K).i32Const(-1).op(Op.i32Xor).op(Op.i32And);
    w.op(Op.else);
    w.get(L_OFF).get(L_K).op(Op.i32Or);
    this.close();
    w.set(L_SIZE);
    // a change of anything but SIE is the hart's (SUM, MXR: translation; SPP, SPIE: rare)
    w.get(L_SIZE)
      .get(L_OFF)
      .op(Op.i32Xor)
      .i32Const(-1 ^ SSTATUS_SIE)
      .op(Op.i32And);
    this.exitIf(INTERP_UNHANDLED);
    // setting SIE with an S-level interrupt pending and enabled in mie: the hart takes it
    w.get(L_SIZE).get(L_OFF).op(Op.i32Xor).get(L_SIZE).op(Op.i32And).i32Const(SSTATUS_SIE).op(Op.i32And);
    this.open(Op.if, VOID);
    w.i32Const(0)
      .mem(Op.i32Load, 2, l.irq + 4 * IRQ_MIP_HW)
      .i32Const(0)
      .mem(Op.i32Load, 2, l.irq + 4 * IRQ_MIP_SW)
      .op(Op.i32Or);
    w.i32Const(0)
      .mem(Op.i32Load, 2, l.irq + 4 * IRQ_MIE)
      .op(Op.i32And);
    w.i32Const(0)
      .mem(Op.i32Load, 2, l.irq + 4 * IRQ_MIDELEG)
      .op(Op.i32And);
    this.exitIf(INTERP_UNHANDLED);
    this.close();
    w.i32Const(0).get(L_SIZE).mem(Op.i32Store, 2, l.mstatus);
    // rd = the old sstatus: its bits of mstatus, SD (bit 63) when FS is dirty, UXL = 2 (bits 33:32)
    w.get(L_OFF).i32Const(SSTATUS_MASK).op(Op.i32And).op(Op.i64ExtendI32U);
    w.get(L_OFF).i32Const(MSTATUS_FS).op(Op.i32And).i32Const(MSTATUS_FS).op(Op.i32Eq);
    this.open(Op.if, I64);
    w.i64Const(-0x8000_0000)
      .i64Const(32)
      .op(Op.i64Shl)
      .i64Const(2 * 0x1_0000_0000)
      .op(Op.i64Or);
    w.op(Op.else);
    w.i64Const(2 * 0x1_0000_0000);
    this.close();
    w.op(Op.i64Or).set(L_V);
    this.br('write');
  }

  /** LR: rs2 must be 0; the value (sign-extended for W) to rd, the reservation set on the address. */
  private loadReserved(): void {
    const w = this.w;
    const l = this.l;
    this.field(20, 31);
    this.exitIf(INTERP_UNHANDLED);
    this.dataOffset(false);
    w.tee(L_OFF).i32Const(0).op(Op.i32LtS);
    this.exitIf(INTERP_UNHANDLED);
    w.get(L_F3).i32Const(2).op(Op.i32Eq);
    this.open(Op.if, I64);
    w.get(L_OFF).mem(Op.i64Load32S, 2, 0);
    w.op(Op.else);
    w.get(L_OFF).mem(Op.i64Load, 3, 0);
    this.close();
    w.set(L_V);
    w.i32Const(0).i32Const(1).mem(Op.i32Store, 2, l.resvValid);
    w.i32Const(0).get(L_ADDR).mem(Op.i64Store, 3, l.resvAddr);
    this.br('write');
  }

  /**
   * SC: stores and writes 0 to rd when the reservation is valid for the address, else writes 1; either way
   * the reservation ends. Anything the hart must handle leaves before the reservation changes.
   */
  private storeConditional(): void {
    const w = this.w;
    const l = this.l;
    w.i32Const(0).mem(Op.i32Load, 2, l.resvValid);
    w.i32Const(0).mem(Op.i64Load, 3, l.resvAddr).get(L_ADDR).op(Op.i64Eq).op(Op.i32And);
    this.open(Op.if, VOID);
    this.dataOffset(true);
    w.tee(L_OFF).i32Const(0).op(Op.i32LtS);
    this.exitIf(INTERP_UNHANDLED);
    w.get(L_F3).i32Const(2).op(Op.i32Eq);
    this.open(Op.if, VOID);
    w.get(L_OFF).get(L_B).mem(Op.i64Store32, 2, 0);
    w.op(Op.else);
    w.get(L_OFF).get(L_B).mem(Op.i64Store, 3, 0);
    this.close();
    w.i64Const(0).set(L_V);
    w.op(Op.else);
    w.i64Const(1).set(L_V);
    this.close();
    w.i32Const(0).i32Const(0).mem(Op.i32Store, 2, l.resvValid);
    this.br('write');
  }

  private fence(): void {
    // FENCE orders nothing here (one hart, coherent memory); FENCE.I drops translations: the hart's
    this.w.get(L_F3);
    this.exitIf(INTERP_UNHANDLED);
    this.br('advance');
  }

  /** LUI, or AUIPC when `pcRelative`. */
  private upper(pcRelative: boolean): void {
    const w = this.w;
    if (pcRelative) w.get(L_PC);
    w.get(L_INS).i32Const(-4096).op(Op.i32And).op(Op.i64ExtendI32S);
    if (pcRelative) w.op(Op.i64Add);
    w.set(L_V);
    this.br('write');
  }

  /** Runs `cases[f3]` (each leaves V on nothing: it sets L_V and branches), the rest unhandled. */
  private byF3(cases: ((() => void) | undefined)[]): void {
    const w = this.w;
    this.open(Op.block, VOID, 'f3u');
    for (let i = 7; i >= 0; i--) this.open(Op.block, VOID, `f3_${i}`);
    w.get(L_F3).op(Op.brTable).u32(8);
    for (let i = 0; i < 8; i++) w.u32(i);
    w.u32(7);
    for (let i = 0; i < 8; i++) {
      this.close();
      const c = cases[i];
      if (c === undefined) this.br('f3u');
      else c();
    }
    this.close(); // f3u
    this.exit(INTERP_UNHANDLED);
  }

  /** V = A op operand (pushed by `b`). */
  private binary(b: () => void, op: number): () => void {
    return () => {
      this.w.get(L_A);
      b();
      this.w.op(op).set(L_V);
      this.br('write');
    };
  }

  /** When `cond` (pushed i32) holds run `then`, else leave unhandled. */
  private requireThen(cond: () => void, then: () => void): () => void {
    return () => {
      cond();
      this.open(Op.if, VOID);
      then();
      this.close();
      this.exit(INTERP_UNHANDLED);
    };
  }

  private opImm(): void {
    const w = this.w;
    const imm = () => w.get(L_IMM).op(Op.i64ExtendI32S);
    const shamt = () => w.get(L_IMM).i32Const(63).op(Op.i32And).op(Op.i64ExtendI32U);
    const compare = (op: number) => () => {
      w.get(L_A);
      imm();
      w.op(op).op(Op.i64ExtendI32U).set(L_V);
      this.br('write');
    };
    const high6 = (v: number) => () =>
      w.get(L_IMM).i32Const(6).op(Op.i32ShrU).i32Const(63).op(Op.i32And).i32Const(v).op(Op.i32Eq);
    this.byF3([
      this.binary(imm, Op.i64Add),
      this.requireThen(high6(0), this.binary(shamt, Op.i64Shl)),
      compare(Op.i64LtS),
      compare(Op.i64LtU),
      this.binary(imm, Op.i64Xor),
      () => {
        high6(0)();
        this.open(Op.if, VOID);
        this.binary(shamt, Op.i64ShrU)();
        this.close();
        high6(0x10)();
        this.open(Op.if, VOID);
        this.binary(shamt, Op.i64ShrS)();
        this.close();
        this.exit(INTERP_UNHANDLED);
      },
      this.binary(imm, Op.i64Or),
      this.binary(imm, Op.i64And),
    ]);
  }

  /** V = sext32(wrap(A) op operand) */
  private word(b: () => void, op: number): () => void {
    return () => {
      this.w.get(L_A).op(Op.i32WrapI64);
      b();
      this.w.op(op).op(Op.i64ExtendI32S).set(L_V);
      this.br('write');
    };
  }

  private opImm32(): void {
    const w = this.w;
    const imm = () => w.get(L_IMM);
    const shamt = () => w.get(L_IMM).i32Const(31).op(Op.i32And);
    const high7 = (v: number) => () =>
      w.get(L_IMM).i32Const(5).op(Op.i32ShrU).i32Const(127).op(Op.i32And).i32Const(v).op(Op.i32Eq);
    this.byF3([
      this.word(imm, Op.i32Add),
      this.requireThen(high7(0), this.word(shamt, Op.i32Shl)),
      undefined,
      undefined,
      undefined,
      () => {
        high7(0)();
        this.open(Op.if, VOID);
        this.word(shamt, Op.i32ShrU)();
        this.close();
        high7(0x20)();
        this.open(Op.if, VOID);
        this.word(shamt, Op.i32ShrS)();
        this.close();
        this.exit(INTERP_UNHANDLED);
      },
      undefined,
      undefined,
    ]);
  }

  /** funct7 in K. */
  private funct7(): void {
    this.w.get(L_INS).i32Const(25).op(Op.i32ShrU).set(L_K);
  }

  private f7Is(v: number): () => void {
    return () => this.w.get(L_K).i32Const(v).op(Op.i32Eq);
  }

  /** MUL..REMU with A, B (RISC-V's results for division by zero and overflow, no wasm traps). */
  private mulDiv(): void {
    const w = this.w;
    const done = () => {
      w.set(L_V);
      this.br('write');
    };
    // B = 0 gives `onZero`'s value, else A op B
    const byZero = (onZero: () => void, op: number) => () => {
      w.get(L_B).op(Op.i64Eqz);
      this.open(Op.if, I64);
      onZero();
      w.op(Op.else);
      w.get(L_A).get(L_B).op(op);
      this.close();
      done();
    };
    const signFix = (x: number, y: number) => {
      // - (x < 0 ? y : 0)
      w.get(x).i64Const(63).op(Op.i64ShrS).get(y).op(Op.i64And).op(Op.i64Sub);
    };
    this.byF3([
      () => {
        w.get(L_A).get(L_B).op(Op.i64Mul);
        done();
      },
      () => {
        w.get(L_A).get(L_B).call(F_MULHU);
        signFix(L_A, L_B);
        signFix(L_B, L_A);
        done();
      },
      () => {
        w.get(L_A).get(L_B).call(F_MULHU);
        signFix(L_A, L_B);
        done();
      },
      () => {
        w.get(L_A).get(L_B).call(F_MULHU);
        done();
      },
      () => {
        // DIV: /0 -> -1; /-1 -> -A (wrapping)
        w.get(L_B).op(Op.i64Eqz);
        this.open(Op.if, I64);
        w.i64Const(-1);
        w.op(Op.else);
        w.get(L_B).i64Const(-1).op(Op.i64Eq);
        this.open(Op.if, I64);
        w.i64Const(0).get(L_A).op(Op.i64Sub);
        w.op(Op.else);
        w.get(L_A).get(L_B).op(Op.i64DivS);
        this.close();
        this.close();
        done();
      },
      byZero(() => w.i64Const(-1), Op.i64DivU),
      byZero(() => w.get(L_A), Op.i64RemS),
      byZero(() => w.get(L_A), Op.i64RemU),
    ]);
  }

  /**
   * OP (or OP-32 when `word`): funct7 1 is M; 0x20 is SUB and SRA; 0 is the rest (the 32-bit forms have
   * only ADDW, SLLW, SRLW; their shifts take rs2's low five bits).
   */
  private registerOp(word: boolean): void {
    const w = this.w;
    this.loadReg(() => this.field(20, 31));
    w.set(L_B);
    this.funct7();
    const b = word ? () => w.get(L_B).op(Op.i32WrapI64) : () => w.get(L_B);
    const shamt = word ? () => w.get(L_B).op(Op.i32WrapI64).i32Const(31).op(Op.i32And) : b;
    const op = (operand: () => void, wide: number, narrow: number) =>
      word ? this.word(operand, narrow) : this.binary(operand, wide);
    const compare = (cmp: number) =>
      word
        ? undefined
        : () => {
            w.get(L_A).get(L_B).op(cmp).op(Op.i64ExtendI32U).set(L_V);
            this.br('write');
          };
    const only64 = (f: () => void) => (word ? undefined : f);
    w.get(L_K).i32Const(1).op(Op.i32Eq);
    this.open(Op.if, VOID);
    if (word) this.mulDiv32();
    else this.mulDiv();
    this.close();
    w.get(L_K).i32Const(0x20).op(Op.i32Eq);
    this.open(Op.if, VOID);
    const none = undefined;
    this.byF3([
      op(b, Op.i64Sub, Op.i32Sub),
      none,
      none,
      none,
      none,
      op(shamt, Op.i64ShrS, Op.i32ShrS),
      none,
      none,
    ]);
    this.close();
    this.requireThen(this.f7Is(0), () =>
      this.byF3([
        op(b, Op.i64Add, Op.i32Add),
        op(shamt, Op.i64Shl, Op.i32Shl),
        compare(Op.i64LtS),
        compare(Op.i64LtU),
        only64(this.binary(b, Op.i64Xor)),
        op(shamt, Op.i64ShrU, Op.i32ShrU),
        only64(this.binary(b, Op.i64Or)),
        only64(this.binary(b, Op.i64And)),
      ]),
    )();
  }

  /** MULW, DIVW, DIVUW, REMW, REMUW: 32-bit operations, sign-extended results. */
  private mulDiv32(): void {
    const w = this.w;
    const a = () => w.get(L_A).op(Op.i32WrapI64);
    const b = () => w.get(L_B).op(Op.i32WrapI64);
    const done = () => {
      w.op(Op.i64ExtendI32S).set(L_V);
      this.br('write');
    };
    const zeroB = () => {
      b();
      w.op(Op.i32Eqz);
    };
    const guarded = (onZero: () => void, divide: () => void) => () => {
      zeroB();
      this.open(Op.if, I32);
      onZero();
      w.op(Op.else);
      divide();
      this.close();
      done();
    };
    this.byF3([
      () => {
        a();
        b();
        w.op(Op.i32Mul);
        done();
      },
      undefined,
      undefined,
      undefined,
      guarded(
        () => w.i32Const(-1),
        () => {
          // -1: -A (wrapping), so MIN / -1 = MIN without a wasm trap
          b();
          w.i32Const(-1).op(Op.i32Eq);
          this.open(Op.if, I32);
          w.i32Const(0);
          a();
          w.op(Op.i32Sub);
          w.op(Op.else);
          a();
          b();
          w.op(Op.i32DivS);
          this.close();
        },
      ),
      guarded(
        () => w.i32Const(-1),
        () => {
          a();
          b();
          w.op(Op.i32DivU);
        },
      ),
      guarded(a, () => {
        a();
        b();
        w.op(Op.i32RemS);
      }),
      guarded(a, () => {
        a();
        b();
        w.op(Op.i32RemU);
      }),
    ]);
  }

  private branch(): void {
    const w = this.w;
    this.loadReg(() => this.field(20, 31));
    w.set(L_B);
    const taken = (op: number) => () => {
      w.get(L_A).get(L_B).op(op).set(L_K);
      this.br('taken');
    };
    this.open(Op.block, VOID, 'taken');
    this.byF3([
      taken(Op.i64Eq),
      taken(Op.i64Ne),
      undefined,
      undefined,
      taken(Op.i64LtS),
      taken(Op.i64GeS),
      taken(Op.i64LtU),
      taken(Op.i64GeU),
    ]);
    this.close();
    // T = pc + (taken ? imm : len)
    w.get(L_PC);
    w.get(L_K);
    this.open(Op.if, I32);
    // imm[12|10:5|4:1|11] = ins[31|30:25|11:8|7]
    w.get(L_INS).i32Const(31).op(Op.i32ShrS).i32Const(12).op(Op.i32Shl);
    this.field(7, 1);
    w.i32Const(11).op(Op.i32Shl).op(Op.i32Or);
    this.field(25, 0x3f);
    w.i32Const(5).op(Op.i32Shl).op(Op.i32Or);
    this.field(8, 0xf);
    w.i32Const(1).op(Op.i32Shl).op(Op.i32Or);
    w.op(Op.else);
    w.get(L_LEN);
    this.close();
    w.op(Op.i64ExtendI32S).op(Op.i64Add).set(L_T);
    this.br('bstart');
  }

  /** JAL, or JALR when `register`: the link is written after the target is read (rd may be rs1). */
  private jump(register: boolean): void {
    const w = this.w;
    if (register) {
      w.get(L_F3);
      this.exitIf(INTERP_UNHANDLED);
      w.get(L_A).get(L_IMM).op(Op.i64ExtendI32S).op(Op.i64Add).i64Const(-2).op(Op.i64And).set(L_T);
    } else {
      // imm[20|10:1|11|19:12] = ins[31|30:21|20|19:12]
      w.get(L_PC);
      w.get(L_INS).i32Const(31).op(Op.i32ShrS).i32Const(20).op(Op.i32Shl);
      this.field(12, 0xff);
      w.i32Const(12).op(Op.i32Shl).op(Op.i32Or);
      this.field(20, 1);
      w.i32Const(11).op(Op.i32Shl).op(Op.i32Or);
      this.field(21, 0x3ff);
      w.i32Const(1).op(Op.i32Shl).op(Op.i32Or);
      w.op(Op.i64ExtendI32S).op(Op.i64Add).set(L_T);
    }
    this.writeRd(() => w.get(L_PC).get(L_LEN).op(Op.i64ExtendI32U).op(Op.i64Add));
    this.br('bstart');
  }
}

/** The interpreter function's body (type (fetchBase: i32, budget: i32) -> status: i32). */
export function interpreterBody(layout: InterpLayout): Uint8Array {
  return new InterpEmitter(layout).emit();
}
