/**
 * Interoperability with diod, the reference 9P2000.L server: diod's own client tools (diodls, diodcat)
 * against our server, and our client against diod serving a directory. Both directions are checked
 * against the real files on the host.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Daemon, freePort, hasCommand, runCommand, startDaemon } from '@kitset/testkit';
import {
  Errno,
  HostFsBackend,
  type Listener,
  NinePClient,
  NinePClientError,
  NinePServer,
  OpenFlags,
} from '../src/index.js';

const missing = ['diod', 'diodls', 'diodcat'].filter((c) => !hasCommand(c));
const skip = missing.length
  ? `diod not installed (${missing.join(', ')}); run scripts/install-deps.sh`
  : false;

/** Larger than any msize, so reads take many messages. */
const BIG = randomBytes(3 * 1024 * 1024 + 123);
let top = '';
before(async () => {
  top = await mkdtemp(join(tmpdir(), 'kitset-diod-'));
});
after(async () => {
  if (top) await rm(top, { recursive: true, force: true });
});

async function seed(dir: string): Promise<void> {
  await mkdir(join(dir, 'sub', 'deeper'), { recursive: true });
  await writeFile(join(dir, 'hello.txt'), 'hello, diod\n');
  await writeFile(join(dir, 'big.bin'), BIG);
  await writeFile(join(dir, 'sub', 'a.txt'), 'a\n');
  await writeFile(join(dir, 'sub', 'deeper', 'b.txt'), 'b\n');
}

describe('diod client tools against our server', { skip }, () => {
  let exportDir = '';
  let listener: Listener | undefined;
  let server = '';
  before(async () => {
    exportDir = join(top, 'ours');
    await seed(exportDir);
    listener = await new NinePServer(new HostFsBackend(exportDir), { logger: () => {} }).listen(
      'tcp://127.0.0.1:0',
    );
    server = `127.0.0.1:${listener.port}`;
  });
  after(async () => {
    await listener?.close();
  });
  const tool = (cmd: string, args: string[], maxOutputBytes?: number) =>
    runCommand(cmd, ['-s', server, '-a', exportDir, '-t', '10', ...args], {
      timeoutMs: 20_000,
      ...(maxOutputBytes ? { maxOutputBytes } : {}),
    });

  test('diodls lists the root and a subdirectory with their attributes', { timeout: 30_000 }, async () => {
    const root = await tool('diodls', ['/']);
    assert.equal(root.code, 0, root.stderr);
    const names = root.stdout.split('\n').filter(Boolean);
    for (const n of ['big.bin', 'hello.txt', 'sub']) assert.ok(names.includes(n), root.stdout);
    const sub = await tool('diodls', ['-l', 'sub']);
    assert.equal(sub.code, 0, sub.stderr);
    // `-l` lines: mode, links, owner, group, size, date, name (from Tgetattr).
    assert.match(sub.stdout, /^d[rwx-]{9}\S*\s.*\sdeeper$/m);
    assert.match(sub.stdout, /^-rw-r--r--\S*\s+1\s+\S+\s+\S+\s+2\s.*\sa\.txt$/m);
  });

  test('diodcat reads small and multi-message files byte for byte', { timeout: 30_000 }, async () => {
    const small = await tool('diodcat', ['hello.txt', 'sub/deeper/b.txt']);
    assert.equal(small.code, 0, small.stderr);
    assert.equal(small.stdout, 'hello, diod\nb\n');
    for (const msize of ['8192', '65536']) {
      const big = await tool('diodcat', ['-m', msize, 'big.bin'], BIG.length + 1);
      assert.equal(big.code, 0, big.stderr);
      assert.equal(big.stdoutBytes.length, BIG.length);
      assert.ok(Buffer.from(big.stdoutBytes).equals(BIG), `big.bin differs at msize ${msize}`);
    }
  });

  test('diodcat reports a missing file as an error', { timeout: 30_000 }, async () => {
    const r = await tool('diodcat', ['no-such-file']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no-such-file/);
  });
});

describe('our client against diod', { skip }, () => {
  let exportDir = '';
  let diod: Daemon | undefined;
  let client: NinePClient | undefined;
  before(async () => {
    exportDir = join(top, 'diod');
    await seed(exportDir);
    const port = await freePort();
    // -n: no auth; -f: foreground; as root diod serves each attaching user as themselves.
    diod = await startDaemon(
      'diod',
      ['-f', '-n', '-l', `127.0.0.1:${port}`, '-e', exportDir, '-L', 'stderr'],
      {
        readyPort: port,
        readyTimeoutMs: 10_000,
      },
    );
    client = await NinePClient.connect(`tcp://127.0.0.1:${port}`, { msize: 65536 + 24 });
    await client.attach('root', exportDir, 0);
  });
  after(async () => {
    client?.close();
    await diod?.stop();
  });

  test(
    'negotiates 9P2000.L and reads files, including one of many messages',
    { timeout: 30_000 },
    async () => {
      assert.ok(client);
      assert.equal(client.dialect, '9P2000.L');
      assert.equal(Buffer.from(await client.readFile('hello.txt')).toString(), 'hello, diod\n');
      assert.equal(Buffer.from(await client.readFile('sub/deeper/b.txt')).toString(), 'b\n');
      assert.ok(Buffer.from(await client.readFile('big.bin')).equals(BIG));
    },
  );

  test('lists directories and reads attributes', { timeout: 30_000 }, async () => {
    assert.ok(client?.root);
    const dir = await client.walk(client.root, ['sub']);
    await client.open(dir, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY);
    const names = (await client.readdir(dir)).map((e) => e.name).filter((n) => n !== '.' && n !== '..');
    await client.clunk(dir);
    assert.deepEqual(names.sort(), ['a.txt', 'deeper']);
    const big = await client.walk(client.root, ['big.bin']);
    const attr = await client.getattr(big);
    await client.clunk(big);
    assert.equal(attr.size, BIG.length);
    assert.equal(attr.mode & 0o170000, 0o100000);
    assert.equal(Number(attr.qid.path), statSync(join(exportDir, 'big.bin')).ino);
  });

  test(
    'writes, appends, creates, makes directories and symlinks, renames and removes',
    { timeout: 30_000 },
    async () => {
      assert.ok(client?.root);
      const root = client.root;
      const data = randomBytes(300_000);
      await client.writeFile('written.bin', data);
      assert.ok(readFileSync(join(exportDir, 'written.bin')).equals(data));
      await client.writeFile('hello.txt', new TextEncoder().encode('more\n'), { append: true });
      assert.equal(readFileSync(join(exportDir, 'hello.txt'), 'utf8'), 'hello, diod\nmore\n');

      await client.mkdir(root, 'made', 0o750);
      assert.ok(lstatSync(join(exportDir, 'made')).isDirectory());
      assert.equal(lstatSync(join(exportDir, 'made')).mode & 0o777, 0o750);
      const made = await client.walk(root, ['made']);
      await client.create(made, 'inside.txt', OpenFlags.O_WRONLY, 0o600);
      assert.equal(await client.write(made, 0, new TextEncoder().encode('inside\n')), 7);
      await client.clunk(made);
      assert.equal(readFileSync(join(exportDir, 'made', 'inside.txt'), 'utf8'), 'inside\n');

      await client.symlink(root, 'link', 'hello.txt');
      assert.equal(readlinkSync(join(exportDir, 'link')), 'hello.txt');
      const link = await client.walk(root, ['link']);
      assert.equal(await client.readlink(link), 'hello.txt');
      await client.clunk(link);

      // diod 1.0.24 answers Trenameat/Tunlinkat with EOPNOTSUPP (Linux then falls back to these): use
      // Trename and Tremove, as the kernel does against it.
      const moving = await client.walk(root, ['written.bin']);
      const madeDir = await client.walk(root, ['made']);
      await client.rename(moving, madeDir, 'moved.bin');
      await client.clunk(moving);
      await client.clunk(madeDir);
      assert.ok(!existsSync(join(exportDir, 'written.bin')));
      assert.ok(readFileSync(join(exportDir, 'made', 'moved.bin')).equals(data));

      await client.remove(await client.walk(root, ['made', 'moved.bin']));
      assert.ok(!existsSync(join(exportDir, 'made', 'moved.bin')));
      await client.remove(await client.walk(root, ['link']));
      assert.ok(!existsSync(join(exportDir, 'link')));
      assert.ok(existsSync(join(exportDir, 'hello.txt')), 'removing the symlink left its target alone');
      await client.remove(await client.walk(root, ['sub', 'deeper', 'b.txt']));
      await client.remove(await client.walk(root, ['sub', 'deeper']));
      assert.ok(!existsSync(join(exportDir, 'sub', 'deeper')));
    },
  );

  test('diod errors arrive as NinePClientError with errno', { timeout: 30_000 }, async () => {
    assert.ok(client?.root);
    await assert.rejects(
      client.readFile('no-such-file'),
      (e: unknown) => e instanceof NinePClientError && e.errno === Errno.ENOENT,
    );
    const sub = await client.walk(client.root, ['sub']);
    await assert.rejects(
      client.mkdir(sub, 'a.txt'),
      (e: unknown) => e instanceof NinePClientError && e.errno === Errno.EEXIST,
    );
    await client.clunk(sub);
  });
});
