import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DataKitClient } from '@kitset/datakit';
import { type Daemon, freePort, hasCommand, startDaemon } from '@kitset/testkit';
import { type GuestImage, prepareGuest } from '../src/guest.js';
import { type KitsetSystem, startSystem } from '../src/system.js';

/** Size of the HTTP download (the 10 MiB: under 2 s on our emulator with virtio-net's TSO). */
const DOWNLOAD_MIB = Number(process.env.KITSET_TEST_DOWNLOAD_MIB ?? 10);
const BOOT_DEADLINE_MS = 150_000;
const GUEST_HTTP_PORT = 8080;
const GUEST_VSOCK_PORT = 5000;
const DNS_TEST_NAME = 'upstream.kitset-test.example';
const DNS_TEST_ADDRESS = '10.1.2.3';

function fnv1a(data: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data[i]!, 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** The guest, if it can be had without building the kernel here (scripts/prepare.d builds it in CI). */
async function guestOrSkipReason(): Promise<GuestImage | string> {
  const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kitset', 'guest-riscv');
  if (!existsSync(join(cache, 'current', 'Image')))
    return 'riscv64 guest kernel not built: run bash guest/riscv/build.sh (scripts/prepare.d does in CI)';
  if (!hasCommand('riscv64-linux-gnu-gcc'))
    return 'riscv64-linux-gnu-gcc missing (apt-get install gcc-riscv64-linux-gnu)';
  try {
    return await prepareGuest();
  } catch (err) {
    return `cannot prepare the guest: ${(err as Error).message}`;
  }
}

const VSOCK_MESSAGE = 'hello over vsock from the host\n'.repeat(100);

/** Sends VSOCK_MESSAGE to the guest's echo service and resolves with what comes back. */
function vsockRoundTrip(sys: KitsetSystem): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = sys.connectVsock(GUEST_VSOCK_PORT);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error('no vsock reply in 30 s')), 30_000);
    socket.end(VSOCK_MESSAGE);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString());
    });
  });
}

/** Fetches http://127.0.0.1:port/ with a deadline; resolves with the body. */
function httpGet(port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from 127.0.0.1:${port} in ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

test(
  'kitset system, one boot: DHCP, DNS, HTTP download, published port, DataKit commit, vsock',
  { timeout: BOOT_DEADLINE_MS + 60_000 },
  async (t) => {
    const guest = await guestOrSkipReason();
    if (typeof guest === 'string') return t.skip(guest);

    // The host's side: an HTTP server on loopback with a random payload, and dnsmasq as the upstream resolver.
    const payload = randomBytes(DOWNLOAD_MIB * 1024 * 1024);
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Length': payload.length });
      res.end(payload);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const httpPort = (server.address() as AddressInfo).port;
    let dnsmasq: Daemon | undefined;
    let system: KitsetSystem | undefined;
    let datakit: DataKitClient | undefined;
    const watch = new AbortController();
    try {
      const dnsPort = await freePort();
      if (hasCommand('dnsmasq')) {
        dnsmasq = await startDaemon(
          'dnsmasq',
          [
            '--no-daemon',
            '--conf-file=/dev/null',
            '--pid-file=',
            '--user=root',
            '--no-resolv',
            '--no-hosts',
            '--bind-interfaces',
            '--listen-address=127.0.0.1',
            `--port=${dnsPort}`,
            `--address=/${DNS_TEST_NAME}/${DNS_TEST_ADDRESS}`,
            '--log-queries',
            '--log-facility=-',
          ],
          { readyPattern: /started, version/, readyTimeoutMs: 10_000 },
        );
      }
      const publishPort = await freePort();
      const tx = '/datakit/branch/master/transactions/t1';
      const commands = [
        'net',
        'dns host.kitset.internal',
        ...(dnsmasq ? [`dns ${DNS_TEST_NAME}`] : []),
        `get 192.168.65.254:${httpPort}/payload`,
        `serve ${GUEST_HTTP_PORT}`,
        'mkdir /datakit/branch/master',
        `mkdir ${tx}`,
        `write ${tx}/rw/f hi`,
        `write ${tx}/msg commit from the guest`,
        `write ${tx}/ctl commit`,
        'ls /datakit/branch/master/ro',
        `vsock-echo ${GUEST_VSOCK_PORT}`,
      ];
      const logs: string[] = [];
      system = await startSystem({
        kernel: guest.kernel,
        initrd: guest.initrd,
        memory: '128M',
        publish: [`${publishPort}:${GUEST_HTTP_PORT}`],
        guestCommand: commands,
        vpnkit: {
          dnsServers: [`127.0.0.1:${dnsPort}`],
          ...(process.env.KITSET_TEST_MTU ? { mtu: Number(process.env.KITSET_TEST_MTU) } : {}),
        },
        stopOnSignals: false,
        log: (m) => logs.push(m),
      });
      const sys = system;

      // A host process follows the branch's head.live while the guest works.
      datakit = await DataKitClient.connect(sys.datakitAddress);
      const heads: Array<string | undefined> = [];
      const following = (async () => {
        for await (const head of datakit.branch('master').heads(watch.signal)) heads.push(head);
      })().catch(() => {});

      const results = new Map<string, string>();
      let console = '';
      let pending = '';
      let published: Promise<string> | undefined;
      let vsockReply: Promise<string> | undefined;
      sys.console.output.on('data', (d: Buffer) => {
        const text = d.toString('latin1');
        console += text;
        pending += text;
        for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
          const line = pending.slice(0, nl).replace(/\r$/, '');
          pending = pending.slice(nl + 1);
          const m = /^KS (\S+) (.*)$/.exec(line);
          if (!m) continue;
          if (m[1] === 'serve' && m[2]!.startsWith('listening')) published = httpGet(publishPort, 30_000);
          else if (m[1] === 'vsock-echo' && m[2]!.startsWith('listening')) vsockReply = vsockRoundTrip(sys);
          else results.set(m[1]!, m[2]!);
        }
      });
      const deadline = setTimeout(() => sys.vm.stop(), BOOT_DEADLINE_MS);
      const exit = await sys.exited;
      clearTimeout(deadline);
      const publishedBody = await published?.catch((e: Error) => `error: ${e.message}`);
      const vsockBody = await vsockReply?.catch((e: Error) => `error: ${e.message}`);
      // The commit is acknowledged before ctl's write returns; give head.live a moment to report it.
      for (let i = 0; i < 50 && heads.filter((h) => h !== undefined).length === 0; i++)
        await new Promise((r) => setTimeout(r, 100));
      const tail = `\nconsole:\n${console.slice(-3000)}\nlogs:\n${logs.join('\n')}`;
      t.diagnostic(`guest exit ${JSON.stringify(exit)}`);

      await t.test('the guest finished its commands and powered off', () => {
        assert.deepEqual(exit, { kind: 'poweroff', code: 0 }, tail);
        assert.ok(results.has('exit'), `no "KS exit" line${tail}`);
      });
      await t.test('DHCP lease from VPNKit (the kernel client, ip=dhcp)', () => {
        assert.equal(
          results.get('net'),
          `ok addr ${sys.guestAddress} nameserver ${sys.gatewayAddress}`,
          tail,
        );
      });
      await t.test("DNS through VPNKit's forwarder", (st) => {
        assert.match(results.get('dns') ?? '', /^ok /, tail);
        if (!dnsmasq) return st.skip('dnsmasq missing: only the local name was checked');
        assert.match(results.get('dns') ?? '', new RegExp(`^ok ${DNS_TEST_NAME} ${DNS_TEST_ADDRESS} `), tail);
        assert.match(
          dnsmasq.output(),
          new RegExp(`query\\[A\\] ${DNS_TEST_NAME}`),
          'dnsmasq never saw the query',
        );
      });
      await t.test(`HTTP download of ${DOWNLOAD_MIB} MiB from host loopback through the gateway`, (st) => {
        const m = /^ok bytes (\d+) fnv ([0-9a-f]{8}) ms (\d+)$/.exec(results.get('get') ?? '');
        assert.ok(m, `get: ${results.get('get')}${tail}`);
        assert.equal(Number(m[1]), payload.length);
        assert.equal(m[2], fnv1a(payload));
        const ms = Number(m[3]);
        st.diagnostic(
          `${DOWNLOAD_MIB} MiB in ${ms} ms (${(((payload.length / Math.max(ms, 1)) * 1000) / 1048576).toFixed(2)} MiB/s, guest clock)`,
        );
      });
      await t.test('a published host port reaches a server in the guest', () => {
        assert.equal(publishedBody, 'hello from the kitset guest\n', tail);
        assert.match(results.get('serve') ?? '', /^ok request-bytes \d+$/, tail);
      });
      await t.test('a 9P transaction committed by the guest is on head.live and in git log', async () => {
        assert.match(results.get('ls') ?? '', /^ok /, tail);
        assert.match(console, /\nf\r?\n/, 'the committed file is not in ro/');
        const head = heads.find((h) => h !== undefined);
        assert.ok(head, `head.live reported no commit (saw ${JSON.stringify(heads)})${tail}`);
        // DataKit acknowledges a commit once journalled and publishes it to the git directory soon after.
        await sys.datakit.settle();
        const gitDir = sys.datakit.repo.gitDir ?? '';
        const log = execFileSync('git', ['--git-dir', gitDir, 'log', '--format=%H %s', 'master'], {
          encoding: 'utf8',
        });
        assert.match(log, new RegExp(`^${head} commit from the guest$`, 'm'));
        assert.equal(
          execFileSync('git', ['--git-dir', gitDir, 'show', 'master:f'], { encoding: 'utf8' }),
          'hi\n',
        );
      });
      await t.test('vsock round trip to a guest service', () => {
        assert.equal(vsockBody, VSOCK_MESSAGE.toUpperCase(), tail);
        assert.equal(results.get('vsock-echo'), `ok bytes ${VSOCK_MESSAGE.length}`, tail);
      });
      await t.test('stop() releases the published port, the sockets and the temporary state', async () => {
        watch.abort();
        datakit?.close();
        await sys.stop();
        assert.ok(!existsSync(sys.stateDir), `${sys.stateDir} left behind`);
        const refused = await new Promise<string>((resolve) => {
          const probe = net.connect(publishPort, '127.0.0.1');
          probe.once('connect', () => {
            probe.destroy();
            resolve('connected');
          });
          probe.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
        });
        assert.equal(refused, 'ECONNREFUSED');
      });
    } finally {
      watch.abort();
      datakit?.close();
      await system?.stop();
      await dnsmasq?.stop();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  },
);
