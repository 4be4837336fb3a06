import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { seededRandom } from '@kitset/testkit';
import {
  type Dialect,
  HostFsBackend,
  type Message,
  type MessageName,
  MessageType,
  NOFID,
  NOTAG,
  ServerConnection,
  decodeMessage,
  encodeMessage,
  messageLayout,
} from '../src/index.js';

/** xorshift32 (testkit): deterministic, so a failure can be replayed from its seed. */
const rng = seededRandom;
type Rng = ReturnType<typeof rng>;

const NAMES = ['a', 'b', 'dir', 'file.txt', '..', '.', '', 'x/y', 'long'.repeat(80), 'ü', 'sub'];
const ALL_TYPES = Object.keys(MessageType) as MessageName[];
const REQUEST_TYPES = ALL_TYPES.filter((t) => t.startsWith('T') && t !== 'Tversion');

function randomValue(r: Rng, field: string, kind: string): unknown {
  const fidLike = /fid/i.test(field);
  switch (kind) {
    case 'u8':
      return r.int(256);
    case 'u16':
      return r.chance(0.5) ? r.int(64) : r.int(65536);
    case 'u32':
    case 'optu32':
    case 'uu32':
    case 'nuname':
      if (fidLike) return r.chance(0.9) ? r.int(12) : r.chance(0.5) ? NOFID : r.u32();
      if (field === 'count') return r.chance(0.7) ? r.int(9000) : r.u32();
      return r.chance(0.7) ? r.int(0o1000000) : r.u32();
    case 'u64':
      return r.chance(0.8) ? r.int(100000) : r.u32() * 2 ** 20 + r.int(1000);
    case 'u64n':
      return BigInt(r.u32());
    case 'str':
    case 'ustr':
      return r.pick(NAMES);
    case 'qid':
      return { type: r.int(256), version: r.u32(), path: BigInt(r.u32()) };
    case 'data': {
      const d = new Uint8Array(r.chance(0.9) ? r.int(64) : r.int(4000));
      for (let i = 0; i < d.length; i++) d[i] = r.int(256);
      return d;
    }
    case 'strs':
      return Array.from({ length: r.chance(0.95) ? r.int(4) : 17 }, () => r.pick(NAMES));
    case 'qids':
      return Array.from({ length: r.int(3) }, () => ({ type: 0, version: 0, path: 1n }));
    case 'stat':
      return {
        type: r.int(65536),
        dev: r.u32(),
        qid: { type: 0, version: 0, path: 0n },
        mode: r.chance(0.5) ? 0xffffffff : r.u32(),
        atime: r.chance(0.5) ? 0xffffffff : r.u32(),
        mtime: r.chance(0.5) ? 0xffffffff : r.u32(),
        length: r.chance(0.7) ? 0xffffffff * 2 ** 32 + 0xffffffff : r.int(1000),
        name: r.chance(0.7) ? '' : r.pick(NAMES),
        uid: '',
        gid: '',
        muid: '',
        extension: '',
        nUid: 0xffffffff,
        nGid: 0xffffffff,
        nMuid: 0xffffffff,
      };
  }
  return 0;
}

function randomMessage(r: Rng, dialect: Dialect): Uint8Array {
  const type = r.chance(0.95) ? r.pick(REQUEST_TYPES) : r.pick(ALL_TYPES);
  const msg: Record<string, unknown> = { type, tag: r.chance(0.9) ? r.int(300) : r.int(65536) };
  for (const [field, kind] of messageLayout(type)) msg[field] = randomValue(r, field, kind);
  return encodeMessage(msg as Message, dialect);
}

/** A coherent little session (walk, open, an operation, clunk) so the fuzzer reaches deep server states. */
function scenario(r: Rng, dialect: Dialect): Uint8Array[] {
  const fid = 2 + r.int(6);
  const tag = () => 1000 + r.int(1000);
  const dotl = dialect === '9P2000.L';
  const name = r.pick(['dir', 'file.txt', 'a', 'sub', 'b']);
  const msgs: Message[] = [
    { type: 'Twalk', tag: tag(), fid: 1, newfid: fid, names: r.chance(0.3) ? [] : [name] },
  ];
  const op = r.int(8);
  if (op === 0)
    msgs.push(
      dotl
        ? { type: 'Tmkdir', tag: tag(), dfid: fid, name: r.pick(NAMES), mode: 0o755, gid: 0 }
        : { type: 'Tcreate', tag: tag(), fid, name: r.pick(NAMES), perm: 0x800001ed, mode: 0, extension: '' },
    );
  else if (op === 1)
    msgs.push(
      dotl
        ? { type: 'Tlcreate', tag: tag(), fid, name: r.pick(NAMES), flags: 0o102, mode: 0o644, gid: 0 }
        : { type: 'Tcreate', tag: tag(), fid, name: r.pick(NAMES), perm: 0o644, mode: 2, extension: '' },
    );
  else {
    const flags = r.pick([0, 1, 2, 0o1002, 0o2001]);
    msgs.push(
      dotl ? { type: 'Tlopen', tag: tag(), fid, flags } : { type: 'Topen', tag: tag(), fid, mode: flags & 3 },
    );
  }
  const data = new Uint8Array(r.int(300)).fill(0x61);
  const count = r.pick([0, 10, 100, 4096, 100000]);
  const offset = r.chance(0.8) ? 0 : r.int(1000);
  msgs.push(
    r.pick<Message>([
      { type: 'Tread', tag: tag(), fid, offset, count },
      { type: 'Twrite', tag: tag(), fid, offset, data },
      dotl
        ? { type: 'Treaddir', tag: tag(), fid, offset, count }
        : { type: 'Tread', tag: tag(), fid, offset: 0, count: 4096 },
      dotl ? { type: 'Tgetattr', tag: tag(), fid, requestMask: 0x7ff } : { type: 'Tstat', tag: tag(), fid },
    ]),
  );
  if (r.chance(0.2))
    msgs.push(
      dotl
        ? { type: 'Tunlinkat', tag: tag(), dirFid: 1, name, flags: 0 }
        : { type: 'Tremove', tag: tag(), fid },
    );
  msgs.push({ type: 'Tclunk', tag: tag(), fid });
  return msgs.map((m) => encodeMessage(m, dialect));
}

function mutate(r: Rng, valid: Uint8Array): Uint8Array {
  const m = new Uint8Array(valid);
  switch (r.chance(0.94) ? r.pick([0, 1, 3, 4]) : r.pick([2, 5])) {
    case 0: {
      // Flip a few bytes after the size field.
      for (let i = 0, n = 1 + r.int(4); i < n && m.length > 4; i++) m[4 + r.int(m.length - 4)] = r.int(256);
      return m;
    }
    case 1: {
      // Truncate, fixing up the size field so the frame is "complete".
      const keep = r.chance(0.9) ? Math.min(m.length, 7 + r.int(m.length)) : r.int(m.length + 1);
      const cut = m.subarray(0, keep).slice();
      if (cut.length >= 4) new DataView(cut.buffer).setUint32(0, cut.length, true);
      return cut;
    }
    case 2: {
      // A wrong size field (smaller, larger, or absurd).
      const v = r.pick([0, 3, 7, m.length - 1, m.length + 1, r.u32(), 0xffffffff]);
      new DataView(m.buffer).setUint32(0, v >>> 0, true);
      return m;
    }
    case 3:
      m[4] = r.int(256); // random type
      return m;
    case 4: {
      // Garbage appended inside the frame.
      const g = new Uint8Array(m.length + 1 + r.int(16));
      g.set(m);
      for (let i = m.length; i < g.length; i++) g[i] = r.int(256);
      new DataView(g.buffer).setUint32(0, g.length, true);
      return g;
    }
    default: {
      // Pure noise.
      const g = new Uint8Array(1 + r.int(40));
      for (let i = 0; i < g.length; i++) g[i] = r.int(256);
      return g;
    }
  }
}

function rmrf(dir: string): void {
  // The fuzzer may chmod things to 000; make everything removable first.
  const fix = (p: string) => {
    try {
      const st = fs.lstatSync(p);
      if (st.isSymbolicLink()) return;
      fs.chmodSync(p, 0o700);
      if (st.isDirectory()) for (const n of fs.readdirSync(p)) fix(join(p, n));
    } catch {}
  };
  fix(dir);
  fs.rmSync(dir, { recursive: true, force: true });
}

test(
  'fuzz: 100,000 random and mutated messages never crash the server or grow memory',
  { timeout: 60000 },
  async () => {
    const seed = Number(process.env.NINEP_FUZZ_SEED ?? 0x9e3779b9);
    const total = Number(process.env.NINEP_FUZZ_COUNT ?? 100_000);
    const r = rng(seed);
    const base = fs.mkdtempSync(join(tmpdir(), 'ninep-fuzz-'));
    const exportDir = join(base, 'export');
    const outside = join(base, 'outside');
    fs.mkdirSync(join(exportDir, 'dir'), { recursive: true });
    fs.mkdirSync(outside);
    fs.writeFileSync(join(exportDir, 'file.txt'), 'content');
    fs.writeFileSync(join(outside, 'secret'), 'secret');
    const backend = new HostFsBackend(exportDir);
    const escaped: unknown[] = [];
    const onRejection = (e: unknown) => escaped.push(e);
    process.on('unhandledRejection', onRejection);
    const started = Date.now();
    const rssBefore = process.memoryUsage().rss;
    let maxRss = rssBefore;
    let replies = 0;
    let successes = 0;
    let scenarios = 0;
    const reasons = new Map<string, number>();
    let connections = 0;
    let logged = 0;
    const dialects: Dialect[] = ['9P2000.L', '9P2000.u', '9P2000'];
    let conn: ServerConnection | undefined;
    let dialect: Dialect = '9P2000.L';
    const open = () => {
      dialect = dialects[connections % 3]!;
      connections++;
      const c = new ServerConnection(backend, {
        logger: (m) => {
          logged++;
          if (process.env.FUZZ_DEBUG) reasons.set(m.slice(0, 60), (reasons.get(m.slice(0, 60)) ?? 0) + 1);
        },
        maxOutstanding: 64,
        maxFids: 256,
      });
      c.onSend = (parts, release) => {
        replies++;
        const t = parts[0]![4]!;
        if (t !== MessageType.Rerror && t !== MessageType.Rlerror) successes++;
        release?.();
        assert.ok(parts.length > 0);
      };
      c.receive(encodeMessage({ type: 'Tversion', tag: NOTAG, msize: 16384, version: dialect }, dialect));
      c.receive(
        encodeMessage(
          { type: 'Tattach', tag: 1, fid: 1, afid: NOFID, uname: 'root', aname: '', nUname: 0 },
          dialect,
        ),
      );
      return c;
    };
    try {
      for (let sent = 0; sent < total; sent++) {
        if (!conn || conn.closed) conn = open();
        if (r.chance(0.15)) {
          const frames = scenario(r, dialect);
          for (const f of frames) {
            conn.receive(f);
            // Each step waits for the previous one, as a client would.
            for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
          }
          sent--; // scenarios come on top of the random and mutated messages
          scenarios++;
          continue;
        }
        const valid = randomMessage(r, dialect);
        // Framing-breaking input ends a connection, so keep most input framed to reach deeper states.
        const bytes = r.chance(0.5) ? valid : mutate(r, valid);
        if (r.chance(0.1) && bytes.length > 2) {
          const cut = 1 + r.int(bytes.length - 1);
          conn.receive(bytes.subarray(0, cut));
          conn.receive(bytes.subarray(cut));
        } else conn.receive(bytes);
        assert.ok(conn.outstanding <= 64, 'outstanding requests stay capped');
        assert.ok(conn.fidCount <= 256, 'fids stay capped');
        if (sent % 8 === 7) {
          // Let backend I/O complete so requests really run.
          await new Promise((resolve) => setImmediate(resolve));
          if (sent % 4096 === 4095) {
            await new Promise((resolve) => setTimeout(resolve, 1));
            maxRss = Math.max(maxRss, process.memoryUsage().rss);
            // A connection starved by a paused queue is replaced, as a real client would reconnect.
            if (conn.outstanding > 0 && r.chance(0.5)) conn.close();
          }
        }
      }
      // The fuzzed connection itself, if it survived, still answers a valid Tversion (which resets it).
      if (conn && !conn.closed) {
        const answers: Uint8Array[] = [];
        conn.onSend = (parts) => answers.push(Buffer.concat(parts));
        conn.receive(
          encodeMessage({ type: 'Tversion', tag: NOTAG, msize: 8192, version: '9P2000.u' }, '9P2000.u'),
        );
        for (let i = 0; i < 100 && !answers.some((a) => a[4] === MessageType.Rversion); i++)
          await new Promise((resolve) => setTimeout(resolve, 5));
        const rv = answers.find((a) => a[4] === MessageType.Rversion);
        if (!conn.closed) {
          assert.ok(rv, 'the fuzzed connection answered Tversion');
          assert.deepEqual(decodeMessage(rv, '9P2000.u'), {
            type: 'Rversion',
            tag: NOTAG,
            msize: 8192,
            version: '9P2000.u',
          });
        }
      }
      conn?.close();
      await new Promise((resolve) => setTimeout(resolve, 50));
      const elapsed = Date.now() - started;
      // The server still answers a valid Tversion afterwards.
      const fresh = new ServerConnection(backend, { logger: () => {} });
      const got: Uint8Array[] = [];
      fresh.onSend = (parts) => got.push(Buffer.concat(parts));
      fresh.receive(
        encodeMessage({ type: 'Tversion', tag: NOTAG, msize: 8192, version: '9P2000.L' }, '9P2000.L'),
      );
      assert.equal(got.length, 1);
      assert.deepEqual(decodeMessage(got[0]!, '9P2000.L'), {
        type: 'Rversion',
        tag: NOTAG,
        msize: 8192,
        version: '9P2000.L',
      });
      assert.deepEqual(escaped, [], 'no exception escaped');
      assert.ok(replies > total / 10, `the server answered (${replies} replies)`);
      const growth = (maxRss - rssBefore) / 2 ** 20;
      assert.ok(growth < 400, `memory stayed bounded (rss grew ${growth.toFixed(0)} MiB)`);
      // Nothing outside the export root was touched.
      assert.deepEqual(fs.readdirSync(outside), ['secret']);
      assert.equal(fs.readFileSync(join(outside, 'secret'), 'utf8'), 'secret');
      if (process.env.FUZZ_DEBUG) console.log([...reasons].sort((a, b) => b[1] - a[1]).slice(0, 12));
      console.log(
        `fuzz: seed ${seed}, ${total} random or mutated messages + ${scenarios} scenarios, ${connections} connections, ${replies} replies (${successes} successful), ${logged} logged closes/errors, ${elapsed} ms, rss +${growth.toFixed(0)} MiB`,
      );
    } finally {
      process.off('unhandledRejection', onRejection);
      rmrf(base);
    }
  },
);
