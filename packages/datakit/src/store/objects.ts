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
  const ka = Buffer.from(a.mode === TreeMode.DIR ? `${a.name}/` : a.name);
  const kb = Buffer.from(b.mode === TreeMode.DIR ? `${b.name}/` : b.name);
  return Buffer.compare(ka, kb);
}

export function encodeTree(entries: readonly TreeEntry[]): Uint8Array {
  const sorted = [...entries].sort(compareTreeEntries);
  const parts: Uint8Array[] = [];
  for (const e of sorted) {
    parts.push(encoder.encode(`${e.mode.toString(8)} ${e.name}\0`));
    parts.push(Buffer.from(e.hash, 'hex'));
  }
  return Buffer.concat(parts);
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
