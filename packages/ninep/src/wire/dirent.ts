import type { Qid } from '../backend.js';
import { WireReader, type WireWriter, utf8Length } from './buffer.js';

/** A 9P2000.L directory entry as carried in Rreaddir: qid[13] offset[8] type[1] name[s]. */
export interface WireDirent {
  qid: Qid;
  offset: number;
  type: number;
  name: string;
}

export function direntSize(name: string): number {
  return 13 + 8 + 1 + 2 + utf8Length(name);
}

export function writeDirent(w: WireWriter, qid: Qid, offset: number, type: number, name: string): void {
  w.qid(qid);
  w.u64(offset);
  w.u8(type);
  w.str(name);
}

/** Decodes the data of an Rreaddir. Throws NinePDecodeError on malformed input. */
export function decodeDirents(data: Uint8Array): WireDirent[] {
  const r = new WireReader(data, 0, data.length);
  const out: WireDirent[] = [];
  while (r.remaining > 0) {
    const qid = r.qid();
    const offset = r.u64();
    const type = r.u8();
    const name = r.str();
    out.push({ qid, offset, type, name });
  }
  return out;
}
