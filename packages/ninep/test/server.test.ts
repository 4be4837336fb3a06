import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Errno, type MessageOf, NOFID, NOTAG, encodeMessage } from '../src/index.js';
import { Harness, MemoryBackend } from './helpers.js';

async function attached(dialect: '9P2000' | '9P2000.u' | '9P2000.L' = '9P2000.L', options = {}) {
  const backend = new MemoryBackend();
  const h = new Harness(backend, dialect, options);
  const v = await h.rpc({ type: 'Tversion', tag: NOTAG, msize: 8192, version: dialect }, 'Rversion');
  assert.equal(v.version, dialect);
  await h.rpc({ type: 'Tattach', tag: 1, fid: 1, afid: NOFID, uname: 'u', aname: '', nUname: 0 }, 'Rattach');
  return { h, backend };
}

test(
  'version negotiation: each dialect gets itself, others get 9P2000 or unknown, msize is clamped',
  { timeout: 5000 },
  async () => {
    for (const [asked, answered] of [
      ['9P2000.L', '9P2000.L'],
      ['9P2000.u', '9P2000.u'],
      ['9P2000', '9P2000'],
      ['9P2000.xyz', '9P2000'],
      ['9P1', 'unknown'],
      ['', 'unknown'],
    ] as const) {
      const h = new Harness(new MemoryBackend(), '9P2000');
      const r = await h.rpc({ type: 'Tversion', tag: NOTAG, msize: 1 << 30, version: asked }, 'Rversion');
      assert.equal(r.version, answered, asked);
      assert.equal(r.msize, 1024 * 1024);
    }
    const h = new Harness(new MemoryBackend(), '9P2000');
    const r = await h.rpc({ type: 'Tversion', tag: NOTAG, msize: 8192, version: '9P2000.L' }, 'Rversion');
    assert.equal(r.msize, 8192);
    // Anything before a successful Tversion is refused.
    const h2 = new Harness(new MemoryBackend(), '9P2000');
    const e = await h2.rpc({ type: 'Tclunk', tag: 3, fid: 1 }, 'Rerror');
    assert.match(e.ename, /Tversion/);
  },
);

test(
  'Tflush really cancels a blocked read; Rflush comes after, and the read gets no reply',
  { timeout: 5000 },
  async () => {
    const { h, backend } = await attached();
    await h.rpc({ type: 'Twalk', tag: 2, fid: 1, newfid: 2, names: ['stream'] }, 'Rwalk');
    await h.rpc({ type: 'Tlopen', tag: 3, fid: 2, flags: 0 }, 'Rlopen');
    h.send({ type: 'Tread', tag: 4, fid: 2, offset: 0, count: 100 });
    await h.settle();
    assert.equal(h.conn.outstanding, 1);
    assert.equal(h.replies.length, 0, 'the read blocks');
    const flush = await h.rpc({ type: 'Tflush', tag: 5, oldtag: 4 }, 'Rflush');
    assert.equal(flush.tag, 5);
    await h.settle();
    assert.equal(backend.aborts, 1, 'the backend saw the abort');
    assert.equal(h.replies.length, 0, 'no reply for the flushed tag');
    assert.equal(h.conn.outstanding, 0);
    // Flushing a tag that is not in flight answers at once; the tag is reusable.
    await h.rpc({ type: 'Tflush', tag: 6, oldtag: 99 }, 'Rflush');
    await h.rpc({ type: 'Twalk', tag: 4, fid: 1, newfid: 3, names: ['data'] }, 'Rwalk');
    await h.rpc({ type: 'Tlopen', tag: 8, fid: 3, flags: 0 }, 'Rlopen');
    const r = await h.rpc({ type: 'Tread', tag: 4, fid: 3, offset: 0, count: 3 }, 'Rread');
    assert.equal(new TextDecoder().decode(r.data), '012');
    // A flushed request that completes anyway is answered before Rflush.
    h.send({ type: 'Tread', tag: 9, fid: 3, offset: 0, count: 4 });
    h.send({ type: 'Tflush', tag: 10, oldtag: 9 });
    const first = await h.waitFor(9).catch(() => undefined);
    const second = await h.waitFor(10);
    assert.equal(second.type, 'Rflush');
    if (first) assert.equal(first.type, 'Rread');
  },
);

test('many outstanding tags are processed concurrently', { timeout: 5000 }, async () => {
  const { h } = await attached();
  await h.rpc({ type: 'Twalk', tag: 2, fid: 1, newfid: 2, names: ['stream'] }, 'Rwalk');
  await h.rpc({ type: 'Tlopen', tag: 3, fid: 2, flags: 0 }, 'Rlopen');
  for (let t = 100; t < 150; t++) h.send({ type: 'Tread', tag: t, fid: 2, offset: 0, count: 1 });
  // Blocked reads do not stop other requests.
  await h.rpc({ type: 'Twalk', tag: 4, fid: 1, newfid: 3, names: ['data'] }, 'Rwalk');
  await h.rpc({ type: 'Tlopen', tag: 5, fid: 3, flags: 0 }, 'Rlopen');
  const r = await h.rpc({ type: 'Tread', tag: 6, fid: 3, offset: 2, count: 3 }, 'Rread');
  assert.equal(new TextDecoder().decode(r.data), '234');
  assert.equal(h.conn.outstanding, 50);
  for (let t = 100; t < 150; t++) await h.rpc({ type: 'Tflush', tag: 200 + t, oldtag: t }, 'Rflush');
  assert.equal(h.conn.outstanding, 0);
});

test(
  'outstanding requests are capped: the connection asks to pause, then resumes',
  { timeout: 5000 },
  async () => {
    const { h } = await attached('9P2000.L', { maxOutstanding: 8 });
    await h.rpc({ type: 'Twalk', tag: 2, fid: 1, newfid: 2, names: ['stream'] }, 'Rwalk');
    await h.rpc({ type: 'Tlopen', tag: 3, fid: 2, flags: 0 }, 'Rlopen');
    for (let t = 10; t < 20; t++) h.send({ type: 'Tread', tag: t, fid: 2, offset: 0, count: 1 });
    await h.settle();
    assert.equal(h.conn.outstanding, 8);
    assert.deepEqual(h.pauses, [true]);
    // Queued frames (2 reads and these flushes) run as the count drops.
    for (let t = 10; t < 20; t++) h.send({ type: 'Tflush', tag: 100 + t, oldtag: t });
    for (let t = 10; t < 20; t++) await h.waitFor(100 + t);
    assert.equal(h.conn.outstanding, 0);
    assert.equal(h.pauses.at(-1), false);
  },
);

test(
  'bad input: unknown and reused fids, long walks, bad names, clamped reads, unknown types',
  { timeout: 5000 },
  async () => {
    const { h } = await attached();
    let e = await h.rpc({ type: 'Tclunk', tag: 2, fid: 77 }, 'Rlerror');
    assert.equal(e.ecode, Errno.EBADF);
    e = await h.rpc(
      { type: 'Tattach', tag: 2, fid: 1, afid: NOFID, uname: '', aname: '', nUname: 0 },
      'Rlerror',
    );
    assert.equal(e.ecode, Errno.EBADF, 'fid in use');
    e = await h.rpc({ type: 'Twalk', tag: 2, fid: 1, newfid: 1, names: ['a/b'] }, 'Rlerror');
    assert.equal(e.ecode, Errno.ENOENT);
    // 17 names: hand-encoded since the encoder refuses nothing but the decoder does.
    const names = Array.from({ length: 17 }, () => 'x');
    e = await h.rpc({ type: 'Twalk', tag: 3, fid: 1, newfid: 5, names }, 'Rlerror');
    assert.equal(e.ecode, Errno.EPROTO);
    // .. at the root stays at the root.
    const w = await h.rpc(
      { type: 'Twalk', tag: 4, fid: 1, newfid: 6, names: ['..', '..', 'data', '..'] },
      'Rwalk',
    );
    assert.equal(w.qids.length, 4);
    assert.equal(w.qids[3]!.path, 1n);
    // Partial walk: qids up to the failure, newfid not created.
    const pw = await h.rpc({ type: 'Twalk', tag: 5, fid: 1, newfid: 7, names: ['data', 'nope'] }, 'Rwalk');
    assert.equal(pw.qids.length, 1);
    e = await h.rpc({ type: 'Tclunk', tag: 6, fid: 7 }, 'Rlerror');
    assert.equal(e.ecode, Errno.EBADF);
    // Tread count is clamped to msize - IOHDRSZ.
    h.send({ type: 'Twalk', tag: 7, fid: 1, newfid: 8, names: ['data'] });
    await h.waitFor(7);
    await h.rpc({ type: 'Tlopen', tag: 8, fid: 8, flags: 2 }, 'Rlopen');
    await h.rpc({ type: 'Twrite', tag: 9, fid: 8, offset: 0, data: new Uint8Array(8000).fill(65) }, 'Rwrite');
    await h.rpc(
      { type: 'Twrite', tag: 9, fid: 8, offset: 8000, data: new Uint8Array(1000).fill(66) },
      'Rwrite',
    );
    const big = await h.rpc({ type: 'Tread', tag: 10, fid: 8, offset: 0, count: 1 << 20 }, 'Rread');
    assert.equal(big.data.length, 8192 - 24);
    // Classic messages are not part of .L; replies are not requests.
    e = await h.rpc({ type: 'Tstat', tag: 11, fid: 1 }, 'Rlerror');
    assert.equal(e.ecode, Errno.EOPNOTSUPP);
    e = await h.rpc({ type: 'Rclunk', tag: 12 }, 'Rlerror');
    assert.equal(e.ecode, Errno.EPROTO);
    // Unknown type and truncated body: an error reply with the right tag.
    h.conn.receive(new Uint8Array([7, 0, 0, 0, 250, 13, 0]));
    e = (await h.waitFor(13)) as typeof e;
    assert.equal(e.ecode, Errno.EPROTO);
    h.conn.receive(new Uint8Array([9, 0, 0, 0, 120, 14, 0, 1, 0]));
    e = (await h.waitFor(14)) as typeof e;
    assert.equal(e.ecode, Errno.EPROTO);
    assert.equal(h.conn.closed, false);
  },
);

test(
  'a duplicate in-flight tag or an oversized frame closes the connection with a logged reason',
  { timeout: 5000 },
  async () => {
    const { h } = await attached();
    await h.rpc({ type: 'Twalk', tag: 2, fid: 1, newfid: 2, names: ['stream'] }, 'Rwalk');
    await h.rpc({ type: 'Tlopen', tag: 3, fid: 2, flags: 0 }, 'Rlopen');
    h.send({ type: 'Tread', tag: 4, fid: 2, offset: 0, count: 1 });
    h.send({ type: 'Tread', tag: 4, fid: 2, offset: 0, count: 1 });
    await h.settle();
    assert.equal(h.conn.closed, true);
    assert.match(String(h.closedReason), /tag 4/);
    assert.match(h.logs.join('\n'), /tag 4 reused/);
    assert.equal(h.conn.outstanding, 0);

    const { h: h2 } = await attached();
    const frame = encodeMessage(
      { type: 'Twrite', tag: 5, fid: 1, offset: 0, data: new Uint8Array(9000) },
      '9P2000.L',
    );
    h2.conn.receive(frame.subarray(0, 100));
    assert.equal(h2.conn.closed, true);
    assert.match(String(h2.closedReason), /exceeds/);
  },
);

test('9P2000 errors carry strerror text; .u adds the errno', { timeout: 5000 }, async () => {
  for (const dialect of ['9P2000', '9P2000.u'] as const) {
    const { h } = await attached(dialect);
    const e = await h.rpc({ type: 'Twalk', tag: 2, fid: 1, newfid: 2, names: ['missing'] }, 'Rerror');
    assert.equal(e.ename, 'No such file or directory');
    assert.equal(e.errno, dialect === '9P2000.u' ? Errno.ENOENT : 0);
    // The server's own errors use the same texts, so Linux maps them back to errnos.
    await h.rpc({ type: 'Twalk', tag: 3, fid: 1, newfid: 3, names: ['data'] }, 'Rwalk');
    const n = await h.rpc({ type: 'Twalk', tag: 4, fid: 3, newfid: 4, names: ['x'] }, 'Rerror');
    assert.equal(n.ename, 'Not a directory');
    const b = await h.rpc({ type: 'Tclunk', tag: 5, fid: 99 }, 'Rerror');
    assert.equal(b.ename, 'Bad file descriptor');
  }
});

test(
  '9P2000 directory reads return stat records with resumable byte offsets',
  { timeout: 5000 },
  async () => {
    const { h, backend } = await attached('9P2000.u');
    backend.files.set('b', new Uint8Array(5));
    await h.rpc({ type: 'Twalk', tag: 2, fid: 1, newfid: 2, names: [] }, 'Rwalk');
    await h.rpc({ type: 'Topen', tag: 3, fid: 2, mode: 0 }, 'Ropen');
    const { decodeStat } = await import('../src/index.js');
    const names: string[] = [];
    let offset = 0;
    for (let i = 0; i < 10; i++) {
      // A count that fits about one record at a time exercises the pending-record path.
      const r = await h.rpc({ type: 'Tread', tag: 4, fid: 2, offset, count: 80 }, 'Rread');
      if (r.data.length === 0) break;
      let p = 0;
      while (p < r.data.length) {
        const { stat, next } = decodeStat(r.data, p, '9P2000.u');
        names.push(stat.name);
        p = next;
      }
      offset += r.data.length;
    }
    assert.deepEqual(names, ['stream', 'data', 'b']);
    const e = await h.rpc({ type: 'Tread', tag: 5, fid: 2, offset: 3, count: 80 }, 'Rerror');
    assert.equal(e.errno, Errno.EINVAL);
  },
);

test(
  'walks from an open fid make a new fid (diod tools do this); the open fid itself cannot move',
  { timeout: 5000 },
  async () => {
    const { h } = await attached();
    await h.rpc({ type: 'Twalk', tag: 2, fid: 1, newfid: 2, names: [] }, 'Rwalk');
    await h.rpc({ type: 'Tlopen', tag: 3, fid: 2, flags: 0 }, 'Rlopen');
    const w = await h.rpc({ type: 'Twalk', tag: 4, fid: 2, newfid: 3, names: ['data'] }, 'Rwalk');
    assert.equal(w.qids.length, 1);
    const e = await h.rpc({ type: 'Twalk', tag: 5, fid: 2, newfid: 2, names: ['data'] }, 'Rlerror');
    assert.equal(e.ecode, Errno.EBADF);
    // No authentication: Tauth answers ENOENT, which clients take as "not required".
    const a = await h.rpc({ type: 'Tauth', tag: 6, afid: 9, uname: 'u', aname: '', nUname: 0 }, 'Rlerror');
    assert.equal(a.ecode, Errno.ENOENT);
  },
);

test(
  '9P2000 ORCLOSE removes the file on clunk; open modes map to Linux flags',
  { timeout: 5000 },
  async () => {
    const { openModeToFlags, flagsToOpenMode, OpenMode, OpenFlags } = await import('../src/index.js');
    assert.equal(openModeToFlags(OpenMode.OREAD), OpenFlags.O_RDONLY);
    assert.equal(openModeToFlags(OpenMode.OEXEC), OpenFlags.O_RDONLY);
    assert.equal(openModeToFlags(OpenMode.OWRITE | OpenMode.OTRUNC), OpenFlags.O_WRONLY | OpenFlags.O_TRUNC);
    assert.equal(openModeToFlags(OpenMode.ORDWR | OpenMode.OAPPEND), OpenFlags.O_RDWR | OpenFlags.O_APPEND);
    assert.equal(flagsToOpenMode(OpenFlags.O_WRONLY | OpenFlags.O_TRUNC), OpenMode.OWRITE | OpenMode.OTRUNC);
    const { h, backend } = await attached('9P2000');
    await h.rpc({ type: 'Twalk', tag: 2, fid: 1, newfid: 2, names: ['data'] }, 'Rwalk');
    await h.rpc({ type: 'Topen', tag: 3, fid: 2, mode: OpenMode.OREAD | OpenMode.ORCLOSE }, 'Ropen');
    assert.ok(backend.files.has('data'));
    await h.rpc({ type: 'Tclunk', tag: 4, fid: 2 }, 'Rclunk');
    assert.ok(!backend.files.has('data'));
  },
);

test(
  'bytes of pending reads are capped too: the connection pauses before reply buffers pile up',
  { timeout: 5000 },
  async () => {
    const { h } = await attached('9P2000.L', { maxOutstandingReadBytes: 10_000 });
    await h.rpc({ type: 'Twalk', tag: 2, fid: 1, newfid: 2, names: ['stream'] }, 'Rwalk');
    await h.rpc({ type: 'Tlopen', tag: 3, fid: 2, flags: 0 }, 'Rlopen');
    for (let t = 10; t < 15; t++) h.send({ type: 'Tread', tag: t, fid: 2, offset: 0, count: 4000 });
    await h.settle();
    assert.equal(h.conn.outstanding, 3, 'the third read crosses 10,000 bytes; the rest wait');
    assert.deepEqual(h.pauses, [true]);
    for (let t = 10; t < 15; t++) h.send({ type: 'Tflush', tag: 100 + t, oldtag: t });
    for (let t = 10; t < 15; t++) await h.waitFor(100 + t);
    assert.equal(h.conn.outstanding, 0);
    assert.equal(h.pauses.at(-1), false);
  },
);

test(
  'a backend that ignores the abort cannot hold a Tflush forever: the request is dropped',
  { timeout: 5000 },
  async () => {
    const backend = new MemoryBackend();
    // A read that never settles and never looks at its signal.
    const stuck = await backend.root.walk!('data', undefined as never);
    stuck.open = async () => ({
      read: () => new Promise<Uint8Array>(() => {}),
      write: async () => 0,
      readdir: async () => [],
      close: async () => {},
    });
    const h = new Harness(backend, '9P2000.L', { flushGraceMs: 50 });
    await h.rpc({ type: 'Tversion', tag: NOTAG, msize: 8192, version: '9P2000.L' }, 'Rversion');
    await h.rpc({ type: 'Tattach', tag: 1, fid: 1, afid: NOFID, uname: '', aname: '', nUname: 0 }, 'Rattach');
    await h.rpc({ type: 'Twalk', tag: 2, fid: 1, newfid: 2, names: ['data'] }, 'Rwalk');
    await h.rpc({ type: 'Tlopen', tag: 3, fid: 2, flags: 0 }, 'Rlopen');
    h.send({ type: 'Tread', tag: 4, fid: 2, offset: 0, count: 10 });
    const started = Date.now();
    await h.rpc({ type: 'Tflush', tag: 5, oldtag: 4 }, 'Rflush');
    assert.ok(Date.now() - started >= 40);
    assert.equal(h.conn.outstanding, 0);
    assert.match(h.logs.join('\n'), /tag 4: backend did not stop/);
    // The tag is free again.
    await h.rpc({ type: 'Tclunk', tag: 4, fid: 2 }, 'Rclunk');
  },
);

test(
  'pipelined requests on a fid run in order: walk, open, read, clunk sent back to back',
  { timeout: 5000 },
  async () => {
    const h = new Harness(new MemoryBackend(), '9P2000.L');
    await h.rpc({ type: 'Tversion', tag: NOTAG, msize: 8192, version: '9P2000.L' }, 'Rversion');
    await h.rpc({ type: 'Tattach', tag: 1, fid: 1, afid: NOFID, uname: '', aname: '', nUname: 0 }, 'Rattach');
    for (let round = 0; round < 3; round++) {
      // Nothing waits for a reply before sending the next request.
      h.send({ type: 'Twalk', tag: 2, fid: 1, newfid: 7, names: ['data'] });
      h.send({ type: 'Tlopen', tag: 3, fid: 7, flags: 0 });
      h.send({ type: 'Tread', tag: 4, fid: 7, offset: 2, count: 4 });
      h.send({ type: 'Tclunk', tag: 5, fid: 7 });
      assert.equal((await h.waitFor(2)).type, 'Rwalk');
      assert.equal((await h.waitFor(3)).type, 'Rlopen');
      const read = await h.waitFor(4);
      assert.equal(read.type, 'Rread');
      assert.equal(new TextDecoder().decode((read as MessageOf<'Rread'>).data), '2345');
      assert.equal((await h.waitFor(5)).type, 'Rclunk');
    }
    // The same fid number walked again right behind its clunk: the walk waits for the clunk.
    h.send({ type: 'Twalk', tag: 2, fid: 1, newfid: 7, names: ['data'] });
    h.send({ type: 'Tlopen', tag: 3, fid: 7, flags: 0 });
    h.send({ type: 'Tread', tag: 4, fid: 7, offset: 0, count: 3 });
    h.send({ type: 'Tclunk', tag: 5, fid: 7 });
    h.send({ type: 'Twalk', tag: 6, fid: 1, newfid: 7, names: ['data'] });
    h.send({ type: 'Tlopen', tag: 8, fid: 7, flags: 0 });
    h.send({ type: 'Tread', tag: 9, fid: 7, offset: 7, count: 10 });
    h.send({ type: 'Tclunk', tag: 10, fid: 7 });
    for (const [tag, type] of [
      [2, 'Rwalk'],
      [3, 'Rlopen'],
      [4, 'Rread'],
      [5, 'Rclunk'],
      [6, 'Rwalk'],
      [8, 'Rlopen'],
      [9, 'Rread'],
      [10, 'Rclunk'],
    ] as const) {
      const reply = await h.waitFor(tag);
      assert.equal(reply.type, type, `tag ${tag}`);
      if (tag === 9) assert.equal(new TextDecoder().decode((reply as MessageOf<'Rread'>).data), '789');
    }
    // A failed walk: what was pipelined behind it fails on the unknown fid, and nothing hangs.
    h.send({ type: 'Twalk', tag: 2, fid: 1, newfid: 8, names: ['missing'] });
    h.send({ type: 'Tlopen', tag: 3, fid: 8, flags: 0 });
    h.send({ type: 'Tclunk', tag: 4, fid: 8 });
    assert.equal((await h.waitFor(2)).type, 'Rlerror');
    assert.equal((await h.waitFor(3)).type, 'Rlerror');
    assert.equal((await h.waitFor(4)).type, 'Rlerror');
    assert.equal(h.conn.outstanding, 0);
  },
);
