import { createHash } from 'node:crypto';
import { StoreError } from './errors.js';

export type ObjectType = 'blob' | 'tree' | 'commit' | 'tag';

export interface RawObject {
  readonly type: ObjectType;
  readonly data: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

export function isHash(text: string): boolean {
  return /^[0-9a-f]{40}$/.test(text);
}

export function objectHeader(type: ObjectType, length: number): Uint8Array {
  return encoder.encode(`${type} ${length}\0`);
}

export function hashObject(type: ObjectType, data: Uint8Array): string {
  return createHash('sha1').update(objectHeader(type, data.length)).update(data).digest('hex');
}

/** Splits the inflated loose-object bytes ("type len\0data") into type and a view of data. */
export function parseLooseObject(bytes: Uint8Array, hash: string): RawObject {
  const nul = bytes.indexOf(0);
  if (nul < 0 || nul > 32) throw new StoreError('ERR_BAD_OBJECT', `object ${hash}: no header`);
  const header = decoder.decode(bytes.subarray(0, nul));
  const space = header.indexOf(' ');
  const type = header.slice(0, space);
  const length = Number(header.slice(space + 1));
  if (!isObjectType(type) || !Number.isInteger(length) || length !== bytes.length - nul - 1)
    throw new StoreError('ERR_BAD_OBJECT', `object ${hash}: bad header "${header}"`);
  return { type, data: bytes.subarray(nul + 1) };
}

export function isObjectType(type: string): type is ObjectType {
  return type === 'blob' || type === 'tree' || type === 'commit' || type === 'tag';
}

// ---- trees ----

/** Git tree entry modes we write; others (100664, 160000) are read and kept as they are. */
export const TreeMode = {
  FILE: 0o100644,
  EXEC: 0o100755,
  LINK: 0o120000,
  DIR: 0o40000,
  GITLINK: 0o160000,
} as const;

export interface TreeEntry {
  readonly name: string;
  readonly mode: number;
  readonly hash: string;
}

export function parseTree(data: Uint8Array, hash = '?'): TreeEntry[] {
  const entries: TreeEntry[] = [];
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    const nul = space < 0 ? -1 : data.indexOf(0, space);
    if (space < 0 || nul < 0 || nul + 21 > data.length)
      throw new StoreError('ERR_BAD_OBJECT', `tree ${hash}: truncated entry`);
    const mode = Number.parseInt(decoder.decode(data.subarray(pos, space)), 8);
    const name = decoder.decode(data.subarray(space + 1, nul));
    const id = Buffer.from(data.buffer, data.byteOffset + nul + 1, 20).toString('hex');
    entries.push({ name, mode, hash: id });
    pos = nul + 21;
  }
  return entries;
}

/** Git's order: byte-wise by name, a directory compared as if its name ended in "/". */
export function compareTreeEntries(a: TreeEntry, b: TreeEntry): number {
  return compareKeys(sortKey(a), sortKey(b));
}

export function sortKey(e: TreeEntry): string {
  return e.mode === TreeMode.DIR ? `${e.name}/` : e.name;
}

/**
 * UTF-8 byte order of two names. JS string order (UTF-16 code units) is the same except where
 * a surrogate pair meets a character at or above U+E000: only then compare the encoded bytes.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 || y >= 0xd800) return Buffer.compare(Buffer.from(a.slice(i)), Buffer.from(b.slice(i)));
    return x - y;
  }
  return a.length - b.length;
}

/** One tree entry as git stores it ("<mode> <name>\0<20-byte id>"), with its sort key. */
export interface EncodedTreeEntry {
  readonly key: string;
  readonly bytes: Uint8Array;
}

export function encodeTreeEntry(e: TreeEntry): EncodedTreeEntry {
  const mode = e.mode.toString(8);
  const out = Buffer.allocUnsafe(mode.length + 1 + Buffer.byteLength(e.name) + 1 + 20);
  let p = out.write(mode, 0, 'latin1');
  out[p++] = 0x20;
  p += out.write(e.name, p, 'utf8');
  out[p++] = 0;
  out.write(e.hash, p, 20, 'hex');
  return { key: sortKey(e), bytes: out };
}

/**
 * `items` in git's order. They usually come in order but for a few (a directory's new names are
 * added at the end of its map): those are taken out, sorted and merged back in, O(n + k log k)
 * rather than a full sort with a JS comparator.
 */
export function inTreeOrder<T extends { readonly encoded: { readonly key: string } }>(items: T[]): T[] {
  const kept: T[] = [];
  const stray: T[] = [];
  let lastKey: string | undefined;
  for (const item of items) {
    const key = item.encoded.key;
    if (lastKey === undefined || compareKeys(lastKey, key) < 0) {
      kept.push(item);
      lastKey = key;
    } else stray.push(item);
  }
  if (stray.length === 0) return kept;
  stray.sort((x, y) => compareKeys(x.encoded.key, y.encoded.key));
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (i < kept.length || j < stray.length) {
    const a = kept[i];
    const b = stray[j];
    if (b === undefined || (a !== undefined && compareKeys(a.encoded.key, b.encoded.key) <= 0)) {
      out.push(a as T);
      i++;
    } else {
      out.push(b);
      j++;
    }
  }
  return out;
}

/** The tree object of entries already in git's order. */
export function joinTreeEntries(items: readonly EncodedTreeEntry[]): Uint8Array {
  let size = 0;
  for (const item of items) size += item.bytes.length;
  const out = Buffer.allocUnsafe(size);
  let p = 0;
  for (const item of items) {
    out.set(item.bytes, p);
    p += item.bytes.length;
  }
  return out;
}

/** One buffer, each name encoded once: trees of thousands of entries are encoded on every commit. */
export function encodeTree(entries: readonly TreeEntry[]): Uint8Array {
  const keyed = entries.map((e) => ({ e, key: sortKey(e) }));
  keyed.sort((x, y) => compareKeys(x.key, y.key));
  let size = 0;
  for (const { e } of keyed) size += e.mode.toString(8).length + 1 + Buffer.byteLength(e.name) + 1 + 20;
  const out = Buffer.allocUnsafe(size);
  let p = 0;
  for (const { e } of keyed) {
    p += out.write(e.mode.toString(8), p, 'latin1');
    out[p++] = 0x20;
    p += out.write(e.name, p, 'utf8');
    out[p++] = 0;
    p += out.write(e.hash, p, 20, 'hex');
  }
  return p === size ? out : out.subarray(0, p);
}

// ---- commits ----

export interface Signature {
  readonly name: string;
  readonly email: string;
  /** Seconds since the epoch. */
  readonly time: number;
  /** "+0000" style. */
  readonly tz: string;
}

export interface Commit {
  readonly tree: string;
  readonly parents: readonly string[];
  readonly author: Signature;
  readonly committer: Signature;
  readonly message: string;
}

function formatSignature(s: Signature): string {
  return `${s.name} <${s.email}> ${s.time} ${s.tz}`;
}

function parseSignature(text: string): Signature {
  const m = /^(.*?) ?<([^>]*)> (\d+) ([+-]\d{4})$/.exec(text);
  if (!m) return { name: text, email: '', time: 0, tz: '+0000' };
  return { name: m[1] ?? '', email: m[2] ?? '', time: Number(m[3]), tz: m[4] ?? '+0000' };
}

export function encodeCommit(c: Commit): Uint8Array {
  let text = `tree ${c.tree}\n`;
  for (const p of c.parents) text += `parent ${p}\n`;
  text += `author ${formatSignature(c.author)}\ncommitter ${formatSignature(c.committer)}\n\n${c.message}`;
  return encoder.encode(text);
}

export function parseCommit(data: Uint8Array, hash = '?'): Commit {
  const text = decoder.decode(data);
  const split = text.indexOf('\n\n');
  const head = split < 0 ? text : text.slice(0, split);
  const message = split < 0 ? '' : text.slice(split + 2);
  let tree: string | undefined;
  const parents: string[] = [];
  let author: Signature | undefined;
  let committer: Signature | undefined;
  for (const line of head.split('\n')) {
    const sp = line.indexOf(' ');
    const key = line.slice(0, sp);
    const value = line.slice(sp + 1);
    if (key === 'tree') tree = value;
    else if (key === 'parent') parents.push(value);
    else if (key === 'author') author = parseSignature(value);
    else if (key === 'committer') committer = parseSignature(value);
  }
  if (!tree || !isHash(tree)) throw new StoreError('ERR_BAD_OBJECT', `commit ${hash}: no tree`);
  const nobody = { name: '', email: '', time: 0, tz: '+0000' };
  return { tree, parents, author: author ?? nobody, committer: committer ?? author ?? nobody, message };
}
