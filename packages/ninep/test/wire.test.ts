import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Dialect,
  FrameSplitter,
  type Message,
  MessageType,
  NOTAG,
  NinePDecodeError,
  type Stat,
  WireWriter,
  decodeDirents,
  decodeMessage,
  encodeMessage,
  encodeMessageInto,
  messageLayout,
  writeDirent,
  writeRreadHeader,
} from '../src/index.js';
import type { FieldKind, MessageName } from '../src/wire/index.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const fromHex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

test('Tversion "9P2000.L" msize 8192 has the exact bytes Linux sends', () => {
  const bytes = encodeMessage({ type: 'Tversion', tag: NOTAG, msize: 8192, version: '9P2000.L' }, '9P2000.L');
  // size=21, type=100, tag=0xffff, msize=8192, version len=8 "9P2000.L"
  assert.equal(
    hex(bytes),
    '15000000' + '64' + 'ffff' + '00200000' + '0800' + Buffer.from('9P2000.L').toString('hex'),
  );
  const m = decodeMessage(bytes, '9P2000');
  assert.deepEqual(m, { type: 'Tversion', tag: NOTAG, msize: 8192, version: '9P2000.L' });
});

test('known vectors: Twalk, Tattach per dialect, Rerror per dialect, Rlerror, Tread, Tlopen', () => {
  assert.equal(
    hex(encodeMessage({ type: 'Twalk', tag: 1, fid: 0, newfid: 1, names: ['a', 'bc'] }, '9P2000')),
    '18000000' + '6e' + '0100' + '00000000' + '01000000' + '0200' + '0100' + '61' + '0200' + '6263',
  );
  // Tattach in 9P2000 has no n_uname; in .u and .L it ends with n_uname[4].
  const attach = {
    type: 'Tattach',
    tag: 2,
    fid: 1,
    afid: 0xffffffff,
    uname: 'u',
    aname: '',
    nUname: 1000,
  } as const;
  assert.equal(
    hex(encodeMessage(attach, '9P2000')),
    '14000000' + '68' + '0200' + '01000000' + 'ffffffff' + '0100' + '75' + '0000',
  );
  assert.equal(
    hex(encodeMessage(attach, '9P2000.L')),
    '18000000' + '68' + '0200' + '01000000' + 'ffffffff' + '0100' + '75' + '0000' + 'e8030000',
  );
  const rerror = { type: 'Rerror', tag: 3, ename: 'ENOENT', errno: 2 } as const;
  assert.equal(
    hex(encodeMessage(rerror, '9P2000')),
    `0f000000${'6b'}0300${'0600'}${Buffer.from('ENOENT').toString('hex')}`,
  );
  assert.equal(
    hex(encodeMessage(rerror, '9P2000.u')),
    `13000000${'6b'}0300${'0600'}${Buffer.from('ENOENT').toString('hex')}02000000`,
  );
  assert.equal(
    hex(encodeMessage({ type: 'Rlerror', tag: 4, ecode: 13 }, '9P2000.L')),
    '0b00000007' + '0400' + '0d000000',
  );
  assert.equal(
    hex(encodeMessage({ type: 'Tread', tag: 5, fid: 7, offset: 0x1_0000_0002, count: 4096 }, '9P2000.L')),
    '17000000' + '74' + '0500' + '07000000' + '0200000001000000' + '00100000',
  );
  assert.equal(
    hex(encodeMessage({ type: 'Tlopen', tag: 6, fid: 7, flags: 0o2 }, '9P2000.L')),
    '0f000000' + '0c' + '0600' + '07000000' + '02000000',
  );
  const decoded = decodeMessage(fromHex('0f000000 0c 0600 07000000 02000000'), '9P2000.L');
  assert.deepEqual(decoded, { type: 'Tlopen', tag: 6, fid: 7, flags: 2 });
});

test('Rread data and Twrite data decode as views of the frame (zero copy)', () => {
  const frame = new Uint8Array(11 + 5);
  writeRreadHeader(frame, 0, 9, 5);
  frame.set([1, 2, 3, 4, 5], 11);
  const m = decodeMessage(frame, '9P2000.L');
  assert.equal(m.type, 'Rread');
  if (m.type !== 'Rread') return;
  assert.equal(m.data.buffer, frame.buffer);
  assert.equal(m.data.byteOffset, 11);
  frame[11] = 42;
  assert.equal(m.data[0], 42);
  const tw = encodeMessage(
    { type: 'Twrite', tag: 1, fid: 2, offset: 3, data: new Uint8Array([7, 8]) },
    '9P2000',
  );
  const d = decodeMessage(tw, '9P2000');
  assert.ok(d.type === 'Twrite' && d.data.buffer === tw.buffer && d.data.length === 2);
});

const qid = { type: 0x80, version: 7, path: 0x1234_5678_9abc_def0n };
const stat: Stat = {
  type: 1,
  dev: 2,
  qid,
  mode: 0x800001ed,
  atime: 100,
  mtime: 200,
  length: 12345,
  name: 'héllo',
  uid: 'root',
  gid: 'wheel',
  muid: '',
  extension: 'target',
  nUid: 0,
  nGid: 10,
  nMuid: 0xffffffff,
};

function sampleValue(kind: FieldKind, i: number, dialect: Dialect): unknown {
  switch (kind) {
    case 'u8':
      return (i * 37) & 0xff;
    case 'u16':
      return (i * 4099) & 0xffff;
    case 'u32':
    case 'optu32':
      return (i * 2654435761) >>> 0;
    case 'u64':
      return 2 ** 40 + i * 12345;
    case 'u64n':
      return 0xfedc_ba98_7654_3210n;
    case 'str':
      return `name-${i}-ü`;
    case 'qid':
      return qid;
    case 'data':
      return new Uint8Array([i, 1, 2, 3]);
    case 'strs':
      return ['a', 'bb', 'ccc'];
    case 'qids':
      return [qid, { type: 0, version: 1, path: 2n }];
    case 'stat':
      return dialect === '9P2000.u' ? stat : { ...stat, extension: '', nUid: 0xffffffff, nGid: 0xffffffff };
    case 'ustr':
      return dialect === '9P2000.u' ? 'ext' : '';
    case 'uu32':
      return dialect === '9P2000.u' ? 5 : 0;
    case 'nuname':
      return dialect === '9P2000' ? 0xffffffff : 1000;
  }
}

test('every message type round-trips in every dialect', () => {
  const dialects: Dialect[] = ['9P2000', '9P2000.u', '9P2000.L'];
  let count = 0;
  for (const dialect of dialects) {
    for (const name of Object.keys(MessageType) as MessageName[]) {
      const msg: Record<string, unknown> = { type: name, tag: 42 };
      messageLayout(name).forEach(([field, kind], i) => {
        msg[field] = sampleValue(kind, i + 1, dialect);
      });
      const bytes = encodeMessage(msg as Message, dialect);
      assert.equal(bytes[4], MessageType[name]);
      const back = decodeMessage(bytes, dialect);
      assert.deepEqual(back, msg, `${name} in ${dialect}`);
      // Every strict prefix is a typed decode error, never another exception.
      for (let cut = 0; cut < bytes.length; cut++) {
        const t = bytes.slice(0, cut);
        assert.throws(() => decodeMessage(t, dialect), NinePDecodeError);
        if (cut >= 7) {
          // Claimed size matching the truncated length: fields run out.
          t[0] = cut;
          t[1] = cut >> 8;
          if (!['Tfsync'].includes(name) && messageLayout(name).length > 0)
            assert.throws(() => decodeMessage(t, dialect), NinePDecodeError, `${name} cut ${cut}`);
        }
      }
      count++;
    }
  }
  assert.equal(count, 3 * Object.keys(MessageType).length);
});

test('encodeMessageInto writes into a preallocated buffer and rejects overflow', () => {
  const out = new Uint8Array(64);
  const n = encodeMessageInto({ type: 'Tclunk', tag: 1, fid: 9 }, '9P2000.L', out, 10);
  assert.equal(n, 11);
  assert.equal(hex(out.subarray(10, 21)), '0b000000780100' + '09000000');
  assert.throws(() =>
    encodeMessageInto({ type: 'Rreadlink', tag: 1, target: 'x'.repeat(100) }, '9P2000.L', out, 0),
  );
});

test('decode errors: unknown type, size mismatch, too many walk names', () => {
  assert.throws(
    () => decodeMessage(fromHex('07000000 ff 0100'), '9P2000'),
    (e: unknown) => {
      return e instanceof NinePDecodeError && e.tag === 1 && e.code === 'ERR_NINEP_DECODE';
    },
  );
  assert.throws(() => decodeMessage(fromHex('08000000 78 0100 09000000'), '9P2000'), NinePDecodeError);
  const names = Array.from({ length: 17 }, () => 'a');
  const w = encodeMessage({ type: 'Twalk', tag: 1, fid: 1, newfid: 2, names: names.slice(0, 16) }, '9P2000');
  const big = new Uint8Array(w.length + 3);
  big.set(w);
  big[15] = 17; // nwname
  big.set([1, 0, 0x61], w.length);
  big[0] = big.length;
  assert.throws(() => decodeMessage(big, '9P2000'), /too many walk names/);
});

test('dirents encode and decode', () => {
  const buf = new Uint8Array(200);
  const w = new WireWriter(buf);
  writeDirent(w, qid, 1, 4, '.');
  writeDirent(w, { type: 0, version: 0, path: 99n }, 2, 8, 'file.txt');
  const d = decodeDirents(buf.subarray(0, w.pos));
  assert.deepEqual(d, [
    { qid, offset: 1, type: 4, name: '.' },
    { qid: { type: 0, version: 0, path: 99n }, offset: 2, type: 8, name: 'file.txt' },
  ]);
  assert.throws(() => decodeDirents(buf.subarray(0, w.pos - 1)), NinePDecodeError);
});

test('FrameSplitter yields whole frames, as views when they lie in one chunk', () => {
  const a = encodeMessage({ type: 'Tclunk', tag: 1, fid: 1 }, '9P2000');
  const b = encodeMessage({ type: 'Tversion', tag: NOTAG, msize: 8192, version: '9P2000' }, '9P2000');
  const stream = new Uint8Array([...a, ...b, ...a]);
  for (let split = 0; split <= stream.length; split++) {
    for (let split2 = split; split2 <= stream.length; split2 += 3) {
      const s = new FrameSplitter(8192);
      const frames: Uint8Array[] = [];
      s.push(stream.subarray(0, split), (f) => frames.push(f));
      s.push(stream.subarray(split, split2), (f) => frames.push(f));
      s.push(stream.subarray(split2), (f) => frames.push(f));
      assert.deepEqual(
        frames.map((f) => hex(f)),
        [hex(a), hex(b), hex(a)],
      );
    }
  }
  const s = new FrameSplitter(8192);
  const seen: Uint8Array[] = [];
  s.push(stream, (f) => seen.push(f));
  assert.ok(
    seen.every((f) => f.buffer === stream.buffer),
    'views, not copies',
  );
  assert.throws(() => new FrameSplitter(100).push(fromHex('ffff0000'), () => {}), /exceeds/);
  assert.throws(() => new FrameSplitter(100).push(fromHex('03000000'), () => {}), /smaller/);
});

test('9P2000.L layouts match Linux net/9p format strings (byte vectors)', () => {
  // Tgetattr "dq": fid[4] request_mask[8]
  assert.equal(
    hex(encodeMessage({ type: 'Tgetattr', tag: 1, fid: 2, requestMask: 0x3fff }, '9P2000.L')),
    '13000000' + '18' + '0100' + '02000000' + 'ff3f000000000000',
  );
  // Tlcreate "dsddg": fid name flags mode gid
  assert.equal(
    hex(
      encodeMessage(
        { type: 'Tlcreate', tag: 1, fid: 2, name: 'f', flags: 0o101, mode: 0o644, gid: 7 },
        '9P2000.L',
      ),
    ),
    '1a000000' + '0e' + '0100' + '02000000' + '0100' + '66' + '41000000' + 'a4010000' + '07000000',
  );
  // Tsetattr "dddugqqqqq" (valid mode uid gid size atime mtime)
  const setattr = encodeMessage(
    {
      type: 'Tsetattr',
      tag: 1,
      fid: 2,
      valid: 0x8,
      mode: 0,
      uid: 0,
      gid: 0,
      size: 5,
      atimeSec: 0,
      atimeNsec: 0,
      mtimeSec: 0,
      mtimeNsec: 0,
    },
    '9P2000.L',
  );
  assert.equal(setattr.length, 7 + 4 * 5 + 8 * 5);
  assert.equal(hex(setattr.subarray(7, 35)), `02000000${'08000000'}${'00'.repeat(12)}0500000000000000`);
  // Tunlinkat "dsd"; Trenameat "dsds"
  assert.equal(
    hex(encodeMessage({ type: 'Tunlinkat', tag: 1, dirFid: 3, name: 'x', flags: 0x200 }, '9P2000.L')),
    '12000000' + '4c' + '0100' + '03000000' + '0100' + '78' + '00020000',
  );
  assert.equal(
    hex(
      encodeMessage(
        { type: 'Trenameat', tag: 1, oldDirFid: 3, oldName: 'a', newDirFid: 4, newName: 'b' },
        '9P2000.L',
      ),
    ),
    '15000000' + '4a' + '0100' + '03000000' + '0100' + '61' + '04000000' + '0100' + '62',
  );
  // Rgetattr is 153 bytes: valid[8] qid[13] mode uid gid [4 each] then 15 u64s.
  const rg = encodeMessage(
    {
      type: 'Rgetattr',
      tag: 1,
      valid: 0x7ff,
      qid: { type: 0, version: 0, path: 5n },
      mode: 0o100644,
      uid: 1,
      gid: 2,
      nlink: 1,
      rdev: 0,
      size: 3,
      blksize: 4096,
      blocks: 8,
      atimeSec: 0,
      atimeNsec: 0,
      mtimeSec: 0,
      mtimeNsec: 0,
      ctimeSec: 0,
      ctimeNsec: 0,
      btimeSec: 0,
      btimeNsec: 0,
      gen: 0,
      dataVersion: 0,
    },
    '9P2000.L',
  );
  assert.equal(rg.length, 7 + 8 + 13 + 12 + 15 * 8);
  assert.equal(hex(rg.subarray(28, 40)), 'a4810000' + '01000000' + '02000000');
});

test('9P2000.u stat records carry extension and numeric ids after the 9P2000 fields', () => {
  const s: Stat = {
    ...stat,
    name: 'l',
    uid: 'u',
    gid: 'g',
    muid: 'm',
    extension: 'tgt',
    nUid: 1,
    nGid: 2,
    nMuid: 3,
  };
  const plain = encodeMessage({ type: 'Rstat', tag: 1, stat: s }, '9P2000');
  const dotu = encodeMessage({ type: 'Rstat', tag: 1, stat: s }, '9P2000.u');
  // .u adds extension[s] (2+3) and n_uid, n_gid, n_muid (12) = 17 bytes, at the end.
  assert.equal(dotu.length - plain.length, 17);
  assert.equal(
    hex(dotu.subarray(dotu.length - 17)),
    `0300${Buffer.from('tgt').toString('hex')}${'01000000'}${'02000000'}${'03000000'}`,
  );
  // Rstat nests the stat (with its own size[2]) inside a size[2].
  const outer = dotu[7]! | (dotu[8]! << 8);
  const inner = dotu[9]! | (dotu[10]! << 8);
  assert.equal(outer, inner + 2);
  assert.equal(outer, dotu.length - 9);
});
