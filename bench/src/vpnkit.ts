// `npm run bench -- vpnkit`: our stack vs slirp4netns and pasta, in one run, each serving a fresh network
// namespace: iperf3 guest→host and host→guest at MTU 1500 and 65520, and TCP connections per second
// (connect + request + reply + close, sequential, from a client in the namespace), and inbound forward
// throughput (iperf3 from the host through each one's port forward). Needs root.
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { findRepoRoot, freePort, hasCommand, runCommand, startDaemon } from '@kitset/testkit';
import { GuestNamespace, parseForward, silentLogger } from '@kitset/vpnkit';
import { type BenchRow, printTable } from './_table.js';

interface Network {
  name: string;
  /** Host port forwarded to port 5201 in the namespace. */
  forwardPort: number;
  /** The namespace to run clients in. */
  netns: string;
  /** The address inside the namespace that reaches the host's 127.0.0.1. */
  hostAddress: string;
  close(): Promise<void>;
}

const IPERF_SECONDS = Number(process.env.VPNKIT_BENCH_SECONDS ?? 4);
/** `VPNKIT_BENCH_ONLY=cps` measures only connections per second (for quick profiling runs). */
const ONLY_CPS = process.env.VPNKIT_BENCH_ONLY === 'cps';

async function ip(args: string[]): Promise<string> {
  const r = await runCommand('ip', args, { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function ours(mtu: number): Promise<Network> {
  const forwardPort = await freePort();
  const ns = await GuestNamespace.create({
    config: { mtu, forwards: [parseForward(`tcp:127.0.0.1:${forwardPort}:192.168.65.3:5201`)] },
    log: silentLogger,
  });
  return {
    name: 'vpnkit (ours)',
    netns: ns.name,
    hostAddress: '192.168.65.254',
    forwardPort,
    close: () => ns.close(),
  };
}

async function withHelper(
  name: string,
  start: (netns: string, forwardPort: number) => ChildProcess,
  ready: (netns: string) => Promise<boolean>,
  hostAddress: (netns: string) => Promise<string>,
  afterReady: (netns: string, forwardPort: number) => Promise<void> = async () => {},
): Promise<Network> {
  const netns = `vkb-${name.slice(0, 5)}-${process.pid}`;
  const forwardPort = await freePort();
  await ip(['netns', 'add', netns]);
  const child = start(netns, forwardPort);
  const close = async () => {
    child.kill('SIGKILL');
    await ip(['netns', 'del', netns]).catch(() => '');
    rmSync(apiSocket(netns), { force: true });
  };
  try {
    await waitFor(() => ready(netns), `${name} to configure the namespace`);
    await afterReady(netns, forwardPort);
    return { name, netns, hostAddress: await hostAddress(netns), forwardPort, close };
  } catch (err) {
    await close();
    throw err;
  }
}

const apiSocket = (netns: string) => `/tmp/${netns}.slirp-api`;

/** slirp4netns forwards through its API socket (JSON add_hostfwd). */
function slirpForward(path: string, hostPort: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let reply = '';
    socket.on('connect', () =>
      socket.write(
        JSON.stringify({
          execute: 'add_hostfwd',
          arguments: { proto: 'tcp', host_addr: '127.0.0.1', host_port: hostPort, guest_port: 5201 },
        }),
      ),
    );
    socket.on('data', (d) => {
      reply += d.toString();
    });
    socket.on('end', () =>
      reply.includes('error') ? reject(new Error(`slirp4netns add_hostfwd: ${reply}`)) : resolve(),
    );
    socket.on('error', reject);
  });
}

function slirp4netns(mtu: number): Promise<Network> {
  return withHelper(
    'slirp4netns',
    (netns) =>
      spawn(
        'slirp4netns',
        [
          '--configure',
          `--mtu=${mtu}`,
          `--api-socket=${apiSocket(netns)}`,
          '--netns-type=path',
          `/run/netns/${netns}`,
          'tap0',
        ],
        { stdio: 'ignore' },
      ),
    async (netns) =>
      (await ip(['-n', netns, 'addr', 'show', 'dev', 'tap0']).catch(() => '')).includes('10.0.2.100'),
    async () => '10.0.2.2',
    (netns, forwardPort) => slirpForward(apiSocket(netns), forwardPort),
  );
}

function pasta(mtu: number): Promise<Network> {
  return withHelper(
    'pasta',
    (netns, forwardPort) =>
      spawn(
        'pasta',
        [
          '--config-net',
          '--netns',
          `/run/netns/${netns}`,
          '-f',
          '--runas',
          '0:0',
          '--mtu',
          String(mtu),
          '-t',
          `127.0.0.1/${forwardPort}:5201`,
          '-u',
          'none',
          '-T',
          'none',
          '-U',
          'none',
          '-q',
        ],
        { stdio: 'ignore' },
      ),
    async (netns) => (await ip(['-n', netns, 'route', 'show', 'default']).catch(() => '')).includes('via'),
    async (netns) => /via (\S+)/.exec(await ip(['-n', netns, 'route', 'show', 'default']))?.[1] ?? '',
  );
}

async function iperf(net: Network, port: number, reverse: boolean): Promise<number> {
  const args = [
    'netns',
    'exec',
    net.netns,
    'iperf3',
    '-c',
    net.hostAddress,
    '-p',
    String(port),
    '-t',
    String(IPERF_SECONDS),
    '-J',
  ];
  if (reverse) args.push('-R');
  const r = await runCommand('ip', args, { timeoutMs: (IPERF_SECONDS + 20) * 1000 });
  const result = JSON.parse(r.stdout || '{}') as {
    end?: { sum_received?: { bits_per_second?: number } };
    error?: string;
  };
  const bps = result.end?.sum_received?.bits_per_second;
  if (!bps) throw new Error(`${net.name}: iperf3 failed: ${result.error ?? r.stderr}`);
  return bps / 1e9;
}

const CONNECT_CLIENT = `const net=require('net');const [host,port,ms]=process.argv.slice(1);let n=0;const end=Date.now()+Number(ms);
function one(){if(Date.now()>=end){console.log(n);process.exit(0)}const s=net.connect(Number(port),host);
s.on('connect',()=>s.write('GET'));s.on('data',()=>{});s.on('end',()=>{n++;s.destroy();one()});s.on('error',()=>{console.log(n);process.exit(1)})}one();`;

/** iperf3 from the host to a server in the namespace, through the helper's port forward. */
async function inboundForward(net: Network): Promise<number> {
  const server = spawn('ip', ['netns', 'exec', net.netns, 'iperf3', '-s', '-1', '-p', '5201'], {
    stdio: 'ignore',
  });
  try {
    await sleep(500);
    const r = await runCommand(
      'iperf3',
      ['-c', '127.0.0.1', '-p', String(net.forwardPort), '-t', String(IPERF_SECONDS), '-J'],
      {
        timeoutMs: (IPERF_SECONDS + 20) * 1000,
      },
    );
    const result = JSON.parse(r.stdout || '{}') as {
      end?: { sum_received?: { bits_per_second?: number } };
      error?: string;
    };
    const bps = result.end?.sum_received?.bits_per_second;
    if (!bps) throw new Error(`${net.name}: forwarded iperf3 failed: ${result.error ?? r.stderr}`);
    return bps / 1e9;
  } finally {
    server.kill('SIGKILL');
  }
}

/** Connections completed by the client loop in `ms` milliseconds. */
async function connectionCount(net: Network, port: number, ms: number): Promise<number> {
  const r = await runCommand(
    'ip',
    [
      'netns',
      'exec',
      net.netns,
      process.execPath,
      '-e',
      CONNECT_CLIENT,
      net.hostAddress,
      String(port),
      String(ms),
    ],
    { timeoutMs: ms + 20_000 },
  );
  const count = Number(r.stdout.trim());
  if (!(count > 0)) throw new Error(`${net.name}: connect loop failed: ${r.stderr}`);
  return count;
}

const CPS_ROUNDS = 4;
const CPS_ROUND_MS = 1000;

/**
 * Connections per second for all three at once: the same client and server, and the rounds interleaved
 * (ours, slirp4netns, pasta, ours, ...) so that load from elsewhere on the machine falls on each alike.
 */
async function connectionsPerSecondInterleaved(
  makers: Record<string, (mtu: number) => Promise<Network>>,
  port: number,
): Promise<Record<string, number>> {
  const nets: Array<[string, Network]> = [];
  try {
    for (const [key, make] of Object.entries(makers)) nets.push([key, await make(1500)]);
    const counts: Record<string, number> = {};
    for (let round = 0; round < CPS_ROUNDS; round++)
      for (const [key, net] of nets)
        counts[key] = (counts[key] ?? 0) + (await connectionCount(net, port, CPS_ROUND_MS));
    const rates: Record<string, number> = {};
    for (const [key] of nets) rates[key] = (counts[key] ?? 0) / ((CPS_ROUNDS * CPS_ROUND_MS) / 1000);
    return rates;
  } finally {
    for (const [, net] of nets) await net.close();
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the vpnkit benchmark needs root (network namespaces)');
  for (const tool of ['iperf3', 'slirp4netns', 'pasta', 'ip'])
    if (!hasCommand(tool)) throw new Error(`${tool} is not installed (scripts/install-deps.sh)`);
  findRepoRoot();
  const iperfPort = await freePort();
  const iperfServer = await startDaemon('iperf3', ['-s', '-p', String(iperfPort), '-B', '127.0.0.1'], {
    readyPort: iperfPort,
    readyTimeoutMs: 10_000,
  });
  const echoPort = await freePort();
  const echoServer = await startDaemon(
    process.execPath,
    [
      '-e',
      `require('net').createServer(s=>{s.on('data',()=>s.end('OK'));s.on('error',()=>{})}).listen(${echoPort},'127.0.0.1')`,
    ],
    { readyPort: echoPort, readyTimeoutMs: 10_000 },
  );
  const makers = { ours, slirp4netns, pasta };
  const results: Record<string, Record<string, number>> = { ours: {}, slirp4netns: {}, pasta: {} };
  try {
    const cps = await connectionsPerSecondInterleaved(makers, echoPort);
    for (const [key, rate] of Object.entries(cps)) results[key]!.cps = rate;
    console.log(`connections per second: ${JSON.stringify(cps)}`);
    for (const mtu of ONLY_CPS ? [] : [1500, 65520]) {
      for (const [key, make] of Object.entries(makers)) {
        const net = await make(mtu);
        try {
          const r = results[key]!;
          if (!ONLY_CPS) {
            r[`up${mtu}`] = await iperf(net, iperfPort, false);
            r[`down${mtu}`] = await iperf(net, iperfPort, true);
          }
          if (mtu === 1500 && !ONLY_CPS) r.forward = await inboundForward(net);
          console.log(`${net.name} MTU ${mtu}: ${JSON.stringify(r)}`);
        } finally {
          await net.close();
        }
      }
    }
  } finally {
    await iperfServer.stop();
    await echoServer.stop();
  }
  for (const anchor of ['slirp4netns', 'pasta'] as const) {
    const rows: BenchRow[] = [];
    for (const mtu of ONLY_CPS ? [] : [1500, 65520]) {
      rows.push({
        metric: `iperf3 guest→host, MTU ${mtu}`,
        unit: 'Gbit/s',
        ours: results.ours![`up${mtu}`]!,
        anchor: results[anchor]![`up${mtu}`]!,
        anchorName: anchor,
        higherIsBetter: true,
      });
      rows.push({
        metric: `iperf3 host→guest, MTU ${mtu}`,
        unit: 'Gbit/s',
        ours: results.ours![`down${mtu}`]!,
        anchor: results[anchor]![`down${mtu}`]!,
        anchorName: anchor,
        higherIsBetter: true,
      });
    }
    if (!ONLY_CPS)
      rows.push({
        metric: 'inbound forward (host→namespace iperf3), MTU 1500',
        unit: 'Gbit/s',
        ours: results.ours!.forward!,
        anchor: results[anchor]!.forward!,
        anchorName: anchor,
        higherIsBetter: true,
      });
    rows.push({
      metric: 'TCP connect+request+close, MTU 1500',
      unit: 'conn/s',
      ours: results.ours!.cps!,
      anchor: results[anchor]!.cps!,
      anchorName: anchor,
      higherIsBetter: true,
    });
    printTable(`vpnkit vs ${anchor}`, rows);
  }
}

main().catch((err) => {
  console.error(`bench vpnkit: ${(err as Error).message}`);
  process.exit(1);
});
