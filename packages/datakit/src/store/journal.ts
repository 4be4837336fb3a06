import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  constants,
  closeSync,
  fdatasync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  statSync,
  unlinkSync,
  write,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { StoreError } from './errors.js';
import type { ObjectType } from './objects.js';

/** An object as journaled: its type and uncompressed contents (the hash is recomputed on replay). */
export interface JournalObject {
  readonly type: ObjectType;
  /** The contents, or with `base` a git delta against that object. */
  readonly data: Uint8Array;
  readonly base?: string;
}

/** A ref compare-and-swap: undefined `old` = did not exist, undefined `new` = deleted. */
export interface JournalRefUpdate {
  readonly name: string;
  readonly old: string | undefined;
  readonly new: string | undefined;
  /** Reflog line message. */
  readonly message: string;
}

export interface JournalRecord {
  readonly objects: readonly JournalObject[];
  readonly refs: readonly JournalRefUpdate[];
}

const MAGIC = 0x444b4a32; // "DKJ2"
const FILE_MAGIC = 0x444b4832; // "DKH2"
const HEADER = 16; // magic, payload length, epoch, crc32 of epoch and payload
/** Records start after the file header block, which holds the current epoch. */
const FIRST_RECORD = 4096;
const ZERO_HASH = '0000000000000000000000000000000000000000';
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const typeCodes: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3, tag: 4 };
const typeOfCode: ReadonlyArray<ObjectType | undefined> = [undefined, 'commit', 'tree', 'blob', 'tag'];
/** On an object's type code: its data is a delta against the object named next. */
const DELTA_FLAG = 0x80;

/** Our own journals, so a second Repository in this process does not replay a live one. */
const liveJournals = new Set<string>();

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replace(/-/g, '').slice(0, 12);
  } catch {
    return 'noboot';
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** syncfs(2) of the file system holding `path` (coreutils `sync -f`): one flush for a whole checkpoint. */
export function syncFileSystem(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('sync', ['-f', path], { timeout: 120_000 }, (err) =>
      err ? reject(new StoreError('ERR_IO', `sync -f ${path}: ${err.message}`)) : resolve(),
    );
  });
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A record with its header; `stampRecord` sets the epoch and checksum when it is written. */
export function encodeRecord(rec: JournalRecord): Buffer {
  const refParts = rec.refs.map((r) => ({
    name: encoder.encode(r.name),
    msg: encoder.encode(r.message),
    old: Buffer.from(r.old ?? ZERO_HASH, 'hex'),
    new: Buffer.from(r.new ?? ZERO_HASH, 'hex'),
  }));
  let size = HEADER + 2;
  for (const r of refParts) size += 2 + r.name.length + 4 + r.msg.length + 40;
  size += 4;
  for (const o of rec.objects) size += 5 + (o.base ? 20 : 0) + o.data.length;
  const out = Buffer.allocUnsafe(size);
  let p = HEADER;
  p = out.writeUInt16BE(refParts.length, p);
  for (const r of refParts) {
    p = out.writeUInt16BE(r.name.length, p);
    out.set(r.name, p);
    p += r.name.length;
    p = out.writeUInt32BE(r.msg.length, p);
    out.set(r.msg, p);
    p += r.msg.length;
    out.set(r.old, p);
    out.set(r.new, p + 20);
    p += 40;
  }
  p = out.writeUInt32BE(rec.objects.length, p);
  for (const o of rec.objects) {
    out[p] = typeCodes[o.type] | (o.base ? DELTA_FLAG : 0);
    p = out.writeUInt32BE(o.data.length, p + 1);
    if (o.base) p += out.write(o.base, p, 20, 'hex');
    out.set(o.data, p);
    p += o.data.length;
  }
  out.writeUInt32BE(MAGIC, 0);
  out.writeUInt32BE(size - HEADER, 4);
  return out;
}

export function stampRecord(out: Buffer, epoch: number): void {
  out.writeUInt32BE(epoch, 8);
  out.writeUInt32BE(crc32(out.subarray(HEADER), crc32(out.subarray(8, 12))) >>> 0, 12);
}

/**
 * Every whole record of the file's current epoch; stops at the first torn or corrupt one, or at
 * one left from before the last checkpoint.
 */
export function decodeRecords(bytes: Uint8Array): JournalRecord[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: JournalRecord[] = [];
  if (buf.length < FIRST_RECORD || buf.readUInt32BE(0) !== FILE_MAGIC) return out;
  const epoch = buf.readUInt32BE(4);
  let at = FIRST_RECORD;
  while (at + HEADER <= buf.length) {
    if (buf.readUInt32BE(at) !== MAGIC || buf.readUInt32BE(at + 8) !== epoch) break;
    const len = buf.readUInt32BE(at + 4);
    if (at + HEADER + len > buf.length) break;
    const payload = buf.subarray(at + HEADER, at + HEADER + len);
    if (crc32(payload, crc32(buf.subarray(at + 8, at + 12))) >>> 0 !== buf.readUInt32BE(at + 12)) break;
    at += HEADER + len;
    let p = 0;
    const refs: JournalRefUpdate[] = [];
    const nrefs = payload.readUInt16BE(p);
    p += 2;
    for (let i = 0; i < nrefs; i++) {
      const nameLen = payload.readUInt16BE(p);
      const name = decoder.decode(payload.subarray(p + 2, p + 2 + nameLen));
      p += 2 + nameLen;
      const msgLen = payload.readUInt32BE(p);
      const message = decoder.decode(payload.subarray(p + 4, p + 4 + msgLen));
      p += 4 + msgLen;
      const old = payload.toString('hex', p, p + 20);
      const neu = payload.toString('hex', p + 20, p + 40);
      p += 40;
      refs.push({
        name,
        message,
        old: old === ZERO_HASH ? undefined : old,
        new: neu === ZERO_HASH ? undefined : neu,
      });
    }
    const objects: JournalObject[] = [];
    const nobjects = payload.readUInt32BE(p);
    p += 4;
    for (let i = 0; i < nobjects; i++) {
      const code = payload[p] ?? 0;
      const type = typeOfCode[code & ~DELTA_FLAG];
      const len = payload.readUInt32BE(p + 1);
      if (type === undefined) break;
      p += 5;
      if (code & DELTA_FLAG) {
        const base = payload.toString('hex', p, p + 20);
        p += 20;
        objects.push({ type, data: payload.subarray(p, p + len), base });
      } else objects.push({ type, data: payload.subarray(p, p + len) });
      p += len;
    }
    out.push({ objects, refs });
  }
  return out;
}

/**
 * A write-ahead journal of group commits: each record holds the group's new objects and its ref
 * updates, and is made durable with one fdatasync before the commit is acknowledged. The objects
 * and refs are published to the git directory later, in the background, without waiting for the
 * disk (`publishedThrough` says how far that has got); a checkpoint (one syncfs) makes what was
 * published durable and starts the file over (a new epoch in its header), carrying over the
 * records not yet published. After a crash or power loss, the next `Repository.open` replays the
 * journal.
 *
 * The file is preallocated (written with zeros and fsynced once), so a record is an overwrite
 * inside the file and its fdatasync flushes only data: no file-system journal commit, which would
 * also stall every file creation and rename meanwhile.
 *
 * Files: `<gitDir>/datakit/journal-<boot>-<pid>-<instance>`; a journal whose process is gone (or
 * from an earlier boot) belongs to a dead server and is replayed by the next opener.
 */
export class Journal {
  private fd = -1;
  private path = '';
  private epoch = 1;
  private size = FIRST_RECORD;
  private readonly instance = randomBytes(4).toString('hex');
  private queue: Array<{
    bytes: Buffer;
    onDurable: ((seq: number) => void) | undefined;
    onFailed: (() => void) | undefined;
    resolve: (seq: number) => void;
    reject: (err: Error) => void;
  }> = [];
  private writing = false;
  /** Until then, writes go to the thread pool (the disk was slow). */
  private inPoolUntil = 0;
  /**
   * Durable writes on the event loop take 75-250 µs on this VM's disk when it is quiet, and 3-4 ms
   * when another job keeps it busy: blocking the loop for each group then starves the other
   * writers (8 writers: 10-25% fewer commits/s than in the pool). Their moving average above this
   * (each write an eighth of it: a few slow writes in a row, not one, which happens now and
   * then on a quiet disk too) sends writes to the pool for a while; then one on the loop
   * measures the disk again.
   */
  private static readonly SLOW_WRITE_MS = 1;
  private static readonly POOL_FOR_MS = 100;
  /** The moving average of durable writes made on the event loop, in ms. */
  private writeMs = 0;
  private closed = false;
  /** Sequence number of the last record made durable (records are numbered from 1, in file order). */
  private durableSeq = 0;
  /** Every record written since the last checkpoint, in order: the unpublished ones are carried over. */
  private written: Array<{ seq: number; bytes: Buffer }> = [];
  private published = 0;
  /** `written[unpublishedFrom..]` are not published yet: this many bytes. */
  private unpublishedFrom = 0;
  private unpublishedBytes = 0;
  /** Publishes what is durable to the git directory (set by the repository); never waits for the journal. */
  onPressure: (() => Promise<void>) | undefined;

  private constructor(
    readonly dir: string,
    /** Past this size a checkpoint starts the file over. */
    readonly maxBytes: number,
  ) {}

  static open(gitDir: string, maxBytes = 8 << 20): Journal {
    const j = new Journal(join(gitDir, 'datakit'), maxBytes);
    mkdirSync(j.dir, { recursive: true });
    j.startFile();
    return j;
  }

  /** Records larger than this go straight to fsynced files instead. */
  get maxRecordBytes(): number {
    return (this.maxBytes - FIRST_RECORD) / 4;
  }

  /** The last record made durable; every record up to it has had its `onDurable` run. */
  get lastDurable(): number {
    return this.durableSeq;
  }

  /** Records up to `seq` are in the git directory (not necessarily on disk yet): a checkpoint may drop them. */
  publishedThrough(seq: number): void {
    if (seq > this.published) this.published = seq;
    while (this.unpublishedFrom < this.written.length) {
      const r = this.written[this.unpublishedFrom] as { seq: number; bytes: Buffer };
      if (r.seq > this.published) break;
      this.unpublishedBytes -= r.bytes.length;
      this.unpublishedFrom++;
    }
  }

  private startFile(): void {
    this.path = join(this.dir, `journal-${bootId()}-${process.pid}-${this.instance}`);
    const fill = openSync(this.path, 'wx', 0o644);
    liveJournals.add(this.path);
    try {
      const zeros = Buffer.alloc(1 << 20);
      for (let at = 0; at < this.maxBytes; at += zeros.length)
        writeSync(fill, zeros, 0, Math.min(zeros.length, this.maxBytes - at), at);
      fsyncSync(fill);
    } finally {
      closeSync(fill);
    }
    // O_DSYNC: each write returns once its data is on stable storage, so a batch costs one
    // system call in the thread pool rather than a write and an fdatasync.
    this.fd = openSync(this.path, constants.O_WRONLY | constants.O_DSYNC);
    this.writeHeader();
    // The new name must be durable before records in it are relied upon.
    fsyncDir(this.dir);
  }

  private writeHeader(): void {
    const header = Buffer.alloc(8);
    header.writeUInt32BE(FILE_MAGIC, 0);
    header.writeUInt32BE(this.epoch, 4);
    writeSync(this.fd, header, 0, 8, 0);
  }

  /**
   * Appends `rec`; resolves with its sequence number once it is on stable storage. Concurrent
   * appends share one fdatasync. `onDurable` runs as soon as the record is durable, before any
   * later record is written or any checkpoint, so what it records is never missed by one.
   */
  append(rec: JournalRecord, onDurable?: (seq: number) => void, onFailed?: () => void): Promise<number> {
    if (this.closed) {
      onFailed?.();
      return Promise.reject(new StoreError('ERR_CLOSED', 'journal is closed'));
    }
    const bytes = encodeRecord(rec);
    if (bytes.length > this.maxRecordBytes) {
      onFailed?.();
      return Promise.reject(new StoreError('ERR_IO', `journal record of ${bytes.length} bytes is too large`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ bytes, onDurable, onFailed, resolve, reject });
      if (!this.writing) {
        this.writing = true;
        // After the current event-loop turn: every commit that turn produced joins this flush.
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        if (this.size + (this.queue[0]?.bytes.length ?? 0) > this.maxBytes) {
          try {
            // Records not yet in the git directory are carried over: wait for the publisher
            // (which never waits for us) to make room.
            for (let attempt = 0; ; attempt++) {
              await this.checkpoint();
              if (this.size + (this.queue[0]?.bytes.length ?? 0) <= this.maxBytes) break;
              if (attempt >= 100 || !this.onPressure)
                throw new StoreError('ERR_IO', 'journal full: records are not being published');
              await this.onPressure().catch(() => new Promise((r) => setTimeout(r, 10)));
            }
          } catch (err) {
            // Nothing queued can be made durable: fail those commits, keep serving.
            this.failQueued(this.queue.splice(0), err as Error);
            break;
          }
        }
        // As many queued records as fit before the end of the file.
        let bytes = 0;
        let n = 0;
        for (const q of this.queue) {
          if (this.size + bytes + q.bytes.length > this.maxBytes) break;
          bytes += q.bytes.length;
          n++;
        }
        const batch = this.queue.splice(0, n);
        try {
          for (const b of batch) stampRecord(b.bytes, this.epoch);
          await this.writeAt(
            batch.length === 1
              ? (batch[0] as { bytes: Buffer }).bytes
              : Buffer.concat(batch.map((b) => b.bytes)),
            this.size,
          );
          this.size += bytes;
          // (O_DSYNC: durable now.) Commits that came in meanwhile form the next group.
        } catch (err) {
          // Records queued after these may build on them (the next update of a ref compares
          // against the one before): they fail too.
          this.failQueued([...batch, ...this.queue.splice(0)], err as Error);
          continue;
        }
        for (const b of batch) {
          const seq = ++this.durableSeq;
          this.written.push({ seq, bytes: b.bytes });
          this.unpublishedBytes += b.bytes.length;
          try {
            b.onDurable?.(seq);
          } finally {
            b.resolve(seq);
          }
        }
        // A quarter of the file waiting for the publisher: ask for it now, not at its next tick.
        if (this.unpublishedBytes > (this.maxBytes - FIRST_RECORD) / 4 && this.onPressure)
          void this.onPressure().catch(() => {});
      }
    } finally {
      this.writing = false;
    }
  }

  private failQueued(
    records: ReadonlyArray<{ onFailed?: (() => void) | undefined; reject: (err: Error) => void }>,
    err: Error,
  ): void {
    for (const r of records) r.onFailed?.();
    for (const r of records) r.reject(err);
  }

  /**
   * The durable write of a batch, on the event loop while that is quick: a hop to the thread pool
   * and back costs two wake-ups, which measured a quarter of a single writer's commit rate, and
   * with 8 writers blocking measured 15-25% more commits/s than the pool (requests that arrive
   * during the write are read afterwards in one go, and their commits form the next group). When
   * the disk is slow (writes take more than SLOW_WRITE_MS on average: the device is busy, or the
   * file's mtime update waited for the file system's journal), in the thread pool for a while, so
   * reads and other requests are not held up by it.
   */
  private async writeAt(all: Buffer, at: number): Promise<void> {
    const fd = this.fd;
    let done = 0;
    if (performance.now() >= this.inPoolUntil) {
      const started = performance.now();
      while (done < all.length) done += writeSync(fd, all, done, all.length - done, at + done);
      const now = performance.now();
      this.writeMs += (now - started - this.writeMs) / 8;
      if (this.writeMs > Journal.SLOW_WRITE_MS) this.inPoolUntil = now + Journal.POOL_FOR_MS;
      return;
    }
    while (done < all.length) {
      const off = done;
      done += await new Promise<number>((res, rej) =>
        write(fd, all, off, all.length - off, at + off, (err, n) => (err ? rej(err) : res(n))),
      );
    }
  }

  private datasync(): Promise<void> {
    const fd = this.fd;
    return new Promise<void>((res, rej) => fdatasync(fd, (err) => (err ? rej(err) : res())));
  }

  /**
   * Makes everything published to the git directory durable (one syncfs), then starts the file
   * over in a new epoch with the records not yet published. Only called between batches.
   */
  private async checkpoint(): Promise<void> {
    if (this.size === FIRST_RECORD) return;
    const published = this.published;
    await syncFileSystem(this.dir);
    const carried = this.written.filter((r) => r.seq > published);
    // A new epoch: the records before it no longer count; the carried ones are rewritten in it.
    this.epoch++;
    for (const r of carried) stampRecord(r.bytes, this.epoch);
    const bytes = carried.reduce((n, r) => n + r.bytes.length, 0);
    if (bytes > 0) await this.writeAt(Buffer.concat(carried.map((r) => r.bytes)), FIRST_RECORD);
    this.writeHeader();
    await this.datasync();
    this.size = FIRST_RECORD + bytes;
    this.written = carried;
    this.unpublishedFrom = 0;
    this.unpublishedBytes = bytes;
  }

  /** Waits for queued appends, checkpoints (everything must be published by now) and removes the file. */
  async close(): Promise<void> {
    while (this.writing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 1));
    this.closed = true;
    await this.checkpoint();
    if (this.fd >= 0) {
      closeSync(this.fd);
      this.fd = -1;
      liveJournals.delete(this.path);
      // Records not published (a failed publish) stay for the next opener to replay.
      if (this.written.length === 0) {
        try {
          unlinkSync(this.path);
        } catch {
          // already gone
        }
      }
    }
  }

  /**
   * Journals left by servers that are gone, oldest first: (path, records). Ones of live
   * processes (another server on this repository) are left alone.
   */
  static orphans(gitDir: string): Array<{ path: string; records: JournalRecord[] }> {
    const dir = join(gitDir, 'datakit');
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return [];
    }
    const boot = bootId();
    const found: Array<{ path: string; mtime: number; records: JournalRecord[] }> = [];
    for (const name of names) {
      const m = /^journal-([^-]+)-(\d+)-([0-9a-f]+)$/.exec(name);
      if (!m) continue;
      const path = join(dir, name);
      if (liveJournals.has(path)) continue;
      if (m[1] === boot && Number(m[2]) !== process.pid && processAlive(Number(m[2]))) continue;
      try {
        found.push({
          path,
          mtime: statSync(path).mtimeMs,
          records: decodeRecords(readFileSync(path)),
        });
      } catch {
        // vanished meanwhile
      }
    }
    found.sort((a, b) => a.mtime - b.mtime);
    return found.map(({ path, records }) => ({ path, records }));
  }
}
