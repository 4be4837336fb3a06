import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  DnsForwarder,
  DnsType,
  VpnkitError,
  defaultConfig,
  emitDns,
  parseDns,
  parseForward,
  parseHosts,
  parseIpv4,
  parseResolvConf,
  silentLogger,
} from '../src/index.js';

function query(name: string, id = 0x1234): Uint8Array {
  return emitDns({
    id,
    flags: 0x0100,
    questions: [{ name, type: DnsType.A, class: 1 }],
    answers: [],
    authorities: [],
    additionals: [],
  });
}

function resolve(dns: DnsForwarder, q: Uint8Array, transport: 'udp' | 'tcp' = 'udp') {
  return new Promise<ReturnType<typeof parseDns>>((ok) => dns.resolve(q, transport, (a) => ok(parseDns(a))));
}

const addressOf = (m: ReturnType<typeof parseDns>) => [...(m.answers[0]?.data ?? [])].join('.');

describe('services: config parsing', () => {
  it('parses forwards, resolv.conf and hosts', () => {
    const f = parseForward('tcp:127.0.0.1:8080:192.168.65.3:80');
    assert.deepEqual(f, {
      protocol: 'tcp',
      hostAddress: '127.0.0.1',
      hostPort: 8080,
      guestAddress: parseIpv4('192.168.65.3'),
      guestPort: 80,
    });
    assert.equal(parseForward('udp:5353:192.168.65.3:53').hostAddress, '127.0.0.1');
    assert.throws(
      () => parseForward('sctp:1:2.3.4.5:6'),
      (e: unknown) => e instanceof VpnkitError && e.code === 'ERR_VPNKIT_FORWARD_SPEC',
    );
    assert.throws(() => parseForward('tcp:99999:192.168.65.3:80'), { code: 'ERR_VPNKIT_FORWARD_SPEC' });
    assert.deepEqual(
      parseResolvConf('# c\nnameserver 10.0.0.1\nnameserver ::1\nsearch x\nnameserver 10.0.0.2 # b\n'),
      [
        { host: '10.0.0.1', port: 53 },
        { host: '10.0.0.2', port: 53 },
      ],
    );
    const hosts = parseHosts('127.0.0.1 localhost\n10.5.5.5 Box.Test box # comment\n::1 ip6\n');
    assert.equal(hosts.get('box.test'), parseIpv4('10.5.5.5'));
    assert.equal(hosts.get('box'), parseIpv4('10.5.5.5'));
    assert.equal(hosts.has('ip6'), false);
  });
});

describe('services: DNS forwarder', () => {
  let dir: string;
  const upstreams: dgram.Socket[] = [];
  const seen: Array<{ id: number; port: number }> = [];

  /** A tiny upstream resolver that answers every A query with `address` and records IDs and ports. */
  async function upstream(address: string): Promise<number> {
    const s = dgram.createSocket('udp4');
    s.on('message', (msg, rinfo) => {
      const q = parseDns(msg);
      seen.push({ id: q.id, port: rinfo.port });
      const reply = emitDns({
        id: q.id,
        flags: 0x8180,
        questions: q.questions,
        answers: [
          {
            name: q.questions[0]!.name,
            type: DnsType.A,
            class: 1,
            ttl: 5,
            data: Uint8Array.from(address.split('.').map(Number)),
          },
        ],
        authorities: [],
        additionals: [],
      });
      s.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    upstreams.push(s);
    return s.address().port;
  }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vpnkit-dns-'));
  });
  after(() => {
    for (const s of upstreams) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers local names and /etc/hosts itself, with the guest ID', { timeout: 10_000 }, async () => {
    const hostsPath = join(dir, 'hosts');
    writeFileSync(hostsPath, '10.5.5.5 box.test\n');
    const dns = new DnsForwarder(
      { ...defaultConfig(), hostsPath, resolvConfPath: join(dir, 'none'), dnsServers: [] },
      silentLogger,
    );
    const local = await resolve(dns, query('host.kitset.internal', 0xbeef));
    assert.equal(local.id, 0xbeef);
    assert.equal(addressOf(local), '192.168.65.254');
    assert.equal(addressOf(await resolve(dns, query('Gateway.Kitset.Internal'))), '192.168.65.1');
    assert.equal(addressOf(await resolve(dns, query('box.test'))), '10.5.5.5');
    // No upstream configured: SERVFAIL, not silence.
    const fail = await resolve(dns, query('elsewhere.test'));
    assert.equal(fail.flags & 0xf, 2);
    dns.close();
  });

  it(
    'forwards with random IDs and ports, and follows resolv.conf as it changes',
    { timeout: 20_000 },
    async () => {
      const portA = await upstream('1.1.1.1');
      const resolvConfPath = join(dir, 'resolv.conf');
      writeFileSync(resolvConfPath, 'nameserver 127.0.0.1\n');
      const dns = new DnsForwarder(
        {
          ...defaultConfig(),
          resolvConfPath,
          hostsPath: join(dir, 'nohosts'),
          dnsServers: [`127.0.0.1:${portA}`],
        },
        silentLogger,
      );
      seen.length = 0;
      for (let i = 0; i < 20; i++) {
        const answer = await resolve(dns, query(`q${i}.test`, 0x4242));
        assert.equal(answer.id, 0x4242, 'the guest sees its own ID');
        assert.equal(addressOf(answer), '1.1.1.1');
      }
      assert.equal(seen.length, 20);
      assert.ok(new Set(seen.map((s) => s.id)).size >= 18, 'upstream IDs are random');
      assert.ok(new Set(seen.map((s) => s.port)).size >= 18, 'each query from a fresh port');
      dns.close();

      // resolv.conf changes are picked up on the next query, with no restart.
      const followed = new DnsForwarder(
        { ...defaultConfig(), resolvConfPath, hostsPath: join(dir, 'nohosts'), dnsServers: [] },
        silentLogger,
      );
      assert.deepEqual(followed.upstreams(), [{ host: '127.0.0.1', port: 53 }]);
      writeFileSync(resolvConfPath, 'nameserver 127.0.0.2\nnameserver 127.0.0.3\n');
      assert.deepEqual(followed.upstreams(), [
        { host: '127.0.0.2', port: 53 },
        { host: '127.0.0.3', port: 53 },
      ]);
      followed.close();
    },
  );
});

describe(
  'services: DNS forwarder following resolv.conf to real resolvers',
  {
    skip: process.getuid?.() === 0 ? false : 'needs root to bind port 53',
  },
  () => {
    const daemons: ChildProcess[] = [];
    let dir: string;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'vpnkit-resolv-'));
      for (const [address, answer] of [
        ['127.0.0.62', '10.0.0.62'],
        ['127.0.0.63', '10.0.0.63'],
      ] as const) {
        const d = spawn(
          'dnsmasq',
          [
            '--keep-in-foreground',
            '--port=53',
            `--listen-address=${address}`,
            '--bind-interfaces',
            '--no-resolv',
            '--no-hosts',
            `--pid-file=${join(dir, `${address}.pid`)}`,
            `--address=/vpn.test/${answer}`,
            '--user=root',
          ],
          { stdio: 'ignore' },
        );
        daemons.push(d);
      }
      await new Promise((r) => setTimeout(r, 300));
    });
    after(() => {
      for (const d of daemons) d.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });

    it('switches upstream when resolv.conf changes (a VPN coming up)', { timeout: 20_000 }, async (t) => {
      try {
        execFileSync('sh', ['-c', 'command -v dnsmasq'], { stdio: 'ignore' });
      } catch {
        t.skip('dnsmasq not installed');
        return;
      }
      const resolvConfPath = join(dir, 'resolv.conf');
      writeFileSync(resolvConfPath, 'nameserver 127.0.0.62\n');
      const dns = new DnsForwarder(
        { ...defaultConfig(), resolvConfPath, hostsPath: join(dir, 'nohosts') },
        silentLogger,
      );
      assert.equal(addressOf(await resolve(dns, query('www.vpn.test'))), '10.0.0.62');
      writeFileSync(resolvConfPath, '# the VPN changed it\nnameserver 127.0.0.63\n');
      assert.equal(addressOf(await resolve(dns, query('www.vpn.test'))), '10.0.0.63');
      assert.equal(addressOf(await resolve(dns, query('tcp.vpn.test'), 'tcp')), '10.0.0.63');
      dns.close();
    });
  },
);
