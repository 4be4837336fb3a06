import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { VirtioBlk } from '../src/virtio/devices/blk/device.js';
import { openDiskImage } from '../src/virtio/devices/blk/qcow2.js';
import { VirtioConsole } from '../src/virtio/devices/console.js';
import { VirtioNet } from '../src/virtio/devices/net/device.js';
import { connectVpnkit } from '../src/virtio/devices/net/vpnkit-client.js';
import { Virtio9p } from '../src/virtio/devices/ninep.js';
import { VirtioRng } from '../src/virtio/devices/rng.js';
import { VirtioVsock } from '../src/virtio/devices/vsock/device.js';
import { repoRoot } from './harness.js';
import { guestDir, haveCommand } from './harness.js';
import { guestDir as kernelDir } from './harness.js';
import { NO_DEVTEST, devtestInitrd, fnv1a, runDevtest } from './virtio-harness.js';

const ready = guestDir() !== undefined && devtestInitrd() !== undefined;
const HAVE_QEMU_IMG = haveCommand('qemu-img');
const tmp = mkdtempSync(join(tmpdir(), 'hk-devices-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function pattern(len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 7 + (i >>> 9)) & 0xff;
  return b;
}

/** Connections the vsock test makes one at a time, and with CLIENTS guest processes connecting at once. */
const SEQUENTIAL = 300;
const CONCURRENT = 600;
const CLIENTS = 8;

/** A Unix-socket echo server in a child process of its own; resolves once it listens. */
async function startEchoProcess(path: string): Promise<ChildProcess> {
  const script =
    "const net=require('node:net');net.createServer((s)=>{s.on('error',()=>{});s.pipe(s)})" +
    ".listen(process.argv[1],()=>process.stdout.write('ready\\n'))";
  const child = spawn(process.execPath, ['-e', script, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`echo server exited (${code})`)));
    });
  } catch (e) {
    child.kill();
    throw e;
  }
  return child;
}

describe('virtio devices with the Linux guest', { concurrency: 1 }, () => {
  test('rng, console, blk (raw and qcow2) and 9p in one boot', { timeout: 120_000 }, async (t) => {
    if (!ready) return t.skip(NO_DEVTEST);
    // disks: a raw one and (with qemu-img) a qcow2 made by qemu-img, each with random first 64 KiB
    if (!HAVE_QEMU_IMG) t.diagnostic('qemu-img not installed (apt-get install qemu-utils): raw disk only');
    const rawPath = join(tmp, 'disk.raw');
    const rawHead = randomBytes(65536);
    writeFileSync(rawPath, Buffer.concat([rawHead, Buffer.alloc((8 << 20) - 65536, 0x5a)]));
    const qcowSrc = join(tmp, 'qsrc.raw');
    const qcowHead = randomBytes(65536);
    writeFileSync(qcowSrc, Buffer.concat([qcowHead, Buffer.alloc((8 << 20) - 65536, 0xa5)]));
    const qcowPath = join(tmp, 'disk.qcow2');
    const conv = !HAVE_QEMU_IMG
      ? { status: 0, stderr: '' }
      : spawnSync('qemu-img', ['convert', '-O', 'qcow2', '-o', 'lazy_refcounts=on', qcowSrc, qcowPath]);
    assert.equal(conv.status, 0, String(conv.stderr));
    // shared directory
    const share = join(tmp, 'share');
    mkdirSync(share);
    writeFileSync(join(share, 'hello.txt'), 'hello from the host\n');
    writeFileSync(join(share, 'delete-me.txt'), 'x');
    writeFileSync(join(tmp, 'outside.txt'), 'secret outside the share\n');
    symlinkSync('../outside.txt', join(share, 'escape'));

    const rng = new VirtioRng();
    const served: string[] = [];
    rng.onServe = (b) => served.push(Buffer.from(b).toString('hex'));
    const hvc = new VirtioConsole();
    let hvcOut = '';
    hvc.onOutput = (b) => {
      hvcOut += Buffer.from(b).toString('latin1');
      if (hvcOut.includes('KT-HVC-HELLO') && !hvcOut.includes('\u0000sent')) {
        hvcOut += '\u0000sent';
        hvc.input(new TextEncoder().encode('pong from host\n'));
      }
    };
    const raw = new VirtioBlk(openDiskImage(rawPath));
    const qcow = HAVE_QEMU_IMG ? new VirtioBlk(openDiskImage(qcowPath)) : undefined;
    const ninep = Virtio9p.hostDirectory(share, 'share');
    const run = await runDevtest(
      // Linux probes virtio-mmio slots from the highest address down (as on QEMU): vda is the later slot.
      qcow ? [rng, hvc, qcow, raw, ninep] : [rng, hvc, raw, ninep],
      ['rng', 'console:hvc1', 'blk:vda', ...(qcow ? ['blk:vdb'] : []), '9p:share'],
      { timeoutMs: 100_000 },
    );
    raw.close();
    qcow?.close();
    t.diagnostic(`boot + checks ${run.ms.toFixed(0)} ms`);
    const r = run.results;
    const why = `guest output:\n${run.output.slice(-3000)}`;
    assert.deepEqual(run.exit, { kind: 'poweroff', code: 0 }, why);

    // rng: the guest read bytes we served
    const rngLine = r.get('rng') ?? '';
    const m = /^ok ([0-9a-f]{64})$/.exec(rngLine);
    assert.ok(m, `rng: ${rngLine} ${why}`);
    assert.ok(served.join('').includes(m[1]!), 'guest bytes come from what virtio-rng served');

    // console: both directions
    assert.ok(hvcOut.includes('KT-HVC-HELLO'), 'guest wrote to /dev/hvc0');
    assert.equal(r.get('console'), 'ok got pong from host', why);

    // blk: the guest saw our bytes, and its writes, zeroes and discards reached the images
    const expectPattern = pattern(262144);
    const disks: [string, Uint8Array, string][] = [['vda', rawHead, rawPath]];
    if (qcow) disks.push(['vdb', qcowHead, qcowPath]);
    for (const [dev, head, path] of disks) {
      const line = r.get(`blk:${dev}`) ?? '';
      assert.equal(line, `ok head ${fnv1a(head)} zeroout 0 discard 0`, `${dev}: ${why}`);
      let bytes: Uint8Array;
      if (path.endsWith('.qcow2')) {
        const check = spawnSync('qemu-img', ['check', path], { encoding: 'utf8' });
        assert.equal(check.status, 0, `qemu-img check: ${check.stdout}${check.stderr}`);
        const out = join(tmp, `${dev}.raw`);
        assert.equal(spawnSync('qemu-img', ['convert', '-O', 'raw', path, out]).status, 0);
        bytes = new Uint8Array(readFileSync(out));
      } else bytes = new Uint8Array(readFileSync(path));
      assert.deepEqual(bytes.subarray(1 << 20, (1 << 20) + 262144), expectPattern, `${dev} pattern`);
      assert.ok(
        bytes.subarray(2 << 20, (2 << 20) + 65536).every((b) => b === 0),
        `${dev} zeroed`,
      );
      assert.ok(
        bytes.subarray(3 << 20, (3 << 20) + 65536).every((b) => b === 0),
        `${dev} discarded`,
      );
    }

    // 9p: the guest read our file; its changes are on the host; the symlink did not leave the share
    assert.equal(r.get('9p'), 'ok hello "hello from the host" escape -2', why);
    assert.equal(readFileSync(join(share, 'from-guest.txt'), 'utf8'), 'written by the guest\n');
    assert.equal(readFileSync(join(share, 'renamed.txt'), 'utf8'), 'renamed\n');
    assert.ok(!existsSync(join(share, 'tmp.txt')));
    assert.ok(!existsSync(join(share, 'delete-me.txt')));
    assert.equal(readFileSync(join(share, 'newdir', 'inner.txt'), 'utf8'), 'inner\n');
    const big = new Uint8Array(readFileSync(join(share, 'big.bin')));
    assert.equal(big.length, 204800);
    assert.ok(
      big.every((b, i) => b === (((i * 13) ^ (i >>> 8)) & 0xff)),
      'big.bin content',
    );
    for (const d of [rng, hvc, raw, ninep, ...(qcow ? [qcow] : [])]) assert.deepEqual(d.failures, []);
  });

  test(
    'vsock: guest to host, refused port, host to guest via connect socket and a forward',
    { timeout: 120_000 },
    async (t) => {
      if (!ready) return t.skip(NO_DEVTEST);
      const dir = join(tmp, 'vsock');
      mkdirSync(dir);
      const vsock = new VirtioVsock({ guestCid: 3, path: dir, guestForwards: [5001] });
      await vsock.listen();
      const service = createServer((s) => {
        let got = '';
        s.on('data', (d) => {
          got += d.toString();
          if (got.includes('\n')) s.end(`pong: ${got.trim()}\n`);
        });
      });
      await new Promise<void>((resolve) => service.listen(join(dir, '00000002.000004d2'), resolve));
      const payload = Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789'.repeat(3000)); // 108,000 bytes
      const echoes: Promise<Buffer>[] = [];
      const talk = (path: string, preamble: string) =>
        new Promise<Buffer>((resolve, reject) => {
          const chunks: Buffer[] = [];
          const s = connect(path, () => {
            s.write(preamble);
            s.end(payload);
          });
          s.on('data', (d: Buffer) => chunks.push(d));
          s.on('error', reject);
          s.on('close', () => resolve(Buffer.concat(chunks)));
        });
      let listens = 0;
      let echo: ChildProcess | undefined;
      try {
        // The echo service the connection-rate checks use is a separate process, as a real host service is,
        // not a callback on the emulator's own event loop.
        echo = await startEchoProcess(join(dir, '00000002.00000007'));
        const run = await runDevtest(
          [vsock],
          [
            'vsock:1234',
            'vsock-refused:4321',
            'vsock-listen:5000',
            'vsock-listen:5001',
            `vsock-many:7:${SEQUENTIAL}`,
            `vsock-par:7:${CLIENTS}:${CONCURRENT}`,
          ],
          {
            timeoutMs: 100_000,
            onLine: (line) => {
              if (line !== 'KT vsock-listen ready') return;
              listens++;
              echoes.push(
                listens === 1
                  ? talk(join(dir, 'connect'), '00000003.00001388\n')
                  : talk(join(dir, 'guest.00001389'), ''),
              );
            },
          },
        );
        t.diagnostic(`boot + checks ${run.ms.toFixed(0)} ms`);
        const why = `guest output:\n${run.output.slice(-3000)}`;
        assert.deepEqual(run.exit, { kind: 'poweroff', code: 0 }, why);
        assert.match(run.results.get('vsock') ?? '', /^ok reply "pong: ping from guest" ms \d+$/, why);
        const refused = /^ok errno (\d+) ms (\d+)$/.exec(run.results.get('vsock-refused') ?? '');
        assert.ok(refused, why);
        assert.equal(refused[1], '104', 'ECONNRESET: the host had no listener');
        assert.ok(Number(refused[2]) < 1000, `refused within a second (took ${refused[2]} ms)`);
        assert.equal(
          run.results.get('vsock-listen'),
          `ok bytes ${payload.length} fnv ${fnv1a(payload)}`,
          why,
        );
        const upper = Buffer.from(payload.toString().toUpperCase());
        const replies = await Promise.all(echoes);
        assert.equal(replies.length, 2);
        for (const r of replies) assert.ok(r.equals(upper), `echo of ${r.length} bytes matches`);
        // Connection rates are diagnostics, not assertions: wall-clock rates on a shared CI machine are noise.
        const many = /^ok connections (\d+) ms (\d+)$/.exec(run.results.get('vsock-many') ?? '');
        assert.ok(many, why);
        assert.equal(Number(many[1]), SEQUENTIAL, 'every sequential connection echoed its byte');
        const par = /^ok connections (\d+) clients (\d+) ms (\d+)$/.exec(run.results.get('vsock-par') ?? '');
        assert.ok(par, why);
        assert.equal(Number(par[1]), CONCURRENT, 'every concurrent connection echoed its byte');
        const rate = (n: number, ms: string, check: string) =>
          `${n} in ${ms} ms of guest time (${((n * 1000) / Math.max(1, Number(ms))).toFixed(0)}/s), ${((run.instructions.get(check) ?? 0) / n).toFixed(0)} guest instructions each`;
        t.diagnostic(`vsock connections one at a time: ${rate(SEQUENTIAL, many[2]!, 'vsock-many')}`);
        t.diagnostic(`vsock connections, ${CLIENTS} in flight: ${rate(CONCURRENT, par[3]!, 'vsock-par')}`);
        assert.equal(vsock.stats.refused, 1);
        assert.deepEqual(vsock.failures, []);
      } finally {
        vsock.close();
        service.close();
        echo?.kill();
      }
    },
  );

  test(
    'net: DHCP from VPNKit over its hyperkit socket, then an HTTP download from the host',
    { timeout: 150_000 },
    async (t) => {
      if (!ready) return t.skip(NO_DEVTEST);
      const vpnkitCli = join(repoRoot(), 'packages/vpnkit/dist/src/cli.js');
      if (!existsSync(vpnkitCli)) return t.skip('VPNKit not built (npx tsc -b packages/vpnkit)');
      const body = randomBytes(10 << 20);
      const http = createHttpServer((_req, res) => {
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
      });
      await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
      const port = (http.address() as AddressInfo).port;
      const sock = join(tmp, 'vpnkit.sock');
      let vpnkit: ChildProcess | undefined;
      let net: VirtioNet | undefined;
      try {
        vpnkit = spawn(process.execPath, [vpnkitCli, '--listen-vmnet', sock], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let vpnkitLog = '';
        vpnkit.stderr?.on('data', (d) => {
          vpnkitLog += d;
        });
        for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
        assert.ok(existsSync(sock), `VPNKit did not listen: ${vpnkitLog}`);
        const uuid = 'f1a2b3c4-0000-4000-8000-000000000001';
        const conn = await connectVpnkit(sock, uuid);
        assert.equal(conn.mac.length, 6);
        net = new VirtioNet(conn.link, { mac: conn.mac, mtu: conn.mtu });
        const run = await runDevtest([net], [`net:192.168.65.254:${port}/data`], {
          timeoutMs: 120_000,
          extraCmdline: 'ip=dhcp',
        });
        t.diagnostic(`boot + DHCP + 10 MiB download ${run.ms.toFixed(0)} ms`);
        const why = `guest output:\n${run.output.slice(-3000)}\nvpnkit:\n${vpnkitLog.slice(-2000)}`;
        assert.deepEqual(run.exit, { kind: 'poweroff', code: 0 }, why);
        const mac = [...conn.mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
        // the guest's own DHCP client (ip=dhcp) got its lease for the MAC VPNKit gave us
        assert.match(vpnkitLog, new RegExp(`DHCP: leased 192\\.168\\.65\\.\\d+ to ${mac}`), why);
        const m = /^ok body (\d+) fnv ([0-9a-f]{8}) ms (\d+)$/.exec(run.results.get('net') ?? '');
        assert.ok(m, why);
        assert.equal(Number(m[1]), body.length);
        assert.equal(m[2], fnv1a(body));
        t.diagnostic(`download took ${m[3]} ms in the guest`);
        assert.deepEqual(net.failures, []);
      } finally {
        net?.close();
        vpnkit?.kill();
        http.close();
      }
    },
  );

  test(
    'the hyperkit CLI: -s virtio-rnd, virtio-blk (qcow2), virtio-9p, virtio-sock',
    { timeout: 120_000 },
    async (t) => {
      if (!ready) return t.skip(NO_DEVTEST);
      if (!HAVE_QEMU_IMG) return t.skip('qemu-img not installed (apt-get install qemu-utils)');
      const dir = join(tmp, 'cli');
      mkdirSync(join(dir, 'share'), { recursive: true });
      mkdirSync(join(dir, 'socks'));
      writeFileSync(join(dir, 'share', 'hello.txt'), 'cli share\n');
      writeFileSync(join(dir, 'share', 'delete-me.txt'), '');
      const disk = join(dir, 'disk.qcow2');
      assert.equal(spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '8M']).status, 0);
      const cli = join(repoRoot(), 'packages/hyperkit/dist/src/cli.js');
      const args = [
        cli,
        '-m',
        '128M',
        '-l',
        'com1,stdio',
        '-s',
        '0:0,hostbridge',
        '-s',
        '2,virtio-rnd',
        '-s',
        `3,virtio-blk,${disk}`,
        '-s',
        `4,virtio-9p,path=${join(dir, 'share')},tag=share`,
        '-s',
        `5,virtio-sock,guest_cid=3,path=${join(dir, 'socks')}`,
        '-f',
        `kexec,${join(kernelDir()!, 'Image')},${devtestInitrd()!},console=ttyS0 quiet kitset.test=rng,blk:vda,9p:share,vsock-refused:7`,
      ];
      const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = execFile(process.execPath, args, { timeout: 100_000 }, (error, stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }),
        );
        child.stdin?.end();
      });
      const why = `stdout:\n${r.stdout.slice(-2000)}\nstderr:\n${r.stderr}`;
      assert.equal(r.code, 0, why);
      assert.match(r.stdout, /^KT rng ok [0-9a-f]{64}$/m, why);
      assert.match(r.stdout, /^KT blk:vda ok head [0-9a-f]{8} zeroout 0 discard 0$/m, why);
      assert.match(r.stdout, /^KT 9p ok hello "cli share" escape -2$/m, why);
      assert.match(r.stdout, /^KT vsock-refused ok errno 104 ms \d+$/m, why);
      assert.match(r.stdout, /^KT done$/m, why);
      const check = spawnSync('qemu-img', ['check', disk], { encoding: 'utf8' });
      assert.equal(check.status, 0, check.stdout + check.stderr);
      assert.equal(readFileSync(join(dir, 'share', 'renamed.txt'), 'utf8'), 'renamed\n');
      assert.ok(!existsSync(join(dir, 'socks', 'connect')), 'the connect socket is removed on exit');
    },
  );
});
