import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { type AddressInfo, type Socket, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TestkitError, guestImagesReady, runX86Guest } from '../src/index.js';

const images = guestImagesReady();
const skip = images.ready ? false : images.reason;

test(
  'the x86 guest boots, runs a script, passes files in and reports the exit status',
  { skip, timeout: 90_000 },
  async () => {
    const seen: string[] = [];
    const result = await runX86Guest({
      script: [
        'echo "hello from $(uname -m)"',
        'cat /kitset/greeting.txt',
        'ls -1 /lib/modules/$(uname -r)',
        'ip -4 addr show dev eth0 | grep -o "inet [0-9./]*"',
        'exit 7',
      ].join('\n'),
      files: { 'greeting.txt': 'hi from the host\n' },
      timeoutMs: 80_000,
      onLine: (line) => seen.push(line),
    });
    assert.equal(result.exitCode, 7, result.console);
    const out = result.output.split('\n');
    assert.equal(out[0], 'hello from x86_64');
    assert.equal(out[1], 'hi from the host');
    // The 9P client modules are there for the suites that mount our server.
    assert.ok(out.includes('9p.ko') && out.includes('9pnet_fd.ko'), result.output);
    assert.ok(out.includes('inet 10.0.2.15/24'), result.output);
    assert.ok(seen.includes('KITSET-GUEST-READY'));
    assert.ok(result.console.includes('hello from x86_64'));
  },
);

test('a guest past its deadline is killed with GUEST_TIMEOUT', { skip, timeout: 30_000 }, async () => {
  const started = Date.now();
  await assert.rejects(runX86Guest({ script: 'sleep 600', timeoutMs: 2_000 }), (err: unknown) => {
    assert.ok(err instanceof TestkitError);
    assert.equal(err.code, 'GUEST_TIMEOUT');
    return true;
  });
  assert.ok(Date.now() - started < 10_000);
});

test(
  'aborting a running guest kills QEMU and the error carries its console',
  { skip, timeout: 90_000 },
  async () => {
    const abort = new AbortController();
    await assert.rejects(
      runX86Guest({
        script: 'echo started-sleeping\nsleep 600',
        timeoutMs: 80_000,
        signal: abort.signal,
        onLine: (line) => line === 'started-sleeping' && abort.abort(),
      }),
      (err: unknown) => {
        assert.ok(err instanceof TestkitError);
        assert.equal(err.code, 'GUEST_ABORTED');
        assert.match(err.output, /started-sleeping/);
        return true;
      },
    );
  },
);

test(
  "with DHCP on an e1000 NIC the guest leases an address and reaches the host's loopback",
  { skip, timeout: 90_000 },
  async () => {
    const requests: string[] = [];
    const http = createServer((req, res) => {
      requests.push(req.url ?? '');
      res.end('served by the host\n');
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    try {
      const port = (http.address() as AddressInfo).port;
      const result = await runX86Guest({
        script: [
          'ip -4 addr show dev eth0 | grep -o "inet [0-9./]*"',
          'ip route | grep default',
          'cat /etc/resolv.conf',
          `wget -q -O - http://10.0.2.2:${port}/from-guest`,
        ].join('\n'),
        network: 'dhcp',
        nic: 'e1000',
        timeoutMs: 80_000,
      });
      assert.equal(result.exitCode, 0, result.console);
      // QEMU's user network hands out 10.0.2.15 with 10.0.2.2 as router and 10.0.2.3 as DNS.
      assert.deepEqual(
        result.output.split('\n').map((l) => l.trimEnd()),
        ['inet 10.0.2.15/24', 'default via 10.0.2.2 dev eth0', 'nameserver 10.0.2.3', 'served by the host'],
      );
      assert.deepEqual(requests, ['/from-guest']);
    } finally {
      http.close();
    }
  },
);

test(
  'a netdev override attaches the NIC to a stream socket that carries its Ethernet frames',
  { skip, timeout: 90_000 },
  async () => {
    // What VPNKit's tests do: QEMU's `-netdev stream` connects to a Unix socket and sends each frame
    // with a 4-byte big-endian length in front. Here the host side only collects frames.
    const dir = await mkdtemp(join(tmpdir(), 'kitset-stream-'));
    const frames: Buffer[] = [];
    const sockets: Socket[] = [];
    const server = createNetServer((socket) => {
      sockets.push(socket);
      let pending = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0)) {
          const length = pending.readUInt32BE(0);
          if (frames.length < 1000) frames.push(pending.subarray(4, 4 + length));
          pending = pending.subarray(4 + length);
        }
      });
      socket.on('error', () => {});
    });
    const path = join(dir, 'net.sock');
    await new Promise<void>((r) => server.listen(path, r));
    try {
      const result = await runX86Guest({
        script:
          'ip addr add 192.0.2.2/24 dev eth0\nip link set eth0 up\nping -c 1 -W 1 192.0.2.1 >/dev/null\necho done',
        network: 'none',
        netdev: ['-netdev', `stream,id=net0,server=off,addr.type=unix,addr.path=${path}`],
        timeoutMs: 80_000,
      });
      assert.equal(result.output, 'done', result.console);
      // The guest asked who has 192.0.2.1: an ARP request (ethertype 0x0806, opcode 1) from 52:54:00:12:34:56.
      const arp = frames.find(
        (f) => f.length >= 42 && f.readUInt16BE(12) === 0x0806 && f.readUInt16BE(20) === 1,
      );
      assert.ok(arp, `no ARP request among ${frames.length} frames`);
      assert.equal(arp.subarray(6, 12).toString('hex'), '525400123456');
      assert.equal([...arp.subarray(38, 42)].join('.'), '192.0.2.1');
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
