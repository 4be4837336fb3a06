import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseArgs } from '../src/cli.js';
import { guestDir, repoRoot } from './harness.js';
import { NO_DEVTEST, devtestInitrd } from './virtio-harness.js';

const ready = guestDir() !== undefined && devtestInitrd() !== undefined;
const CLI = join(repoRoot(), 'packages/hyperkit/dist/src/cli.js');
const tmp = mkdtempSync(join(tmpdir(), 'hk-console-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Starts the hyperkit CLI with the device-test guest; `onStdout` sees stdout as it grows. */
function startCli(
  extra: string[],
  cmdline: string,
  onStdout: (text: string, stdin: NodeJS.WritableStream) => void,
) {
  const child = spawn(
    process.execPath,
    [CLI, '-m', '128M', ...extra, '-f', `kexec,${join(guestDir()!, 'Image')},${devtestInitrd()!},${cmdline}`],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString('latin1');
    onStdout(stdout, child.stdin);
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
  return { child, done };
}

test('-s virtio-console options: stdio, socket=PATH, and stdin for one console only', () => {
  const base = ['-f', 'kexec,Image,,console=ttyS0'];
  assert.equal(parseArgs(['-s', 'virtio-console,stdio', ...base]).deviceSpecs[0]?.console, 'stdio');
  assert.equal(
    parseArgs(['-s', 'virtio-console,socket=/tmp/c.sock', ...base]).deviceSpecs[0]?.console,
    'socket',
  );
  assert.equal(parseArgs(['-s', 'virtio-console', ...base]).deviceSpecs[0]?.console, 'output');
  assert.throws(
    () => parseArgs(['-l', 'com1,stdio', '-s', 'virtio-console,stdio', ...base]),
    /stdin can feed one console only/,
  );
  assert.throws(() => parseArgs(['-s', 'virtio-console,socket=', ...base]), /needs socket=PATH/);
  assert.throws(() => parseArgs(['-s', 'virtio-console,stdio,socket=/x', ...base]), /not both/);
  assert.throws(() => parseArgs(['-s', 'virtio-console,tty', ...base]), /unknown option "tty"/);
});

test('hyperkit --help prints the usage (with the console options) and exits 0', async () => {
  const child = spawn(process.execPath, [CLI, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const code = await new Promise<number | null>((r) => child.once('close', r));
  assert.equal(code, 0);
  assert.match(out, /^usage: hyperkit /);
  assert.match(out, /virtio-console\[,stdio\|,socket=PATH\]/);
});

test(
  '-s virtio-console,socket=PATH: a client reads the guest hvc and types a line back',
  { timeout: 90_000 },
  async (t) => {
    if (!ready) return t.skip(NO_DEVTEST);
    const path = join(tmp, 'console.sock');
    let connected = false;
    let fromGuest = '';
    const run = startCli(
      ['-l', 'com1,stdio', '-s', `virtio-console,socket=${path}`],
      'console=ttyS0 quiet kitset.test=console:hvc1',
      (stdout) => {
        if (connected || !stdout.includes('KT console ready')) return;
        connected = true;
        const client = connect(path);
        client.on('data', (d: Buffer) => {
          fromGuest += d.toString('latin1');
          if (fromGuest.includes('KT-HVC-HELLO')) client.end('typed on the socket\n');
        });
        client.on('error', () => {});
      },
    );
    const r = await run.done;
    const why = `stdout:\n${r.stdout.slice(-2000)}\nstderr:\n${r.stderr}`;
    assert.equal(r.code, 0, why);
    assert.match(fromGuest, /KT-HVC-HELLO/, 'the output written before the client came was kept for it');
    assert.match(r.stdout, /^KT console ok got typed on the socket\r?$/m, why);
    assert.ok(!existsSync(path), 'the socket is removed on exit');
  },
);

test(
  '-s virtio-console,stdio: the guest console on hvc, stdin typed into it',
  { timeout: 90_000 },
  async (t) => {
    if (!ready) return t.skip(NO_DEVTEST);
    let typed = false;
    // The kernel's console and init's output are on the virtio console itself (console=hvc1).
    const run = startCli(
      ['-s', 'virtio-console,stdio'],
      'console=hvc1 quiet kitset.test=console:hvc1',
      (stdout, stdin) => {
        if (typed || !stdout.includes('KT-HVC-HELLO')) return;
        typed = true;
        stdin.write('typed on stdin\n');
      },
    );
    const r = await run.done;
    const why = `stdout:\n${r.stdout.slice(-2000)}\nstderr:\n${r.stderr}`;
    assert.equal(r.code, 0, why);
    assert.match(r.stdout, /^KT console ok got typed on stdin\r?$/m, why);
  },
);
