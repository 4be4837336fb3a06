import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { tapAddonPath } from '@kitset/tap';
import { netnsExec, withNetns } from '@kitset/testkit';
import { HyperkitError } from '../src/errors.js';
import type { VirtioNet } from '../src/virtio/devices/net/device.js';
import { TapEthernetLink } from '../src/virtio/devices/net/tap-link.js';
import { parseDeviceSpec } from '../src/virtio/devices/registry.js';
import { guestDir } from './harness.js';
import { NO_DEVTEST, devtestInitrd, fnv1a, runDevtest } from './virtio-harness.js';

const tmp = mkdtempSync(join(tmpdir(), 'hk-tap-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function whyNotTap(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (TAP devices and network namespaces)';
  if (!existsSync(tapAddonPath())) return 'TAP addon not built (bash scripts/prepare.d/20-tap-addon.sh)';
  return false;
}

async function must(ns: string, args: string[]): Promise<void> {
  const r = await netnsExec(ns, 'ip', args, 10_000);
  assert.equal(r.code, 0, `ip ${args.join(' ')}: ${r.stderr}`);
}

describe('virtio-net over a TAP device', { concurrency: 1 }, () => {
  test('-s virtio-net,tap=… rejects conflicting or incomplete options before opening anything', () => {
    for (const spec of [
      'virtio-net,tap=',
      'virtio-net,tap=kt0,link=default',
      'virtio-net,netns=/var/run/netns/x',
      'virtio-net,tap=kt0,bogus=1',
      'virtio-net,tap=kt0,offloads=maybe',
    ])
      assert.throws(() => parseDeviceSpec(spec), { code: 'ERR_BAD_ARGUMENT' }, spec);
    assert.ok(parseDeviceSpec('virtio-net,tap=kt0,offloads=off'));
    const ok = parseDeviceSpec('3,virtio-net,tap=kt0,netns=/var/run/netns/x,mac=02:00:00:00:00:09,mtu=1400');
    assert.equal(ok?.name, 'virtio-net');
    assert.equal(ok?.slot, 3);
  });

  test(
    'a TAP in a namespace that does not exist is an error a person can act on',
    { timeout: 10_000 },
    async (t) => {
      const skip = whyNotTap();
      if (skip) return t.skip(skip);
      const spec = parseDeviceSpec('virtio-net,tap=kt0,netns=/var/run/netns/kitset-no-such-ns');
      await assert.rejects(spec!.create(), (e: unknown) => {
        assert.ok(e instanceof HyperkitError);
        assert.equal(e.code, 'ERR_BAD_ARGUMENT');
        assert.match(e.message, /cannot open TAP device "kt0".*kitset-no-such-ns/);
        return true;
      });
    },
  );

  test(
    'frames both ways between a TapEthernetLink and Linux (ARP answered by the kernel)',
    { timeout: 20_000 },
    async (t) => {
      const skip = whyNotTap();
      if (skip) return t.skip(skip);
      await withNetns(`hktl${process.pid}`.slice(0, 15), async (ns) => {
        const link = new TapEthernetLink('kt0', { netnsPath: `/var/run/netns/${ns}` });
        try {
          assert.equal(link.name, 'kt0');
          await must(ns, ['addr', 'add', '10.78.0.1/24', 'dev', 'kt0']);
          await must(ns, ['link', 'set', 'kt0', 'up']);
          const mac = Uint8Array.of(2, 0, 0, 0, 0, 0x42);
          const reply = new Promise<Uint8Array>((resolve) =>
            link.onFrame((f) => {
              // an ARP reply (0x0806, op 2) addressed to us
              if (
                f.length >= 42 &&
                f[12] === 8 &&
                f[13] === 6 &&
                f[21] === 2 &&
                f.subarray(0, 6).every((b, i) => b === mac[i])
              )
                resolve(f.slice());
            }),
          );
          // who-has 10.78.0.1 tell 10.78.0.2
          const arp = new Uint8Array(42);
          arp.fill(0xff, 0, 6);
          arp.set(mac, 6);
          arp.set([8, 6, 0, 1, 8, 0, 6, 4, 0, 1], 12);
          arp.set(mac, 22);
          arp.set([10, 78, 0, 2], 28);
          arp.set([10, 78, 0, 1], 38);
          const deadline = Date.now() + 10_000;
          let got: Uint8Array | undefined;
          while (!got && Date.now() < deadline) {
            link.send(arp);
            got = await Promise.race([
              reply,
              new Promise<undefined>((r) => setTimeout(() => r(undefined), 200)),
            ]);
          }
          assert.ok(got, `no ARP reply from the kernel (link counters ${JSON.stringify(link.counters)})`);
          assert.deepEqual([...got.subarray(28, 32)], [10, 78, 0, 1]);
          assert.ok(link.counters.txFrames >= 1);
          assert.ok(link.counters.rxFrames >= 1);
        } finally {
          link.close();
        }
      });
    },
  );

  test(
    'the guest (static ip=) downloads from an HTTP server in the TAP namespace and uploads to a TCP sink there',
    { timeout: 150_000 },
    async (t) => {
      const skip = whyNotTap();
      if (skip) return t.skip(skip);
      if (guestDir() === undefined || devtestInitrd() === undefined) return t.skip(NO_DEVTEST);
      const body = randomBytes(2 << 20);
      const file = join(tmp, 'data');
      writeFileSync(file, body);
      const port = 8080;
      // Port 8080 serves the file; 8081 counts what it is sent and answers "BYTES FNV" at the end.
      const server = `require('http').createServer((q,s)=>{const b=require('fs').readFileSync(${JSON.stringify(file)});s.writeHead(200,{'content-length':b.length});s.end(b)}).listen(${port},'10.77.0.1',()=>require('net').createServer({allowHalfOpen:true},(c)=>{let n=0,h=2166136261;c.on('data',(d)=>{n+=d.length;for(const x of d)h=Math.imul(h^x,16777619)>>>0});c.on('end',()=>c.end(n+' '+h.toString(16).padStart(8,'0')+'\\n'))}).listen(${port + 1},'10.77.0.1',()=>console.log('listening')))`;
      const UPLOAD_KIB = 1024;
      const upload = new Uint8Array(UPLOAD_KIB * 1024);
      for (let i = 0; i < upload.length; i++) upload[i] = ((i % 65536) * 31 + ((i % 65536) >> 8)) & 0xff;
      await withNetns(`hktap${process.pid}`.slice(0, 15), async (ns) => {
        let http: ChildProcess | undefined;
        let net: VirtioNet | undefined;
        try {
          const spec = parseDeviceSpec(`virtio-net,tap=kt0,netns=/var/run/netns/${ns},mac=02:6b:69:74:00:07`);
          net = (await spec!.create()) as VirtioNet;
          await must(ns, ['link', 'set', 'lo', 'up']);
          await must(ns, ['addr', 'add', '10.77.0.1/24', 'dev', 'kt0']);
          await must(ns, ['link', 'set', 'kt0', 'up']);
          http = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', server], {
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let httpLog = '';
          const listening = new Promise<void>((resolve, reject) => {
            http!.stdout?.on('data', (d) => {
              httpLog += d;
              if (httpLog.includes('listening')) resolve();
            });
            http!.stderr?.on('data', (d) => {
              httpLog += d;
            });
            http!.on('exit', (code) => reject(new Error(`HTTP server exited (${code}): ${httpLog}`)));
          });
          await Promise.race([
            listening,
            new Promise((_, reject) =>
              setTimeout(() => reject(new Error('HTTP server did not start')), 10_000),
            ),
          ]);
          const run = await runDevtest(
            [net],
            [`net:10.77.0.1:${port}/data`, `net-send:10.77.0.1:${port + 1}:${UPLOAD_KIB}`],
            {
              timeoutMs: 120_000,
              extraCmdline: 'ip=10.77.0.2::10.77.0.1:255.255.255.0::eth0:off',
            },
          );
          const why = `guest output:\n${run.output.slice(-3000)}\nhttp:\n${httpLog.slice(-1000)}`;
          assert.deepEqual(run.exit, { kind: 'poweroff', code: 0 }, why);
          const m = /^ok body (\d+) fnv ([0-9a-f]{8}) ms (\d+)$/.exec(run.results.get('net') ?? '');
          assert.ok(m, why);
          assert.equal(Number(m[1]), body.length);
          assert.equal(m[2], fnv1a(body));
          const sent = /^ok reply (\d+) ([0-9a-f]{8}) ms (\d+)$/.exec(run.results.get('net-send') ?? '');
          assert.ok(sent, why);
          assert.equal(Number(sent[1]), upload.length);
          assert.equal(sent[2], fnv1a(upload));
          t.diagnostic(
            `boot + 2 MiB down, 1 MiB up ${run.ms.toFixed(0)} ms (download ${m[3]} ms, upload ${sent[3]} ms in the guest; device ${JSON.stringify(net.counters)})`,
          );
          // Linux's neighbour table learnt the guest's MAC from its frames on the TAP
          const neigh = await netnsExec(ns, 'ip', ['neigh', 'show', '10.77.0.2'], 10_000);
          assert.match(neigh.stdout, /02:6b:69:74:00:07/, neigh.stdout);
          assert.deepEqual(net.failures, []);
        } finally {
          net?.close();
          http?.kill('SIGKILL');
        }
      });
    },
  );
});
