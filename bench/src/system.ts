/**
 * `npm run bench -- system`: the whole system (HyperKit VM + VPNKit + 9P, in one Node process) against
 * qemu-system-riscv64 (-M virt, TCG) with QEMU's own user networking (slirp) and virtio-9p, booting the same
 * kernel and kitset's guest initramfs, in one run:
 *   - guest-to-host TCP throughput: the guest's kernel sends N MiB to a server on the host's 127.0.0.1
 *     (through VPNKit's gateway alias 192.168.65.254, or slirp's 10.0.2.2), timed by the host server from
 *     the first byte to the close;
 *   - guest 9P read throughput: the guest reads an N MiB file from a shared host directory (mount tag
 *     `share`, 9P2000.L, cache=none, msize 512000: the most Linux 6.1's virtio transport takes, for both
 *     sides) with 512 KiB read()s and no per-byte work in the guest (init's `drain`; its `read` hashes
 *     every byte, which on an emulated CPU would measure the CPU, not 9P), timed on the host between the
 *     guest's console lines around it; twice: the first read pays for warming up the guest's and the
 *     host's code paths (and the guest's first touch of its buffer), the second shows the steady state.
 * Both at MTU 1500, then ours again at MTU 65520 (VPNKit's largest; fewer guest packets to emulate).
 *   - vsock connections a second from the guest to a host service (an echo server in a process of its own
 *     on the Unix socket `00000002.00000007`, as hyperkit's virtio-sock maps host port 7): the device-test
 *     init's connect / 1-byte echo / close cycles, one at a time (latency) and from K guest processes at once
 *     (capacity), with the guest instructions each took. QEMU's vhost-vsock needs the host kernel's
 *     /dev/vhost-vsock, which this kind of machine lacks, so these rows compare with the 1,000/s goal.
 * Options: --mib N (default 16), --vsock N (connections per vsock run, default 3000), --vsock-only.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtioVsock, createVM } from '@kitset/hyperkit';
import { type GuestImage, guestCmdline, prepareGuest, startSystem } from '@kitset/kitset';
import { findRepoRoot, hasCommand, riscvQemuArgs } from '@kitset/testkit';
import { type BenchRow, printTable } from './_table.js';

const argv = process.argv.slice(2);
function option(name: string, fallback: number): number {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} needs a positive integer`);
  return v;
}
const MIB = option('mib', 16);
const BYTES = MIB * 1024 * 1024;
const DEADLINE_MS = 600_000;
const VSOCK_CONNECTIONS = option('vsock', 3000);
const VSOCK_ONLY = argv.includes('--vsock-only');
/** Guest processes connecting at once in the capacity run. */
const VSOCK_CLIENTS = 8;
const VSOCK_GOAL = 1000;

interface Sink {
  port: number;
  /** Resolves with the milliseconds from the first byte to the close of the next connection. */
  next(): Promise<{ bytes: number; ms: number }>;
  close(): void;
}

/** A TCP server on 127.0.0.1 that counts what each connection sends. */
async function startSink(): Promise<Sink> {
  const waiting: Array<(r: { bytes: number; ms: number }) => void> = [];
  const server = net.createServer((socket) => {
    let bytes = 0;
    let first = 0;
    socket.on('data', (d: Buffer) => {
      if (bytes === 0) first = performance.now();
      bytes += d.length;
    });
    socket.on('error', () => {});
    socket.on('close', () => waiting.shift()?.({ bytes, ms: performance.now() - first }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    next: () => new Promise((r) => waiting.push(r)),
    close: () => server.close(),
  };
}

interface GuestResult {
  tcp: { bytes: number; ms: number };
  /** The first read of the file (cold: the guest's and the host's code paths not yet warm) and the second. */
  ninepMs: number;
  ninepBytes: number;
  warmNinepMs: number;
  warmNinepBytes: number;
}

/** Follows a guest console: each `KS ...` line with its host arrival time. */
function lineWatcher(onLine: (line: string, at: number) => void): (d: Buffer) => void {
  let pending = '';
  return (d) => {
    const at = performance.now();
    pending += d.toString('latin1');
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      onLine(pending.slice(0, nl).replace(/\r$/, ''), at);
      pending = pending.slice(nl + 1);
    }
  };
}

/** Runs the commands in a guest whose console lines arrive through `attach`; collects the figures. */
async function measure(
  name: string,
  sink: Sink,
  run: (commands: string[], onData: (d: Buffer) => void) => Promise<void>,
  hostAlias: string,
): Promise<GuestResult> {
  const tcp = sink.next();
  let sendDoneAt = 0;
  const reads: Array<{ at: number; bytes: number }> = [];
  const failures: string[] = [];
  const tail: string[] = [];
  await run(
    [`send ${hostAlias}:${sink.port} ${MIB}`, 'drain /share/big.bin', 'drain /share/big.bin'],
    lineWatcher((line, at) => {
      tail.push(line);
      if (tail.length > 40) tail.shift();
      if (line.startsWith('KS send ok')) sendDoneAt = at;
      if (line.startsWith('KS drain ok'))
        reads.push({ at, bytes: Number(/bytes (\d+)/.exec(line)?.[1] ?? 0) });
      if (/^KS \S+ FAIL/.test(line) && !line.startsWith('KS mount FAIL datakit')) failures.push(line);
    }),
  );
  const [cold, warm] = reads;
  if (failures.length > 0 || !cold || !warm || sendDoneAt === 0)
    throw new Error(`${name}: the guest did not finish: ${failures.join('; ')}\n${tail.join('\n')}`);
  return {
    tcp: await tcp,
    ninepMs: cold.at - sendDoneAt,
    ninepBytes: cold.bytes,
    warmNinepMs: warm.at - cold.at,
    warmNinepBytes: warm.bytes,
  };
}

async function ours(guest: GuestImage, share: string, sink: Sink, mtu: number): Promise<GuestResult> {
  return measure(
    `ours (MTU ${mtu})`,
    sink,
    async (commands, onData) => {
      const system = await startSystem({
        kernel: guest.kernel,
        initrd: guest.initrd,
        memory: '256M',
        share,
        guestCommand: commands,
        stopOnSignals: false,
        vpnkit: { mtu },
        log: () => {},
      });
      system.console.output.on('data', onData);
      const timer = setTimeout(() => system.vm.stop(), DEADLINE_MS);
      await system.exited;
      clearTimeout(timer);
      await system.stop();
    },
    '192.168.65.254',
  );
}

async function qemu(guest: GuestImage, share: string, sink: Sink): Promise<GuestResult> {
  return measure(
    'qemu',
    sink,
    (commands, onData) =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(
          'qemu-system-riscv64',
          riscvQemuArgs({
            kernel: guest.kernel,
            initrd: guest.initrd,
            append: guestCmdline({ guestCommand: commands, share }),
            extra: [
              '-netdev',
              'user,id=n0',
              '-device',
              'virtio-net-device,netdev=n0',
              '-fsdev',
              `local,id=fs0,path=${share},security_model=none`,
              '-device',
              'virtio-9p-device,fsdev=fs0,mount_tag=share',
            ],
          }),
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let stderr = '';
        child.stdout.on('data', onData);
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS);
        child.once('error', reject);
        child.once('close', (code) => {
          clearTimeout(timer);
          if (code === 0) resolve();
          else reject(new Error(`qemu-system-riscv64 exited ${code}: ${stderr.slice(-2000)}`));
        });
      }),
    '10.0.2.2',
  );
}

interface VsockRate {
  connections: number;
  ms: number;
  instructions: number;
}

/** A Unix-socket echo server in a child process of its own; resolves once it listens. */
async function startEchoProcess(path: string): Promise<ChildProcess> {
  const script =
    "const net=require('node:net');net.createServer((s)=>{s.on('error',()=>{});s.pipe(s)})" +
    ".listen(process.argv[1],()=>process.stdout.write('ready\\n'))";
  const child = spawn(process.execPath, ['-e', script, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`vsock echo server exited (${code})`)));
  });
  return child;
}

/**
 * Boots the device-test initramfs (guest/riscv-devtest, built or reused by its build.sh) with a virtio-vsock
 * device and times its connection loops: `vsock-many` (one at a time) and `vsock-par` (K clients at once).
 * Rates are over the guest's own clock (the host's, while the VM runs); instructions are the guest's, from
 * the previous result line to each loop's.
 */
async function vsockRates(kernel: string): Promise<{ sequential: VsockRate; concurrent: VsockRate }> {
  const build = spawnSync('bash', [join(findRepoRoot(), 'guest/riscv-devtest/build.sh'), '--print-dir'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const initrd = join(build.stdout.trim(), 'initrd.cpio.gz');
  if (build.status !== 0 || !existsSync(initrd))
    throw new Error('the device-test initramfs did not build (bash guest/riscv-devtest/build.sh)');
  const dir = mkdtempSync(join(tmpdir(), 'kitset-bench-vsock-'));
  const vsock = new VirtioVsock({ guestCid: 3, path: dir });
  let echo: ChildProcess | undefined;
  try {
    await vsock.listen();
    echo = await startEchoProcess(join(dir, '00000002.00000007'));
    const checks = [
      'vsock-refused:9', // a marker: instructions counted from here exclude the boot
      `vsock-many:7:${VSOCK_CONNECTIONS}`,
      `vsock-par:7:${VSOCK_CLIENTS}:${VSOCK_CONNECTIONS}`,
    ];
    const vm = await createVM({
      memory: '128M',
      kernel,
      initrd,
      cmdline: `console=ttyS0 quiet kitset.test=${checks.join(',')}`,
      devices: [vsock],
    });
    const results = new Map<string, { line: string; instructions: number }>();
    let retired = 0;
    vm.console.output.on(
      'data',
      lineWatcher((line) => {
        const m = /^KT (\S+) (.*)$/.exec(line);
        if (!m) return;
        const now = vm.machine.hart.instructionsRetired;
        results.set(m[1]!, { line: m[2]!, instructions: now - retired });
        retired = now;
      }),
    );
    const timer = setTimeout(() => vm.stop(), DEADLINE_MS);
    const exit = await vm.run();
    clearTimeout(timer);
    const rate = (check: string, pattern: RegExp): VsockRate => {
      const r = results.get(check);
      const m = r && pattern.exec(r.line);
      if (!r || !m || Number(m[1]) !== VSOCK_CONNECTIONS)
        throw new Error(`vsock ${check}: ${r?.line ?? 'no result'} (exit ${JSON.stringify(exit)})`);
      return { connections: VSOCK_CONNECTIONS, ms: Number(m[2]), instructions: r.instructions };
    };
    return {
      sequential: rate('vsock-many', /^ok connections (\d+) ms (\d+)$/),
      concurrent: rate('vsock-par', /^ok connections (\d+) clients \d+ ms (\d+)$/),
    };
  } finally {
    vsock.close();
    echo?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

function vsockRows(v: { sequential: VsockRate; concurrent: VsockRate }): BenchRow[] {
  const perSecond = (r: VsockRate) => (r.connections * 1000) / Math.max(1, r.ms);
  const goal = 'goal: no vhost-vsock here for QEMU';
  return [
    {
      metric: 'vsock connections/s from the guest (one at a time)',
      unit: '/s',
      ours: perSecond(v.sequential),
      anchor: VSOCK_GOAL,
      anchorName: goal,
      higherIsBetter: true,
    },
    {
      metric: `vsock connections/s from the guest (${VSOCK_CLIENTS} in flight)`,
      unit: '/s',
      ours: perSecond(v.concurrent),
      anchor: VSOCK_GOAL,
      anchorName: goal,
      higherIsBetter: true,
    },
  ];
}

function printVsockNote(v: { sequential: VsockRate; concurrent: VsockRate }): void {
  const each = (r: VsockRate) => (r.instructions / r.connections).toFixed(0);
  console.log(
    `vsock: ${v.sequential.connections} connect / 1-byte echo / close cycles per run; guest instructions per connection: ${each(v.sequential)} one at a time, ${each(v.concurrent)} with ${VSOCK_CLIENTS} in flight`,
  );
}

async function main(): Promise<void> {
  if (!hasCommand('qemu-system-riscv64'))
    throw new Error('qemu-system-riscv64 missing: apt-get install qemu-system-misc');
  const guest = await prepareGuest((line) => process.stderr.write(`${line}\n`));
  if (VSOCK_ONLY) {
    const v = await vsockRates(guest.kernel);
    printTable('kitset system: virtio-vsock from the Linux guest', vsockRows(v));
    printVsockNote(v);
    return;
  }
  const share = mkdtempSync(join(tmpdir(), 'kitset-bench-system-'));
  const sink = await startSink();
  try {
    writeFileSync(join(share, 'big.bin'), randomBytes(BYTES));
    console.log(
      `system benchmark: ${MIB} MiB each way; the guest kernel and initramfs are the same for both`,
    );
    const a = await ours(guest, share, sink, 1500);
    const big = await ours(guest, share, sink, 65520);
    const b = await qemu(guest, share, sink);
    const v = await vsockRates(guest.kernel);
    for (const [who, r] of [
      ['ours', a],
      ['ours at MTU 65520', big],
      ['qemu', b],
    ] as const) {
      if (r.tcp.bytes !== BYTES)
        throw new Error(`${who}: the host received ${r.tcp.bytes} of ${BYTES} bytes`);
      if (r.ninepBytes !== BYTES || r.warmNinepBytes !== BYTES)
        throw new Error(`${who}: the guest read ${r.ninepBytes} and ${r.warmNinepBytes} of ${BYTES} bytes`);
    }
    const mibps = (bytes: number, ms: number) => bytes / 1048576 / (ms / 1000);
    const rows: BenchRow[] = [
      {
        metric: 'guest→host TCP (VPNKit vs slirp)',
        unit: 'MiB/s',
        ours: mibps(a.tcp.bytes, a.tcp.ms),
        anchor: mibps(b.tcp.bytes, b.tcp.ms),
        anchorName: 'qemu user net',
        higherIsBetter: true,
      },
      {
        metric: 'guest→host TCP, ours at MTU 65520',
        unit: 'MiB/s',
        ours: mibps(big.tcp.bytes, big.tcp.ms),
        anchor: mibps(b.tcp.bytes, b.tcp.ms),
        anchorName: 'qemu user net, MTU 1500',
        higherIsBetter: true,
      },
      {
        metric: 'guest 9P read of a shared file (first)',
        unit: 'MiB/s',
        ours: mibps(a.ninepBytes, a.ninepMs),
        anchor: mibps(b.ninepBytes, b.ninepMs),
        anchorName: 'qemu virtio-9p',
        higherIsBetter: true,
      },
      {
        metric: 'guest 9P read of a shared file (again)',
        unit: 'MiB/s',
        ours: mibps(a.warmNinepBytes, a.warmNinepMs),
        anchor: mibps(b.warmNinepBytes, b.warmNinepMs),
        anchorName: 'qemu virtio-9p',
        higherIsBetter: true,
      },
      ...vsockRows(v),
    ];
    printTable('kitset system (HyperKit + VPNKit + 9P) vs qemu-system-riscv64 TCG', rows);
    printVsockNote(v);
  } finally {
    sink.close();
    rmSync(share, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench system: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
