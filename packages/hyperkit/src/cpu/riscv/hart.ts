import { type CpuBackend, type Privilege, StopReason } from '../../machine/backend.js';
import type { MmioBus } from '../../machine/bus.js';
import type { GuestMemory } from '../../machine/memory.js';
import { EXPANDED_COMPRESSED, expandedCompressed } from './compressed.js';
import {
  CAUSE,
  CSR,
  MEDELEG_WRITABLE,
  MIDELEG_WRITABLE,
  MIE_WRITABLE,
  MISA_HI,
  MISA_LO,
  MSTATUS_FS,
  MSTATUS_MIE,
  MSTATUS_MPIE,
  MSTATUS_MPP,
  MSTATUS_MPP_SHIFT,
  MSTATUS_MPRV,
  MSTATUS_MXR,
  MSTATUS_SIE,
  MSTATUS_SPIE,
  MSTATUS_SPP,
  MSTATUS_SUM,
  MSTATUS_TSR,
  MSTATUS_TVM,
  MSTATUS_TW,
  MSTATUS_WRITABLE,
  SSTATUS_MASK,
} from './csr-numbers.js';
import { F32, F64, FLAG_NV, SoftFloat, classify } from './fpu.js';
import { type Block, translateBlock } from './jit.js';
import {
  ENTRY_MAP_SLOTS,
  ENTRY_MAP_SLOT_BYTES,
  HEAT_ENTRIES,
  INTERP_HOT,
  INTERP_TRAP,
  INTERP_UNHANDLED,
  IRQ_MIDELEG,
  IRQ_MIE,
  IRQ_MIP_HW,
  IRQ_MIP_SW,
} from './wasm-interp.js';
import {
  CHAIN_ENTRIES,
  CHAIN_PROMOTE,
  CHAIN_TRAP,
  CTL_CHAIN,
  CTL_CODE_PAGES,
  CTL_COUNTERS,
  CTL_DATA_PRIV,
  CTL_DMODE,
  CTL_ENTRY_MAP,
  CTL_EXEC_PHYS,
  CTL_EXEC_TAG,
  CTL_FETCH_BASE,
  CTL_FETCH_MODE,
  CTL_HEAT,
  CTL_HEAT_LIMIT,
  CTL_IRQ,
  CTL_MSTATUS,
  CTL_NPC,
  CTL_PRIV,
  CTL_READ_PHYS,
  CTL_READ_TAG,
  CTL_REGS,
  CTL_RESV_ADDR,
  CTL_RESV_VALID,
  CTL_RETIRED,
  CTL_SATP_ROOT,
  CTL_TLB,
  CTL_VALUE,
  CTL_WALK_DATA,
  CTL_WALK_FETCH,
  CTL_WRITE_PHYS,
  CTL_WRITE_TAG,
  MAX_WARM_BLOCKS,
  type RegionRequest,
  TLB_ARRAY_BYTES,
  type WasmRegion,
  WasmTranslator,
  cpuAreaBytes,
} from './wasm-jit.js';

/**
 * One RV64IMAFDC hart (Zicsr, Zifencei, Zihintpause; M/S/U; Sv39/Sv48), interpreted.
 *
 * 64-bit integers are kept as pairs of int32 halves (x[2r] low, x[2r+1] high) because Number arithmetic on
 * int32 is what V8 compiles best; BigInt appears only in rare paths (MULH*, wide division, FP). Traps unwind
 * by throwing one preallocated sentinel, so the hot loop allocates nothing.
 */

/** Called for ECALL from S-mode when the machine runs the built-in SBI instead of M-mode firmware. */
export interface SbiHandler {
  handleEcall(hart: RiscvHart): void;
  /** A trap is being taken into M-mode, where (with a built-in SBI) no firmware runs. */
  handleMachineTrap(hart: RiscvHart, cause: number, interrupt: boolean, pc: bigint): void;
}

export interface HartPlatform {
  memory: GuestMemory;
  bus: MmioBus;
  /** Current mtime in ticks. */
  readTime(): number;
}

const TRAP = { trap: true } as const;
const TLB_BITS = 10;
const TLB_SIZE = 1 << TLB_BITS;
const TLB_MASK = TLB_SIZE - 1;
const ACCESS_READ = 0;
const ACCESS_WRITE = 1;
const ACCESS_EXEC = 2;
const TWO32 = 0x1_0000_0000;
const MIP_SEIP = 1 << 9;

const PRIV_U = 0;
const PRIV_S = 1;
const PRIV_M = 3;

/** Interrupt priority order (MEI, MSI, MTI, SEI, SSI, STI). */
const IRQ_ORDER = [11, 3, 7, 9, 1, 5];

function toBig(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
function toBigSigned(lo: number, hi: number): bigint {
  return (BigInt(hi | 0) << 32n) | BigInt(lo >>> 0);
}

/** A region is judged after this many runs: it stays only if they averaged REGION_MIN_RUN instructions. */
const REGION_TRIAL_CALLS = 512;
const REGION_MIN_RUN = 48;
/** Instructions a queued page waits at most for its batch to fill. */
const WASM_BATCH_WAIT = 100_000;
/** Rewrites of a page after which it gets no more warm blocks (until a full flush). */
const MAX_WARM_REWRITES = 4;

/**
 * A per-page table of `length` empty slots. `new Array(length)` preallocates its elements (holey, not a
 * dictionary, up to the largest RAM we take: checked with %HasDictionaryElements on Node 20), so reads stay
 * fast; building packed arrays of undefined instead cost ~5 ms of every VM's creation.
 */
function pageTable<T>(length: number): (T | undefined)[] {
  return new Array<T | undefined>(length);
}

export class RiscvHart implements CpuBackend {
  /** Bytes of CPU area the hart wants after guest RAM (GuestMemory's third argument). */
  static cpuAreaBytes(ramSize: number): number {
    return cpuAreaBytes(ramSize);
  }

  /** Integer registers (in the WebAssembly memory's CPU area when there is one: i64 x[32] little-endian). */
  readonly x: Int32Array;
  pcLo = 0;
  pcHi = 0;
  priv = PRIV_M;

  /** FP registers as raw bits: f[2r] low word, f[2r+1] high word (0xffffffff when NaN-boxing a binary32). */
  readonly f = new Int32Array(64);
  fflags = 0;
  frm = 0;
  private readonly soft = new SoftFloat();

  // CSR state
  /** mstatus's low word: in the CPU area when there is one (the WebAssembly loop reads and clears SIE). */
  private readonly status32: Int32Array;
  get mstatus(): number {
    return this.status32[0]!;
  }
  set mstatus(value: number) {
    this.status32[0] = value;
  }
  medeleg = 0;
  /**
   * mideleg, mie and mip (bits driven by devices: MSIP, MTIP, MEIP, SEIP; and by software: SSIP, STIP, SEIP):
   * in the CPU area when there is one, where the WebAssembly loop checks them before it sets SIE itself.
   */
  private readonly irq32: Int32Array;
  get mideleg(): number {
    return this.irq32[IRQ_MIDELEG]!;
  }
  set mideleg(value: number) {
    this.irq32[IRQ_MIDELEG] = value;
  }
  get mie(): number {
    return this.irq32[IRQ_MIE]!;
  }
  set mie(value: number) {
    this.irq32[IRQ_MIE] = value;
  }
  get mipHw(): number {
    return this.irq32[IRQ_MIP_HW]!;
  }
  set mipHw(value: number) {
    this.irq32[IRQ_MIP_HW] = value;
  }
  get mipSw(): number {
    return this.irq32[IRQ_MIP_SW]!;
  }
  set mipSw(value: number) {
    this.irq32[IRQ_MIP_SW] = value;
  }
  mtvecLo = 0;
  mtvecHi = 0;
  stvecLo = 0;
  stvecHi = 0;
  mepcLo = 0;
  mepcHi = 0;
  sepcLo = 0;
  sepcHi = 0;
  mcauseLo = 0;
  mcauseHi = 0;
  scauseLo = 0;
  scauseHi = 0;
  mtvalLo = 0;
  mtvalHi = 0;
  stvalLo = 0;
  stvalHi = 0;
  mscratchLo = 0;
  mscratchHi = 0;
  sscratchLo = 0;
  sscratchHi = 0;
  mcounteren = 0;
  scounteren = 0;
  menvcfgLo = 0;
  menvcfgHi = 0;
  senvcfg = 0;
  mcountinhibit = 0;
  satpMode = 0;
  satpPpn = 0;
  readonly pmpcfg = new Uint8Array(16);
  /** pmpaddr as low 32 bits and high 22 bits (54-bit values do not fit a double exactly). */
  readonly pmpaddrLo = new Uint32Array(16);
  readonly pmpaddrHi = new Uint32Array(16);
  /** Instructions retired (exact); cycle reads the same count. */
  retired = 0;
  /** cycle and instret both count retired instructions, each with its own offset and inhibit freeze. */
  private cycleOffset = 0;
  private instretOffset = 0;
  private cycleFrozen = 0;
  private instretFrozen = 0;

  // LR/SC reservation
  /** valid (0/1) and address (low, high words): in the CPU area when there is one (the WebAssembly loop's too). */
  private readonly resvValid: Int32Array;
  private readonly resvAddr: Int32Array;

  // MMU state derived from priv/mstatus/satp
  private dataPaging = false;
  private fetchPaging = false;
  private dataPriv = PRIV_M;
  /**
   * TLB sets for U, S with SUM=0 and S with SUM=1: trap entry/return and Linux's SUM toggling around user
   * copies switch sets instead of flushing.
   * Tags are the virtual page number including the high word; -1 is empty.
   */
  private readonly tlbSets: TlbSet[];
  private tlbReadTag: Float64Array;
  private tlbReadPhys: Float64Array;
  private tlbWriteTag: Float64Array;
  private tlbWritePhys: Float64Array;
  private tlbExecTag: Float64Array;
  private tlbExecPhys: Float64Array;
  private fetchVpn = -1;
  private fetchHi = 0;
  private fetchOff = 0;
  /** False when PMP does not cover the fetched page uniformly: then every fetch is checked. */
  private fetchCacheable = true;

  // PMP: decoded regions [pmpStart, pmpEnd) per entry; checks only when some entry is active
  private readonly pmpStart = new Float64Array(16);
  private readonly pmpEnd = new Float64Array(16);
  private pmpActive = false;
  private pmpAnyLocked = false;
  private pmpData = false;
  private pmpFetch = false;

  // trap being raised
  private trapCause = 0;
  private trapTvalLo = 0;
  private trapTvalHi = 0;
  /** Scratch high word for 64-bit results returned through a number. */
  private hi = 0;
  private insRaw = 0;
  /** Instructions an interpreted run retired before the instruction that trapped. */
  private trapRetired = 0;

  // Block translation (jit.ts): per physical page, blocks by halfword index; null = not translatable.
  /** Translate hot blocks to JavaScript (HYPERKIT_JIT=0 disables, for comparison). */
  jit = process.env.HYPERKIT_JIT !== '0';
  /**
   * Executions of a block start before it is translated to JavaScript. A JavaScript block costs V8 a parse,
   * a baseline run and, once hot, an optimizing compilation on a background thread (~100-150 ms of CPU per
   * Linux boot at 2000, competing for the second core) and it only pays in code that stays hot, which the
   * WebAssembly regions (at wasmThreshold) already take. Measured with 2000 -> 10000: vsock connect loop in
   * the guest ~420 -> ~560 connections/s, boot CPU -100 ms (background) with the same main-thread time,
   * CPU-bound program unchanged (all WebAssembly). With WebAssembly regions on, the default is the most the
   * heat counter holds (65535): blocks then only serve code that is very hot and that no region took. Measured
   * on the vsock loop from the guest (3,000 connections, session 3's kernel), connections/s one at a time and
   * 8 in flight: 858-935 and 1,749-1,889 at 10000; 1,047-1,063 and 1,984-2,079 at 65535. The boot runs no
   * blocks either way (0.1% of its instructions at 10000).
   */
  jitThreshold = Math.max(1, Math.min(65535, Number(process.env.HYPERKIT_JIT_THRESHOLD) || 10000));
  /** Per RAM page (pageTable: preallocated, so lookups stay fast element loads). */
  private readonly blockPages: ((Block | null)[] | undefined)[];
  private readonly heatPages: (Uint16Array | undefined)[];
  private codePages: Uint8Array;
  private curBlock: Block | null = null;

  // WebAssembly translation (wasm-jit.ts): regions per physical page
  /** Translate hot regions to WebAssembly (HYPERKIT_WASM=0 disables; needs the memory's CPU area). */
  wasm: boolean;
  /**
   * Heat (block-start visits) at which a block's page region is compiled to WebAssembly; a JavaScript block
   * that keeps running counts its runs towards it as well. With the JavaScript interpreter, 2000 (as the
   * JavaScript threshold) gets CPU-bound loops into optimised WebAssembly soonest. With the WebAssembly
   * interpreter (~300 MIPS once V8 has optimised it) the default is 200,000: measured on a fresh process's
   * Linux boot (medians of 5, A/B), 2000 / 50,000 / 200,000 / never gave boot 222 / 157 / 131 / 133 ms and
   * main-thread CPU 162 / 136 / 127 / 122 ms (a region's compilation costs more than the interpreter loses
   * on the boot's code), while a CPU-bound program ran at 1027 / 1053 / 1024 / 297 MIPS.
   */
  wasmThreshold: number;
  private readonly translator: WasmTranslator | undefined;
  private readonly wasmPages: (WasmRegion | undefined)[];
  private readonly wasmHot: (number[] | undefined)[];
  private readonly wasmCompiles: Uint8Array;
  /** Pages waiting for the next region compilation. */
  private wasmPending: number[] = [];
  /** Warm tier: single-block functions per page slot; block starts (RAM offsets) queued, since when. */
  private readonly warmPages: (WarmPage | undefined)[];
  private warmPending: number[] = [];
  private warmPendingSince = 0;
  /** Times a page's warm blocks were dropped because the page was written. */
  private readonly warmRewrites: Uint8Array;
  /**
   * Block starts seen this often are queued for WebAssembly (0: off); queued pages compile as one module per
   * `wasmBatch` pages (or after WASM_BATCH_WAIT instructions), which amortises module creation. Off by
   * default: measured on the Linux boot, warm kernel code leaves a region after ~20 instructions and V8's
   * compilation of many regions costs more than the JavaScript blocks it replaces.
   */
  wasmWarmThreshold = Math.max(0, Number(process.env.HYPERKIT_WASM_WARM ?? 0) || 0);
  wasmBatch = Math.max(1, Number(process.env.HYPERKIT_WASM_BATCH ?? 16) || 16);
  /** The last region compiled per page, kept across flushes: reused while the page's bytes are unchanged. */
  private readonly wasmCache: (WasmRegion | undefined)[];
  /**
   * Run the interpreter's commonest instructions in WebAssembly (wasm-interp.ts) when WebAssembly is on
   * (HYPERKIT_WASM_INTERP=0 keeps them in JavaScript). Its compressed-expansion table and block-start heat
   * live in the CPU area.
   */
  wasmInterp: boolean;
  private readonly heat32: Int32Array | null;
  private readonly entryMap: Uint8Array | null;
  /** Instructions retired in the WebAssembly interpreter. */
  interpRetired = 0;
  /** The CPU area as int32 words (pc hand-over, retired count, slow-path values, MMU mode); null without. */
  private readonly ctl32: Int32Array | null;
  /** The warm-block chain table and run counters in the CPU area (null without one). */
  private readonly chain32: Int32Array | null;
  private readonly warmCounters: Int32Array | null;
  /** Bumped whenever translations are dropped, so a store from translated code can tell. */
  private codeEpoch = 0;
  /** Whole-cache flushes so far (FENCE.I, remote fences). */
  flushes = 0;
  /** Instructions retired inside WebAssembly regions and inside JavaScript blocks (the rest: interpreted). */
  wasmRetired = 0;
  blockRetired = 0;
  /** Drop regions whose runs are short (false keeps every region: tests that want all code in wasm). */
  wasmAdaptive = true;
  /** Region compilations per page before its further hot entries stay in JavaScript blocks (max 255). */
  wasmMaxCompiles = 8;
  /** Index, within the running block, of the instruction that may trap next (set by generated code). */
  bi = 0;

  private irqCheck = true;
  /**
   * True when the pc may start a block: after a branch or jump, a SYSTEM or FENCE instruction, a trap, a page
   * crossing, or translated code. Only there does the run loop look for translations and count heat, so
   * straight-line interpretation skips that work.
   */
  private blockStart = true;
  private stopRequested = false;
  private idle = false;

  private readonly ramBase: number;
  private readonly ramSize: number;
  private readonly ram8: Uint8Array;
  private readonly ram16: Uint16Array;
  private readonly ram32: Int32Array;
  private readonly ramView: DataView;
  private readonly bus: MmioBus;
  private readonly readTime: () => number;
  private readonly scratch = new DataView(new ArrayBuffer(8));
  sbi: SbiHandler | undefined;
  hartId = 0;

  constructor(platform: HartPlatform) {
    const mem = platform.memory;
    this.ramBase = mem.base;
    this.ramSize = mem.size;
    this.ram8 = mem.bytes;
    this.ram16 = new Uint16Array(mem.buffer, 0, mem.size >> 1);
    this.ram32 = new Int32Array(mem.buffer, 0, mem.size >> 2);
    this.ramView = mem.view;
    const area = mem.cpuArea;
    const pages = Math.ceil(mem.size / 4096);
    this.blockPages = pageTable(pages);
    this.heatPages = pageTable(pages);
    this.wasmPages = pageTable(pages);
    this.wasmHot = pageTable(pages);
    this.wasmCompiles = new Uint8Array(pages);
    this.warmPages = pageTable(pages);
    this.warmRewrites = new Uint8Array(pages);
    this.wasmCache = pageTable(pages);
    if (area !== undefined && area.size >= cpuAreaBytes(mem.size)) {
      const ctl = area.offset;
      this.x = new Int32Array(mem.buffer, ctl + CTL_REGS, 64);
      this.ctl32 = new Int32Array(mem.buffer, ctl, 1024);
      this.chain32 = new Int32Array(mem.buffer, ctl + CTL_CHAIN, CHAIN_ENTRIES * 2);
      for (let i = 0; i < CHAIN_ENTRIES; i++) this.chain32[2 * i] = -1;
      this.warmCounters = new Int32Array(mem.buffer, ctl + CTL_COUNTERS, MAX_WARM_BLOCKS);
      this.codePages = new Uint8Array(mem.buffer, ctl + CTL_CODE_PAGES, pages);
      this.tlbSets = [0, 1, 2].map((i) => newTlbSet(mem.buffer, ctl + CTL_TLB + i * 6 * TLB_ARRAY_BYTES));
      this.translator = new WasmTranslator(area.memory, area.pages, ctl, mem.base, mem.size, {
        load: (lo, hi, size) => this.wasmLoad(lo, hi, size),
        store: (lo, hi, size, vLo, vHi) => this.wasmStore(lo, hi, size, vLo, vHi),
      });
      this.wasm = process.env.HYPERKIT_WASM !== '0';
      if (this.wasm && !process.env.HYPERKIT_JIT_THRESHOLD) this.jitThreshold = 65535;
      this.heat32 = new Int32Array(mem.buffer, ctl + CTL_HEAT, HEAT_ENTRIES * 2);
      this.resvValid = new Int32Array(mem.buffer, ctl + CTL_RESV_VALID, 1);
      this.status32 = new Int32Array(mem.buffer, ctl + CTL_MSTATUS, 2);
      this.irq32 = new Int32Array(mem.buffer, ctl + CTL_IRQ, 4);
      this.resvAddr = new Int32Array(mem.buffer, ctl + CTL_RESV_ADDR, 2);
      this.entryMap = new Uint8Array(mem.buffer, ctl + CTL_ENTRY_MAP, ENTRY_MAP_SLOTS * ENTRY_MAP_SLOT_BYTES);
      this.wasmInterp = this.wasm && process.env.HYPERKIT_WASM_INTERP !== '0';
      this.wasmThreshold = this.wasmInterp ? 200_000 : 2000;
    } else {
      this.x = new Int32Array(64);
      this.ctl32 = null;
      this.chain32 = null;
      this.warmCounters = null;
      this.codePages = new Uint8Array(pages);
      this.tlbSets = [newTlbSet(), newTlbSet(), newTlbSet()];
      this.translator = undefined;
      this.wasm = false;
      this.heat32 = null;
      this.resvValid = new Int32Array(1);
      this.status32 = new Int32Array(2);
      this.irq32 = new Int32Array(4);
      this.resvAddr = new Int32Array(2);
      this.entryMap = null;
      this.wasmInterp = false;
      this.wasmThreshold = 2000;
    }
    const threshold = Number(process.env.HYPERKIT_WASM_THRESHOLD);
    if (threshold >= 1) this.wasmThreshold = threshold;
    this.bus = platform.bus;
    this.readTime = platform.readTime;
    const set = this.tlbSets[1]!;
    this.tlbReadTag = set.readTag;
    this.tlbReadPhys = set.readPhys;
    this.tlbWriteTag = set.writeTag;
    this.tlbWritePhys = set.writePhys;
    this.tlbExecTag = set.execTag;
    this.tlbExecPhys = set.execPhys;
  }

  get instructionsRetired(): number {
    return this.retired;
  }

  reset(pc: number, privilege: Privilege, a0: number, a1: number): void {
    this.x.fill(0);
    this.f.fill(0);
    this.pcLo = pc | 0;
    this.pcHi = Math.floor(pc / TWO32) | 0;
    this.priv = privilege === 'M' ? PRIV_M : privilege === 'S' ? PRIV_S : PRIV_U;
    this.setX(10, a0);
    this.setX(11, a1);
    this.mstatus = 0;
    this.satpMode = 0;
    this.mipSw = 0;
    this.mie = 0;
    this.flushCode();
    this.updateMmu(true);
    this.blockStart = true;
  }

  /** Sets x[r] from a non-negative Number below 2^53 (boot arguments). */
  setX(r: number, value: number): void {
    this.x[2 * r] = value | 0;
    this.x[2 * r + 1] = Math.floor(value / TWO32) | 0;
  }

  /** x[r] as a Number (exact below 2^53; used by the SBI). */
  getX(r: number): number {
    return (this.x[2 * r + 1]! >>> 0) * TWO32 + (this.x[2 * r]! >>> 0);
  }

  /** x[r] as a signed 64-bit BigInt. */
  getXBig(r: number): bigint {
    return toBigSigned(this.x[2 * r]!, this.x[2 * r + 1]!);
  }

  setXBig(r: number, value: bigint): void {
    this.x[2 * r] = Number(BigInt.asIntN(32, value));
    this.x[2 * r + 1] = Number(BigInt.asIntN(32, value >> 32n));
  }

  get pc(): bigint {
    return toBig(this.pcLo, this.pcHi);
  }

  setPending(mask: number, level: boolean): void {
    if (level) this.mipHw |= mask;
    else this.mipHw &= ~mask;
    this.irqCheck = true;
    if (level && (mask & this.mie) !== 0) this.idle = false;
  }

  /** Sets or clears software-writable mip bits (SSIP/STIP/SEIP) from outside the guest (the SBI). */
  setSoftwarePending(mask: number, level: boolean): void {
    if (level) this.mipSw |= mask;
    else this.mipSw &= ~mask;
    this.irqCheck = true;
  }

  /** mip as the guest sees it. */
  get mip(): number {
    return this.mipHw | this.mipSw;
  }

  requestStop(): void {
    this.stopRequested = true;
  }

  /** True when an enabled-in-mie interrupt is pending (WFI wakes on these regardless of global enables). */
  hasWakeup(): boolean {
    return ((this.mipHw | this.mipSw) & this.mie) !== 0;
  }

  /** Flushes every cached translation (satp, SFENCE.VMA, privilege or MXR/SUM changes). */
  flushTlb(): void {
    for (const set of this.tlbSets) {
      set.readTag.fill(-1);
      set.writeTag.fill(-1);
      set.execTag.fill(-1);
    }
    this.fetchVpn = -1;
  }

  /** Re-derives translation state after a change of privilege, mstatus, satp or PMP; flushes if asked. */
  private updateMmu(flush = false): void {
    const mprv = (this.mstatus & MSTATUS_MPRV) !== 0 && this.priv === PRIV_M;
    this.dataPriv = mprv ? (this.mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT : this.priv;
    this.dataPaging = this.satpMode !== 0 && this.dataPriv !== PRIV_M;
    this.fetchPaging = this.satpMode !== 0 && this.priv !== PRIV_M;
    this.pmpData = this.pmpActive && (this.dataPriv !== PRIV_M || this.pmpAnyLocked);
    this.pmpFetch = this.pmpActive && (this.priv !== PRIV_M || this.pmpAnyLocked);
    const sum = (this.mstatus & MSTATUS_SUM) !== 0;
    const data = this.tlbSets[this.dataPriv === PRIV_U ? 0 : sum ? 2 : 1]!;
    const fetch = this.tlbSets[this.priv === PRIV_U ? 0 : 1]!;
    this.tlbReadTag = data.readTag;
    this.tlbReadPhys = data.readPhys;
    this.tlbWriteTag = data.writeTag;
    this.tlbWritePhys = data.writePhys;
    this.tlbExecTag = fetch.execTag;
    this.tlbExecPhys = fetch.execPhys;
    const c = this.ctl32;
    if (c !== null) {
      c[CTL_DMODE >> 2] = this.dataPaging ? 1 : this.pmpData ? 2 : 0;
      c[CTL_READ_TAG >> 2] = data.readTag.byteOffset;
      c[CTL_READ_PHYS >> 2] = data.readPhys.byteOffset;
      c[CTL_WRITE_TAG >> 2] = data.writeTag.byteOffset;
      c[CTL_WRITE_PHYS >> 2] = data.writePhys.byteOffset;
      c[CTL_FETCH_MODE >> 2] = this.fetchPaging ? 1 : this.pmpFetch ? 2 : 0;
      c[CTL_PRIV >> 2] = this.priv;
      c[CTL_DATA_PRIV >> 2] = this.dataPriv;
      const levels = this.satpMode === 8 ? 3 : 4;
      c[CTL_WALK_DATA >> 2] = this.dataPaging && !this.pmpData ? levels : 0;
      c[CTL_WALK_FETCH >> 2] = this.fetchPaging && !this.pmpFetch ? levels : 0;
      const root = this.satpPpn * 4096;
      c[CTL_SATP_ROOT >> 2] = root | 0;
      c[(CTL_SATP_ROOT >> 2) + 1] = Math.floor(root / TWO32);
      c[CTL_EXEC_TAG >> 2] = fetch.execTag.byteOffset;
      c[CTL_EXEC_PHYS >> 2] = fetch.execPhys.byteOffset;
    }
    if (flush) this.flushTlb();
    this.fetchVpn = -1;
    this.irqCheck = true;
  }

  run(budget: number): StopReason {
    this.stopRequested = false;
    this.idle = false;
    // The budget counts traps and interrupts too: a guest faulting in a loop retires nothing but must yield.
    let remaining = budget;
    const x = this.x;
    while (remaining > 0) {
      try {
        while (remaining > 0) {
          if (this.irqCheck) {
            this.irqCheck = false;
            if (this.takeInterrupt()) {
              remaining--;
              continue;
            }
          }
          if (this.jit && this.blockStart) {
            this.blockStart = false;
            const lo = this.pcLo;
            let off: number;
            if (lo >>> 12 === this.fetchVpn && this.pcHi === this.fetchHi) {
              off = this.fetchOff + (lo & 4095);
            } else {
              off = this.fetchOffset(lo, this.pcHi);
              this.fetchVpn = this.fetchCacheable ? lo >>> 12 : -1;
              this.fetchHi = this.pcHi;
              this.fetchOff = off - (lo & 4095);
            }
            if (this.fetchVpn !== -1) {
              if (this.wasm) {
                const region = this.wasmPages[off >>> 12];
                if (region !== undefined) {
                  const entry = region.entries[(off & 4095) >> 1]!;
                  // a region runs only in the MMU mode it was compiled for
                  if (entry >= 0 && region.dmode === this.ctl32![CTL_DMODE >> 2]) {
                    remaining -= this.runRegion(region, entry, remaining);
                    this.blockStart = true;
                    if (this.idle || this.stopRequested) break;
                    continue;
                  }
                }
                const warm = this.warmPages[off >>> 12];
                if (warm !== undefined) {
                  const index = warm.tix[(off & 4095) >> 1]!;
                  if (index >= 0) {
                    remaining -= this.runWarm(index, remaining, off);
                    this.blockStart = true;
                    if (this.idle || this.stopRequested) break;
                    continue;
                  }
                }
              }
              const block = this.blockAt(off);
              if (block !== null) {
                this.curBlock = block;
                block.run(this, x);
                this.curBlock = null;
                this.blockStart = true;
                this.retired += block.count;
                this.blockRetired += block.count;
                remaining -= block.count;
                if (++block.runs === this.wasmThreshold && this.wasm)
                  this.compileRegion(off >>> 12, off & 4095);
                if (this.idle || this.stopRequested) break;
                continue;
              }
            }
          }
          remaining -=
            this.jit && this.wasm && this.wasmInterp
              ? this.interpretWasm(remaining)
              : this.interpret(remaining);
          if (this.idle || this.stopRequested) break;
        }
      } catch (e) {
        if (e !== TRAP) throw e;
        // instructions of an interpreted run before the trapping one retired (counted by interpret)
        remaining -= this.trapRetired;
        this.trapRetired = 0;
        const block = this.curBlock;
        if (block !== null) {
          // a trap inside a block: instructions before it retired; the pc is that of the trapping instruction
          this.curBlock = null;
          const k = this.bi;
          this.retired += k;
          remaining -= k + 1;
          const pl = this.pcLo;
          const r = (pl + block.offsets[k]!) | 0;
          this.pcHi = (this.pcHi + (r >>> 0 < pl >>> 0 ? 1 : 0)) | 0;
          this.pcLo = r;
        } else {
          remaining--; // a fetch fault before any instruction ran still consumes budget
        }
        this.enterTrap(this.trapCause, false, this.trapTvalLo, this.trapTvalHi);
      }
      if (this.warmPending.length > 0 && this.retired - this.warmPendingSince >= WASM_BATCH_WAIT) {
        this.flushWarm();
      }
      if (this.stopRequested) return StopReason.Halt;
      if (this.idle) {
        if (!this.hasWakeup()) return StopReason.Idle;
        this.idle = false;
      }
    }
    return StopReason.Budget;
  }

  /**
   * Interprets from the pc: straight-line code within the fetch page runs here without the run loop's
   * checks per instruction; it stops at anything that may start a block or change translation (control
   * transfer, SYSTEM, FENCE, a page crossing), an interrupt becoming pending, or `limit`. Returns the
   * instructions retired (added to `retired` at the end, and before a SYSTEM instruction, which may read
   * instret). A trap leaves the count retired before it in `trapRetired`. A method of its own so that V8
   * optimises it apart from the run loop (whose warm-up deoptimisations would otherwise discard it).
   */
  private interpret(limit: number): number {
    const x = this.x;
    let pending = 0;
    let counted = 0;
    try {
      const lo0 = this.pcLo;
      if (lo0 >>> 12 !== this.fetchVpn || this.pcHi !== this.fetchHi) {
        const off = this.fetchOffset(lo0, this.pcHi);
        this.fetchVpn = this.fetchCacheable ? lo0 >>> 12 : -1;
        this.fetchHi = this.pcHi;
        this.fetchOff = off - (lo0 & 4095);
      }
      if (this.fetchVpn === -1) {
        // PMP splits this page: every fetch is checked
        this.step();
        this.retired++;
        return 1;
      }
      const ram16 = this.ram16;
      const base = this.fetchOff;
      loop: for (;;) {
        const lo = this.pcLo;
        const half = ram16[(base + (lo & 4095)) >> 1]!;
        let ins: number;
        let len: number;
        if ((half & 3) !== 3) {
          ins = EXPANDED_COMPRESSED[half] || expandedCompressed(half);
          if (ins === 0) this.illegal();
          len = 2;
        } else {
          ins =
            (lo & 4095) === 4094
              ? half | (this.fetchUpperHalf(lo) << 16)
              : half | (ram16[((base + (lo & 4095)) >> 1) + 1]! << 16);
          len = 4;
        }
        // The commonest instructions run here without a call (measured on the Linux boot: ADDI, ADD, LD,
        // SD, branches, ADDIW, OR, LBU... are four in five); the rest go through execute.
        const op = ins & 0x7f;
        const f3 = (ins >> 12) & 7;
        const rd = (ins >> 7) & 0x1f;
        const rs1 = (ins >> 15) & 0x1f;
        let done = true;
        switch (op) {
          case 0x13: {
            const imm = ins >> 20;
            const alo = x[2 * rs1]!;
            const ahi = x[2 * rs1 + 1]!;
            if (f3 === 0) {
              const r = (alo + imm) | 0;
              x[2 * rd + 1] = (ahi + (imm >> 31) + (r >>> 0 < alo >>> 0 ? 1 : 0)) | 0;
              x[2 * rd] = r;
            } else if (f3 === 7) {
              x[2 * rd] = alo & imm;
              x[2 * rd + 1] = ahi & (imm >> 31);
            } else if (f3 === 6) {
              x[2 * rd] = alo | imm;
              x[2 * rd + 1] = ahi | (imm >> 31);
            } else if (f3 === 4) {
              x[2 * rd] = alo ^ imm;
              x[2 * rd + 1] = ahi ^ (imm >> 31);
            } else if (f3 === 1 && imm >>> 6 === 0) {
              this.shiftLeft(rd, alo, ahi, imm & 63);
            } else if (f3 === 5 && imm >>> 6 === 0) {
              this.shiftRightLogical(rd, alo, ahi, imm & 63);
            } else if (f3 === 5 && imm >>> 6 === 0x10) {
              this.shiftRightArith(rd, alo, ahi, imm & 63);
            } else done = false;
            break;
          }
          case 0x33: {
            if (ins >>> 25 !== 0) {
              done = false;
              break;
            }
            const rs2 = (ins >> 20) & 0x1f;
            const alo = x[2 * rs1]!;
            const ahi = x[2 * rs1 + 1]!;
            const blo = x[2 * rs2]!;
            const bhi = x[2 * rs2 + 1]!;
            if (f3 === 0) {
              const r = (alo + blo) | 0;
              x[2 * rd + 1] = (ahi + bhi + (r >>> 0 < alo >>> 0 ? 1 : 0)) | 0;
              x[2 * rd] = r;
            } else if (f3 === 6) {
              x[2 * rd] = alo | blo;
              x[2 * rd + 1] = ahi | bhi;
            } else if (f3 === 7) {
              x[2 * rd] = alo & blo;
              x[2 * rd + 1] = ahi & bhi;
            } else if (f3 === 4) {
              x[2 * rd] = alo ^ blo;
              x[2 * rd + 1] = ahi ^ bhi;
            } else done = false;
            break;
          }
          case 0x1b: {
            const imm = ins >> 20;
            const a = x[2 * rs1]!;
            let r: number;
            if (f3 === 0) r = (a + imm) | 0;
            else if (f3 === 1 && imm >>> 5 === 0) r = a << (imm & 31);
            else if (f3 === 5 && imm >>> 5 === 0) r = a >>> (imm & 31);
            else if (f3 === 5 && imm >>> 5 === 0x20) r = a >> (imm & 31);
            else {
              done = false;
              break;
            }
            x[2 * rd] = r;
            x[2 * rd + 1] = r >> 31;
            break;
          }
          case 0x3b: {
            if (ins >>> 25 !== 0 || f3 !== 0) {
              done = false;
              break;
            }
            // ADDW
            const r = (x[2 * rs1]! + x[2 * ((ins >> 20) & 0x1f)]!) | 0;
            x[2 * rd] = r;
            x[2 * rd + 1] = r >> 31;
            break;
          }
          case 0x37: // LUI
            x[2 * rd] = ins & 0xfffff000;
            x[2 * rd + 1] = ins >> 31;
            break;
          case 0x17: {
            // AUIPC
            const imm = ins & 0xfffff000;
            const rlo = (lo + imm) | 0;
            x[2 * rd + 1] = (this.pcHi + (imm >> 31) + (rlo >>> 0 < lo >>> 0 ? 1 : 0)) | 0;
            x[2 * rd] = rlo;
            break;
          }
          case 0x03: {
            const imm = ins >> 20;
            const blo = x[2 * rs1]!;
            const aLo = (blo + imm) | 0;
            const aHi = (x[2 * rs1 + 1]! + (imm >> 31) + (aLo >>> 0 < blo >>> 0 ? 1 : 0)) | 0;
            if (f3 === 3) {
              // an aligned LD through a TLB hit to RAM is read here; anything else goes through load()
              const vpn = aLo >>> 12;
              const idx = vpn & TLB_MASK;
              const off =
                this.dataPaging && (aLo & 7) === 0 && this.tlbReadTag[idx] === aHi * 1048576 + vpn
                  ? this.tlbReadPhys[idx]! - this.ramBase + (aLo & 4095)
                  : -1;
              if (off >= 0 && off <= this.ramSize - 8) {
                const w = off >> 2;
                x[2 * rd] = this.ram32[w]!;
                x[2 * rd + 1] = this.ram32[w + 1]!;
              } else {
                const vlo = this.load(aLo, aHi, 8) | 0;
                x[2 * rd] = vlo;
                x[2 * rd + 1] = this.hi;
              }
            } else if (f3 === 2) {
              const v = this.load(aLo, aHi, 4) | 0;
              x[2 * rd] = v;
              x[2 * rd + 1] = v >> 31;
            } else if (f3 === 4) {
              x[2 * rd] = this.load(aLo, aHi, 1) & 0xff;
              x[2 * rd + 1] = 0;
            } else if (f3 === 6) {
              x[2 * rd] = this.load(aLo, aHi, 4) | 0;
              x[2 * rd + 1] = 0;
            } else done = false;
            break;
          }
          case 0x23: {
            if (f3 > 3) {
              done = false;
              break;
            }
            const imm = ((ins >> 25) << 5) | rd;
            const blo = x[2 * rs1]!;
            const aLo = (blo + imm) | 0;
            const aHi = (x[2 * rs1 + 1]! + (imm >> 31) + (aLo >>> 0 < blo >>> 0 ? 1 : 0)) | 0;
            const rs2 = (ins >> 20) & 0x1f;
            if (f3 === 3 && this.dataPaging && (aLo & 7) === 0) {
              // an aligned SD through a TLB hit to RAM that holds no translated code is written here
              const vpn = aLo >>> 12;
              const idx = vpn & TLB_MASK;
              if (this.tlbWriteTag[idx] === aHi * 1048576 + vpn) {
                const off = this.tlbWritePhys[idx]! - this.ramBase + (aLo & 4095);
                if (off >= 0 && off <= this.ramSize - 8 && this.codePages[off >>> 12] === 0) {
                  const w = off >> 2;
                  this.ram32[w] = x[2 * rs2]!;
                  this.ram32[w + 1] = x[2 * rs2 + 1]!;
                  break;
                }
              }
            }
            this.store(aLo, aHi, 1 << f3, x[2 * rs2]!, x[2 * rs2 + 1]!);
            break;
          }
          case 0x63: {
            // branches: a block ends here
            const rs2 = (ins >> 20) & 0x1f;
            const alo = x[2 * rs1]!;
            const ahi = x[2 * rs1 + 1]!;
            const blo = x[2 * rs2]!;
            const bhi = x[2 * rs2 + 1]!;
            let taken: boolean;
            if (f3 === 0) taken = alo === blo && ahi === bhi;
            else if (f3 === 1) taken = alo !== blo || ahi !== bhi;
            else if (f3 === 4) taken = ahi < bhi || (ahi === bhi && alo >>> 0 < blo >>> 0);
            else if (f3 === 5) taken = ahi > bhi || (ahi === bhi && alo >>> 0 >= blo >>> 0);
            else if (f3 === 6) taken = ahi >>> 0 < bhi >>> 0 || (ahi === bhi && alo >>> 0 < blo >>> 0);
            else if (f3 === 7) taken = ahi >>> 0 > bhi >>> 0 || (ahi === bhi && alo >>> 0 >= blo >>> 0);
            else {
              done = false;
              break;
            }
            const pcHi = this.pcHi;
            let nLo: number;
            let nHi: number;
            if (taken) {
              const imm =
                ((ins >> 31) << 12) |
                (((ins >> 7) & 1) << 11) |
                (((ins >> 25) & 0x3f) << 5) |
                (((ins >> 8) & 0xf) << 1);
              nLo = (lo + imm) | 0;
              nHi = (pcHi + (imm >> 31) + (nLo >>> 0 < lo >>> 0 ? 1 : 0)) | 0;
            } else {
              nLo = (lo + len) | 0;
              nHi = nLo >>> 0 < lo >>> 0 ? (pcHi + 1) | 0 : pcHi;
            }
            this.pcLo = nLo;
            this.pcHi = nHi;
            pending++;
            this.blockStart = true;
            break loop;
          }
          case 0x6f:
          case 0x67: {
            // JAL, JALR (f3 0): the link is written after the target is read (rd may equal rs1)
            if (op === 0x67 && f3 !== 0) {
              done = false;
              break;
            }
            const pcHi = this.pcHi;
            let tLo: number;
            let tHi: number;
            if (op === 0x6f) {
              const imm =
                ((ins >> 31) << 20) |
                (((ins >> 12) & 0xff) << 12) |
                (((ins >> 20) & 1) << 11) |
                (((ins >> 21) & 0x3ff) << 1);
              tLo = (lo + imm) | 0;
              tHi = (pcHi + (imm >> 31) + (tLo >>> 0 < lo >>> 0 ? 1 : 0)) | 0;
            } else {
              const imm = ins >> 20;
              const blo = x[2 * rs1]!;
              const sum = (blo + imm) | 0;
              tLo = sum & ~1;
              tHi = (x[2 * rs1 + 1]! + (imm >> 31) + (sum >>> 0 < blo >>> 0 ? 1 : 0)) | 0;
            }
            if (rd !== 0) {
              const nLo = (lo + len) | 0;
              x[2 * rd] = nLo;
              x[2 * rd + 1] = nLo >>> 0 < lo >>> 0 ? (pcHi + 1) | 0 : pcHi;
            }
            this.pcLo = tLo;
            this.pcHi = tHi;
            pending++;
            this.blockStart = true;
            break loop;
          }
          default:
            done = false;
        }
        if (done) {
          x[0] = 0;
          x[1] = 0;
          const nLo = (lo + len) | 0;
          if (nLo >>> 0 < lo >>> 0) this.pcHi = (this.pcHi + 1) | 0;
          this.pcLo = nLo;
          pending++;
          if ((lo ^ nLo) >>> 12 !== 0) {
            this.blockStart = true;
            break;
          }
          // a store may reach a device that raises an interrupt or stops the hart
          if (pending >= limit || this.irqCheck || this.idle || this.stopRequested) break;
          continue;
        }
        if (op === 0x73) {
          this.retired += pending - counted;
          counted = pending;
        }
        this.execute(ins, len);
        pending++;
        if (
          op === 0x63 ||
          op === 0x67 ||
          op === 0x6f ||
          op === 0x73 ||
          op === 0x0f ||
          (lo ^ this.pcLo) >>> 12 !== 0
        ) {
          this.blockStart = true;
          break;
        }
        if (pending >= limit || this.irqCheck || this.idle || this.stopRequested) break;
      }
    } catch (e) {
      this.retired += pending - counted;
      this.trapRetired = pending;
      throw e;
    }
    this.retired += pending - counted;
    return pending;
  }

  /**
   * Runs the WebAssembly interpreter from the pc (see wasm-interp.ts); returns the budget used. Instructions
   * it leaves to us run here one at a time, through `interpret`.
   */
  private interpretWasm(limit: number): number {
    const lo = this.pcLo;
    if (lo >>> 12 !== this.fetchVpn || this.pcHi !== this.fetchHi) {
      const off = this.fetchOffset(lo, this.pcHi);
      this.fetchVpn = this.fetchCacheable ? lo >>> 12 : -1;
      this.fetchHi = this.pcHi;
      this.fetchOff = off - (lo & 4095);
    }
    if (this.fetchVpn === -1) return this.interpret(limit); // PMP splits this page: every fetch is checked
    const c = this.ctl32!;
    c[CTL_NPC >> 2] = lo;
    c[(CTL_NPC >> 2) + 1] = this.pcHi;
    c[CTL_HEAT_LIMIT >> 2] = this.wasmThreshold;
    const status = this.translator!.interpret(this.fetchOff, limit);
    const n = c[CTL_RETIRED >> 2]!;
    this.retired += n;
    this.interpRetired += n;
    this.pcLo = c[CTL_NPC >> 2]!;
    this.pcHi = c[(CTL_NPC >> 2) + 1]!;
    // the page it ended in, when it translated the fetch there itself
    const fetchBase = c[CTL_FETCH_BASE >> 2]!;
    if (fetchBase < 0) this.fetchVpn = -1;
    else {
      this.fetchVpn = this.pcLo >>> 12;
      this.fetchHi = this.pcHi;
      this.fetchOff = fetchBase;
    }
    if (status === INTERP_UNHANDLED) {
      try {
        return n + this.interpret(1);
      } catch (e) {
        this.trapRetired += n;
        throw e;
      }
    }
    this.blockStart = true;
    if (status === INTERP_TRAP) {
      this.enterTrap(this.trapCause, false, this.trapTvalLo, this.trapTvalHi);
      return n + 1;
    }
    if (status === INTERP_HOT) {
      const off = this.fetchOff + (this.pcLo & 4095);
      this.compileRegion(off >>> 12, off & 4095);
    }
    return n;
  }

  /**
   * Tells the WebAssembly interpreter where on RAM page `page` to hand block starts back (the entries of
   * `region`; none once it is dropped). Only a matter of speed: see ENTRY_MAP_SLOTS.
   */
  private mapEntries(page: number, region: WasmRegion | undefined): void {
    const map = this.entryMap;
    if (map === null) return;
    const at = (page & (ENTRY_MAP_SLOTS - 1)) * ENTRY_MAP_SLOT_BYTES;
    const key = page + 1;
    map[at] = key & 0xff;
    map[at + 1] = (key >>> 8) & 0xff;
    map[at + 2] = (key >>> 16) & 0xff;
    map[at + 3] = key >>> 24;
    map.fill(0, at + 4, at + ENTRY_MAP_SLOT_BYTES);
    if (region === undefined) return;
    const entries = region.entries;
    for (let slot = 0; slot < 2048; slot++) {
      if (entries[slot]! >= 0) map[at + 4 + (slot >> 3)]! |= 1 << (slot & 7);
    }
  }

  /** True when the WebAssembly interpreter has counted visits of a block start at RAM offset `off`. */
  private interpHeatSeen(off: number): boolean {
    const heat = this.heat32;
    if (heat === null) return false;
    const at = ((off >> 1) & (HEAT_ENTRIES - 1)) * 2;
    return heat[at] === off && heat[at + 1]! > 0;
  }

  /** The translated block at RAM offset `off`, translating it once it is hot; null to interpret. */
  private blockAt(off: number): Block | null {
    const page = off >>> 12;
    const slot = (off & 4095) >> 1;
    const blocks = this.blockPages[page];
    if (blocks !== undefined) {
      const b = blocks[slot];
      if (b !== undefined) return b;
    }
    let heat = this.heatPages[page];
    if (heat === undefined) {
      heat = new Uint16Array(2048);
      this.heatPages[page] = heat;
    }
    const h = Math.min(heat[slot]! + 1, 65535);
    heat[slot] = h;
    if (h === this.wasmWarmThreshold && this.wasm) this.queueWarm(off);
    // at the region threshold (once), or at the JavaScript threshold when that is higher: compile the region
    if (
      this.wasm &&
      (h === this.wasmThreshold || (h === this.jitThreshold && this.wasmThreshold < h)) &&
      this.compileRegion(page, off & 4095)
    ) {
      return null; // the next visit runs it
    }
    if (h < this.jitThreshold) return null;
    const block = translateBlock(this.ram16, off);
    let table = blocks;
    if (table === undefined) {
      table = new Array<Block | null>(2048);
      this.blockPages[page] = table;
    }
    table[slot] = block;
    this.codePages[page] = 1;
    return block;
  }

  /** Runs a WebAssembly region from block `entry` at the current pc; returns the budget it used. */
  private runRegion(region: WasmRegion, entry: number, budget: number): number {
    const c = this.ctl32!;
    c[CTL_NPC >> 2] = this.pcLo;
    c[(CTL_NPC >> 2) + 1] = this.pcHi;
    const status =
      region.slot >= 0 ? this.translator!.enter(region.slot, entry, budget) : region.run(entry, budget);
    const n = c[CTL_RETIRED >> 2]!;
    this.retired += n;
    this.wasmRetired += n;
    if (++region.calls === REGION_TRIAL_CALLS && this.wasmAdaptive && !region.regsInMemory) {
      this.judgeRegion(region);
    }
    region.retired += n;
    this.pcLo = c[CTL_NPC >> 2]!;
    this.pcHi = c[(CTL_NPC >> 2) + 1]!;
    if (status !== 1) return n;
    this.enterTrap(this.trapCause, false, this.trapTvalLo, this.trapTvalHi);
    return n + 1;
  }

  /**
   * Drops a region whose runs are too short to pay for entering and leaving WebAssembly (code that leaves the
   * page after a few instructions, e.g. called functions returning elsewhere): its page stays in JavaScript.
   */
  private judgeRegion(region: WasmRegion): void {
    if (region.retired >= REGION_TRIAL_CALLS * REGION_MIN_RUN) return;
    const page = region.page;
    if (this.wasmPages[page] === region) {
      this.wasmPages[page] = undefined;
      this.mapEntries(page, undefined);
    }
    this.wasmCompiles[page] = 255;
  }

  /**
   * (Re)compiles the WebAssembly region of a page with `entry` (a page offset) among its entries; true when
   * the region now starts a block there.
   */
  private compileRegion(page: number, entry: number): boolean {
    if (this.reuseRegion(page, entry)) return true;
    if (!this.requestRegion(page, entry)) return false;
    this.flushRegions(true);
    return (
      this.wasmPages[page]?.entries[entry >> 1] !== undefined &&
      this.wasmPages[page]!.entries[entry >> 1]! >= 0
    );
  }

  /** Installs the cached region of a page again if the page is unchanged and the region starts at `entry`. */
  private reuseRegion(page: number, entry: number): boolean {
    const cached = this.wasmCache[page];
    if (
      cached === undefined ||
      cached.entries[entry >> 1]! < 0 ||
      cached.dmode !== this.ctl32![CTL_DMODE >> 2] ||
      !this.pageUnchanged(page, cached.bytes)
    ) {
      return false;
    }
    this.translator!.placeRegion(cached, page);
    this.wasmPages[page] = cached;
    this.mapEntries(page, cached);
    this.codePages[page] = 1;
    return true;
  }

  /** Adds `entry` to the page's next compilation; false when the page has been compiled too often. */
  private requestRegion(page: number, entry: number): boolean {
    const compiles = this.wasmCompiles[page]!;
    if (compiles >= this.wasmMaxCompiles) return false;
    let hot = this.wasmHot[page];
    if (hot === undefined) {
      const cached = this.wasmCache[page];
      hot = cached !== undefined && this.pageUnchanged(page, cached.bytes) ? [...cached.entryList] : [];
      this.wasmHot[page] = hot;
    }
    if (!hot.includes(entry)) hot.push(entry);
    if (!this.wasmPending.includes(page)) this.wasmPending.push(page);
    return true;
  }

  /** Queues a warm block start (RAM offset); the queue compiles as one module per `wasmBatch` blocks. */
  private queueWarm(off: number): void {
    // pages whose code keeps being rewritten (or data sharing a page with code) stay interpreted
    if (this.warmRewrites[off >>> 12]! >= MAX_WARM_REWRITES) return;
    if (this.warmPending.length === 0) this.warmPendingSince = this.retired;
    this.warmPending.push(off);
    if (this.warmPending.length >= this.wasmBatch) this.flushWarm();
  }

  /** Compiles the queued warm blocks (one function each, one module) and installs them. */
  private flushWarm(): void {
    const offs = this.warmPending;
    if (offs.length === 0 || this.translator === undefined) return;
    this.warmPending = [];
    const blocks = this.translator.translateBlocks(
      this.ram16,
      offs.map((off) => ({ pageOff: off & ~4095, start: off & 4095 })),
    );
    const chain = this.chain32!;
    blocks.forEach((block, i) => {
      if (block === null) return;
      const off = offs[i]!;
      const page = off >>> 12;
      let warm = this.warmPages[page];
      if (warm === undefined) {
        warm = { tix: new Int32Array(2048).fill(-1), count: 0 };
        this.warmPages[page] = warm;
      }
      warm.tix[(off & 4095) >> 1] = block.index;
      warm.count++;
      const at = ((off >> 1) & (CHAIN_ENTRIES - 1)) * 2;
      chain[at] = off;
      chain[at + 1] = block.index;
      this.codePages[page] = 1;
    });
  }

  /** Runs warm blocks from the one at `off` (table index `index`); returns the budget used. */
  private runWarm(index: number, budget: number, off: number): number {
    const c = this.ctl32!;
    c[CTL_NPC >> 2] = this.pcLo;
    c[(CTL_NPC >> 2) + 1] = this.pcHi;
    const result = this.translator!.dispatch(index, budget);
    const n = c[CTL_RETIRED >> 2]!;
    this.retired += n;
    this.wasmRetired += n;
    this.pcLo = c[CTL_NPC >> 2]!;
    this.pcHi = c[(CTL_NPC >> 2) + 1]!;
    if (result === CHAIN_PROMOTE) {
      // a block ran often enough inside chains: its page (chains never leave a page) gets a hot region
      this.compileRegion(off >>> 12, this.pcLo & 4095);
      return n;
    }
    if (result !== CHAIN_TRAP) return n;
    this.enterTrap(this.trapCause, false, this.trapTvalLo, this.trapTvalHi);
    return n + 1;
  }

  /** Forgets the chain entries of a page's warm blocks. */
  private unchainPage(page: number): void {
    const warm = this.warmPages[page];
    if (warm === undefined) return;
    const chain = this.chain32!;
    for (let slot = 0; slot < 2048; slot++) {
      if (warm.tix[slot]! < 0) continue;
      const off = page * 4096 + slot * 2;
      const at = ((off >> 1) & (CHAIN_ENTRIES - 1)) * 2;
      if (chain[at] === off) chain[at] = -1;
    }
    this.warmPages[page] = undefined;
  }

  /**
   * Compiles every pending page into one WebAssembly module and installs the regions: `hot` regions keep
   * guest registers in locals (fastest inside, but entry and exit move them); warm ones use the register
   * file in memory (cheap to enter for the short runs typical of warm code, and simpler for V8's baseline
   * compiler).
   */
  private flushRegions(hot: boolean): void {
    const pages = this.wasmPending;
    if (pages.length === 0 || this.translator === undefined) return;
    this.wasmPending = [];
    const regions = this.translator.translate(this.ram16, this.regionRequests(pages, hot));
    regions.forEach((region, i) => {
      if (region === null) return;
      const page = pages[i]!;
      this.translator!.placeRegion(region, page);
      this.wasmPages[page] = region;
      this.mapEntries(page, region);
      this.wasmCache[page] = region;
      this.codePages[page] = 1;
    });
  }

  /** The translator's requests for `pages` (counting a compilation for each). */
  private regionRequests(pages: number[], hot: boolean): RegionRequest[] {
    return pages.map((page) => {
      this.wasmCompiles[page]!++;
      const heat = this.heatPages[page];
      const blocks = this.blockPages[page];
      const executed = (o: number) =>
        (heat !== undefined && heat[o >> 1]! > 0) ||
        (blocks !== undefined && blocks[o >> 1] != null) ||
        this.interpHeatSeen(page * 4096 + o);
      // without a profiling phase (every block translated on first sight) all reachable code goes in
      return {
        pageOff: page * 4096,
        entries: this.wasmHot[page] ?? [],
        regsInMemory: !hot,
        dmode: this.ctl32![CTL_DMODE >> 2]!,
        executed: this.jitThreshold > 1 ? executed : undefined,
      };
    });
  }

  /** True when RAM page `page` still holds `bytes` (the copy taken when its region was compiled). */
  private pageUnchanged(page: number, bytes: Int32Array): boolean {
    const ram = this.ram32;
    const base = page << 10;
    for (let i = 0; i < 1024; i++) if (ram[base + i] !== bytes[i]) return false;
    return true;
  }

  /** Translated code's load slow path: the value goes to the CPU area; status 0 ok, 1 trap, 2 leave soon. */
  private wasmLoad(lo: number, hi: number, size: number): number {
    try {
      const v = this.load(lo, hi, size);
      const c = this.ctl32!;
      c[CTL_VALUE >> 2] = v;
      c[(CTL_VALUE >> 2) + 1] = this.hi;
    } catch (e) {
      if (e !== TRAP) throw e;
      return 1;
    }
    return this.irqCheck || this.stopRequested ? 2 : 0;
  }

  /** Translated code's store slow path (also where stores to translated pages drop those translations). */
  private wasmStore(lo: number, hi: number, size: number, vLo: number, vHi: number): number {
    const epoch = this.codeEpoch;
    try {
      this.store(lo, hi, size, vLo, vHi);
    } catch (e) {
      if (e !== TRAP) throw e;
      return 1;
    }
    return this.irqCheck || this.stopRequested || epoch !== this.codeEpoch ? 2 : 0;
  }

  /** Drops translations of a page the guest wrote to (self-modifying code, loaders). */
  private invalidateCode(page: number): void {
    this.blockPages[page] = undefined;
    this.heatPages[page] = undefined;
    this.wasmPages[page] = undefined;
    if (this.warmPages[page] !== undefined) {
      this.unchainPage(page);
      if (this.warmRewrites[page]! < 255) this.warmRewrites[page]!++;
    }
    this.wasmHot[page] = undefined;
    this.codePages[page] = 0;
    this.codeEpoch++;
  }

  /** Drops every translation (FENCE.I, remote fences, reset): host-side writes are not tracked. */
  flushCode(): void {
    this.flushes++;
    this.blockPages.fill(undefined);
    this.heatPages.fill(undefined);
    this.wasmPages.fill(undefined);
    this.wasmHot.fill(undefined);
    this.wasmCompiles.fill(0);
    this.wasmPending = [];
    this.warmPages.fill(undefined);
    this.warmPending = [];
    if (this.chain32 !== null) {
      for (let i = 0; i < CHAIN_ENTRIES; i++) this.chain32[2 * i] = -1;
      this.warmCounters!.fill(0);
      this.translator!.resetBlocks();
      this.warmRewrites.fill(0);
    }
    this.codePages.fill(0);
    this.codeEpoch++;
  }

  private fault(cause: number, tvalLo: number, tvalHi: number): never {
    this.trapCause = cause;
    this.trapTvalLo = tvalLo;
    this.trapTvalHi = tvalHi;
    throw TRAP;
  }

  /** Illegal instruction; tval holds the instruction bits (as QEMU reports them). */
  private illegal(): never {
    // translated blocks store the bits before calling a handler that may trap; the interpreter fetches them
    // again here (storing them for every interpreted instruction cost ~5% of its time)
    return this.fault(CAUSE.illegalInstruction, this.curBlock !== null ? this.insRaw : this.bitsAtPc(), 0);
  }

  /** The raw bits of the instruction at the pc (just fetched, so its translation cannot fault). */
  private bitsAtPc(): number {
    const lo = this.pcLo;
    const off = this.fetchOffset(lo, this.pcHi);
    const half = this.ram16[off >> 1]!;
    if ((half & 3) !== 3) return half;
    if ((lo & 4095) !== 4094) return (half | (this.ram16[(off >> 1) + 1]! << 16)) >>> 0;
    const nLo = (lo + 2) | 0;
    const nHi = nLo >>> 0 < lo >>> 0 ? (this.pcHi + 1) | 0 : this.pcHi;
    return (half | (this.ram16[this.fetchOffset(nLo, nHi) >> 1]! << 16)) >>> 0;
  }

  /** Takes the highest-priority enabled pending interrupt, if any. */
  private takeInterrupt(): boolean {
    const pending = (this.mipHw | this.mipSw) & this.mie;
    if (pending === 0) return false;
    const mEnabled = this.priv < PRIV_M || (this.mstatus & MSTATUS_MIE) !== 0;
    const sEnabled = this.priv < PRIV_S || (this.priv === PRIV_S && (this.mstatus & MSTATUS_SIE) !== 0);
    const mPending = mEnabled ? pending & ~this.mideleg : 0;
    const sPending = sEnabled ? pending & this.mideleg : 0;
    const candidates = mPending !== 0 ? mPending : sPending;
    if (candidates === 0) return false;
    for (const irq of IRQ_ORDER) {
      if (candidates & (1 << irq)) {
        this.enterTrap(irq, true, 0, 0);
        return true;
      }
    }
    return false;
  }

  /** Trap entry: delegation, status stacking and vectoring per the privileged spec. */
  enterTrap(cause: number, interrupt: boolean, tvalLo: number, tvalHi: number): void {
    const deleg = interrupt ? this.mideleg : this.medeleg;
    this.blockStart = true;
    this.resvValid[0] = 0;
    if (this.priv <= PRIV_S && ((deleg >>> cause) & 1) === 1) {
      this.scauseLo = cause;
      this.scauseHi = interrupt ? 0x80000000 | 0 : 0;
      this.sepcLo = this.pcLo;
      this.sepcHi = this.pcHi;
      this.stvalLo = tvalLo;
      this.stvalHi = tvalHi;
      let s = this.mstatus & ~(MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE);
      if (this.priv === PRIV_S) s |= MSTATUS_SPP;
      if (this.mstatus & MSTATUS_SIE) s |= MSTATUS_SPIE;
      this.mstatus = s;
      this.priv = PRIV_S;
      this.setPcVector(this.stvecLo, this.stvecHi, cause, interrupt);
    } else {
      if (this.sbi) this.sbi.handleMachineTrap(this, cause, interrupt, this.pc);
      this.mcauseLo = cause;
      this.mcauseHi = interrupt ? 0x80000000 | 0 : 0;
      this.mepcLo = this.pcLo;
      this.mepcHi = this.pcHi;
      this.mtvalLo = tvalLo;
      this.mtvalHi = tvalHi;
      let s = this.mstatus & ~(MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MIE);
      s |= this.priv << MSTATUS_MPP_SHIFT;
      if (this.mstatus & MSTATUS_MIE) s |= MSTATUS_MPIE;
      this.mstatus = s;
      this.priv = PRIV_M;
      this.setPcVector(this.mtvecLo, this.mtvecHi, cause, interrupt);
    }
    this.updateMmu();
  }

  private setPcVector(tvecLo: number, tvecHi: number, cause: number, interrupt: boolean): void {
    const base = tvecLo & ~3;
    const offset = interrupt && (tvecLo & 3) === 1 ? cause * 4 : 0;
    const lo = (base + offset) | 0;
    this.pcLo = lo;
    this.pcHi = lo >>> 0 < base >>> 0 ? (tvecHi + 1) | 0 : tvecHi;
  }

  // ---------------------------------------------------------------- address translation

  private accessFaultCause(access: number): number {
    return access === ACCESS_READ
      ? CAUSE.loadAccess
      : access === ACCESS_WRITE
        ? CAUSE.storeAccess
        : CAUSE.fetchAccess;
  }
  private pageFaultCause(access: number): number {
    return access === ACCESS_READ
      ? CAUSE.loadPageFault
      : access === ACCESS_WRITE
        ? CAUSE.storePageFault
        : CAUSE.fetchPageFault;
  }

  /** Walks the page table; fills the TLB; returns the physical address or raises a page/access fault. */
  private translateSlow(lo: number, hi: number, access: number): number {
    const paging = access === ACCESS_EXEC ? this.fetchPaging : this.dataPaging;
    if (!paging) {
      if (hi !== 0) this.fault(this.accessFaultCause(access), lo, hi);
      return lo >>> 0;
    }
    const priv = access === ACCESS_EXEC ? this.priv : this.dataPriv;
    const levels = this.satpMode === 8 ? 3 : 4;
    const top = levels === 3 ? hi >> 6 : hi >> 15;
    if (top !== 0 && top !== -1) this.fault(this.pageFaultCause(access), lo, hi);
    const vpn0 = (lo >>> 12) & 0x1ff;
    const vpn1 = (lo >>> 21) & 0x1ff;
    const vpn2 = ((lo >>> 30) | (hi << 2)) & 0x1ff;
    const vpn3 = (hi >>> 7) & 0x1ff;
    let table = this.satpPpn * 4096;
    for (let level = levels - 1; level >= 0; level--) {
      const vpn = level === 0 ? vpn0 : level === 1 ? vpn1 : level === 2 ? vpn2 : vpn3;
      const pteAddr = table + vpn * 8;
      const off = pteAddr - this.ramBase;
      if (off < 0 || off + 8 > this.ramSize) this.fault(this.accessFaultCause(access), lo, hi);
      const pteLo = this.ram32[off >> 2]!;
      const pteHi = this.ram32[(off >> 2) + 1]!;
      if ((pteLo & 1) === 0 || (pteLo & 6) === 4 || pteHi >>> 22 !== 0) {
        this.fault(this.pageFaultCause(access), lo, hi);
      }
      const ppn = (pteHi & 0x3fffff) * 4194304 + (pteLo >>> 10);
      if ((pteLo & 0xa) === 0) {
        // pointer to the next level
        if (level === 0 || (pteLo & 0xd0) !== 0) this.fault(this.pageFaultCause(access), lo, hi);
        table = ppn * 4096;
        continue;
      }
      // leaf: permission checks
      const r = (pteLo & 2) !== 0;
      const w = (pteLo & 4) !== 0;
      const xb = (pteLo & 8) !== 0;
      const u = (pteLo & 16) !== 0;
      let ok: boolean;
      if (access === ACCESS_EXEC) ok = xb;
      else if (access === ACCESS_READ) ok = r || (xb && (this.mstatus & MSTATUS_MXR) !== 0);
      else ok = w;
      if (priv === PRIV_U && !u) ok = false;
      if (priv === PRIV_S && u && (access === ACCESS_EXEC || (this.mstatus & MSTATUS_SUM) === 0)) ok = false;
      if (!ok) this.fault(this.pageFaultCause(access), lo, hi);
      const lowMask = level === 0 ? 0 : 2 ** (9 * level) - 1;
      if (level > 0 && ppn % (lowMask + 1) !== 0) this.fault(this.pageFaultCause(access), lo, hi);
      // hardware A/D update (as QEMU does)
      let newPte = pteLo | 0x40;
      if (access === ACCESS_WRITE) newPte |= 0x80;
      if (newPte !== pteLo) this.ram32[off >> 2] = newPte;
      const vpnLow =
        level === 0
          ? 0
          : level === 1
            ? vpn0
            : level === 2
              ? vpn1 * 512 + vpn0
              : (vpn2 * 512 + vpn1) * 512 + vpn0;
      const pagePhys = (ppn + vpnLow) * 4096;
      if (access === ACCESS_EXEC ? this.pmpFetch : this.pmpData) {
        if (!this.pmpAllows(pagePhys + (lo & 4095), 1, access, priv)) {
          this.fault(this.accessFaultCause(access), lo, hi);
        }
        if (!this.pmpPageUniform(pagePhys)) {
          if (access === ACCESS_EXEC) this.fetchCacheable = false;
          return pagePhys + (lo & 4095);
        }
      }
      const vpnKey = hi * 1048576 + (lo >>> 12);
      const idx = (lo >>> 12) & TLB_MASK;
      if (access === ACCESS_EXEC) {
        this.tlbExecTag[idx] = vpnKey;
        this.tlbExecPhys[idx] = pagePhys;
      } else if (access === ACCESS_READ) {
        this.tlbReadTag[idx] = vpnKey;
        this.tlbReadPhys[idx] = pagePhys;
      } else {
        this.tlbWriteTag[idx] = vpnKey;
        this.tlbWritePhys[idx] = pagePhys;
        // a write implies the page is also readable for our purposes only if R is set
        if (r) {
          this.tlbReadTag[idx] = vpnKey;
          this.tlbReadPhys[idx] = pagePhys;
        }
      }
      return pagePhys + (lo & 4095);
    }
    return this.fault(this.pageFaultCause(access), lo, hi);
  }

  /** Decodes pmpcfg/pmpaddr into address ranges (after any PMP CSR write). */
  private recomputePmp(): void {
    this.pmpActive = false;
    this.pmpAnyLocked = false;
    for (let i = 0; i < 16; i++) {
      const cfg = this.pmpcfg[i]!;
      const mode = (cfg >> 3) & 3;
      const lo = this.pmpaddrLo[i]!;
      const hi = this.pmpaddrHi[i]!;
      const addr = hi * TWO32 + lo;
      let start = 0;
      let end = 0;
      if (mode === 1) {
        start = i === 0 ? 0 : (this.pmpaddrHi[i - 1]! * TWO32 + this.pmpaddrLo[i - 1]!) * 4;
        end = addr * 4;
      } else if (mode === 2) {
        start = addr * 4;
        end = start + 4;
      } else if (mode === 3) {
        // NAPOT: trailing ones t give a 2^(t+3)-byte region
        let ones = 0;
        while (ones < 32 && ((lo >>> ones) & 1) === 1) ones++;
        if (ones === 32) while (ones < 54 && ((hi >>> (ones - 32)) & 1) === 1) ones++;
        const loCleared = ones >= 32 ? 0 : (lo & ~((2 ** ones - 1) | 0)) >>> 0;
        const hiCleared = ones <= 32 ? hi : (hi & ~((2 ** (ones - 32) - 1) | 0)) >>> 0;
        start = (hiCleared * TWO32 + loCleared) * 4;
        end = start + 2 ** (ones + 3);
      }
      this.pmpStart[i] = start;
      this.pmpEnd[i] = end;
      if (mode !== 0 && end > start) this.pmpActive = true;
      if (cfg & 0x80) this.pmpAnyLocked = true;
    }
    this.updateMmu(true);
  }

  /** PMP check of [pa, pa+size) for an access at privilege `priv` (R=1, W=2, X=4 in pmpcfg). */
  private pmpAllows(pa: number, size: number, access: number, priv: number): boolean {
    const need = access === ACCESS_READ ? 1 : access === ACCESS_WRITE ? 2 : 4;
    for (let i = 0; i < 16; i++) {
      const start = this.pmpStart[i]!;
      const end = this.pmpEnd[i]!;
      const cfg = this.pmpcfg[i]!;
      if ((cfg & 0x18) === 0 || end <= start) continue;
      if (pa + size <= start || pa >= end) continue;
      if (pa < start || pa + size > end) return false; // partial match fails
      if (priv === PRIV_M && (cfg & 0x80) === 0) return true;
      return (cfg & need) !== 0;
    }
    return priv === PRIV_M;
  }

  /** True when one PMP decision covers the whole 4 KiB page, so a translation may be cached. */
  private pmpPageUniform(page: number): boolean {
    for (let i = 0; i < 16; i++) {
      const start = this.pmpStart[i]!;
      const end = this.pmpEnd[i]!;
      if ((this.pmpcfg[i]! & 0x18) === 0 || end <= start) continue;
      if (page + 4096 <= start || page >= end) continue;
      return page >= start && page + 4096 <= end;
    }
    return true;
  }

  /**
   * Translates a data address for reading; returns it relative to the RAM base (a small integer for RAM, so
   * no boxed number crosses the call; MMIO addresses come out negative or beyond RAM).
   */
  private readAddr(lo: number, hi: number, size: number): number {
    if (!this.dataPaging) {
      if (hi !== 0) this.fault(CAUSE.loadAccess, lo, hi);
      if (this.pmpData && !this.pmpAllows(lo >>> 0, size, ACCESS_READ, this.dataPriv)) {
        this.fault(CAUSE.loadAccess, lo, hi);
      }
      return (lo >>> 0) - this.ramBase;
    }
    const vpn = lo >>> 12;
    const idx = vpn & TLB_MASK;
    if (this.tlbReadTag[idx] === hi * 1048576 + vpn)
      return this.tlbReadPhys[idx]! - this.ramBase + (lo & 4095);
    return this.translateSlow(lo, hi, ACCESS_READ) - this.ramBase;
  }

  /** As readAddr, for writing. */
  private writeAddr(lo: number, hi: number, size: number): number {
    if (!this.dataPaging) {
      if (hi !== 0) this.fault(CAUSE.storeAccess, lo, hi);
      if (this.pmpData && !this.pmpAllows(lo >>> 0, size, ACCESS_WRITE, this.dataPriv)) {
        this.fault(CAUSE.storeAccess, lo, hi);
      }
      return (lo >>> 0) - this.ramBase;
    }
    const vpn = lo >>> 12;
    const idx = vpn & TLB_MASK;
    if (this.tlbWriteTag[idx] === hi * 1048576 + vpn)
      return this.tlbWritePhys[idx]! - this.ramBase + (lo & 4095);
    return this.translateSlow(lo, hi, ACCESS_WRITE) - this.ramBase;
  }

  // ---------------------------------------------------------------- physical access

  private mmioRead(pa: number, size: number, lo: number, hi: number): number {
    if (size === 8) {
      const a = this.bus.read(pa, 4);
      const b = this.bus.read(pa + 4, 4);
      if (a < 0 || b < 0) this.fault(CAUSE.loadAccess, lo, hi);
      this.hi = b | 0;
      return a | 0;
    }
    const v = this.bus.read(pa, size);
    if (v < 0) this.fault(CAUSE.loadAccess, lo, hi);
    return v;
  }

  private mmioWrite(pa: number, size: number, vLo: number, vHi: number, lo: number, hi: number): void {
    if (size === 8) {
      if (!this.bus.write(pa, 4, vLo) || !this.bus.write(pa + 4, 4, vHi))
        this.fault(CAUSE.storeAccess, lo, hi);
      return;
    }
    if (!this.bus.write(pa, size, size === 4 ? vLo : vLo & ((1 << (size * 8)) - 1))) {
      this.fault(CAUSE.storeAccess, lo, hi);
    }
  }

  /** Loads `size` bytes (1/2/4/8) at virtual lo:hi, zero-extended (64-bit: high word in this.hi). */
  private load(lo: number, hi: number, size: number): number {
    if ((lo & 4095) > 4096 - size) return this.loadSplit(lo, hi, size);
    const off = this.readAddr(lo, hi, size);
    if (off >= 0 && off <= this.ramSize - size) {
      switch (size) {
        case 1:
          return this.ram8[off]!;
        case 2:
          return off & 1 ? this.ramView.getUint16(off, true) : this.ram16[off >> 1]!;
        case 4:
          return off & 3 ? this.ramView.getInt32(off, true) : this.ram32[off >> 2]!;
        default:
          if (off & 7) {
            this.hi = this.ramView.getInt32(off + 4, true);
            return this.ramView.getInt32(off, true);
          }
          this.hi = this.ram32[(off >> 2) + 1]!;
          return this.ram32[off >> 2]!;
      }
    }
    return this.mmioRead(off + this.ramBase, size, lo, hi);
  }

  /** A misaligned load that crosses a page: byte by byte, each byte translated. */
  private loadSplit(lo: number, hi: number, size: number): number {
    let vLo = 0;
    let vHi = 0;
    for (let i = 0; i < size; i++) {
      const aLo = (lo + i) | 0;
      const aHi = aLo >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi;
      const b = this.load(aLo, aHi, 1);
      if (i < 4) vLo |= b << (8 * i);
      else vHi |= b << (8 * (i - 4));
    }
    this.hi = vHi;
    return vLo;
  }

  private store(lo: number, hi: number, size: number, vLo: number, vHi: number): void {
    if ((lo & 4095) > 4096 - size) {
      // translate every byte first so a fault leaves memory untouched
      for (let i = 0; i < size; i++) {
        const aLo = (lo + i) | 0;
        this.writeAddr(aLo, aLo >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi, 1);
      }
      for (let i = 0; i < size; i++) {
        const aLo = (lo + i) | 0;
        const b = i < 4 ? vLo >>> (8 * i) : vHi >>> (8 * (i - 4));
        this.store(aLo, aLo >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi, 1, b & 0xff, 0);
      }
      return;
    }
    const off = this.writeAddr(lo, hi, size);
    if (off >= 0 && off <= this.ramSize - size) {
      if (this.codePages[off >>> 12] !== 0) this.invalidateCode(off >>> 12);
      switch (size) {
        case 1:
          this.ram8[off] = vLo;
          return;
        case 2:
          if (off & 1) this.ramView.setUint16(off, vLo, true);
          else this.ram16[off >> 1] = vLo;
          return;
        case 4:
          if (off & 3) this.ramView.setInt32(off, vLo, true);
          else this.ram32[off >> 2] = vLo;
          return;
        default:
          if (off & 7) {
            this.ramView.setInt32(off, vLo, true);
            this.ramView.setInt32(off + 4, vHi, true);
          } else {
            this.ram32[off >> 2] = vLo;
            this.ram32[(off >> 2) + 1] = vHi;
          }
          return;
      }
    }
    this.mmioWrite(off + this.ramBase, size, vLo, vHi, lo, hi);
  }

  // ---------------------------------------------------------------- fetch

  private fetchOffset(lo: number, hi: number): number {
    // each branch computes the RAM-relative offset itself: a shared physical-address variable mixing a call
    // result with a float would be boxed on every fetch
    let off: number;
    this.fetchCacheable = true;
    if (!this.fetchPaging) {
      if (hi !== 0) this.fault(CAUSE.fetchAccess, lo, hi);
      const pa = lo >>> 0;
      if (this.pmpFetch) {
        if (!this.pmpAllows(pa, 2, ACCESS_EXEC, this.priv)) this.fault(CAUSE.fetchAccess, lo, hi);
        if (!this.pmpPageUniform(pa - (pa % 4096))) this.fetchCacheable = false;
      }
      off = pa - this.ramBase;
    } else {
      const vpn = lo >>> 12;
      const idx = vpn & TLB_MASK;
      off =
        this.tlbExecTag[idx] === hi * 1048576 + vpn
          ? this.tlbExecPhys[idx]! - this.ramBase + (lo & 4095)
          : this.translateSlow(lo, hi, ACCESS_EXEC) - this.ramBase;
    }
    if (off < 0 || off >= this.ramSize) this.fault(CAUSE.fetchAccess, lo, hi);
    return off;
  }

  /** The upper half of a 32-bit instruction whose lower half ends the page at `lo`. */
  private fetchUpperHalf(lo: number): number {
    const nLo = (lo + 2) | 0;
    const nHi = nLo >>> 0 < lo >>> 0 ? (this.pcHi + 1) | 0 : this.pcHi;
    return this.ram16[this.fetchOffset(nLo, nHi) >> 1]!;
  }

  private step(): void {
    const lo = this.pcLo;
    let off: number;
    if (lo >>> 12 === this.fetchVpn && this.pcHi === this.fetchHi) {
      off = this.fetchOff + (lo & 4095);
    } else {
      off = this.fetchOffset(lo, this.pcHi);
      this.fetchVpn = this.fetchCacheable ? lo >>> 12 : -1;
      this.fetchHi = this.pcHi;
      this.fetchOff = off - (lo & 4095);
    }
    const half = this.ram16[off >> 1]!;
    let ins: number;
    if ((half & 3) !== 3) {
      ins = EXPANDED_COMPRESSED[half] || expandedCompressed(half);
      if (ins === 0) this.illegal();
      this.execute(ins, 2);
    } else {
      if ((lo & 4095) === 4094) {
        const nLo = (lo + 2) | 0;
        const nHi = nLo >>> 0 < lo >>> 0 ? (this.pcHi + 1) | 0 : this.pcHi;
        const upperOff = this.fetchOffset(nLo, nHi);
        ins = half | (this.ram16[upperOff >> 1]! << 16);
      } else {
        ins = half | (this.ram16[(off >> 1) + 1]! << 16);
      }
      this.execute(ins, 4);
    }
    const op = ins & 0x7f;
    if (
      op === 0x63 ||
      op === 0x67 ||
      op === 0x6f ||
      op === 0x73 ||
      op === 0x0f ||
      (lo ^ this.pcLo) >>> 12 !== 0
    ) {
      this.blockStart = true;
    }
  }

  // ---------------------------------------------------------------- execute

  private execute(ins: number, len: number): void {
    const x = this.x;
    const pcLo = this.pcLo;
    const pcHi = this.pcHi;
    let nLo = (pcLo + len) | 0;
    let nHi = nLo >>> 0 < pcLo >>> 0 ? (pcHi + 1) | 0 : pcHi;
    const rd = (ins >> 7) & 0x1f;
    const rs1 = (ins >> 15) & 0x1f;
    const rs2 = (ins >> 20) & 0x1f;
    const f3 = (ins >> 12) & 7;
    switch (ins & 0x7f) {
      case 0x37: // LUI
        x[2 * rd] = ins & 0xfffff000;
        x[2 * rd + 1] = ins >> 31;
        break;
      case 0x17: {
        // AUIPC
        const imm = ins & 0xfffff000;
        const rlo = (pcLo + imm) | 0;
        x[2 * rd + 1] = (pcHi + (imm >> 31) + (rlo >>> 0 < pcLo >>> 0 ? 1 : 0)) | 0;
        x[2 * rd] = rlo;
        break;
      }
      case 0x6f: {
        // JAL
        const imm =
          ((ins >> 31) << 20) |
          (((ins >> 12) & 0xff) << 12) |
          (((ins >> 20) & 1) << 11) |
          (((ins >> 21) & 0x3ff) << 1);
        x[2 * rd] = nLo;
        x[2 * rd + 1] = nHi;
        nLo = (pcLo + imm) | 0;
        nHi = (pcHi + (imm >> 31) + (nLo >>> 0 < pcLo >>> 0 ? 1 : 0)) | 0;
        break;
      }
      case 0x67: {
        // JALR
        if (f3 !== 0) this.illegal();
        const imm = ins >> 20;
        const blo = x[2 * rs1]!;
        const tLo = ((blo + imm) | 0) & ~1;
        const tHi = (x[2 * rs1 + 1]! + (imm >> 31) + (((blo + imm) | 0) >>> 0 < blo >>> 0 ? 1 : 0)) | 0;
        x[2 * rd] = nLo;
        x[2 * rd + 1] = nHi;
        nLo = tLo;
        nHi = tHi;
        break;
      }
      case 0x63: {
        // branches
        const alo = x[2 * rs1]!;
        const ahi = x[2 * rs1 + 1]!;
        const blo = x[2 * rs2]!;
        const bhi = x[2 * rs2 + 1]!;
        let taken: boolean;
        switch (f3) {
          case 0:
            taken = alo === blo && ahi === bhi;
            break;
          case 1:
            taken = alo !== blo || ahi !== bhi;
            break;
          case 4:
            taken = ahi < bhi || (ahi === bhi && alo >>> 0 < blo >>> 0);
            break;
          case 5:
            taken = ahi > bhi || (ahi === bhi && alo >>> 0 >= blo >>> 0);
            break;
          case 6:
            taken = ahi >>> 0 < bhi >>> 0 || (ahi === bhi && alo >>> 0 < blo >>> 0);
            break;
          case 7:
            taken = ahi >>> 0 > bhi >>> 0 || (ahi === bhi && alo >>> 0 >= blo >>> 0);
            break;
          default:
            this.illegal();
        }
        if (taken) {
          const imm =
            ((ins >> 31) << 12) |
            (((ins >> 7) & 1) << 11) |
            (((ins >> 25) & 0x3f) << 5) |
            (((ins >> 8) & 0xf) << 1);
          nLo = (pcLo + imm) | 0;
          nHi = (pcHi + (imm >> 31) + (nLo >>> 0 < pcLo >>> 0 ? 1 : 0)) | 0;
        }
        break;
      }
      case 0x03: {
        // loads
        const imm = ins >> 20;
        const blo = x[2 * rs1]!;
        const aLo = (blo + imm) | 0;
        const aHi = (x[2 * rs1 + 1]! + (imm >> 31) + (aLo >>> 0 < blo >>> 0 ? 1 : 0)) | 0;
        let vlo: number;
        let vhi: number;
        switch (f3) {
          case 0:
            vlo = (this.load(aLo, aHi, 1) << 24) >> 24;
            vhi = vlo >> 31;
            break;
          case 1:
            vlo = (this.load(aLo, aHi, 2) << 16) >> 16;
            vhi = vlo >> 31;
            break;
          case 2:
            vlo = this.load(aLo, aHi, 4) | 0;
            vhi = vlo >> 31;
            break;
          case 3:
            vlo = this.load(aLo, aHi, 8) | 0;
            vhi = this.hi;
            break;
          case 4:
            vlo = this.load(aLo, aHi, 1) & 0xff;
            vhi = 0;
            break;
          case 5:
            vlo = this.load(aLo, aHi, 2) & 0xffff;
            vhi = 0;
            break;
          case 6:
            vlo = this.load(aLo, aHi, 4) | 0;
            vhi = 0;
            break;
          default:
            this.illegal();
        }
        x[2 * rd] = vlo;
        x[2 * rd + 1] = vhi;
        break;
      }
      case 0x23: {
        // stores
        if (f3 > 3) this.illegal();
        const imm = ((ins >> 25) << 5) | ((ins >> 7) & 0x1f);
        const blo = x[2 * rs1]!;
        const aLo = (blo + imm) | 0;
        const aHi = (x[2 * rs1 + 1]! + (imm >> 31) + (aLo >>> 0 < blo >>> 0 ? 1 : 0)) | 0;
        this.store(aLo, aHi, 1 << f3, x[2 * rs2]!, x[2 * rs2 + 1]!);
        break;
      }
      case 0x13: {
        // OP-IMM
        const imm = ins >> 20;
        const alo = x[2 * rs1]!;
        const ahi = x[2 * rs1 + 1]!;
        switch (f3) {
          case 0: {
            const r = (alo + imm) | 0;
            x[2 * rd + 1] = (ahi + (imm >> 31) + (r >>> 0 < alo >>> 0 ? 1 : 0)) | 0;
            x[2 * rd] = r;
            break;
          }
          case 1:
            if (imm >>> 6 !== 0) this.illegal();
            this.shiftLeft(rd, alo, ahi, imm & 63);
            break;
          case 2: {
            const ihi = imm >> 31;
            x[2 * rd] = ahi < ihi || (ahi === ihi && alo >>> 0 < imm >>> 0) ? 1 : 0;
            x[2 * rd + 1] = 0;
            break;
          }
          case 3: {
            const ihi = imm >> 31;
            x[2 * rd] = ahi >>> 0 < ihi >>> 0 || (ahi === ihi && alo >>> 0 < imm >>> 0) ? 1 : 0;
            x[2 * rd + 1] = 0;
            break;
          }
          case 4:
            x[2 * rd] = alo ^ imm;
            x[2 * rd + 1] = ahi ^ (imm >> 31);
            break;
          case 5: {
            const top = imm >>> 6;
            if (top === 0) this.shiftRightLogical(rd, alo, ahi, imm & 63);
            else if (top === 0x10) this.shiftRightArith(rd, alo, ahi, imm & 63);
            else this.illegal();
            break;
          }
          case 6:
            x[2 * rd] = alo | imm;
            x[2 * rd + 1] = ahi | (imm >> 31);
            break;
          default:
            x[2 * rd] = alo & imm;
            x[2 * rd + 1] = ahi & (imm >> 31);
        }
        break;
      }
      case 0x1b: {
        // OP-IMM-32
        const imm = ins >> 20;
        const a = x[2 * rs1]!;
        let r: number;
        if (f3 === 0) r = (a + imm) | 0;
        else if (f3 === 1 && imm >>> 5 === 0) r = a << (imm & 31);
        else if (f3 === 5 && imm >>> 5 === 0) r = a >>> (imm & 31);
        else if (f3 === 5 && imm >>> 5 === 0x20) r = a >> (imm & 31);
        else this.illegal();
        x[2 * rd] = r;
        x[2 * rd + 1] = r >> 31;
        break;
      }
      case 0x33:
        this.executeOp(ins, rd, rs1, rs2, f3);
        break;
      case 0x3b:
        this.executeOp32(ins, rd, rs1, rs2, f3);
        break;
      case 0x0f:
        // FENCE (incl. PAUSE) and FENCE.I: memory is coherent and we keep no decoded code
        if (f3 === 1) {
          this.fetchVpn = -1;
          this.flushCode();
        } else if (f3 !== 0) this.illegal();
        break;
      case 0x73:
        if (this.executeSystem(ins, rd, rs1, f3)) return; // pc already set
        break;
      case 0x2f:
        this.executeAtomic(ins, rd, rs1, rs2, f3);
        break;
      case 0x07:
      case 0x27:
      case 0x43:
      case 0x47:
      case 0x4b:
      case 0x4f:
      case 0x53:
        this.executeFloat(ins, rd, rs1, rs2, f3);
        break;
      default:
        this.illegal();
    }
    x[0] = 0;
    x[1] = 0;
    this.pcLo = nLo;
    this.pcHi = nHi;
  }

  private shiftLeft(rd: number, lo: number, hi: number, s: number): void {
    const x = this.x;
    if (s === 0) {
      x[2 * rd] = lo;
      x[2 * rd + 1] = hi;
    } else if (s < 32) {
      x[2 * rd + 1] = (hi << s) | (lo >>> (32 - s));
      x[2 * rd] = lo << s;
    } else {
      x[2 * rd + 1] = lo << (s - 32);
      x[2 * rd] = 0;
    }
  }

  private shiftRightLogical(rd: number, lo: number, hi: number, s: number): void {
    const x = this.x;
    if (s === 0) {
      x[2 * rd] = lo;
      x[2 * rd + 1] = hi;
    } else if (s < 32) {
      x[2 * rd] = (lo >>> s) | (hi << (32 - s));
      x[2 * rd + 1] = hi >>> s;
    } else {
      x[2 * rd] = hi >>> (s - 32);
      x[2 * rd + 1] = 0;
    }
  }

  private shiftRightArith(rd: number, lo: number, hi: number, s: number): void {
    const x = this.x;
    if (s === 0) {
      x[2 * rd] = lo;
      x[2 * rd + 1] = hi;
    } else if (s < 32) {
      x[2 * rd] = (lo >>> s) | (hi << (32 - s));
      x[2 * rd + 1] = hi >> s;
    } else {
      x[2 * rd] = hi >> (s - 32);
      x[2 * rd + 1] = hi >> 31;
    }
  }

  private executeOp(ins: number, rd: number, rs1: number, rs2: number, f3: number): void {
    const x = this.x;
    const alo = x[2 * rs1]!;
    const ahi = x[2 * rs1 + 1]!;
    const blo = x[2 * rs2]!;
    const bhi = x[2 * rs2 + 1]!;
    const f7 = ins >>> 25;
    if (f7 === 0) {
      switch (f3) {
        case 0: {
          const r = (alo + blo) | 0;
          x[2 * rd + 1] = (ahi + bhi + (r >>> 0 < alo >>> 0 ? 1 : 0)) | 0;
          x[2 * rd] = r;
          return;
        }
        case 1:
          this.shiftLeft(rd, alo, ahi, blo & 63);
          return;
        case 2:
          x[2 * rd] = ahi < bhi || (ahi === bhi && alo >>> 0 < blo >>> 0) ? 1 : 0;
          x[2 * rd + 1] = 0;
          return;
        case 3:
          x[2 * rd] = ahi >>> 0 < bhi >>> 0 || (ahi === bhi && alo >>> 0 < blo >>> 0) ? 1 : 0;
          x[2 * rd + 1] = 0;
          return;
        case 4:
          x[2 * rd] = alo ^ blo;
          x[2 * rd + 1] = ahi ^ bhi;
          return;
        case 5:
          this.shiftRightLogical(rd, alo, ahi, blo & 63);
          return;
        case 6:
          x[2 * rd] = alo | blo;
          x[2 * rd + 1] = ahi | bhi;
          return;
        default:
          x[2 * rd] = alo & blo;
          x[2 * rd + 1] = ahi & bhi;
          return;
      }
    }
    if (f7 === 0x20) {
      if (f3 === 0) {
        const r = (alo - blo) | 0;
        x[2 * rd + 1] = (ahi - bhi - (alo >>> 0 < blo >>> 0 ? 1 : 0)) | 0;
        x[2 * rd] = r;
        return;
      }
      if (f3 === 5) {
        this.shiftRightArith(rd, alo, ahi, blo & 63);
        return;
      }
      this.illegal();
    }
    if (f7 !== 1) this.illegal();
    // M extension
    switch (f3) {
      case 0: {
        // MUL: low 64 bits of the product
        const lo = Math.imul(alo, blo);
        const hi = (mulHiU32(alo, blo) + Math.imul(alo, bhi) + Math.imul(ahi, blo)) | 0;
        x[2 * rd] = lo;
        x[2 * rd + 1] = hi;
        return;
      }
      case 1:
        this.setXBig(rd, (toBigSigned(alo, ahi) * toBigSigned(blo, bhi)) >> 64n);
        return;
      case 2:
        this.setXBig(rd, (toBigSigned(alo, ahi) * toBig(blo, bhi)) >> 64n);
        return;
      case 3:
        this.setXBig(rd, (toBig(alo, ahi) * toBig(blo, bhi)) >> 64n);
        return;
      case 4: // DIV
        if (blo === 0 && bhi === 0) {
          x[2 * rd] = -1;
          x[2 * rd + 1] = -1;
        } else if (ahi === alo >> 31 && bhi === blo >> 31) {
          const q = Math.trunc(alo / blo); // 2^31 / -1 needs 33 bits: still exact as a Number
          this.setSmall(rd, q);
        } else if (alo === 0 && ahi === (0x80000000 | 0) && blo === -1 && bhi === -1) {
          x[2 * rd] = alo;
          x[2 * rd + 1] = ahi;
        } else {
          this.setXBig(rd, toBigSigned(alo, ahi) / toBigSigned(blo, bhi));
        }
        return;
      case 5: // DIVU
        if (blo === 0 && bhi === 0) {
          x[2 * rd] = -1;
          x[2 * rd + 1] = -1;
        } else if (ahi === 0 && bhi === 0) {
          x[2 * rd] = Math.floor((alo >>> 0) / (blo >>> 0)) | 0;
          x[2 * rd + 1] = 0;
        } else {
          this.setXBig(rd, toBig(alo, ahi) / toBig(blo, bhi));
        }
        return;
      case 6: // REM
        if (blo === 0 && bhi === 0) {
          x[2 * rd] = alo;
          x[2 * rd + 1] = ahi;
        } else if (ahi === alo >> 31 && bhi === blo >> 31) {
          const r = alo % blo;
          x[2 * rd] = r | 0;
          x[2 * rd + 1] = r < 0 || Object.is(r, -0) ? (r === 0 ? 0 : -1) : 0;
        } else if (alo === 0 && ahi === (0x80000000 | 0) && blo === -1 && bhi === -1) {
          x[2 * rd] = 0;
          x[2 * rd + 1] = 0;
        } else {
          this.setXBig(rd, toBigSigned(alo, ahi) % toBigSigned(blo, bhi));
        }
        return;
      default: // REMU
        if (blo === 0 && bhi === 0) {
          x[2 * rd] = alo;
          x[2 * rd + 1] = ahi;
        } else if (ahi === 0 && bhi === 0) {
          x[2 * rd] = ((alo >>> 0) % (blo >>> 0)) | 0;
          x[2 * rd + 1] = 0;
        } else {
          this.setXBig(rd, toBig(alo, ahi) % toBig(blo, bhi));
        }
        return;
    }
  }

  /** Writes a signed integer Number (|v| < 2^53) to x[rd]. */
  private setSmall(rd: number, v: number): void {
    this.x[2 * rd] = v | 0;
    this.x[2 * rd + 1] = Math.floor(v / TWO32) | 0;
  }

  private executeOp32(ins: number, rd: number, rs1: number, rs2: number, f3: number): void {
    const x = this.x;
    const a = x[2 * rs1]!;
    const b = x[2 * rs2]!;
    const f7 = ins >>> 25;
    let r: number;
    if (f7 === 0) {
      if (f3 === 0) r = (a + b) | 0;
      else if (f3 === 1) r = a << (b & 31);
      else if (f3 === 5) r = a >>> (b & 31);
      else this.illegal();
    } else if (f7 === 0x20) {
      if (f3 === 0) r = (a - b) | 0;
      else if (f3 === 5) r = a >> (b & 31);
      else this.illegal();
    } else if (f7 === 1) {
      switch (f3) {
        case 0:
          r = Math.imul(a, b);
          break;
        case 4:
          r = b === 0 ? -1 : a === (0x80000000 | 0) && b === -1 ? a : Math.trunc(a / b) | 0;
          break;
        case 5:
          r = b === 0 ? -1 : Math.floor((a >>> 0) / (b >>> 0)) | 0;
          break;
        case 6:
          r = b === 0 ? a : b === -1 ? 0 : (a % b) | 0;
          break;
        case 7:
          r = b === 0 ? a : ((a >>> 0) % (b >>> 0)) | 0;
          break;
        default:
          this.illegal();
      }
    } else {
      this.illegal();
    }
    x[2 * rd] = r;
    x[2 * rd + 1] = r >> 31;
  }

  // ---------------------------------------------------------------- atomics

  private executeAtomic(ins: number, rd: number, rs1: number, rs2: number, f3: number): void {
    if (f3 !== 2 && f3 !== 3) this.illegal();
    const x = this.x;
    const size = f3 === 2 ? 4 : 8;
    const aLo = x[2 * rs1]!;
    const aHi = x[2 * rs1 + 1]!;
    const funct5 = ins >>> 27;
    if (funct5 === 2) {
      // LR
      if (rs2 !== 0) this.illegal();
      if (aLo & (size - 1)) this.fault(CAUSE.misalignedLoad, aLo, aHi);
      const v = this.load(aLo, aHi, size);
      x[2 * rd] = v;
      x[2 * rd + 1] = size === 4 ? v >> 31 : this.hi;
      this.resvValid[0] = 1;
      this.resvAddr[0] = aLo;
      this.resvAddr[1] = aHi;
      return;
    }
    if (funct5 === 3) {
      // SC: a failing SC performs no access, so (as on QEMU) it raises nothing
      const ok = this.resvValid[0] === 1 && this.resvAddr[0] === aLo && this.resvAddr[1] === aHi;
      this.resvValid[0] = 0;
      if (ok) {
        if (aLo & (size - 1)) this.fault(CAUSE.misalignedStore, aLo, aHi);
        this.store(aLo, aHi, size, x[2 * rs2]!, x[2 * rs2 + 1]!);
        x[2 * rd] = 0;
      } else {
        x[2 * rd] = 1;
      }
      x[2 * rd + 1] = 0;
      return;
    }
    // AMO: misaligned is a store/AMO fault per the spec (QEMU 7.2 reports a load fault here)
    if (aLo & (size - 1)) this.fault(CAUSE.misalignedStore, aLo, aHi);
    // check writability first so a page fault is a store/AMO fault
    this.writeAddr(aLo, aHi, size);
    const oldLo = this.load(aLo, aHi, size) | 0;
    const oldHi = size === 4 ? oldLo >> 31 : this.hi;
    const bLo = x[2 * rs2]!;
    const bHi = size === 4 ? bLo >> 31 : x[2 * rs2 + 1]!;
    let nLo: number;
    let nHi: number;
    switch (funct5) {
      case 1: // AMOSWAP
        nLo = bLo;
        nHi = bHi;
        break;
      case 0: {
        // AMOADD
        nLo = (oldLo + bLo) | 0;
        nHi = (oldHi + bHi + (nLo >>> 0 < oldLo >>> 0 ? 1 : 0)) | 0;
        break;
      }
      case 4:
        nLo = oldLo ^ bLo;
        nHi = oldHi ^ bHi;
        break;
      case 12:
        nLo = oldLo & bLo;
        nHi = oldHi & bHi;
        break;
      case 8:
        nLo = oldLo | bLo;
        nHi = oldHi | bHi;
        break;
      case 16:
      case 20:
      case 24:
      case 28: {
        const signed = funct5 === 16 || funct5 === 20;
        const wantMin = funct5 === 16 || funct5 === 24;
        const less = signed
          ? oldHi < bHi || (oldHi === bHi && oldLo >>> 0 < bLo >>> 0)
          : oldHi >>> 0 < bHi >>> 0 || (oldHi === bHi && oldLo >>> 0 < bLo >>> 0);
        const pickOld = wantMin ? less : !less;
        nLo = pickOld ? oldLo : bLo;
        nHi = pickOld ? oldHi : bHi;
        break;
      }
      default:
        this.illegal();
    }
    this.store(aLo, aHi, size, nLo, nHi);
    x[2 * rd] = oldLo;
    x[2 * rd + 1] = oldHi;
  }

  // ---------------------------------------------------------------- system

  /** Returns true when it set the pc itself (xRET, ECALL handled by the SBI, ...). */
  private executeSystem(ins: number, rd: number, rs1: number, f3: number): boolean {
    const x = this.x;
    if (f3 === 0) {
      if (rd !== 0) this.illegal();
      if (ins === 0x00000073) {
        if (this.priv === PRIV_S && this.sbi) {
          this.sbi.handleEcall(this);
          return false;
        }
        this.fault(
          this.priv === PRIV_U ? CAUSE.ecallU : this.priv === PRIV_S ? CAUSE.ecallS : CAUSE.ecallM,
          0,
          0,
        );
      }
      if (ins === 0x00100073) this.fault(CAUSE.breakpoint, 0, 0);
      if (ins === 0x30200073) {
        if (this.priv < PRIV_M) this.illegal();
        const mpp = (this.mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT;
        let s = this.mstatus & ~(MSTATUS_MPP | MSTATUS_MIE);
        if (this.mstatus & MSTATUS_MPIE) s |= MSTATUS_MIE;
        s |= MSTATUS_MPIE;
        if (mpp !== PRIV_M) s &= ~MSTATUS_MPRV;
        this.mstatus = s;
        this.priv = mpp;
        this.pcLo = this.mepcLo;
        this.pcHi = this.mepcHi;
        this.updateMmu();
        return true;
      }
      if (ins === 0x10200073) {
        if (this.priv < PRIV_S || (this.priv === PRIV_S && this.mstatus & MSTATUS_TSR)) this.illegal();
        const spp = this.mstatus & MSTATUS_SPP ? PRIV_S : PRIV_U;
        let s = this.mstatus & ~(MSTATUS_SPP | MSTATUS_SIE | MSTATUS_MPRV);
        if (this.mstatus & MSTATUS_SPIE) s |= MSTATUS_SIE;
        s |= MSTATUS_SPIE;
        this.mstatus = s;
        this.priv = spp;
        this.pcLo = this.sepcLo;
        this.pcHi = this.sepcHi;
        this.updateMmu();
        return true;
      }
      if (ins === 0x10500073) {
        // WFI
        if (this.priv === PRIV_U || (this.priv === PRIV_S && this.mstatus & MSTATUS_TW)) this.illegal();
        if (!this.hasWakeup()) this.idle = true;
        return false;
      }
      if (ins >>> 25 === 0x09) {
        // SFENCE.VMA
        if (this.priv === PRIV_U || (this.priv === PRIV_S && this.mstatus & MSTATUS_TVM)) this.illegal();
        this.flushTlb();
        return false;
      }
      this.illegal();
    }
    if (f3 === 4) this.illegal();
    const csr = ins >>> 20;
    const imm = f3 >= 5;
    const srcLo = imm ? rs1 : x[2 * rs1]!;
    const srcHi = imm ? 0 : x[2 * rs1 + 1]!;
    const op = f3 & 3;
    const writes = op === 1 || rs1 !== 0;
    this.checkCsrAccess(csr, writes);
    const oldLo = this.csrRead(csr);
    const oldHi = this.hi;
    if (writes) {
      // Only mip's software-writable SEIP takes part in CSRRS/CSRRC's read-modify-write, not the PLIC's
      // signal ORed into what is read (privileged spec 3.1.9): else OpenSBI setting STIP while an external
      // interrupt is pending latches SEIP for good, and the kernel claims nothing forever.
      const baseLo = csr === CSR.mip ? (oldLo & ~MIP_SEIP) | (this.mipSw & MIP_SEIP) : oldLo;
      let vLo = srcLo;
      let vHi = srcHi;
      if (op === 2) {
        vLo = baseLo | srcLo;
        vHi = oldHi | srcHi;
      } else if (op === 3) {
        vLo = baseLo & ~srcLo;
        vHi = oldHi & ~srcHi;
      }
      this.csrWrite(csr, vLo, vHi);
    }
    x[2 * rd] = oldLo;
    x[2 * rd + 1] = oldHi;
    return false;
  }

  private checkCsrAccess(csr: number, writes: boolean): void {
    if (((csr >> 8) & 3) > this.priv) this.illegal();
    if (writes && csr >>> 10 === 3) this.illegal();
    if (csr === CSR.satp && this.priv === PRIV_S && this.mstatus & MSTATUS_TVM) this.illegal();
    if (csr >= 0xc00 && csr <= 0xc1f) {
      const bit = 1 << (csr & 31);
      if (this.priv < PRIV_M && (this.mcounteren & bit) === 0) this.illegal();
      if (this.priv === PRIV_U && (this.scounteren & bit) === 0) this.illegal();
    }
    if (csr <= 3 && (this.mstatus & MSTATUS_FS) === 0) this.illegal();
  }

  private mstatusHi(): number {
    // UXL = SXL = 2 (64-bit); SD summarises FS dirty
    return 0xa | ((this.mstatus & MSTATUS_FS) === MSTATUS_FS ? 0x80000000 | 0 : 0);
  }

  /** Reads a CSR (access already checked): low word returned, high word in this.hi. */
  private csrRead(csr: number): number {
    this.hi = 0;
    switch (csr) {
      case CSR.fflags:
        return this.fflags;
      case CSR.frm:
        return this.frm;
      case CSR.fcsr:
        return (this.frm << 5) | this.fflags;
      case CSR.cycle:
      case CSR.mcycle: {
        const v = this.mcountinhibit & 1 ? this.cycleFrozen : this.retired + this.cycleOffset;
        this.hi = Math.floor(v / TWO32) | 0;
        return v | 0;
      }
      case CSR.instret:
      case CSR.minstret: {
        const v = this.mcountinhibit & 4 ? this.instretFrozen : this.retired + this.instretOffset;
        this.hi = Math.floor(v / TWO32) | 0;
        return v | 0;
      }
      case CSR.time: {
        const t = this.readTime();
        this.hi = Math.floor(t / TWO32) | 0;
        return t | 0;
      }
      case CSR.sstatus:
        this.hi = (this.mstatusHi() & 0x80000000) | 2;
        return this.mstatus & SSTATUS_MASK;
      case CSR.sie:
        return this.mie & this.mideleg;
      case CSR.stvec:
        this.hi = this.stvecHi;
        return this.stvecLo;
      case CSR.scounteren:
        return this.scounteren;
      case CSR.senvcfg:
        return this.senvcfg;
      case CSR.sscratch:
        this.hi = this.sscratchHi;
        return this.sscratchLo;
      case CSR.sepc:
        this.hi = this.sepcHi;
        return this.sepcLo;
      case CSR.scause:
        this.hi = this.scauseHi;
        return this.scauseLo;
      case CSR.stval:
        this.hi = this.stvalHi;
        return this.stvalLo;
      case CSR.sip:
        return (this.mipHw | this.mipSw) & this.mideleg;
      case CSR.satp:
        this.hi = (this.satpMode << 28) | (Math.floor(this.satpPpn / TWO32) & 0xfff);
        return this.satpPpn | 0;
      case CSR.mvendorid:
      case CSR.marchid:
      case CSR.mimpid:
      case CSR.mconfigptr:
        return 0;
      case CSR.mhartid:
        return this.hartId;
      case CSR.mstatus:
        this.hi = this.mstatusHi();
        return this.mstatus;
      case CSR.misa:
        this.hi = MISA_HI;
        return MISA_LO;
      case CSR.medeleg:
        return this.medeleg;
      case CSR.mideleg:
        return this.mideleg;
      case CSR.mie:
        return this.mie;
      case CSR.mtvec:
        this.hi = this.mtvecHi;
        return this.mtvecLo;
      case CSR.mcounteren:
        return this.mcounteren;
      case CSR.menvcfg:
        this.hi = this.menvcfgHi;
        return this.menvcfgLo;
      case CSR.mcountinhibit:
        return this.mcountinhibit;
      case CSR.mscratch:
        this.hi = this.mscratchHi;
        return this.mscratchLo;
      case CSR.mepc:
        this.hi = this.mepcHi;
        return this.mepcLo;
      case CSR.mcause:
        this.hi = this.mcauseHi;
        return this.mcauseLo;
      case CSR.mtval:
        this.hi = this.mtvalHi;
        return this.mtvalLo;
      case CSR.mip:
        return this.mipHw | this.mipSw;
    }
    if (csr >= 0x3a0 && csr <= 0x3af) {
      if (csr & 1) this.illegal(); // odd pmpcfg registers exist only on RV32
      const base = (csr - 0x3a0) * 4;
      const c = this.pmpcfg;
      this.hi = c[base + 4]! | (c[base + 5]! << 8) | (c[base + 6]! << 16) | (c[base + 7]! << 24);
      return c[base]! | (c[base + 1]! << 8) | (c[base + 2]! << 16) | (c[base + 3]! << 24);
    }
    if (csr >= 0x3b0 && csr <= 0x3bf) {
      this.hi = this.pmpaddrHi[csr - 0x3b0]! | 0;
      return this.pmpaddrLo[csr - 0x3b0]! | 0;
    }
    // unimplemented hardware performance counters and their event selectors read as zero
    if ((csr >= 0xb03 && csr <= 0xb1f) || (csr >= 0xc03 && csr <= 0xc1f) || (csr >= 0x323 && csr <= 0x33f)) {
      return 0;
    }
    this.illegal();
  }

  private csrWrite(csr: number, lo: number, hi: number): void {
    switch (csr) {
      case CSR.fflags:
        this.fflags = lo & 0x1f;
        this.mstatus |= MSTATUS_FS;
        return;
      case CSR.frm:
        this.frm = lo & 7;
        this.mstatus |= MSTATUS_FS;
        return;
      case CSR.fcsr:
        this.fflags = lo & 0x1f;
        this.frm = (lo >> 5) & 7;
        this.mstatus |= MSTATUS_FS;
        return;
      case CSR.mcycle: {
        const v = (hi >>> 0) * TWO32 + (lo >>> 0);
        if (this.mcountinhibit & 1) this.cycleFrozen = v;
        else this.cycleOffset = v - this.retired - 1; // the writing instruction itself retires afterwards
        return;
      }
      case CSR.minstret: {
        const v = (hi >>> 0) * TWO32 + (lo >>> 0);
        if (this.mcountinhibit & 4) this.instretFrozen = v;
        else this.instretOffset = v - this.retired - 1;
        return;
      }
      case CSR.sstatus:
        this.writeMstatus((this.mstatus & ~SSTATUS_MASK) | (lo & SSTATUS_MASK));
        return;
      case CSR.sie:
        this.mie = (this.mie & ~this.mideleg) | (lo & this.mideleg & MIE_WRITABLE);
        this.irqCheck = true;
        return;
      case CSR.stvec:
        if ((lo & 3) >= 2) return; // reserved mode: the write is ignored (as QEMU does)
        this.stvecLo = lo;
        this.stvecHi = hi;
        return;
      case CSR.scounteren:
        this.scounteren = lo;
        return;
      case CSR.senvcfg:
        this.senvcfg = lo & 1;
        return;
      case CSR.sscratch:
        this.sscratchLo = lo;
        this.sscratchHi = hi;
        return;
      case CSR.sepc:
        this.sepcLo = lo & ~1;
        this.sepcHi = hi;
        return;
      case CSR.scause:
        this.scauseLo = lo;
        this.scauseHi = hi;
        return;
      case CSR.stval:
        this.stvalLo = lo;
        this.stvalHi = hi;
        return;
      case CSR.sip: {
        const mask = this.mideleg & 2; // only SSIP is writable through sip
        this.mipSw = (this.mipSw & ~mask) | (lo & mask);
        this.irqCheck = true;
        return;
      }
      case CSR.satp: {
        const mode = hi >>> 28;
        if (mode !== 0 && mode !== 8 && mode !== 9) return; // unsupported mode: the write has no effect
        this.satpMode = mode;
        this.satpPpn = (hi & 0xfff) * TWO32 + (lo >>> 0);
        this.updateMmu(true);
        return;
      }
      case CSR.mstatus:
        this.writeMstatus(lo);
        return;
      case CSR.misa:
        return;
      case CSR.medeleg:
        this.medeleg = lo & MEDELEG_WRITABLE;
        return;
      case CSR.mideleg:
        this.mideleg = lo & MIDELEG_WRITABLE;
        this.irqCheck = true;
        return;
      case CSR.mie:
        this.mie = lo & MIE_WRITABLE;
        this.irqCheck = true;
        return;
      case CSR.mtvec:
        if ((lo & 3) >= 2) return;
        this.mtvecLo = lo;
        this.mtvecHi = hi;
        return;
      case CSR.mcounteren:
        this.mcounteren = lo;
        return;
      case CSR.menvcfg:
        this.menvcfgLo = lo & 1;
        this.menvcfgHi = 0;
        return;
      case CSR.mcountinhibit: {
        const v = lo & ~2;
        const started = this.mcountinhibit & ~v;
        const stopped = v & ~this.mcountinhibit;
        if (stopped & 1) this.cycleFrozen = this.retired + this.cycleOffset;
        if (stopped & 4) this.instretFrozen = this.retired + this.instretOffset;
        if (started & 1) this.cycleOffset = this.cycleFrozen - this.retired - 1;
        if (started & 4) this.instretOffset = this.instretFrozen - this.retired - 1;
        this.mcountinhibit = v;
        return;
      }
      case CSR.mscratch:
        this.mscratchLo = lo;
        this.mscratchHi = hi;
        return;
      case CSR.mepc:
        this.mepcLo = lo & ~1;
        this.mepcHi = hi;
        return;
      case CSR.mcause:
        this.mcauseLo = lo;
        this.mcauseHi = hi;
        return;
      case CSR.mtval:
        this.mtvalLo = lo;
        this.mtvalHi = hi;
        return;
      case CSR.mip: {
        const mask = (1 << 1) | (1 << 5) | (1 << 9); // SSIP, STIP, SEIP are software-writable
        this.mipSw = (this.mipSw & ~mask) | (lo & mask);
        this.irqCheck = true;
        return;
      }
    }
    if (csr >= 0x3a0 && csr <= 0x3af) {
      const base = (csr - 0x3a0) * 4;
      for (let i = 0; i < 8; i++) {
        const b = (i < 4 ? lo >>> (8 * i) : hi >>> (8 * (i - 4))) & 0xff;
        const cur = this.pmpcfg[base + i]!;
        if (cur & 0x80) continue; // locked
        // W without R is reserved: keep the entry's old value
        if ((b & 3) === 2) continue;
        this.pmpcfg[base + i] = b & 0x9f;
      }
      this.recomputePmp();
      return;
    }
    if (csr >= 0x3b0 && csr <= 0x3bf) {
      const i = csr - 0x3b0;
      if (this.pmpcfg[i]! & 0x80) return;
      // locked TOR successors also lock this address
      const next = this.pmpcfg[i + 1];
      if (next !== undefined && next & 0x80 && ((next >> 3) & 3) === 1) return;
      this.pmpaddrLo[i] = lo;
      this.pmpaddrHi[i] = hi & 0x3fffff;
      this.recomputePmp();
      return;
    }
    // hpm counters/events: writes ignored
  }

  private writeMstatus(v: number): void {
    let s = (this.mstatus & ~MSTATUS_WRITABLE) | (v & MSTATUS_WRITABLE);
    if ((s & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT === 2) s = (s & ~MSTATUS_MPP) | (this.mstatus & MSTATUS_MPP);
    const changed = s ^ this.mstatus;
    this.mstatus = s;
    if (changed & MSTATUS_MXR) this.updateMmu(true);
    else if (changed & (MSTATUS_MPRV | MSTATUS_MPP | MSTATUS_SUM)) this.updateMmu();
    if (changed & (MSTATUS_MIE | MSTATUS_SIE)) this.irqCheck = true;
  }

  // ---------------------------------------------------------------- floating point

  private fBits64(r: number): bigint {
    return toBig(this.f[2 * r]!, this.f[2 * r + 1]!);
  }
  /** A binary32 operand: an improperly NaN-boxed value reads as the canonical NaN. */
  private fBits32(r: number): bigint {
    if (this.f[2 * r + 1] !== -1) return 0x7fc00000n;
    return BigInt(this.f[2 * r]! >>> 0);
  }
  private setF64(r: number, bits: bigint): void {
    this.f[2 * r] = Number(BigInt.asIntN(32, bits));
    this.f[2 * r + 1] = Number(BigInt.asIntN(32, bits >> 32n));
    this.mstatus |= MSTATUS_FS;
  }
  private setF32(r: number, bits: bigint): void {
    this.f[2 * r] = Number(BigInt.asIntN(32, bits));
    this.f[2 * r + 1] = -1;
    this.mstatus |= MSTATUS_FS;
  }

  private roundingMode(f3: number): number {
    const rm = f3 === 7 ? this.frm : f3;
    if (rm > 4) this.illegal();
    return rm;
  }

  private executeFloat(ins: number, rd: number, rs1: number, rs2: number, f3: number): void {
    if ((this.mstatus & MSTATUS_FS) === 0) this.illegal();
    const x = this.x;
    const op = ins & 0x7f;
    if (op === 0x07 || op === 0x27) {
      const imm = op === 0x07 ? ins >> 20 : ((ins >> 25) << 5) | ((ins >> 7) & 0x1f);
      const blo = x[2 * rs1]!;
      const aLo = (blo + imm) | 0;
      const aHi = (x[2 * rs1 + 1]! + (imm >> 31) + (aLo >>> 0 < blo >>> 0 ? 1 : 0)) | 0;
      if (f3 !== 2 && f3 !== 3) this.illegal();
      if (op === 0x07) {
        const v = this.load(aLo, aHi, f3 === 2 ? 4 : 8);
        this.f[2 * rd] = v;
        this.f[2 * rd + 1] = f3 === 2 ? -1 : this.hi;
        this.mstatus |= MSTATUS_FS;
      } else {
        this.store(aLo, aHi, f3 === 2 ? 4 : 8, this.f[2 * rs2]!, this.f[2 * rs2 + 1]!);
      }
      return;
    }
    const fmt = (ins >> 25) & 3;
    if (fmt > 1) this.illegal();
    const double = fmt === 1;
    const F = double ? F64 : F32;
    const read = (r: number) => (double ? this.fBits64(r) : this.fBits32(r));
    const write = (r: number, v: bigint) => (double ? this.setF64(r, v) : this.setF32(r, v));
    const sf = this.soft;
    sf.flags = 0;
    if (op !== 0x53) {
      // fused multiply-add family
      const rm = this.roundingMode(f3);
      const rs3 = ins >>> 27;
      const negProduct = op === 0x4b || op === 0x4f;
      const negAddend = op === 0x47 || op === 0x4f;
      write(rd, sf.fma(read(rs1), read(rs2), read(rs3), negProduct, negAddend, rm, F));
      this.fflags |= sf.flags;
      return;
    }
    const funct5 = ins >>> 27;
    switch (funct5) {
      case 0x00:
      case 0x01:
        write(rd, sf.add(read(rs1), read(rs2), funct5 === 1, this.roundingMode(f3), F));
        break;
      case 0x02:
        write(rd, sf.mul(read(rs1), read(rs2), this.roundingMode(f3), F));
        break;
      case 0x03:
        write(rd, sf.div(read(rs1), read(rs2), this.roundingMode(f3), F));
        break;
      case 0x0b:
        if (rs2 !== 0) this.illegal();
        write(rd, sf.sqrt(read(rs1), this.roundingMode(f3), F));
        break;
      case 0x04: {
        // FSGNJ / FSGNJN / FSGNJX: pure bit operations
        const a = read(rs1);
        const b = read(rs2);
        const signBit = 1n << BigInt(F.width - 1);
        let sign: bigint;
        if (f3 === 0) sign = b & signBit;
        else if (f3 === 1) sign = (b & signBit) ^ signBit;
        else if (f3 === 2) sign = (a ^ b) & signBit;
        else this.illegal();
        write(rd, (a & ~signBit) | sign);
        break;
      }
      case 0x05:
        if (f3 > 1) this.illegal();
        write(rd, sf.minMax(read(rs1), read(rs2), f3 === 1, F));
        break;
      case 0x08: {
        // FCVT.S.D / FCVT.D.S
        const rm = this.roundingMode(f3);
        if (double && rs2 === 0) write(rd, sf.convert(this.fBits32(rs1), F32, F64, rm));
        else if (!double && rs2 === 1) write(rd, sf.convert(this.fBits64(rs1), F64, F32, rm));
        else this.illegal();
        break;
      }
      case 0x14: {
        if (f3 > 2) this.illegal();
        const r = sf.compare(read(rs1), read(rs2), f3, F);
        x[2 * rd] = r ? 1 : 0;
        x[2 * rd + 1] = 0;
        break;
      }
      case 0x18: {
        // FCVT.{W,WU,L,LU}.{S,D}
        const rm = this.roundingMode(f3);
        const a = read(rs1);
        let v: bigint;
        if (rs2 === 0) v = sf.toInteger(a, F, rm, -(1n << 31n), (1n << 31n) - 1n);
        else if (rs2 === 1) v = BigInt.asIntN(32, sf.toInteger(a, F, rm, 0n, (1n << 32n) - 1n));
        else if (rs2 === 2) v = sf.toInteger(a, F, rm, -(1n << 63n), (1n << 63n) - 1n);
        else if (rs2 === 3) v = sf.toInteger(a, F, rm, 0n, (1n << 64n) - 1n);
        else this.illegal();
        this.setXBig(rd, v);
        break;
      }
      case 0x1a: {
        // FCVT.{S,D}.{W,WU,L,LU}
        const rm = this.roundingMode(f3);
        const lo = x[2 * rs1]!;
        let v: bigint;
        if (rs2 === 0) v = BigInt(lo | 0);
        else if (rs2 === 1) v = BigInt(lo >>> 0);
        else if (rs2 === 2) v = this.getXBig(rs1);
        else if (rs2 === 3) v = BigInt.asUintN(64, this.getXBig(rs1));
        else this.illegal();
        write(rd, sf.fromInteger(v, rm, F));
        break;
      }
      case 0x1c:
        if (rs2 !== 0) this.illegal();
        if (f3 === 0) {
          // FMV.X.W / FMV.X.D
          if (double) {
            x[2 * rd] = this.f[2 * rs1]!;
            x[2 * rd + 1] = this.f[2 * rs1 + 1]!;
          } else {
            x[2 * rd] = this.f[2 * rs1]!;
            x[2 * rd + 1] = this.f[2 * rs1]! >> 31;
          }
        } else if (f3 === 1) {
          x[2 * rd] = classify(read(rs1), F);
          x[2 * rd + 1] = 0;
        } else {
          this.illegal();
        }
        break;
      case 0x1e:
        if (rs2 !== 0 || f3 !== 0) this.illegal();
        this.f[2 * rd] = x[2 * rs1]!;
        this.f[2 * rd + 1] = double ? x[2 * rs1 + 1]! : -1;
        this.mstatus |= MSTATUS_FS;
        break;
      default:
        this.illegal();
    }
    this.fflags |= sf.flags;
    if (sf.flags !== 0) this.mstatus |= MSTATUS_FS;
  }
}

interface WarmPage {
  /** Shared-table index of the warm block starting at each halfword slot, -1 where none. */
  tix: Int32Array;
  count: number;
}

interface TlbSet {
  readTag: Float64Array;
  readPhys: Float64Array;
  writeTag: Float64Array;
  writePhys: Float64Array;
  execTag: Float64Array;
  execPhys: Float64Array;
}

/** Six TLB arrays, either standalone or (for translated code) at `offset` in `buffer`. */
function newTlbSet(buffer?: ArrayBuffer, offset = 0): TlbSet {
  const array = (i: number) =>
    buffer === undefined
      ? new Float64Array(TLB_SIZE)
      : new Float64Array(buffer, offset + i * TLB_ARRAY_BYTES, TLB_SIZE);
  return {
    readTag: array(0).fill(-1),
    readPhys: array(1),
    writeTag: array(2).fill(-1),
    writePhys: array(3),
    execTag: array(4).fill(-1),
    execPhys: array(5),
  };
}

/** High 32 bits of the unsigned 64-bit product of two uint32s. */
function mulHiU32(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const lo = a0 * b0;
  const m1 = a1 * b0;
  const m2 = a0 * b1;
  const mid = (lo >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
  return (a1 * b1 + (m1 >>> 16) + (m2 >>> 16) + (mid >>> 16)) | 0;
}
