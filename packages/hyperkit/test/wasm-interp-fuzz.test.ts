import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { seededRandom } from '@kitset/testkit';
import { bType, expandCompressed, iType, jType, rType, sType } from '../src/cpu/riscv/compressed.js';
import { VirtMachine } from '../src/machine/virt.js';

/**
 * Differential fuzzing of the WebAssembly interpreter against the JavaScript one (which the ISA suites check
 * against QEMU): random programs of the instructions it runs itself — ALU, M, loads and stores of every width
 * (misaligned ones too), AMOs, LR/SC, LUI/AUIPC, forward branches and jumps, FENCE, and random 16-bit
 * parcels (compressed instructions, illegal ones included) — run in M-mode on two machines with the same
 * budget; registers, pc, the data area, the trap CSRs and the retired count must agree. A trap goes to a
 * handler (CSR instructions and MRET: the hart's) that skips the trapping instruction and points a0 at
 * the data area again; the program ends in a `j .` loop. Seeded (xorshift): a failure names its seed.
 */

const RAM = 1 << 20;
const BASE = 0x8000_0000;
const CODE_WORDS = 256;
const DATA = BASE + 0x1_0000; // a0 points here; the data area is compared after the run
const DATA_BYTES = 4096;
const TRAP = BASE + 0x8000; // mtvec: the handler below
const PROGRAMS = 150;
const BUDGET = 4000;

/** A seeded xorshift32 stream of uint32s (testkit's). */
const rng = (seed: number) => seededRandom(seed).u32;

const R = rType;
const I = iType;
const S = (imm: number, rs2: number, rs1: number, f3: number) => sType(imm, rs2, rs1, f3, 0x23);
const B = bType;
const J = jType;

/** Branches, JAL and JALR: random ones would jump anywhere; the generated ones only go forward. */
const isJump = (ins: number) => [0x63, 0x67, 0x6f].includes(ins & 0x7f);

/** A random program: 32-bit words (two random halfwords where a compressed parcel pair was drawn). */
function program(next: () => number): number[] {
  const pick = (n: number) => next() % n;
  // destination registers: anything but x0 and a0 (x10 keeps pointing at the data area)
  const rd = () => {
    const r = 1 + pick(30);
    return r >= 10 ? r + 1 : r;
  };
  const rs = () => pick(32);
  const words: number[] = [];
  for (let i = 0; i < CODE_WORDS; i++) {
    const left = CODE_WORDS - i; // forward control transfers stay inside the program
    const k = pick(100);
    if (k < 25) words.push(I(pick(4096) - 2048, rs(), pick(8), rd(), 0x13));
    else if (k < 40) words.push(R([0, 0x20, 1][pick(3)]!, rs(), rs(), pick(8), rd(), 0x33));
    else if (k < 46) words.push(I(pick(4096) - 2048, rs(), pick(8), rd(), 0x1b));
    else if (k < 52) words.push(R([0, 0x20, 1][pick(3)]!, rs(), rs(), pick(8), rd(), 0x3b));
    else if (k < 55) words.push(((next() & 0xfffff000) | (rd() << 7) | (pick(2) ? 0x37 : 0x17)) >>> 0);
    else if (k < 65) words.push(I(pick(DATA_BYTES - 16), 10, pick(8), rd(), 0x03));
    else if (k < 73) words.push(S(pick(DATA_BYTES - 16), rs(), 10, pick(4)));
    else if (k < 78) {
      // AMO/LR/SC on the data area (a0 + a register-free offset: the address is a0 itself)
      const funct5 = [0, 1, 2, 3, 4, 8, 12, 16, 20, 24, 28][pick(11)]!;
      words.push(R((funct5 << 2) | pick(4), funct5 === 2 ? 0 : rs(), 10, 2 + pick(2), rd(), 0x2f));
    } else if (k < 86) words.push(B(4 * (1 + pick(Math.min(left, 8))), rs(), rs(), pick(8)));
    else if (k < 88) words.push(J(4 * (1 + pick(Math.min(left, 8))), pick(2) ? rd() : 0));
    else if (k < 89)
      words.push(I(0, 0, 0, 0, 0x0f)); // FENCE
    else if (k < 99) {
      // two random compressed parcels (low bits not 11; illegal ones included), no jumps among them
      const half = (): number => {
        const h = next() & 0xffff;
        const c = (h & 3) === 3 ? h ^ 1 : h;
        return isJump(expandCompressed(c)) ? half() : c;
      };
      words.push((half() | (half() << 16)) >>> 0);
    } else {
      // any 32-bit word but a jump (it would wander off the program)
      let w = next() | 3;
      while (isJump(w)) w = next() | 3;
      words.push(w >>> 0);
    }
  }
  words.push(J(0, 0)); // j .
  return words;
}

/** mtvec's handler: mepc += the trapping instruction's length, a0 = DATA, mret (t5, t6 scratch). */
const HANDLER = [
  I(0x341, 0, 2, 31, 0x73), // csrr t6, mepc
  I(0, 31, 5, 30, 0x03), // lhu t5, 0(t6)
  I(3, 30, 7, 30, 0x13), // andi t5, t5, 3
  I(-3, 30, 0, 30, 0x13), // addi t5, t5, -3
  I(1, 30, 3, 30, 0x13), // sltiu t5, t5, 1 (1 for a 32-bit instruction)
  I(1, 30, 1, 30, 0x13), // slli t5, t5, 1
  I(2, 30, 0, 30, 0x13), // addi t5, t5, 2
  R(0, 30, 31, 0, 31, 0x33), // add t6, t6, t5
  I(0x341, 31, 1, 0, 0x73), // csrw mepc, t6
  ((DATA >>> 12) << 12) | (10 << 7) | 0x37, // lui a0, DATA >> 12 (sign-extends)
  I(32, 10, 1, 10, 0x13), // slli a0, a0, 32
  I(32, 10, 5, 10, 0x13), // srli a0, a0, 32
  0x3020_0073, // mret
];

interface State {
  x: number[];
  pcLo: number;
  pcHi: number;
  retired: number;
  mcause: number;
  mepc: number;
  mtval: number;
  data: number[];
}

/** Runs a program on a fresh machine; the state after BUDGET instructions and those the WebAssembly loop ran. */
function run(words: number[], seed: number, wasm: boolean): { state: State; interp: number } {
  const vm = new VirtMachine({ memorySize: RAM });
  const hart = vm.hart;
  for (let i = 0; i < words.length; i++) vm.memory.writeU32(BASE + 4 * i, words[i]! >>> 0);
  HANDLER.forEach((w, i) => vm.memory.writeU32(TRAP + 4 * i, w >>> 0));
  const fill = rng(seed ^ 0x5bd1e995);
  for (let i = 0; i < DATA_BYTES; i += 4) vm.memory.writeU32(DATA + i, fill());
  hart.reset(BASE, 'M', 0, 0);
  const regs = rng(seed ^ 0x9e3779b9);
  for (let r = 1; r < 32; r++) {
    hart.x[2 * r] = regs() | 0;
    hart.x[2 * r + 1] = regs() | 0;
  }
  hart.setX(10, DATA);
  hart.mtvecLo = TRAP;
  hart.mtvecHi = 0;
  if (wasm) {
    hart.wasmThreshold = 0x7fffffff; // no regions: the WebAssembly interpreter runs it all
  } else {
    hart.jit = false;
  }
  let left = BUDGET;
  while (left > 0) {
    hart.run(Math.min(left, 500));
    left -= 500;
  }
  const data: number[] = [];
  for (let i = 0; i < DATA_BYTES; i += 4) data.push(vm.memory.readU32(DATA + i));
  const state = {
    x: [...hart.x],
    pcLo: hart.pcLo,
    pcHi: hart.pcHi,
    retired: hart.instructionsRetired,
    mcause: hart.mcauseLo,
    mepc: hart.mepcLo,
    mtval: hart.mtvalLo,
    data,
  };
  return { state, interp: hart.interpRetired };
}

describe('WebAssembly interpreter vs the JavaScript interpreter (differential fuzz)', () => {
  test(
    `${PROGRAMS} random programs agree on registers, memory, traps and counts`,
    { timeout: 60_000 },
    () => {
      const seeds = rng(0x1234_5678);
      let interpreted = 0;
      let total = 0;
      let finished = 0;
      for (let p = 0; p < PROGRAMS; p++) {
        const seed = seeds();
        const words = program(rng(seed));
        const js = run(words, seed, false);
        const wasm = run(words, seed, true);
        assert.deepEqual(wasm.state, js.state, `seed ${seed}`);
        assert.equal(js.interp, 0);
        interpreted += wasm.interp;
        total += wasm.state.retired;
        if (wasm.state.pcHi === 0 && wasm.state.pcLo === ((BASE + 4 * CODE_WORDS) | 0)) finished++;
      }
      // the WebAssembly side really ran in the WebAssembly interpreter, and most programs ran to their end
      // (their traps handled) rather than wandering off
      assert.ok(
        interpreted > 0.5 * total,
        `${interpreted} of ${total} instructions in the WebAssembly interpreter`,
      );
      assert.ok(finished > PROGRAMS / 2, `${finished} of ${PROGRAMS} programs reached their end`);
    },
  );
});

describe("the WebAssembly interpreter's RVC expansion", () => {
  test('matches expandCompressed on all 65,536 parcels', () => {
    const vm = new VirtMachine({ memorySize: 1 << 20 });
    const translator = (vm.hart as unknown as { translator: { expandCompressed(p: number): number } })
      .translator;
    let legal = 0;
    for (let parcel = 0; parcel < 65536; parcel++) {
      const expected = expandCompressed(parcel) | 0;
      assert.equal(translator.expandCompressed(parcel) | 0, expected, `parcel 0x${parcel.toString(16)}`);
      if (expected !== 0) legal++;
    }
    // the three compressed quadrants hold 49,152 parcels; all but the reserved encodings expand
    assert.ok(legal > 40_000, `${legal} legal parcels`);
  });
});
