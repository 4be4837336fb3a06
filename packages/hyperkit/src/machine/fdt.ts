import { HyperkitError } from '../errors.js';

/** Flattened device tree (DTB, version 17) builder and checker. */
const FDT_MAGIC = 0xd00dfeed;
const FDT_BEGIN_NODE = 1;
const FDT_END_NODE = 2;
const FDT_PROP = 3;
const FDT_NOP = 4;
const FDT_END = 9;
const HEADER_SIZE = 40;

export type FdtValue = Uint8Array | string | string[] | number[] | { u64: number[] } | null;

export interface FdtNode {
  name: string;
  props: Map<string, Uint8Array>;
  children: FdtNode[];
}

function encodeValue(value: FdtValue): Uint8Array {
  if (value === null) return new Uint8Array(0);
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return new TextEncoder().encode(`${value}\0`);
  if (Array.isArray(value) && (value.length === 0 || typeof value[0] === 'string')) {
    return new TextEncoder().encode((value as string[]).map((s) => `${s}\0`).join(''));
  }
  if (Array.isArray(value)) {
    const cells = value as number[];
    const out = new Uint8Array(cells.length * 4);
    const dv = new DataView(out.buffer);
    cells.forEach((c, i) => dv.setUint32(i * 4, c >>> 0));
    return out;
  }
  const words = value.u64;
  const out = new Uint8Array(words.length * 8);
  const dv = new DataView(out.buffer);
  words.forEach((w, i) => {
    dv.setUint32(i * 8, Math.floor(w / 0x1_0000_0000));
    dv.setUint32(i * 8 + 4, w >>> 0);
  });
  return out;
}

/** A node under construction; `prop` chains, `child` returns the new child. */
export class FdtNodeBuilder implements FdtNode {
  readonly props = new Map<string, Uint8Array>();
  readonly children: FdtNodeBuilder[] = [];
  constructor(readonly name: string) {}

  prop(name: string, value: FdtValue): this {
    this.props.set(name, encodeValue(value));
    return this;
  }

  child(name: string): FdtNodeBuilder {
    const node = new FdtNodeBuilder(name);
    this.children.push(node);
    return node;
  }
}

/** Serialises a tree into a DTB blob. */
export function serializeFdt(root: FdtNode, bootCpuId = 0): Uint8Array {
  const strings: number[] = [];
  const stringOffsets = new Map<string, number>();
  const struct: number[] = [];
  const enc = new TextEncoder();
  const pushWord = (w: number) => {
    struct.push((w >>> 24) & 0xff, (w >>> 16) & 0xff, (w >>> 8) & 0xff, w & 0xff);
  };
  const pushBytesPadded = (b: Uint8Array) => {
    for (const x of b) struct.push(x);
    while (struct.length % 4 !== 0) struct.push(0);
  };
  const stringOffset = (s: string) => {
    let off = stringOffsets.get(s);
    if (off === undefined) {
      off = strings.length;
      for (const b of enc.encode(s)) strings.push(b);
      strings.push(0);
      stringOffsets.set(s, off);
    }
    return off;
  };
  const emit = (node: FdtNode) => {
    pushWord(FDT_BEGIN_NODE);
    pushBytesPadded(enc.encode(`${node.name}\0`));
    for (const [name, value] of node.props) {
      pushWord(FDT_PROP);
      pushWord(value.length);
      pushWord(stringOffset(name));
      pushBytesPadded(value);
    }
    for (const c of node.children) emit(c);
    pushWord(FDT_END_NODE);
  };
  emit(root);
  pushWord(FDT_END);
  const memRsvOff = HEADER_SIZE;
  const structOff = memRsvOff + 16; // one empty reservation entry (terminator)
  const stringsOff = structOff + struct.length;
  const total = stringsOff + strings.length;
  const out = new Uint8Array((total + 7) & ~7);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, FDT_MAGIC);
  dv.setUint32(4, out.length);
  dv.setUint32(8, structOff);
  dv.setUint32(12, stringsOff);
  dv.setUint32(16, memRsvOff);
  dv.setUint32(20, 17);
  dv.setUint32(24, 16);
  dv.setUint32(28, bootCpuId);
  dv.setUint32(32, strings.length);
  dv.setUint32(36, struct.length);
  out.set(struct, structOff);
  out.set(strings, stringsOff);
  return out;
}

function bad(msg: string): never {
  throw new HyperkitError('ERR_BAD_DTB', `invalid device tree blob: ${msg}`);
}

/** Parses and fully validates a DTB (used for user-supplied blobs and in tests). */
export function parseFdt(blob: Uint8Array): FdtNode {
  if (blob.length < HEADER_SIZE) bad(`only ${blob.length} bytes, a header needs ${HEADER_SIZE}`);
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  if (dv.getUint32(0) !== FDT_MAGIC) bad('bad magic (not a DTB)');
  const total = dv.getUint32(4);
  if (total > blob.length) bad(`truncated: header says ${total} bytes, file has ${blob.length}`);
  const structOff = dv.getUint32(8);
  const stringsOff = dv.getUint32(12);
  const version = dv.getUint32(20);
  if (version < 16) bad(`unsupported version ${version}`);
  const stringsSize = dv.getUint32(32);
  const structSize = dv.getUint32(36);
  if (structOff + structSize > total || stringsOff + stringsSize > total) bad('blocks extend past the end');
  const dec = new TextDecoder('utf-8', { fatal: false });
  let pos = structOff;
  const end = structOff + structSize;
  const word = () => {
    if (pos + 4 > end) bad('structure block ends early');
    const w = dv.getUint32(pos);
    pos += 4;
    return w;
  };
  const cstring = (from: number, limit: number) => {
    let i = from;
    while (i < limit && blob[i] !== 0) i++;
    if (i >= limit) bad('unterminated string');
    return { text: dec.decode(blob.subarray(from, i)), next: i + 1 };
  };
  const stack: FdtNode[] = [];
  let root: FdtNode | undefined;
  for (;;) {
    const token = word();
    if (token === FDT_BEGIN_NODE) {
      const { text, next } = cstring(pos, end);
      pos = (next + 3) & ~3;
      const node: FdtNode = { name: text, props: new Map(), children: [] };
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(node);
      else if (root) bad('more than one root node');
      else root = node;
      stack.push(node);
    } else if (token === FDT_END_NODE) {
      if (stack.pop() === undefined) bad('unbalanced END_NODE');
    } else if (token === FDT_PROP) {
      const len = word();
      const nameOff = word();
      if (pos + len > end) bad('property runs past the structure block');
      if (nameOff >= stringsSize) bad('property name offset out of range');
      const node = stack[stack.length - 1];
      if (!node) bad('property outside a node');
      const { text } = cstring(stringsOff + nameOff, stringsOff + stringsSize);
      node.props.set(text, blob.slice(pos, pos + len));
      pos = (pos + len + 3) & ~3;
    } else if (token === FDT_NOP) {
      // skip
    } else if (token === FDT_END) {
      break;
    } else {
      bad(`unknown token ${token} at offset ${pos - 4}`);
    }
  }
  if (!root || stack.length !== 0) bad('unbalanced nodes');
  return root;
}
