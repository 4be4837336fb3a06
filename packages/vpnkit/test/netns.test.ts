// Real peers: Linux's own stack and tools in a network namespace behind a TAP device served by our stack.
// The "host" side is this process on loopback. Needs root (namespaces, TAP); skipped otherwise.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GuestNamespace, parseForward, silentLogger, tapAddonPath } from '../src/index.js';

function skipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root for network namespaces and TAP devices';
  if (!existsSync(tapAddonPath())) return 'TAP addon not built (scripts/prepare.d/20-tap-addon.sh)';
  for (const tool of ['ip', 'busybox', 'dig', 'curl', 'dnsmasq', 'tshark', 'ping']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} not installed`;
    }
  }
  return null;
}

async function freePort(type: 'tcp' | 'udp'): Promise<number> {
  if (type === 'udp') {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const port = s.address().port;
    s.close();
    return port;
  }
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** Deterministic payload for connection `i`, shared with the client script in the namespace. */
const PAYLOAD_SOURCE = `function payload(i, n) {
  const out = Buffer.alloc(n);
  let x = (i * 2654435761 + 1) >>> 0 || 1;
  for (let k = 0; k < n; k++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0; out[k] = x & 255; }
  return out;
}`;
const payload = new Function(`${PAYLOAD_SOURCE}; return payload;`)() as (i: number, n: number) => Buffer;

const skip = skipReason();

describe('vpnkit with Linux in a network namespace', { skip: skip ?? false, timeout: 240_000 }, () => {
  let ns: GuestNamespace;
  let dir: string;
  let dnsmasq: ChildProcess;
  let dnsPort: number;
  let httpServer: http.Server;
  let httpPort: number;
  let forwardPort: number;
  let udpForwardPort: number;
  let closedPort: number;
  const bigSize = 100 * 1024 * 1024;
  let bigFile: Buffer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vpnkit-test-'));
    dnsPort = await freePort('udp');
    dnsmasq = spawn(
      'dnsmasq',
      [
        '--keep-in-foreground',
        `--port=${dnsPort}`,
        '--listen-address=127.0.0.1',
        '--bind-interfaces',
        '--no-resolv',
        '--no-hosts',
        `--pid-file=${join(dir, 'dnsmasq.pid')}`,
        '--address=/example.test/10.1.2.3',
        '--user=root',
      ],
      { stdio: 'ignore' },
    );
    bigFile = randomBytes(bigSize);
    httpServer = http.createServer((req, res) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-length': String(bigFile.length) });
        res.end(bigFile);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
    httpPort = (httpServer.address() as net.AddressInfo).port;
    forwardPort = await freePort('tcp');
    udpForwardPort = await freePort('udp');
    closedPort = await freePort('tcp');
    ns = await GuestNamespace.create({
      configure: 'dhcp',
      log: silentLogger,
      config: {
        dnsServers: [`127.0.0.1:${dnsPort}`],
        forwards: [
          parseForward(`tcp:127.0.0.1:${forwardPort}:192.168.65.3:8080`),
          parseForward(`udp:127.0.0.1:${udpForwardPort}:192.168.65.3:9999`),
        ],
      },
    });
  });

  after(async () => {
    await ns?.close();
    dnsmasq?.kill('SIGKILL');
    await new Promise((r) => httpServer?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('busybox udhcpc gets a lease with our router, DNS and MTU', { timeout: 30_000 }, async () => {
    const script = join(dir, 'udhcpc.sh');
    writeFileSync(
      script,
      '#!/bin/sh\n[ "$1" = bound ] || exit 0\n' +
        'echo "ip=$ip router=$router dns=$dns mtu=$mtu subnet=$subnet domain=$domain"\n' +
        'ip addr add $ip/24 dev $interface\nip route add default via $router\n',
      { mode: 0o755 },
    );
    const r = await ns.exec([
      'busybox',
      'udhcpc',
      '-i',
      'tap0',
      '-n',
      '-q',
      '-t',
      '5',
      '-O',
      'mtu',
      '-s',
      script,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const m = /ip=(\S+) router=(\S+) dns=(\S+) mtu=(\S+) subnet=(\S+) domain=(\S+)/.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.match(m[1]!, /^192\.168\.65\.\d+$/);
    assert.equal(m[2], '192.168.65.1');
    assert.equal(m[3], '192.168.65.1');
    assert.equal(m[4], '1500');
    assert.equal(m[5], '255.255.255.0');
    assert.equal(m[6], 'kitset.internal');
    // Same MAC, same lease: ask again.
    const again = await ns.exec([
      'busybox',
      'udhcpc',
      '-i',
      'tap0',
      '-n',
      '-q',
      '-t',
      '5',
      '-s',
      '/bin/true',
    ]);
    assert.equal(again.code, 0);
    assert.ok(again.stderr.includes(`lease of ${m[1]}`), again.stderr);
    // The rest of the tests expect the first pool address (the static one); make sure it is there.
    if (m[1] !== ns.address) {
      await ns.exec(['ip', 'addr', 'flush', 'dev', 'tap0']);
      await ns.exec(['ip', 'addr', 'add', `${ns.address}/24`, 'dev', 'tap0']);
      await ns.exec(['ip', 'route', 'add', 'default', 'via', '192.168.65.1']);
    }
  });

  it(
    'ping reaches the gateway, and large (fragmented) pings the host alias',
    { timeout: 30_000 },
    async () => {
      const r = await ns.exec(['ping', '-c', '3', '-i', '0.2', '-W', '2', '192.168.65.1']);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /3 received/);
      const big = await ns.exec(['ping', '-c', '1', '-s', '6000', '-W', '2', '192.168.65.254']);
      assert.equal(big.code, 0, big.stdout);
      assert.match(big.stdout, /6008 bytes from 192\.168\.65\.254/);
    },
  );

  it(
    'dig resolves through our forwarder to dnsmasq over UDP and TCP, and local names locally',
    { timeout: 30_000 },
    async () => {
      const udp = await ns.exec([
        'dig',
        '+short',
        '+tries=2',
        '+time=2',
        '@192.168.65.1',
        'www.example.test',
        'A',
      ]);
      assert.equal(udp.stdout.trim(), '10.1.2.3', udp.stdout + udp.stderr);
      const tcp = await ns.exec([
        'dig',
        '+tcp',
        '+short',
        '+time=2',
        '@192.168.65.1',
        'db.example.test',
        'A',
      ]);
      assert.equal(tcp.stdout.trim(), '10.1.2.3', tcp.stdout + tcp.stderr);
      const local = await ns.exec(['dig', '+short', '+time=2', '@192.168.65.1', 'host.kitset.internal']);
      assert.equal(local.stdout.trim(), '192.168.65.254');
      const getent = await ns.exec(['getent', 'hosts', 'gateway.kitset.internal']);
      assert.match(getent.stdout, /^192\.168\.65\.1\s+gateway\.kitset\.internal/);
    },
  );

  it(
    'curl downloads 100 MiB from a host-loopback server through the host alias, checksum intact',
    { timeout: 90_000 },
    async () => {
      const out = join(dir, 'download.bin');
      const r = await ns.exec(
        [
          'curl',
          '-sS',
          '--max-time',
          '60',
          '-o',
          out,
          '-w',
          '%{size_download} %{speed_download}',
          `http://192.168.65.254:${httpPort}/big`,
        ],
        80_000,
      );
      assert.equal(r.code, 0, r.stderr);
      const [size] = r.stdout.split(' ');
      assert.equal(Number(size), bigSize);
      const hashOf = (b: Buffer) => createHash('sha256').update(b).digest('hex');
      const got = execFileSync('sha256sum', [out]).toString().split(' ')[0];
      assert.equal(got, hashOf(bigFile));
      rmSync(out);
    },
  );

  it('iperf3 runs both directions through the host alias', { timeout: 60_000 }, async (t) => {
    const port = await freePort('tcp');
    const server = spawn('iperf3', ['-s', '-p', String(port), '-B', '127.0.0.1'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const rates: string[] = [];
      for (const reverse of [false, true]) {
        const args = ['iperf3', '-c', '192.168.65.254', '-p', String(port), '-t', '2', '-J'];
        if (reverse) args.push('-R');
        const r = await ns.exec(args, 30_000);
        const result = JSON.parse(r.stdout || '{}') as {
          end?: { sum_received?: { bytes?: number; bits_per_second?: number } };
        };
        const received = result.end?.sum_received;
        assert.ok(received?.bytes && received.bytes > 10 * 1024 * 1024, r.stdout.slice(-500) + r.stderr);
        rates.push(
          `${reverse ? 'host→guest' : 'guest→host'} ${((received.bits_per_second ?? 0) / 1e9).toFixed(2)} Gbit/s`,
        );
      }
      t.diagnostic(rates.join(', '));
    } finally {
      server.kill('SIGKILL');
    }
  });

  it('a refused host connection is a reset for the guest', { timeout: 30_000 }, async () => {
    const r = await ns.exec(['curl', '-sS', '--max-time', '5', `http://192.168.65.254:${closedPort}/`]);
    assert.equal(r.code, 7, r.stderr); // 7 = failed to connect
    // An RST, not a timeout: curl gives up within milliseconds.
    const ms = Number(/after (\d+) ms/.exec(r.stderr)?.[1] ?? '100000');
    assert.ok(ms < 2000, r.stderr);
  });

  it('UDP echo through the host alias', { timeout: 30_000 }, async () => {
    const echo = dgram.createSocket('udp4');
    echo.on('message', (msg, rinfo) =>
      echo.send(Buffer.concat([Buffer.from('echo:'), msg]), rinfo.port, rinfo.address),
    );
    await new Promise<void>((r) => echo.bind(0, '127.0.0.1', r));
    const port = echo.address().port;
    try {
      const script = `const s=require('dgram').createSocket('udp4');
        let got=0;const t=setTimeout(()=>{console.log('timeout '+got);process.exit(1)},5000);
        s.on('message',m=>{if(m.toString()==='echo:ping'+got){got++; if(got===20){clearTimeout(t);console.log('ok');process.exit(0)} s.send('ping'+got,${port},'192.168.65.254')}});
        s.send('ping0',${port},'192.168.65.254');`;
      const r = await ns.exec([process.execPath, '-e', script]);
      assert.equal(r.stdout.trim(), 'ok', r.stdout + r.stderr);
    } finally {
      echo.close();
    }
  });

  it(
    '1,000 concurrent TCP connections each transfer checksummed data both ways',
    { timeout: 120_000 },
    async () => {
      const count = 1000;
      const size = 32 * 1024;
      let verified = 0;
      const server = net.createServer((socket) => {
        const chunks: Buffer[] = [];
        let length = 0;
        socket.on('data', (d) => {
          chunks.push(d);
          length += d.length;
          const all = Buffer.concat(chunks);
          const newline = all.indexOf(10);
          if (newline < 0 || all.length < newline + 1 + size) return;
          const index = Number(all.subarray(0, newline).toString());
          const upload = all.subarray(newline + 1, newline + 1 + size);
          if (upload.equals(payload(index + 1_000_000, size))) verified++;
          socket.end(payload(index, size));
          chunks.length = 0;
          length = 0;
        });
        socket.on('error', () => {});
        void length;
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as net.AddressInfo).port;
      try {
        const script = `${PAYLOAD_SOURCE}
        const net=require('net'),crypto=require('crypto');const N=${count},SIZE=${size};let ok=0,bad=0,done=0;
        const finish=()=>{if(++done===N){console.log(JSON.stringify({ok,bad}));process.exit(0)}};
        setTimeout(()=>{console.log(JSON.stringify({ok,bad,done,timeout:true}));process.exit(1)},100000);
        for(let i=0;i<N;i++){const s=net.connect(${port},'192.168.65.254');const parts=[];
          s.on('connect',()=>{s.write(i+'\\n');s.write(payload(i+1000000,SIZE))});
          s.on('data',d=>parts.push(d));
          s.on('end',()=>{const got=Buffer.concat(parts);(got.equals(payload(i,SIZE))?ok++:bad++);finish()});
          s.on('error',e=>{bad++;finish()})}`;
        const r = await ns.exec([process.execPath, '-e', script], 110_000);
        const result = JSON.parse(r.stdout.trim() || '{}') as { ok?: number; bad?: number };
        assert.equal(result.ok, count, r.stdout + r.stderr);
        assert.equal(verified, count);
      } finally {
        server.close();
      }
    },
  );

  it('a forwarded host port reaches a server in the namespace', { timeout: 30_000 }, async () => {
    const script = `const s=require('net').createServer(c=>{c.on('data',d=>c.write(d.toString().toUpperCase()));c.on('end',()=>c.end())});
      s.listen(8080,'0.0.0.0',()=>console.log('listening'));setTimeout(()=>process.exit(0),20000);`;
    const server = ns.spawn([process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        server.stdout?.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
        server.on('exit', () => reject(new Error('namespace server exited')));
      });
      const reply = await new Promise<string>((resolve, reject) => {
        const c = net.connect(forwardPort, '127.0.0.1');
        let text = '';
        c.on('connect', () => c.end('hello through the forward'));
        c.on('data', (d) => {
          text += d.toString();
        });
        c.on('end', () => resolve(text));
        c.on('error', reject);
      });
      assert.equal(reply, 'HELLO THROUGH THE FORWARD');
    } finally {
      server.kill('SIGKILL');
    }
  });

  it(
    'a forwarded host UDP port reaches a server in the namespace and replies come back',
    { timeout: 30_000 },
    async () => {
      const script = `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send(Buffer.concat([Buffer.from('pong:'),m]),r.port,r.address));
      s.bind(9999,'0.0.0.0',()=>console.log('listening'));setTimeout(()=>process.exit(0),20000);`;
      const server = ns.spawn([process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const client = dgram.createSocket('udp4');
      try {
        await new Promise<void>((resolve, reject) => {
          server.stdout?.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
          server.on('exit', () => reject(new Error('namespace server exited')));
        });
        const replies: string[] = [];
        client.on('message', (m) => replies.push(m.toString()));
        await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
        for (let i = 0; i < 50 && replies.length < 3; i++) {
          client.send(`ping${replies.length}`, udpForwardPort, '127.0.0.1');
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.ok(replies.length >= 3, JSON.stringify(replies));
        assert.match(replies[0]!, /^pong:ping\d$/);
      } finally {
        client.close();
        server.kill('SIGKILL');
      }
    },
  );

  it(
    'file descriptors return to their starting count after 10,000 connections open and close',
    { timeout: 120_000 },
    async () => {
      const fdCount = () => readdirSync('/proc/self/fd').length;
      const server = net.createServer((socket) => {
        socket.on('data', () => socket.end('ok'));
        socket.on('error', () => {});
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as net.AddressInfo).port;
      const before = fdCount();
      try {
        const script = `const net=require('net');const N=10000,P=64;let started=0,done=0,ok=0;
        const t=setTimeout(()=>{console.log(JSON.stringify({ok,done,timeout:true}));process.exit(1)},100000);
        function one(){if(started>=N)return;started++;const s=net.connect(${port},'192.168.65.254');
          s.on('connect',()=>s.write('x'));s.on('data',()=>{});
          s.on('end',()=>{ok++;s.destroy();next()});s.on('error',()=>next())}
        function next(){done++;if(done===N){clearTimeout(t);console.log(JSON.stringify({ok,done}));process.exit(0)}one()}
        for(let i=0;i<P;i++)one();`;
        const r = await ns.exec([process.execPath, '-e', script], 110_000);
        const result = JSON.parse(r.stdout.trim() || '{}') as { ok?: number };
        assert.equal(result.ok, 10_000, r.stdout + r.stderr);
        // Host sockets close as the guest's FINs arrive; give the last ones a moment.
        for (let i = 0; i < 50 && fdCount() > before; i++) await new Promise((res) => setTimeout(res, 100));
        assert.ok(fdCount() <= before, `fds: ${before} before, ${fdCount()} after`);
        assert.ok(
          ns.vpnkit.nat.tcpProxyCount === 0,
          `${ns.vpnkit.nat.tcpProxyCount} host sockets still open`,
        );
      } finally {
        server.close();
      }
    },
  );
});

describe('vpnkit pcap traces', { skip: skip ?? false, timeout: 120_000 }, () => {
  it(
    'a trace of DHCP, ARP, ICMP, DNS and TCP opens in tshark with no malformed packets or bad checksums',
    { timeout: 90_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'vpnkit-pcap-'));
      const trace = join(dir, 'trace.pcap');
      const body = randomBytes(1 << 20);
      const server = http.createServer((_req, res) => res.end(body));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as net.AddressInfo).port;
      const ns = await GuestNamespace.create({ configure: 'dhcp', pcap: trace, log: silentLogger });
      try {
        const script =
          'busybox udhcpc -i tap0 -n -q -t 5 -s /bin/true >/dev/null 2>&1; ' +
          `ip addr add ${ns.address}/24 dev tap0; ip route add default via 192.168.65.1; ` +
          'ping -c 2 -i 0.2 192.168.65.1 >/dev/null; ping -c 1 -s 4000 192.168.65.254 >/dev/null; ' +
          'dig +short +time=2 @192.168.65.1 host.kitset.internal >/dev/null; ' +
          `curl -sS -o /dev/null http://192.168.65.254:${port}/`;
        const r = await ns.exec(['sh', '-c', script], 60_000);
        assert.equal(r.code, 0, r.stderr);
      } finally {
        await ns.close();
        server.close();
      }
      const tshark = (filter: string) =>
        execFileSync(
          'tshark',
          [
            '-r',
            trace,
            '-o',
            'ip.check_checksum:TRUE',
            '-o',
            'tcp.check_checksum:TRUE',
            '-o',
            'udp.check_checksum:TRUE',
            '-Y',
            filter,
            '-T',
            'fields',
            '-e',
            'frame.number',
          ],
          { maxBuffer: 1 << 28 },
        )
          .toString()
          .trim()
          .split('\n')
          .filter(Boolean).length;
      try {
        assert.ok(tshark('frame') > 100);
        for (const protocol of ['dhcp', 'arp', 'icmp', 'dns', 'tcp', 'ip.flags.mf == 1'])
          assert.ok(tshark(protocol) > 0, `no ${protocol} in the trace`);
        const bad = tshark(
          '_ws.malformed || ip.checksum.status == "Bad" || tcp.checksum.status == "Bad" || udp.checksum.status == "Bad" || icmp.checksum.status == "Bad"',
        );
        assert.equal(bad, 0, `${bad} malformed or bad-checksum frames`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('vpnkit run (the CLI)', { skip: skip ?? false, timeout: 60_000 }, () => {
  const cli = new URL('../src/cli.js', import.meta.url).pathname;
  const pids: number[] = [];
  const run = (args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [cli, 'run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      if (child.pid) pids.push(child.pid);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });

  it(
    'runs a command in a fresh namespace with a working network, passes its exit code, cleans up',
    { timeout: 50_000 },
    async () => {
      const ok = await run([
        '--',
        'sh',
        '-c',
        'ping -c 1 -W 2 192.168.65.1 >/dev/null && getent hosts host.kitset.internal && ip -br link | wc -l',
      ]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /192\.168\.65\.254\s+host\.kitset\.internal/);
      assert.match(ok.stdout.trim().split('\n').pop() ?? '', /^2$/, 'only lo and tap0');
      const status = await run([
        '--mtu',
        '9000',
        '--',
        'sh',
        '-c',
        'ip link show tap0 | grep -q "mtu 9000" && exit 3',
      ]);
      assert.equal(status.code, 3);
      // Each run named its namespace after its pid; none may be left (other test files run in parallel).
      const leftovers = execFileSync('ip', ['netns', 'list']).toString();
      for (const pid of pids) assert.ok(!leftovers.includes(`vpnkit-${pid}-`), leftovers);
      const bad = await run(['--mtu', '12', '--', 'true']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--mtu must be/);
    },
  );
});

describe(
  'vpnkit NAT to a remote peer (the host side in its own namespace)',
  { skip: skip ?? false, timeout: 60_000 },
  () => {
    const hostNs = `vkh-${process.pid}`;
    const remoteNs = `vkr-${process.pid}`;
    const cli = new URL('../src/cli.js', import.meta.url).pathname;
    before(() => {
      const ip = (args: string) => execFileSync('sh', ['-c', `ip ${args}`]);
      ip(`netns add ${hostNs}`);
      ip(`netns add ${remoteNs}`);
      ip(`-n ${hostNs} link add v0 type veth peer name v1 netns ${remoteNs}`);
      ip(`-n ${hostNs} addr add 10.99.0.1/24 dev v0`);
      ip(`-n ${remoteNs} addr add 10.99.0.2/24 dev v1`);
      for (const [ns, dev] of [
        [hostNs, 'v0'],
        [remoteNs, 'v1'],
      ] as const) {
        ip(`-n ${ns} link set lo up`);
        ip(`-n ${ns} link set ${dev} up`);
      }
    });
    after(() => {
      for (const ns of [hostNs, remoteNs])
        execFileSync('sh', ['-c', `ip netns del ${ns} 2>/dev/null || true`]);
    });

    it(
      'guest pings reach a remote host through the ICMP socket; a closed UDP port is unreachable',
      { timeout: 50_000 },
      async () => {
        const udpProbe = `const s=require('dgram').createSocket('udp4');s.on('error',e=>{console.log('udp:'+e.code);process.exit(0)});
      s.connect(9,'10.99.0.2',()=>{s.send('x');setTimeout(()=>s.send('y'),300)});setTimeout(()=>{console.log('udp:none');process.exit(0)},4000);`;
        const dir = mkdtempSync(join(tmpdir(), 'vpnkit-nat-'));
        const probe = join(dir, 'udp-probe.cjs');
        writeFileSync(probe, udpProbe);
        const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
          const child = spawn(
            'ip',
            [
              'netns',
              'exec',
              hostNs,
              process.execPath,
              cli,
              'run',
              '--',
              'sh',
              '-c',
              `ping -c 2 -i 0.3 -W 2 10.99.0.2; '${process.execPath}' '${probe}'`,
            ],
            { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VPNKIT_DEBUG: '1' } },
          );
          let out = '';
          child.stdout.on('data', (d: Buffer) => {
            out += d.toString();
          });
          child.stderr.on('data', (d: Buffer) => {
            out += d.toString();
          });
          const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
          child.on('close', (code) => {
            clearTimeout(timer);
            resolve({ code, out });
          });
        });
        rmSync(dir, { recursive: true, force: true });
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, /2 received/, r.out);
        assert.match(r.out, /through a raw socket/, r.out); // a fresh namespace's ping_group_range is "1 0"
        assert.match(r.out, /udp:ECONNREFUSED/, r.out);
      },
    );

    it(
      'unprivileged ICMP datagram sockets are used where ping_group_range allows them',
      { timeout: 30_000 },
      async () => {
        // The sysctl is per network namespace: allow every group in the host-side one only.
        execFileSync('ip', [
          'netns',
          'exec',
          hostNs,
          'sysctl',
          '-q',
          '-w',
          'net.ipv4.ping_group_range=0 2147483647',
        ]);
        const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
          const child = spawn(
            'ip',
            [
              'netns',
              'exec',
              hostNs,
              process.execPath,
              cli,
              'run',
              '--',
              'ping',
              '-c',
              '2',
              '-i',
              '0.3',
              '-W',
              '2',
              '10.99.0.2',
            ],
            { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VPNKIT_DEBUG: '1' } },
          );
          let out = '';
          child.stdout.on('data', (d: Buffer) => {
            out += d.toString();
          });
          child.stderr.on('data', (d: Buffer) => {
            out += d.toString();
          });
          const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
          child.on('close', (code) => {
            clearTimeout(timer);
            resolve({ code, out });
          });
        });
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, /through a datagram socket/, r.out);
        assert.match(r.out, /2 received/, r.out);
      },
    );
  },
);
