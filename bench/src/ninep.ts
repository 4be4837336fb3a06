/**
 * `npm run bench -- ninep`: our 9P server against diod, both exporting the same directory, each driven by
 * the same two clients in one run: diodcat (diod's 9P2000.L client) and our own NinePClient.
 *   - sequential read of a 256 MiB file (MB/s)
 *   - small-file operations (walk + open + read + clunk) over 2,000 files (files/s)
 * Our server runs as its own process (the CLI), as diod does, so neither shares the client's event loop.
 * Options: --big-mib N (default 256), --files N (default 2000), --rounds N (best of N, default 3).
 */
import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NinePClient, OpenFlags } from '@kitset/ninep';
import { type Daemon, findRepoRoot, freePort, hasCommand, startDaemon } from '@kitset/testkit';
import { type BenchRow, printTable } from './_table.js';

const argv = process.argv.slice(2);
function option(name: string, fallback: number): number {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}
const BIG_MIB = option('big-mib', 256);
const FILES = option('files', 2000);
const ROUNDS = option('rounds', 3);
const MSIZE = 65536; // diodcat's default; our client uses the same so the servers see the same requests.

interface Served {
  name: string;
  hostPort: string;
  aname: string;
  daemon: Daemon;
}

async function main(): Promise<void> {
  for (const tool of ['diod', 'diodcat']) {
    if (!hasCommand(tool)) throw new Error(`${tool} is not installed: run scripts/install-deps.sh`);
  }
  const root = findRepoRoot();
  const dir = await mkdtemp(join(tmpdir(), 'kitset-bench-ninep-'));
  const servers: Served[] = [];
  try {
    console.log(`ninep bench: writing ${BIG_MIB} MiB file and ${FILES} small files in ${dir}`);
    await makeData(dir);

    const diodPort = await freePort();
    servers.push({
      name: 'diod',
      hostPort: `127.0.0.1:${diodPort}`,
      aname: dir,
      daemon: await startDaemon(
        'diod',
        ['-f', '-n', '-l', `127.0.0.1:${diodPort}`, '-e', dir, '-L', 'stderr'],
        {
          readyPort: diodPort,
          readyTimeoutMs: 10_000,
        },
      ),
    });
    const oursPort = await freePort();
    servers.push({
      name: 'ours',
      hostPort: `127.0.0.1:${oursPort}`,
      aname: dir,
      daemon: await startDaemon(
        process.execPath,
        [
          join(root, 'packages/ninep/dist/src/cli.js'),
          'serve',
          dir,
          '--listen',
          `tcp://127.0.0.1:${oursPort}`,
        ],
        { readyPort: oursPort, readyTimeoutMs: 10_000 },
      ),
    });
    const [diod, ours] = servers as [Served, Served];

    const smallNames = Array.from({ length: FILES }, (_, i) => `small/f${i}.txt`);
    const smallBytes = smallNames.reduce((n, _, i) => n + smallContent(i).length, 0);
    const results = new Map<string, number>();
    const measure = async (label: string, fn: (s: Served) => Promise<number>) => {
      for (const s of [diod, ours]) {
        const best = await bestOf(ROUNDS, () => fn(s));
        results.set(`${label}/${s.name}`, best);
        console.log(`  ${label.padEnd(36)} ${s.name.padEnd(5)} ${best.toFixed(1)}`);
      }
    };
    const bigBytes = BIG_MIB * 1024 * 1024;
    await measure('diodcat sequential read MB/s', async (s) => {
      const t = await timeDiodcat(
        ['-s', s.hostPort, '-a', s.aname, '-m', String(MSIZE), 'big.bin'],
        bigBytes,
      );
      return bigBytes / 1e6 / t;
    });
    await measure('diodcat small files/s', async (s) => {
      const t = await timeDiodcat(
        ['-s', s.hostPort, '-a', s.aname, '-m', String(MSIZE), ...smallNames],
        smallBytes,
      );
      return FILES / t;
    });
    await measure('our client sequential read MB/s', async (s) => {
      const t = await withClient(s, (c) => readWhole(c, 'big.bin', bigBytes));
      return bigBytes / 1e6 / t;
    });
    await measure('our client small files/s', async (s) => {
      const t = await withClient(s, async (c) => {
        for (const name of smallNames) await readWhole(c, name);
      });
      return FILES / t;
    });

    const row = (metric: string, key: string, unit: string): BenchRow => ({
      metric,
      unit,
      ours: results.get(`${key}/ours`) ?? 0,
      anchor: results.get(`${key}/diod`) ?? 0,
      anchorName: 'diod',
      higherIsBetter: true,
    });
    printTable(
      `9P: our server vs diod (best of ${ROUNDS}; ${BIG_MIB} MiB file, ${FILES} small files, msize ${MSIZE})`,
      [
        row(`seq read ${BIG_MIB} MiB, diodcat`, 'diodcat sequential read MB/s', 'MB/s'),
        row(`seq read ${BIG_MIB} MiB, our client`, 'our client sequential read MB/s', 'MB/s'),
        row(`${FILES} small files, diodcat`, 'diodcat small files/s', 'files/s'),
        row(`${FILES} small files, our client`, 'our client small files/s', 'files/s'),
      ],
    );
  } finally {
    for (const s of servers) await s.daemon.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function makeData(dir: string): Promise<void> {
  const chunk = new Uint8Array(4 * 1024 * 1024);
  const file = await open(join(dir, 'big.bin'), 'w');
  try {
    for (let written = 0; written < BIG_MIB * 1024 * 1024; written += chunk.length) {
      randomFillSync(chunk);
      await file.write(chunk, 0, Math.min(chunk.length, BIG_MIB * 1024 * 1024 - written));
    }
  } finally {
    await file.close();
  }
  await mkdir(join(dir, 'small'));
  for (let i = 0; i < FILES; i++) await writeFile(join(dir, 'small', `f${i}.txt`), smallContent(i));
}

/** Connects our client to a server (attaching its export), runs `fn`, and returns the seconds `fn` took. */
async function withClient(s: Served, fn: (c: NinePClient) => Promise<void>): Promise<number> {
  const client = await NinePClient.connect(`tcp://${s.hostPort}`, { msize: MSIZE });
  try {
    await client.attach('root', s.aname, 0);
    const started = process.hrtime.bigint();
    await fn(client);
    return Number(process.hrtime.bigint() - started) / 1e9;
  } finally {
    client.close();
  }
}

/**
 * walk + open + read until a short read + clunk, one request in flight at a time (as diodcat does), with
 * the data dropped; fails unless it got `expectBytes`.
 */
async function readWhole(c: NinePClient, path: string, expectBytes?: number): Promise<void> {
  const fid = await c.walk(c.root!, path.split('/'));
  try {
    await c.open(fid, OpenFlags.O_RDONLY);
    const chunk = fid.iounit > 0 ? Math.min(fid.iounit, MSIZE - 24) : MSIZE - 24;
    let offset = 0;
    for (;;) {
      const data = await c.read(fid, offset, chunk);
      offset += data.length;
      if (data.length === 0) break;
    }
    if (expectBytes !== undefined && offset !== expectBytes) {
      throw new Error(`our client read ${offset} bytes of ${path}, expected ${expectBytes}`);
    }
  } finally {
    await c.clunk(fid);
  }
}

function smallContent(i: number): string {
  return `small file ${i}\n`;
}

async function bestOf(rounds: number, fn: () => Promise<number>): Promise<number> {
  let best = 0;
  for (let i = 0; i < rounds; i++) best = Math.max(best, await fn());
  return best;
}

/**
 * Runs diodcat with its output counted by `wc -c` (a C reader, so the pipe is not the bottleneck) and
 * returns seconds; fails when the byte count is not what the files hold, so a short read never looks fast.
 */
function timeDiodcat(args: string[], expectBytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('bash', ['-c', 'set -o pipefail; diodcat "$@" | wc -c', 'bash', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const bytes = Number(stdout.trim());
      if (code !== 0 || stderr.trim()) reject(new Error(`diodcat failed (${code}): ${stderr.trim()}`));
      else if (bytes !== expectBytes)
        reject(new Error(`diodcat read ${bytes} bytes, expected ${expectBytes}`));
      else resolve(seconds);
    });
  });
}

main().catch((err: unknown) => {
  console.error(`ninep bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
