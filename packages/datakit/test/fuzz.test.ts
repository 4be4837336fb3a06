import assert from 'node:assert/strict';
import { type Socket, connect } from 'node:net';
import { after, describe, test } from 'node:test';
import { type Message, type NinePClientError, dontTouchStat, encodeMessage } from '@kitset/ninep';
import { seededRandom } from '@kitset/testkit';
import { DataKitClient, DataKitError } from '../src/client.js';
import { DataKitServer } from '../src/server.js';
import { fsck, tempDir, utf8 } from './helpers.js';

const cleanups: Array<() => void> = [];
after(() => {
  for (const c of cleanups) c();
});

/** xorshift32: reproducible runs (the seed is printed on failure). */
const rng = seededRandom;

const names = [
  'branch',
  'master',
  'transactions',
  't',
  'rw',
  'ctl',
  'msg',
  'merge',
  'parents',
  'head',
  'head.live',
  'watch',
  'tree.live',
  'ro',
  'snapshots',
  'trees',
  'commits',
  'remotes',
  'debug',
  'fast-forward',
  'reflog',
  'f',
  '..',
  '.',
  '',
  'a/b',
  'x\0y',
  'x'.repeat(300),
  'D-4b825dc642cb6eb9a060e54bf8d69288fbee4904',
];
const payloads = ['commit', 'close', 'bogus', '', '0'.repeat(40), 'master\n', '\0\0\0'];

function randomMessage(r: ReturnType<typeof rng>): Message {
  const fid = r.int(12);
  const tag = r.int(64);
  switch (r.int(13)) {
    case 0:
      return {
        type: 'Tattach',
        tag,
        fid,
        afid: 0xffffffff,
        uname: 'fuzz',
        aname: r.pick(['', 'x']),
        nUname: 0,
      };
    case 1:
    case 2:
    case 3: {
      const n = r.int(6);
      return {
        type: 'Twalk',
        tag,
        fid,
        newfid: r.int(12),
        names: Array.from({ length: n }, () => r.pick(names)),
      };
    }
    case 4:
      return { type: 'Topen', tag, fid, mode: r.int(256) };
    case 5:
      return {
        type: 'Tcreate',
        tag,
        fid,
        name: r.pick(names),
        perm: r.pick([0o644, 0o755, 0x80000000 | 0o755, 0x02000000]),
        mode: r.int(4),
        extension: r.pick(['', 'target']),
      };
    case 6:
      return {
        type: 'Tread',
        tag,
        fid,
        offset: r.pick([0, 1, 5, 100, 2 ** 40]),
        count: r.pick([0, 1, 256, 8192, 0xffffffff]),
      };
    case 7:
      return {
        type: 'Twrite',
        tag,
        fid,
        offset: r.pick([0, 3, 2 ** 33]),
        data: new TextEncoder().encode(r.pick(payloads)),
      };
    case 8:
      return { type: 'Tclunk', tag, fid };
    case 9:
      return { type: 'Tremove', tag, fid };
    case 10:
      return { type: 'Tstat', tag, fid };
    case 11: {
      const stat = dontTouchStat();
      if (r.int(2)) stat.name = r.pick(names);
      if (r.int(2)) stat.length = r.pick([0, 4, 2 ** 40]);
      if (r.int(2)) stat.mode = r.pick([0o755, 0o644, 0x80000000]);
      return { type: 'Twstat', tag, fid, stat };
    }
    default:
      return { type: 'Tflush', tag, oldtag: r.int(64) };
  }
}

/** 9P2000.L-only requests (the .u ones above are mostly valid in .L too). */
function randomDotLMessage(r: ReturnType<typeof rng>): Message {
  const fid = r.int(12);
  const tag = r.int(64);
  switch (r.int(9)) {
    case 0:
      return { type: 'Tlopen', tag, fid, flags: r.pick([0, 1, 2, 0o1000, 0o1001, 0o200000]) };
    case 1:
      return {
        type: 'Tlcreate',
        tag,
        fid,
        name: r.pick(names),
        flags: r.pick([1, 2, 0o1101]),
        mode: 0o644,
        gid: 0,
      };
    case 2:
      return { type: 'Treaddir', tag, fid, offset: r.pick([0, 1, 3, 1000]), count: r.pick([0, 30, 8192]) };
    case 3:
      return { type: 'Tgetattr', tag, fid, requestMask: 0x7ff };
    case 4:
      return {
        type: 'Tsetattr',
        tag,
        fid,
        valid: r.pick([1, 8, 9, 0x7f]),
        mode: r.pick([0o100755, 0o644, 0o120777]),
        uid: 0,
        gid: 0,
        size: r.pick([0, 4, 2 ** 40]),
        atimeSec: 0,
        atimeNsec: 0,
        mtimeSec: 0,
        mtimeNsec: 0,
      };
    case 5:
      return { type: 'Tmkdir', tag, dfid: fid, name: r.pick(names), mode: 0o755, gid: 0 };
    case 6:
      return { type: 'Tsymlink', tag, fid, name: r.pick(names), target: r.pick(names), gid: 0 };
    case 7:
      return { type: 'Trename', tag, fid, dfid: r.int(12), name: r.pick(names) };
    default:
      return { type: 'Tunlinkat', tag, dirFid: fid, name: r.pick(names), flags: r.pick([0, 0x200]) };
  }
}

function mutate(bytes: Uint8Array, r: ReturnType<typeof rng>): Uint8Array {
  const out = Uint8Array.from(bytes);
  const flips = 1 + r.int(4);
  // Mostly leave the size field alone so the mutated body reaches the decoder and the backend.
  const from = r.int(5) === 0 ? 0 : 4;
  for (let i = 0; i < flips; i++) out[from + r.int(out.length - from)] = r.int(256);
  if (r.int(4) === 0) return out.subarray(0, Math.max(7, r.int(out.length + 1)));
  return out;
}

function frame(body: Uint8Array): Uint8Array {
  // Keep the size field honest for most garbage so it reaches the decoder instead of the splitter.
  const out = new Uint8Array(body.length + 4);
  new DataView(out.buffer).setUint32(0, out.length, true);
  out.set(body, 4);
  return out;
}

/** Reply bytes seen: evidence the fuzzer's requests got past framing and were answered. */
let received = 0;

async function session(
  url: string,
  r: ReturnType<typeof rng>,
  frames: number,
  dialect: '9P2000.u' | '9P2000.L',
): Promise<void> {
  const port = Number(new URL(url).port);
  const sock: Socket = connect({ host: '127.0.0.1', port });
  sock.on('data', (d: Buffer) => {
    received += d.length;
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  sock.on('error', () => {});
  sock.write(encodeMessage({ type: 'Tversion', tag: 0xffff, msize: 65536, version: dialect }, dialect));
  sock.write(
    encodeMessage(
      { type: 'Tattach', tag: 1, fid: 0, afid: 0xffffffff, uname: 'fuzz', aname: '', nUname: 0 },
      dialect,
    ),
  );
  // Fresh tags keep the connection alive (the server drops one that reuses a tag in flight), so
  // the fuzzer gets past framing into the DataKit tree.
  let tag = 2;
  const wellFormedOnly = r.int(4) !== 0;
  const next = () => {
    const m = dialect === '9P2000.L' && r.int(2) === 0 ? randomDotLMessage(r) : randomMessage(r);
    m.tag = tag++ % 0xfff0;
    if (m.type === 'Tflush') m.oldtag = Math.max(2, m.tag - 1 - r.int(8));
    return m;
  };
  for (let i = 0; i < frames && !sock.destroyed; i++) {
    // Any undecodable frame ends the connection, so most sessions send only well-formed (but
    // random) requests that reach the DataKit tree; the rest also send mutated frames and garbage.
    const kind = wellFormedOnly ? 0 : r.int(10);
    let bytes: Uint8Array;
    if (kind < 6) bytes = encodeMessage(next(), dialect);
    else if (kind < 9) bytes = mutate(encodeMessage(next(), dialect), r);
    else bytes = frame(Uint8Array.from({ length: 3 + r.int(40) }, () => r.int(256)));
    if (!sock.write(bytes)) await new Promise((res) => sock.once('drain', res));
  }
  await new Promise((res) => setTimeout(res, 20));
  sock.destroy();
  await closed;
}

describe('DataKit bad input', { timeout: 60_000 }, () => {
  test(
    'random and mutated 9P messages against the DataKit tree: no crash, still answers',
    { timeout: 40_000 },
    async () => {
      const dir = tempDir('fuzz');
      cleanups.push(dir.remove);
      const logged: string[] = [];
      const server = await DataKitServer.start({
        git: dir.path,
        listen: ['tcp://127.0.0.1:0'],
        logger: (m: string) => {
          if (logged.length < 1000) logged.push(m);
        },
      });
      const url = server.addresses[0] ?? '';
      const seed = Number(process.env.DATAKIT_FUZZ_SEED ?? Date.now() % 1_000_000);
      const r = rng(seed);
      try {
        // A branch with a commit and an open transaction on the server gives the fuzzer things to hit.
        const c = await DataKitClient.connect(url);
        const t = await c.branch('master').transaction('t');
        await t.write('f', 'data');
        await t.commit('seed');
        c.close();
        const deadline = Date.now() + 8_000;
        let sessions = 0;
        while (Date.now() < deadline) {
          await session(url, r, 200, sessions % 2 === 0 ? '9P2000.u' : '9P2000.L');
          sessions++;
        }
        const after = await DataKitClient.connect(url);
        const tx = await after.branch('master').transaction();
        await tx.write('after', 'fuzz');
        await tx.commit('after fuzz');
        assert.equal(utf8(await after.branch('master').read('after')), 'fuzz');
        after.close();
        assert.ok(sessions > 5, `ran ${sessions} sessions (seed ${seed})`);
        assert.ok(received > 50_000, `only ${received} reply bytes in ${sessions} sessions (seed ${seed})`);
        if (process.env.DATAKIT_FUZZ_LOG) console.log(`fuzz: ${sessions} sessions, ${received} reply bytes`);
        assert.ok(process.memoryUsage().rss < 1 << 30, 'memory stays bounded');
        // Backend failures that are not NinePErrors are bugs (a TypeError, a missing check).
        const bugs = logged.filter((m) => /TypeError|RangeError|ReferenceError|backend/i.test(m));
        if (process.env.DATAKIT_FUZZ_LOG) console.log([...new Set(logged)].slice(0, 50).join('\n'));
        assert.deepEqual(bugs, []);
        fsck(dir.path);
      } catch (err) {
        throw new Error(`fuzz seed ${seed}: ${(err as Error).message}`);
      } finally {
        await server.close();
      }
    },
  );

  test(
    'path components with "/", "..", NUL; bad branch names; huge writes: clear errors',
    { timeout: 30_000 },
    async () => {
      const server = await DataKitServer.start({ listen: ['tcp://127.0.0.1:0'], maxFileSize: 4 << 20 });
      const c = await DataKitClient.connect(server.addresses[0] ?? '');
      try {
        const t = await c.branch('master').transaction('t');
        await t.begin();
        const rw = [...t.path, 'rw'];
        for (const bad of ['a/b', '..', '.', 'x\0y', '']) {
          await assert.rejects(
            c.create(rw, bad, 'x'),
            (e: Error) => e instanceof DataKitError && /[Ii]nvalid|name/.test(e.message),
            bad,
          );
          await assert.rejects(c.mkdir(rw, bad), (e: Error) => e instanceof DataKitError, bad);
        }
        for (const bad of ['a..b', 'x.lock', 'sp ace', '-', '@']) {
          if (bad === '-') continue;
          await assert.rejects(
            c.mkdir(['branch'], bad),
            (e: Error) => /Invalid branch name/.test(e.message),
            bad,
          );
        }
        // A write far past the size limit is refused with EFBIG; nothing is allocated for it.
        await c.create(rw, 'big', 'start');
        const fid = await c.ninep.walk((c as unknown as { root: import('@kitset/ninep').Fid }).root, [
          ...rw,
          'big',
        ]);
        await c.ninep.open(fid, 1);
        await assert.rejects(c.ninep.write(fid, 2 ** 40, new Uint8Array(10)), (e: NinePClientError) =>
          /File too large/.test(e.message),
        );
        // A large file written in many messages is fine, and the server still answers.
        const chunk = new Uint8Array(60_000).fill(65);
        let written = 0;
        while (written < 3 << 20) written += await c.ninep.write(fid, written, chunk);
        await c.ninep.clunk(fid);
        await t.commit('big');
        assert.equal(
          (await c.branch('master').read('big')).length,
          (3 << 20) - ((3 << 20) % 60_000) + 60_000,
        );
      } finally {
        c.close();
        await server.close();
      }
    },
  );
});
