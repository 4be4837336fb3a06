import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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
