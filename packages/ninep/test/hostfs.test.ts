import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  type Dialect,
  Errno,
  FileMode,
  HostFsBackend,
  type Listener,
  NinePClient,
  NinePClientError,
  NinePServer,
  OpenFlags,
  QidType,
} from '../src/index.js';
import { MemoryBackend } from './helpers.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const dialects: Dialect[] = ['9P2000.L', '9P2000.u', '9P2000'];

function errno(e: unknown): number | undefined {
  return e instanceof NinePClientError ? e.errno : undefined;
}

describe('server + client over real sockets against a host directory', () => {
  let base: string;
  let server: NinePServer;
  let tcp: Listener;
  let unix: Listener;

  before(async () => {
    base = fs.mkdtempSync(join(tmpdir(), 'ninep-hostfs-'));
    fs.mkdirSync(join(base, 'export'));
    server = new NinePServer(new HostFsBackend(join(base, 'export')), { logger: () => {} });
    tcp = await server.listen('tcp://127.0.0.1:0');
    unix = await server.listen(`unix://${join(base, 'sock')}`);
  });

  after(async () => {
    await server.close();
    fs.rmSync(base, { recursive: true, force: true });
  });

  for (const transport of ['tcp', 'unix'] as const) {
    for (const dialect of dialects) {
      test(
        `${transport} ${dialect}: ls, cat, write, append, mkdir, rename, remove, symlink, stat`,
        { timeout: 10000 },
        async () => {
          assert.match(tcp.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
          assert.ok(tcp.port! > 0);
          const url = transport === 'tcp' ? tcp.address : unix.address;
          const dir = join(base, 'export', `${transport}-${dialect}`);
          fs.mkdirSync(dir);
          fs.writeFileSync(join(dir, 'hello.txt'), 'hello world\n');
          const c = await NinePClient.connect(url, { version: dialect });
          try {
            assert.equal(c.dialect, dialect);
            const root = await c.attach('tester', '', 0);
            const sub = `${transport}-${dialect}`;
            // cat
            assert.equal(dec.decode(await c.readFile(`${sub}/hello.txt`)), 'hello world\n');
            // write + append
            await c.writeFile(`${sub}/new.txt`, enc.encode('first\n'));
            await c.writeFile(`${sub}/new.txt`, enc.encode('second\n'), { append: true });
            assert.equal(fs.readFileSync(join(dir, 'new.txt'), 'utf8'), 'first\nsecond\n');
            // overwrite truncates
            await c.writeFile(`${sub}/hello.txt`, enc.encode('bye'));
            assert.equal(fs.readFileSync(join(dir, 'hello.txt'), 'utf8'), 'bye');
            // mkdir
            const d = await c.walk(root, [sub]);
            await c.mkdir(d, 'subdir', 0o750);
            assert.ok(fs.statSync(join(dir, 'subdir')).isDirectory());
            assert.equal(fs.statSync(join(dir, 'subdir')).mode & 0o777, 0o750 & ~process.umask());
            // ls
            const ls = await c.walk(d, []);
            await c.open(ls, OpenFlags.O_RDONLY);
            const names = (await c.readdir(ls))
              .map((e) => e.name)
              .filter((n) => n !== '.' && n !== '..')
              .sort();
            await c.clunk(ls);
            assert.deepEqual(names, ['hello.txt', 'new.txt', 'subdir']);
            // stat
            const f = await c.walk(d, ['new.txt']);
            const attr = await c.getattr(f);
            assert.equal(attr.size, 13);
            assert.equal(attr.mode & FileMode.S_IFMT, FileMode.S_IFREG);
            assert.equal(attr.qid.path, fs.statSync(join(dir, 'new.txt'), { bigint: true }).ino);
            // setattr: truncate
            await c.setattr(f, { size: 5 });
            assert.equal(fs.readFileSync(join(dir, 'new.txt'), 'utf8'), 'first');
            // rename (same directory for 9P2000/.u)
            await c.rename(f, d, 'renamed.txt');
            assert.ok(!fs.existsSync(join(dir, 'new.txt')));
            assert.equal(fs.readFileSync(join(dir, 'renamed.txt'), 'utf8'), 'first');
            // the fid follows the rename
            assert.equal((await c.getattr(f)).size, 5);
            // symlink (not in plain 9P2000)
            if (dialect !== '9P2000') {
              await c.symlink(d, 'link', 'renamed.txt');
              assert.equal(fs.readlinkSync(join(dir, 'link')), 'renamed.txt');
              const l = await c.walk(d, ['link']);
              assert.equal(await c.readlink(l), 'renamed.txt');
              assert.ok(l.qid.type & QidType.SYMLINK);
              await c.remove(l);
              assert.ok(!fs.existsSync(join(dir, 'link')));
            } else {
              await assert.rejects(c.symlink(d, 'link', 'x'), (e: unknown) => errno(e) === Errno.EOPNOTSUPP);
            }
            // remove file and directory
            await c.remove(f);
            assert.ok(!fs.existsSync(join(dir, 'renamed.txt')));
            const sd = await c.walk(d, ['subdir']);
            await c.remove(sd);
            assert.ok(!fs.existsSync(join(dir, 'subdir')));
            // errors carry errno in every dialect
            await assert.rejects(c.walk(d, ['missing']), (e: unknown) => errno(e) === Errno.ENOENT);
            await c.clunk(d);
            // A large file streams intact (several messages, pipelined reads).
            const big = new Uint8Array(3 * 1024 * 1024 + 123);
            for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) & 0xff;
            await c.writeFile(`${sub}/big.bin`, big);
            assert.equal(fs.statSync(join(dir, 'big.bin')).size, big.length);
            const back = await c.readFile(`${sub}/big.bin`);
            assert.equal(Buffer.compare(Buffer.from(back), Buffer.from(big)), 0);
          } finally {
            c.close();
          }
        },
      );
    }
  }

  test(
    '.L extras: renameat, unlinkat, link, statfs, fsync, read-only export',
    { timeout: 10000 },
    async () => {
      const dir = join(base, 'export', 'extras');
      fs.mkdirSync(dir);
      fs.writeFileSync(join(dir, 'a'), 'A');
      const c = await NinePClient.connect(tcp.address);
      try {
        const root = await c.attach();
        const d = await c.walk(root, ['extras']);
        await c.renameat(d, 'a', d, 'b');
        assert.ok(fs.existsSync(join(dir, 'b')));
        const b = await c.walk(d, ['b']);
        await c.link(d, b, 'c');
        assert.equal(fs.statSync(join(dir, 'c')).nlink, 2);
        await c.unlinkat(d, 'c');
        assert.ok(!fs.existsSync(join(dir, 'c')));
        const sfs = await c.statfs(root);
        assert.ok(sfs.bsize > 0);
        await c.open(b, OpenFlags.O_RDWR);
        await c.fsync(b);
        await c.clunk(b);
      } finally {
        c.close();
      }
      const ro = new NinePServer(new HostFsBackend(dir, { readOnly: true }), { logger: () => {} });
      const l = await ro.listen('tcp://127.0.0.1:0');
      const rc = await NinePClient.connect(l.address);
      try {
        await rc.attach();
        assert.equal(dec.decode(await rc.readFile('b')), 'A');
        await assert.rejects(rc.writeFile('b', enc.encode('x')), (e: unknown) => errno(e) === Errno.EROFS);
        await assert.rejects(rc.writeFile('new', enc.encode('x')), (e: unknown) => errno(e) === Errno.EROFS);
        assert.equal(fs.readFileSync(join(dir, 'b'), 'utf8'), 'A');
      } finally {
        rc.close();
        await ro.close();
      }
    },
  );

  test(
    'escapes are refused: .., symlinks to /etc, absolute symlinks, renames across the root',
    { timeout: 10000 },
    async () => {
      const outside = join(base, 'outside');
      fs.mkdirSync(outside);
      fs.writeFileSync(join(outside, 'secret'), 'secret');
      const dir = join(base, 'export', 'jail');
      fs.mkdirSync(dir);
      fs.writeFileSync(join(dir, 'inside'), 'inside');
      fs.symlinkSync('/etc', join(dir, 'etc-link'));
      fs.symlinkSync(join(outside, 'secret'), join(dir, 'abs-link'));
      fs.symlinkSync('../../outside', join(dir, 'rel-link'));
      const before = fs.readdirSync(outside).sort();
      for (const dialect of dialects) {
        const c = await NinePClient.connect(tcp.address, { version: dialect });
        try {
          const root = await c.attach();
          // .. never climbs above the attach root.
          const up = await c.walk(root, ['..', '..', '..']);
          assert.equal(up.qid.path, root.qid.path);
          await assert.rejects(c.readFile('../outside/secret'));
          await assert.rejects(c.readFile('jail/../../outside/secret'));
          // Walking through a symlink is refused; opening one is refused.
          await assert.rejects(c.walk(root, ['jail', 'etc-link', 'passwd']));
          await assert.rejects(c.readFile('jail/abs-link'));
          await assert.rejects(c.readFile('jail/rel-link/secret'));
          await assert.rejects(c.writeFile('jail/abs-link', enc.encode('pwned')));
          await assert.rejects(c.writeFile('jail/rel-link/new', enc.encode('pwned')));
          const jail = await c.walk(root, ['jail']);
          if (dialect === '9P2000.L') {
            // Renames and creates with path-like names are refused.
            await assert.rejects(c.renameat(jail, 'inside', jail, '../../outside/x'));
            await assert.rejects(c.renameat(jail, '../outside/secret', jail, 'stolen'));
            await assert.rejects(c.unlinkat(jail, '../../outside/secret'));
            const f = await c.walk(jail, []);
            await assert.rejects(c.create(f, '../escaped', OpenFlags.O_WRONLY));
            await c.clunk(f);
            // setattr through a symlink must not touch the target.
            const l = await c.walk(jail, ['abs-link']);
            await c.setattr(l, { mode: 0o777 }).catch(() => {});
            await c.setattr(l, { size: 0 }).catch(() => {});
            await c.clunk(l);
          } else {
            const f = await c.walk(jail, ['inside']);
            await assert.rejects(c.rename(f, jail, '../escaped'));
            await c.clunk(f);
          }
          await c.clunk(jail);
        } finally {
          c.close();
        }
      }
      assert.deepEqual(fs.readdirSync(outside).sort(), before);
      assert.equal(fs.readFileSync(join(outside, 'secret'), 'utf8'), 'secret');
      assert.equal(fs.statSync(join(outside, 'secret')).mode & 0o777, 0o644 & ~process.umask());
      assert.ok(fs.existsSync(join(dir, 'inside')));
      assert.ok(!fs.existsSync(join(base, 'escaped')));
      assert.ok(!fs.existsSync(join(base, 'export', 'escaped')));
    },
  );

  test(
    'a directory swapped for a symlink behind the server is not followed',
    { timeout: 10000 },
    async () => {
      const outside = join(base, 'outside2');
      fs.mkdirSync(outside);
      fs.writeFileSync(join(outside, 'f'), 'outside');
      const dir = join(base, 'export', 'swap');
      fs.mkdirSync(dir);
      fs.writeFileSync(join(dir, 'f'), 'inside');
      const c = await NinePClient.connect(tcp.address);
      try {
        const root = await c.attach();
        const d = await c.walk(root, ['swap']);
        // Replace the directory with a symlink to the outside after the fid was walked.
        fs.renameSync(dir, `${dir}.old`);
        fs.symlinkSync(outside, dir);
        await assert.rejects(c.readFile('f', { root: d }));
        await assert.rejects(c.writeFile('g', enc.encode('x'), { root: d }));
        assert.ok(!fs.existsSync(join(outside, 'g')));
      } finally {
        c.close();
      }
    },
  );
});

test(
  'client AbortSignal sends Tflush and the server cancels the blocked read',
  { timeout: 10000 },
  async () => {
    const backend = new MemoryBackend();
    const server = new NinePServer(backend, { logger: () => {} });
    const l = await server.listen('tcp://127.0.0.1:0');
    const c = await NinePClient.connect(l.address);
    try {
      const root = await c.attach();
      const s = await c.walk(root, ['stream']);
      await c.open(s, OpenFlags.O_RDONLY);
      const ac = new AbortController();
      const pending = c.read(s, 0, 100, { signal: ac.signal });
      await new Promise((r) => setTimeout(r, 50));
      ac.abort();
      await assert.rejects(pending);
      // The connection still works and the server saw the abort.
      const d = await c.walk(root, ['data']);
      await c.open(d, OpenFlags.O_RDONLY);
      assert.equal(dec.decode(await c.read(d, 0, 4)), '0123');
      for (let i = 0; i < 50 && backend.aborts === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(backend.aborts, 1);
    } finally {
      c.close();
      await server.close();
    }
  },
);

/** Two in-process streams joined back to back, like a virtio-9p transport would be. */
function duplexPair(): [Duplex, Duplex] {
  const sides: Duplex[] = [];
  const make = (other: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        other().push(chunk);
        callback();
      },
      final(callback) {
        other().push(null);
        callback();
      },
    });
  sides.push(
    make(() => sides[1]!),
    make(() => sides[0]!),
  );
  return [sides[0]!, sides[1]!];
}

test(
  'handleStream serves any Duplex; replies are never recycled while the reader holds them',
  { timeout: 10000 },
  async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'ninep-duplex-'));
    try {
      // Every chunk differs, so a reply buffer reused too early shows up as wrong bytes.
      const a = Uint8Array.from({ length: 300_000 }, (_, i) => (i >> 10) & 0xff);
      const b = Uint8Array.from({ length: 300_000 }, (_, i) => ((i >> 10) + 128) & 0xff);
      fs.writeFileSync(join(dir, 'a'), a);
      fs.writeFileSync(join(dir, 'b'), b);
      const server = new NinePServer(new HostFsBackend(dir), { logger: () => {} });
      const [serverSide, clientSide] = duplexPair();
      server.handleStream(serverSide);
      const c = await NinePClient.connect(clientSide, { msize: 65536 });
      await c.attach();
      // Read views are kept while more reads arrive; a recycled buffer would change them.
      const first = await c.readFile('a');
      const second = await c.readFile('b');
      assert.equal(Buffer.compare(Buffer.from(first), Buffer.from(a)), 0);
      assert.equal(Buffer.compare(Buffer.from(second), Buffer.from(b)), 0);
      // Single-message reads return views; earlier ones must not change as later replies arrive.
      const f = await c.walk(c.root!, ['a']);
      await c.open(f, OpenFlags.O_RDONLY);
      const views = [];
      for (let off = 0; off < a.length; off += 30_000) {
        views.push({ off, data: await c.read(f, off, 30_000) });
        // Let write callbacks run, as they would between requests on a real transport.
        await new Promise((r) => setTimeout(r, 1));
      }
      for (const v of views)
        assert.equal(Buffer.compare(Buffer.from(v.data), Buffer.from(a.subarray(v.off, v.off + 30_000))), 0);
      await c.clunk(f);
      await c.writeFile('c', enc.encode('via duplex'));
      assert.equal(fs.readFileSync(join(dir, 'c'), 'utf8'), 'via duplex');
      c.close();
      await server.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  '9P2000.u Tcreate makes hard links (DMLINK) and refuses devices in the host backend',
  { timeout: 10000 },
  async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'ninep-dotu-'));
    const server = new NinePServer(new HostFsBackend(dir), { logger: () => {} });
    const l = await server.listen('tcp://127.0.0.1:0');
    const c = await NinePClient.connect(l.address, { version: '9P2000.u' });
    try {
      fs.writeFileSync(join(dir, 'target'), 'T');
      const root = await c.attach();
      const target = await c.walk(root, ['target']);
      const d = await c.walk(root, []);
      await c.rpc(
        {
          type: 'Tcreate',
          tag: 0,
          fid: d.id,
          name: 'hard',
          perm: 0x01000000,
          mode: 0,
          extension: String(target.id),
        },
        'Rcreate',
      );
      assert.equal(fs.statSync(join(dir, 'hard')).ino, fs.statSync(join(dir, 'target')).ino);
      const d2 = await c.walk(root, []);
      await assert.rejects(
        c.rpc(
          {
            type: 'Tcreate',
            tag: 0,
            fid: d2.id,
            name: 'dev',
            perm: 0x00800000 | 0o600,
            mode: 0,
            extension: 'c 1 3',
          },
          'Rcreate',
        ),
        (e: unknown) => errno(e) === Errno.EPERM,
      );
      assert.ok(!fs.existsSync(join(dir, 'dev')));
    } finally {
      c.close();
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('a FIFO in the export never stalls the server', { timeout: 10000 }, async () => {
  const dir = fs.mkdtempSync(join(tmpdir(), 'ninep-fifo-'));
  const server = new NinePServer(new HostFsBackend(dir), { logger: () => {} });
  const l = await server.listen('tcp://127.0.0.1:0');
  const c = await NinePClient.connect(l.address);
  try {
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [join(dir, 'pipe')]);
    fs.writeFileSync(join(dir, 'plain'), 'plain');
    const root = await c.attach();
    const p = await c.walk(root, ['pipe']);
    // No writer: the open must not wait for one, and a read finds nothing rather than blocking.
    await c.open(p, OpenFlags.O_RDONLY);
    const started = Date.now();
    const got = await c.read(p, 0, 100).then(
      (d) => d.length,
      (e: unknown) => errno(e),
    );
    assert.ok(got === 0 || got === Errno.EAGAIN, `read gave ${got}`);
    await c.setattr(p, { mode: 0o600 });
    assert.equal(fs.statSync(join(dir, 'pipe')).mode & 0o777, 0o600);
    assert.equal(dec.decode(await c.readFile('plain')), 'plain');
    assert.ok(Date.now() - started < 2000);
    await c.clunk(p);
  } finally {
    c.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a clunk racing a write never lets the write land in another file', { timeout: 10000 }, async () => {
  const dir = fs.mkdtempSync(join(tmpdir(), 'ninep-race-'));
  const server = new NinePServer(new HostFsBackend(dir), { logger: () => {} });
  const l = await server.listen('tcp://127.0.0.1:0');
  const c = await NinePClient.connect(l.address);
  try {
    const root = await c.attach();
    const payload = new Uint8Array(400_000).fill(0x41);
    for (let round = 0; round < 10; round++) {
      const f = await c.walk(root, []);
      await c.create(f, `w${round}`, OpenFlags.O_WRONLY);
      // Write, clunk, and open a victim file at once: the victim may get the fd number the clunk frees.
      const write = c.write(f, 0, payload).catch(() => 0);
      const clunk = c.clunk(f);
      const v = await c.walk(root, []);
      await c.create(v, `victim${round}`, OpenFlags.O_WRONLY);
      await Promise.all([write, clunk]);
      await c.clunk(v);
      assert.equal(fs.statSync(join(dir, `victim${round}`)).size, 0, 'nothing written into the victim');
    }
  } finally {
    c.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('unix listeners replace a stale socket file but not a live one', { timeout: 10000 }, async () => {
  const dir = fs.mkdtempSync(join(tmpdir(), 'ninep-sock-'));
  const path = join(dir, 's.sock');
  const a = new NinePServer(new MemoryBackend(), { logger: () => {} });
  const b = new NinePServer(new MemoryBackend(), { logger: () => {} });
  try {
    const la = await a.listen(`unix://${path}`);
    await assert.rejects(b.listen(`unix://${path}`), /in use/);
    // A leftover socket file nobody listens on (as after a crash) is replaced.
    const { execFileSync } = await import('node:child_process');
    await la.close();
    execFileSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`,
    ]);
    assert.ok(fs.existsSync(path));
    const lb = await b.listen(`unix://${path}`);
    const c = await NinePClient.connect(lb.address);
    await c.attach();
    assert.equal(dec.decode(await c.readFile('data')), '0123456789');
    c.close();
  } finally {
    await a.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('mknod makes named pipes but never device nodes', { timeout: 10000 }, async () => {
  const dir = fs.mkdtempSync(join(tmpdir(), 'ninep-mknod-'));
  const server = new NinePServer(new HostFsBackend(dir), { logger: () => {} });
  const l = await server.listen('tcp://127.0.0.1:0');
  const c = await NinePClient.connect(l.address);
  try {
    const root = await c.attach();
    await c.rpc(
      {
        type: 'Tmknod',
        tag: 0,
        dfid: root.id,
        name: 'fifo',
        mode: FileMode.S_IFIFO | 0o640,
        major: 0,
        minor: 0,
        gid: 0,
      },
      'Rmknod',
    );
    const st = fs.lstatSync(join(dir, 'fifo'));
    assert.ok(st.isFIFO());
    assert.equal(st.mode & 0o777, 0o640);
    for (const type of [FileMode.S_IFBLK, FileMode.S_IFCHR]) {
      await assert.rejects(
        c.rpc(
          {
            type: 'Tmknod',
            tag: 0,
            dfid: root.id,
            name: 'dev',
            mode: type | 0o600,
            major: 8,
            minor: 0,
            gid: 0,
          },
          'Rmknod',
        ),
        (e: unknown) => errno(e) === Errno.EPERM,
      );
    }
    assert.ok(!fs.existsSync(join(dir, 'dev')));
    // A name that looks like an option is still just a name.
    await c.rpc(
      {
        type: 'Tmknod',
        tag: 0,
        dfid: root.id,
        name: '-x',
        mode: FileMode.S_IFIFO | 0o600,
        major: 0,
        minor: 0,
        gid: 0,
      },
      'Rmknod',
    );
    assert.ok(fs.lstatSync(join(dir, '-x')).isFIFO());
  } finally {
    c.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'files a client makes belong to its user when the server runs as root',
  { timeout: 10000 },
  async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root to give files away');
      return;
    }
    const dir = fs.mkdtempSync(join(tmpdir(), 'ninep-owner-'));
    const server = new NinePServer(new HostFsBackend(dir), { logger: () => {} });
    const l = await server.listen('tcp://127.0.0.1:0');
    const c = await NinePClient.connect(l.address);
    try {
      const root = await c.attach('someone', '', 1234);
      const f = await c.walk(root, []);
      await c.create(f, 'file', OpenFlags.O_WRONLY, 0o644, 4321);
      await c.clunk(f);
      await c.mkdir(root, 'dir', 0o755, 4321);
      await c.symlink(root, 'link', 'file', 4321);
      for (const name of ['file', 'dir', 'link']) {
        const st = fs.lstatSync(join(dir, name));
        assert.equal(st.uid, 1234, name);
        assert.equal(st.gid, 4321, name);
      }
    } finally {
      c.close();
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);
