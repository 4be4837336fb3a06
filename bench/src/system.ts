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
 * Options: --mib N (default 16).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type GuestImage, guestCmdline, prepareGuest, startSystem } from '@kitset/kitset';
import { hasCommand, riscvQemuArgs } from '@kitset/testkit';
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

async function main(): Promise<void> {
  if (!hasCommand('qemu-system-riscv64'))
    throw new Error('qemu-system-riscv64 missing: apt-get install qemu-system-misc');
  const guest = await prepareGuest((line) => process.stderr.write(`${line}\n`));
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
    ];
    printTable('kitset system (HyperKit + VPNKit + 9P) vs qemu-system-riscv64 TCG', rows);
  } finally {
    sink.close();
    rmSync(share, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench system: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
