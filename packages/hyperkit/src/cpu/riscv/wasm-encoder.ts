/**
 * A minimal WebAssembly binary writer: a growable byte buffer with LEB128 helpers, and the assembly of a
 * module from its sections (types, one imported memory, imported and defined functions, exports, code).
 * Only what the RISC-V translator needs; numbers are opcodes from the WebAssembly core specification.
 */

export const I32 = 0x7f;
export const I64 = 0x7e;
export const F64 = 0x7c;
export const VOID = 0x40;

/** Opcodes (WebAssembly core spec 5.4). */
export const Op = {
  unreachable: 0x00,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  brTable: 0x0e,
  return: 0x0f,
  call: 0x10,
  callIndirect: 0x11,
  drop: 0x1a,
  select: 0x1b,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Load: 0x28,
  i64Load: 0x29,
  f64Load: 0x2b,
  f64Store: 0x39,
  i64Load8S: 0x30,
  i64Load8U: 0x31,
  i64Load16S: 0x32,
  i64Load16U: 0x33,
  i64Load32S: 0x34,
  i64Load32U: 0x35,
  i32Load8U: 0x2d,
  i32Load16U: 0x2f,
  i32Store: 0x36,
  i64Store: 0x37,
  i64Store8: 0x3c,
  i64Store16: 0x3d,
  i64Store32: 0x3e,
  i32Const: 0x41,
  i64Const: 0x42,
  i32Eqz: 0x45,
  i32Eq: 0x46,
  i32Ne: 0x47,
  i32LtS: 0x48,
  i32LtU: 0x49,
  i32GtU: 0x4b,
  i32GeS: 0x4e,
  i64Eqz: 0x50,
  i64Eq: 0x51,
  i64Ne: 0x52,
  i64LtS: 0x53,
  i64LtU: 0x54,
  i64GtU: 0x56,
  i64GeS: 0x59,
  i64GeU: 0x5a,
  f64Ne: 0x62,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32DivS: 0x6d,
  i32DivU: 0x6e,
  i32RemS: 0x6f,
  i32RemU: 0x70,
  i32And: 0x71,
  i32Or: 0x72,
  i32Xor: 0x73,
  i32Shl: 0x74,
  i32ShrS: 0x75,
  i32ShrU: 0x76,
  i64Add: 0x7c,
  i64Sub: 0x7d,
  i64Mul: 0x7e,
  i64DivS: 0x7f,
  i64DivU: 0x80,
  i64RemS: 0x81,
  i64RemU: 0x82,
  i64And: 0x83,
  i64Or: 0x84,
  i64Xor: 0x85,
  i64Shl: 0x86,
  i64ShrS: 0x87,
  i64ShrU: 0x88,
  i32WrapI64: 0xa7,
  i64TruncF64U: 0xb1,
  i64ExtendI32S: 0xac,
  i64ExtendI32U: 0xad,
  f64ConvertI64S: 0xb9,
} as const;

/** A growable byte buffer. */
export class ByteWriter {
  private buf: Uint8Array;
  length = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  byte(b: number): this {
    this.reserve(1);
    this.buf[this.length++] = b;
    return this;
  }

  bytes(data: Uint8Array | readonly number[]): this {
    this.reserve(data.length);
    if (data instanceof Uint8Array) {
      this.buf.set(data, this.length);
      this.length += data.length;
    } else for (let i = 0; i < data.length; i++) this.buf[this.length++] = data[i]!;
    return this;
  }

  /** Unsigned LEB128 of a non-negative integer below 2^53. */
  u32(value: number): this {
    let v = value;
    for (;;) {
      const b = v % 128;
      v = Math.floor(v / 128);
      if (v === 0) return this.byte(b);
      this.byte(b | 0x80);
    }
  }

  /** Signed LEB128 of an int32. */
  s32(value: number): this {
    let v = value | 0;
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) return this.byte(b);
      this.byte(b | 0x80);
    }
  }

  /** Signed LEB128 of a 64-bit integer given as a BigInt. */
  s64(value: bigint): this {
    let v = BigInt.asIntN(64, value);
    for (;;) {
      const b = Number(v & 0x7fn);
      v >>= 7n;
      if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) return this.byte(b);
      this.byte(b | 0x80);
    }
  }

  /** Signed LEB128 of a 64-bit integer that is a safe Number (|v| < 2^53). */
  s64Number(value: number): this {
    if (value >= -0x8000_0000 && value <= 0x7fff_ffff) return this.s32(value);
    return this.s64(BigInt(value));
  }

  op(code: number): this {
    return this.byte(code);
  }

  i32Const(v: number): this {
    return this.byte(Op.i32Const).s32(v);
  }

  i64Const(v: number): this {
    return this.byte(Op.i64Const).s64Number(v);
  }

  get(local: number): this {
    return this.byte(Op.localGet).u32(local);
  }

  set(local: number): this {
    return this.byte(Op.localSet).u32(local);
  }

  tee(local: number): this {
    return this.byte(Op.localTee).u32(local);
  }

  /** A memory access opcode with its alignment hint (log2) and constant offset. */
  mem(code: number, align: number, offset: number): this {
    return this.byte(code).u32(align).u32(offset);
  }

  call(index: number): this {
    return this.byte(Op.call).u32(index);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

export interface FuncType {
  params: number[];
  results: number[];
}

export interface FuncDef {
  type: number;
  /** Local declarations after the parameters: [count, type] runs. */
  locals: [number, number][];
  body: Uint8Array;
  export?: string;
}

export interface ModuleSpec {
  types: FuncType[];
  /** Imported memory: module "m", name "mem", with these page limits. */
  memoryPages: number;
  /** Imported functions: module "f", the given names and type indices (they take the first indices). */
  imports: { name: string; type: number }[];
  /** Import a function table as module "m", name "tab" (funcref, no limits beyond 0). */
  table?: boolean;
  funcs: FuncDef[];
}

function section(out: ByteWriter, id: number, content: ByteWriter): void {
  out.byte(id).u32(content.length).bytes(content.finish());
}

function name(w: ByteWriter, s: string): void {
  w.u32(s.length);
  for (let i = 0; i < s.length; i++) w.byte(s.charCodeAt(i));
}

export function encodeModule(spec: ModuleSpec): Uint8Array {
  const out = new ByteWriter(1024);
  out.bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

  const types = new ByteWriter();
  types.u32(spec.types.length);
  for (const t of spec.types) {
    types.byte(0x60).u32(t.params.length).bytes(t.params).u32(t.results.length).bytes(t.results);
  }
  section(out, 1, types);

  const imports = new ByteWriter();
  imports.u32(spec.imports.length + 1 + (spec.table ? 1 : 0));
  name(imports, 'm');
  name(imports, 'mem');
  imports.byte(0x02).byte(0x01).u32(spec.memoryPages).u32(spec.memoryPages);
  if (spec.table) {
    name(imports, 'm');
    name(imports, 'tab');
    imports.byte(0x01).byte(0x70).byte(0x00).u32(0);
  }
  for (const f of spec.imports) {
    name(imports, 'f');
    name(imports, f.name);
    imports.byte(0x00).u32(f.type);
  }
  section(out, 2, imports);

  const funcs = new ByteWriter();
  funcs.u32(spec.funcs.length);
  for (const f of spec.funcs) funcs.u32(f.type);
  section(out, 3, funcs);

  const exported = spec.funcs
    .map((f, i) => ({ name: f.export, index: spec.imports.length + i }))
    .filter((e): e is { name: string; index: number } => e.name !== undefined);
  const exports = new ByteWriter();
  exports.u32(exported.length);
  for (const e of exported) {
    name(exports, e.name);
    exports.byte(0x00).u32(e.index);
  }
  section(out, 7, exports);

  const code = new ByteWriter(4096);
  code.u32(spec.funcs.length);
  for (const f of spec.funcs) {
    const body = new ByteWriter(f.body.length + 32);
    body.u32(f.locals.length);
    for (const [count, type] of f.locals) body.u32(count).byte(type);
    body.bytes(f.body);
    code.u32(body.length).bytes(body.finish());
  }
  section(out, 10, code);
  return out.finish();
}
