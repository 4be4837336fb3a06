/**
 * Git delta encoding (the format `applyDelta` reads) for trees: a new version of a directory is
 * mostly the entries of the previous one, so the delta copies runs of identical entries from the
 * base and inserts only the entries that changed. A commit's journal record then holds a few
 * dozen bytes for a directory of thousands of entries.
 */

/** Byte offsets where each entry of an encoded tree starts (and the end), or undefined if malformed. */
function entryBounds(tree: Uint8Array): number[] | undefined {
  const out: number[] = [];
  let pos = 0;
  while (pos < tree.length) {
    out.push(pos);
    const nul = tree.indexOf(0, pos);
    if (nul < 0 || nul + 21 > tree.length) return undefined;
    pos = nul + 21;
  }
  out.push(pos);
  return out;
}

/** Writes a git delta's bytes into a buffer grown as needed (no array of numbers per byte). */
class DeltaWriter {
  private out = new Uint8Array(256);
  private at = 0;
  private pendingInsert: Array<{ from: Uint8Array; start: number; end: number }> = [];

  constructor(baseSize: number, targetSize: number) {
    this.varint(baseSize);
    this.varint(targetSize);
  }

  private room(n: number): void {
    if (this.at + n <= this.out.length) return;
    const bigger = new Uint8Array(Math.max(this.out.length * 2, this.at + n));
    bigger.set(this.out.subarray(0, this.at));
    this.out = bigger;
  }

  private varint(n: number): void {
    this.room(10);
    let v = n;
    while (v >= 0x80) {
      this.out[this.at++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.out[this.at++] = v;
  }

  insert(from: Uint8Array, start: number, end: number): void {
    if (end <= start) return;
    this.pendingInsert.push({ from, start, end });
  }

  private flushInsert(): void {
    for (const { from, start, end } of this.pendingInsert) {
      for (let at = start; at < end; at += 127) {
        const n = Math.min(127, end - at);
        this.room(n + 1);
        this.out[this.at++] = n;
        this.out.set(from.subarray(at, at + n), this.at);
        this.at += n;
      }
    }
    this.pendingInsert.length = 0;
  }

  copy(offset: number, size: number): void {
    this.flushInsert();
    for (let done = 0; done < size; ) {
      const n = Math.min(0x10000, size - done);
      const off = offset + done;
      this.room(8);
      const opAt = this.at++;
      let op = 0x80;
      for (let i = 0; i < 4; i++) {
        const b = (off >>> (8 * i)) & 0xff;
        if (b !== 0) {
          op |= 1 << i;
          this.out[this.at++] = b;
        }
      }
      const sizeField = n === 0x10000 ? 0 : n;
      for (let i = 0; i < 3; i++) {
        const b = (sizeField >>> (8 * i)) & 0xff;
        if (b !== 0) {
          op |= 0x10 << i;
          this.out[this.at++] = b;
        }
      }
      this.out[opAt] = op;
      done += n;
    }
  }

  finish(): Uint8Array {
    this.flushInsert();
    return this.out.subarray(0, this.at);
  }
}

/** One step of a delta made from known edits: copy base bytes, or insert new ones. */
export type DeltaRun = { readonly copyFrom: number; readonly size: number } | { readonly insert: Uint8Array };

/**
 * The delta of runs already known (a directory spliced from its previous version: the copied
 * runs and the inserted entries), without comparing the trees. Undefined when it would not be
 * much smaller than the target, as for `encodeTreeDelta`.
 */
export function deltaOfRuns(
  baseSize: number,
  targetSize: number,
  runs: readonly DeltaRun[],
): Uint8Array | undefined {
  const w = new DeltaWriter(baseSize, targetSize);
  for (const run of runs) {
    if ('insert' in run) w.insert(run.insert, 0, run.insert.length);
    else if (run.size > 0) w.copy(run.copyFrom, run.size);
  }
  const delta = w.finish();
  return delta.length < targetSize / 2 ? delta : undefined;
}

function sameBytes(a: Uint8Array, as: number, ae: number, b: Uint8Array, bs: number, be: number): boolean {
  if (ae - as !== be - bs) return false;
  for (let k = 0; k < ae - as; k++) if (a[as + k] !== b[bs + k]) return false;
  return true;
}

/**
 * A delta from tree `base` to tree `target`: the entries are walked in step (both are in git's
 * order) and identical ones copied. Undefined when it would not be much smaller than `target`.
 */
export function encodeTreeDelta(base: Uint8Array, target: Uint8Array): Uint8Array | undefined {
  const bb = entryBounds(base);
  const tb = entryBounds(target);
  if (!bb || !tb) return undefined;
  const w = new DeltaWriter(base.length, target.length);
  // Entries of the base by their bytes' position, found by walking both lists: an entry of the
  // target equal to the base entry at the cursor is copied; otherwise the cursor moves past base
  // entries that sort before it (removed), and the target entry is inserted.
  let bi = 0;
  let runStart = -1;
  let runBase = 0;
  const endRun = (ti: number) => {
    if (runStart < 0) return;
    w.copy(runBase, (tb[ti] as number) - runStart);
    runStart = -1;
  };
  const compareNames = (aStart: number, a: Uint8Array, bStart: number, b: Uint8Array): number => {
    // Names start after "<mode> " and end at NUL; git order compares name bytes (a directory as
    // if followed by "/", which only matters between a file and a directory of one name: both
    // then simply differ and are inserted).
    let i = a.indexOf(0x20, aStart) + 1;
    let j = b.indexOf(0x20, bStart) + 1;
    for (;;) {
      const x = a[i] as number;
      const y = b[j] as number;
      if (x !== y) return x === 0 ? -1 : y === 0 ? 1 : x - y;
      if (x === 0) return 0;
      i++;
      j++;
    }
  };
  for (let ti = 0; ti < tb.length - 1; ti++) {
    const ts = tb[ti] as number;
    const te = tb[ti + 1] as number;
    let matched = -1;
    // Most entries are the base's next one, byte for byte: check that first.
    if (bi < bb.length - 1 && sameBytes(base, bb[bi] as number, bb[bi + 1] as number, target, ts, te)) {
      matched = bb[bi] as number;
      bi++;
    }
    while (matched < 0 && bi < bb.length - 1) {
      const bs = bb[bi] as number;
      const c = compareNames(bs, base, ts, target);
      if (c < 0) {
        bi++;
        continue;
      }
      if (c === 0) {
        const be = bb[bi + 1] as number;
        if (be - bs === te - ts) {
          let same = true;
          for (let k = 0; k < te - ts; k++)
            if (base[bs + k] !== target[ts + k]) {
              same = false;
              break;
            }
          if (same) matched = bs;
        }
        bi++;
      }
      break;
    }
    if (matched >= 0) {
      if (runStart >= 0 && runBase + (ts - runStart) === matched) continue; // the run goes on
      endRun(ti);
      runStart = ts;
      runBase = matched;
    } else {
      endRun(ti);
      w.insert(target, ts, te);
    }
  }
  endRun(tb.length - 1);
  const delta = w.finish();
  return delta.length < target.length / 2 ? delta : undefined;
}
