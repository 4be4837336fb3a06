import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  NET_HDR_F_DATA_VALID,
  NET_HDR_F_NEEDS_CSUM,
  NET_HDR_GSO_NONE,
  NET_HDR_GSO_TCPV4,
  type NetOffload,
} from '@kitset/hyperkit';
import { findRepoRoot, runCommand } from '@kitset/testkit';
import { parseRunArgs } from '../src/cli.js';
import { PIPE_OFFLOADS, ethernetLink } from '../src/devices.js';
import { KitsetError } from '../src/errors.js';
import { framePipe } from '../src/link.js';
import { guestCmdline, parsePublish } from '../src/system.js';

const CLI = join(findRepoRoot(), 'packages/kitset/dist/src/cli.js');
const tmp = mkdtempSync(join(tmpdir(), 'kitset-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('arguments', () => {
  test('--publish forms', () => {
    assert.deepEqual(parsePublish('8080:80'), {
      protocol: 'tcp',
      hostAddress: '127.0.0.1',
      hostPort: 8080,
      guestPort: 80,
    });
    assert.deepEqual(parsePublish('0.0.0.0:53:5353/udp'), {
      protocol: 'udp',
      hostAddress: '0.0.0.0',
      hostPort: 53,
      guestPort: 5353,
    });
    for (const bad of [
      '80',
      '8080:',
      ':80',
      '8080:80/sctp',
      '70000:80',
      'x:1:2',
      '1:2:3:4',
      '8080:80/tcp/x',
      '1.5:80',
    ])
      assert.throws(
        () => parsePublish(bad),
        (e: unknown) => e instanceof KitsetError && e.code === 'ERR_KITSET_ARGUMENT',
        bad,
      );
  });

  test('run options and the guest command after --', () => {
    const a = parseRunArgs([
      '--share',
      tmp,
      '--publish=8080:80',
      '-p',
      '9090:90',
      '--memory',
      '128M',
      '--',
      'net;',
      'get',
      '1.2.3.4:80/x',
      ';dns',
      'a.b',
    ]);
    assert.equal(a.share, tmp);
    assert.deepEqual(a.publish, ['8080:80', '9090:90']);
    assert.equal(a.memory, '128M');
    assert.deepEqual(a.command, ['net', 'get 1.2.3.4:80/x', 'dns a.b']);
    assert.throws(() => parseRunArgs(['--share']), /--share needs a value/);
    assert.throws(() => parseRunArgs(['--bogus']), /unknown option --bogus/);
    assert.equal(parseRunArgs(['--mtu', '65520']).mtu, 65520);
    assert.throws(() => parseRunArgs(['--mtu', '70000']), /--mtu 70000: expected a number from 576 to 65520/);
    assert.throws(() => parseRunArgs(['--publish', 'nonsense']), /bad --publish "nonsense"/);
  });

  test('the kernel command line carries ip=dhcp and the commands', () => {
    assert.equal(
      guestCmdline({ guestCommand: ['net', 'get 1.2.3.4:80/'] }),
      'console=ttyS0 quiet loglevel=3 ip=dhcp kitset.run="net;get 1.2.3.4:80/"',
    );
    assert.equal(guestCmdline({}), 'console=ttyS0 quiet loglevel=3 ip=dhcp');
    assert.equal(guestCmdline({ share: '/srv' }, false), 'console=ttyS0 quiet loglevel=3 kitset.share');
    assert.equal(
      guestCmdline({ consoleSize: { rows: 40, cols: 132 } }, false),
      'console=ttyS0 quiet loglevel=3 kitset.winsize=40x132',
    );
    assert.throws(() => guestCmdline({ guestCommand: ['write f "x"'] }), /double quotes/);
  });
});

describe('in-process frame pipe', () => {
  test('delivers copies in order, after send returns, and stops at close', async () => {
    const [a, b] = framePipe('a', 'b');
    const got: number[][] = [];
    b.onFrame = (f) => got.push([...f]);
    const frame = Uint8Array.of(1, 2, 3);
    a.send(frame);
    frame[0] = 9; // the sender may reuse its buffer once send returns
    a.send(Uint8Array.of(4));
    assert.equal(got.length, 0, 'delivered inside send');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(got, [[1, 2, 3], [4]]);
    let closed = 0;
    b.onClose = () => closed++;
    a.close();
    assert.equal(closed, 1);
    a.send(Uint8Array.of(5));
    b.send(Uint8Array.of(6));
    await new Promise((r) => setImmediate(r));
    assert.equal(got.length, 2);
  });

  test('a peer that never drains loses frames past the bound instead of growing memory', async () => {
    const [a, b] = framePipe('a', 'b');
    let received = 0;
    b.onFrame = () => received++;
    for (let i = 0; i < 10_000; i++) a.send(new Uint8Array(64));
    await new Promise((r) => setImmediate(r));
    assert.ok(a.dropped > 0 && received + a.dropped === 10_000, `received ${received}, dropped ${a.dropped}`);
    // Big frames hit the byte bound first: 8 MiB of 64 KiB frames is 128 of them.
    let big = 0;
    b.onFrame = () => big++;
    for (let i = 0; i < 1000; i++) a.send(new Uint8Array(65536));
    await new Promise((r) => setImmediate(r));
    assert.equal(big, 128);
  });
});

describe('offloads across the pipe', () => {
  test("VPNKit's TSO frame reaches virtio-net whole with its offload; the guest's partial checksum is vouched for", async () => {
    const [vmEnd, vpnkitEnd] = framePipe('vm', 'vpnkit');
    vpnkitEnd.offloads = PIPE_OFFLOADS;
    const link = ethernetLink(vmEnd);
    assert.deepEqual(link.offloads, { checksum: true, tso: true });
    const toGuest: Array<{ frame: number[]; offload: NetOffload | null | undefined }> = [];
    link.onFrame((frame, offload) => toGuest.push({ frame: [...frame], offload: offload && { ...offload } }));
    const ipv4 = (bytes: number) => {
      const f = new Uint8Array(bytes);
      f[12] = 0x08;
      return f;
    };
    // Headers and payload apart (VPNKit's `tail`), 3000 bytes of payload at MSS 1460: a TSO frame.
    vpnkitEnd.send(
      ipv4(54),
      { gsoSize: 1460, headerLength: 54, checksumStart: 34, checksumOffset: 16 },
      new Uint8Array(3000).fill(7),
    );
    vpnkitEnd.send(ipv4(60)); // a frame VPNKit checksummed itself
    await new Promise((r) => setImmediate(r));
    assert.equal(toGuest.length, 2);
    assert.equal(toGuest[0]!.frame.length, 3054);
    assert.equal(toGuest[0]!.frame[3053], 7);
    assert.deepEqual(toGuest[0]!.offload, {
      flags: NET_HDR_F_NEEDS_CSUM,
      gsoType: NET_HDR_GSO_TCPV4,
      headerLength: 54,
      gsoSize: 1460,
      checksumStart: 34,
      checksumOffset: 16,
    });
    assert.equal(toGuest[1]!.offload?.flags, NET_HDR_F_DATA_VALID);
    assert.equal(toGuest[1]!.offload?.gsoType, NET_HDR_GSO_NONE);

    const fromGuest: boolean[] = [];
    vpnkitEnd.onFrame = (_frame, checksumValid) => fromGuest.push(checksumValid === true);
    link.send(ipv4(100), {
      flags: NET_HDR_F_NEEDS_CSUM,
      gsoType: 0,
      headerLength: 0,
      gsoSize: 0,
      checksumStart: 34,
      checksumOffset: 16,
    });
    link.send(ipv4(100));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(fromGuest, [true, false]);
  });
});

describe('kitset CLI errors', () => {
  test('usage, bad options and a missing share are reported plainly', { timeout: 30_000 }, async () => {
    const help = await runCommand(process.execPath, [CLI, '--help'], { timeoutMs: 10_000 });
    assert.equal(help.code, 0);
    assert.match(help.stdout, /usage: kitset run/);
    const bad = await runCommand(process.execPath, [CLI, 'run', '--publish', '80'], { timeoutMs: 10_000 });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /kitset: bad --publish "80"/);
    const verb = await runCommand(process.execPath, [CLI, 'launch'], { timeoutMs: 10_000 });
    assert.equal(verb.code, 2);
    assert.match(verb.stderr, /unknown command "launch"/);
    const file = join(tmp, 'not-a-dir');
    writeFileSync(file, 'x');
    const share = await runCommand(process.execPath, [CLI, 'run', '--share', file, '--', 'net'], {
      timeoutMs: 20_000,
    });
    assert.equal(share.code, 2, share.stderr);
    assert.match(share.stderr, /--share .*not-a-dir: not a directory/);
  });
});
