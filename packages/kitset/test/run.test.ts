import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type Daemon, findRepoRoot, hasCommand, runCommand, startDaemon } from '@kitset/testkit';
import { findBusybox } from '../src/guest.js';

const CLI = join(findRepoRoot(), 'packages/kitset/dist/src/cli.js');
const VPNKIT_CLI = join(findRepoRoot(), 'packages/vpnkit/dist/src/cli.js');

function skipReason(): string | undefined {
  const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kitset', 'guest-riscv');
  if (!existsSync(join(cache, 'current', 'Image')))
    return 'riscv64 guest kernel not built: run bash guest/riscv/build.sh (scripts/prepare.d does in CI)';
  if (!hasCommand('riscv64-linux-gnu-gcc'))
    return 'riscv64-linux-gnu-gcc missing (apt-get install gcc-riscv64-linux-gnu)';
  return undefined;
}

test(
  'kitset run -- COMMANDS boots, runs them in the guest and exits with their failure count',
  { timeout: 120_000 },
  async (t) => {
    const reason = skipReason();
    if (reason) return t.skip(reason);
    const ok = await runCommand(
      process.execPath,
      [CLI, 'run', '--memory', '64M', '--', 'ls /proc/self; cat /proc/version'],
      {
        timeoutMs: 60_000,
      },
    );
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    assert.match(ok.stdout, /KS ls ok \/proc\/self/);
    assert.match(ok.stdout, /Linux version 6\.1\.\d+/);
    assert.match(ok.stdout, /KS exit 0/);
    const bad = await runCommand(
      process.execPath,
      [CLI, 'run', '--memory', '64M', '--', 'cat /nonexistent; frobnicate'],
      {
        timeoutMs: 60_000,
      },
    );
    assert.equal(bad.code, 2, bad.stderr + bad.stdout);
    assert.match(bad.stdout, /KS cat FAIL \/nonexistent errno 2/);
    assert.match(bad.stdout, /KS frobnicate FAIL unknown command/);
  },
);

/**
 * Starts `kitset run ARGS` and resolves once its stdout satisfies `ready` (called with the stdout so far
 * and the child's stdin on every chunk), or rejects after 60 s. The caller kills the child.
 */
async function startKitset(
  args: string[],
  ready: (stdout: string, stdin: NodeJS.WritableStream) => boolean,
): Promise<{ child: ChildProcess; stderr: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [CLI, 'run', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the guest never got there:\n${err}\n${out}`)), 60_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (ready(out, child.stdin!)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return { child, stderr: () => err, exited };
}

/** The state directory the CLI names ("DataKit at unix:///tmp/kitset-state-.../datakit.sock"). */
function stateDirOf(stderr: string): string {
  return /DataKit at unix:\/\/(\S+)\/datakit\.sock/.exec(stderr)?.[1] ?? '';
}

test(
  'SIGTERM stops the VM, VPNKit and DataKit and removes the temporary state',
  { timeout: 120_000 },
  async (t) => {
    const reason = skipReason();
    if (reason) return t.skip(reason);
    const { child, stderr, exited } = await startKitset(['--memory', '64M', '--', 'sleep 600000'], (out) =>
      out.includes('KS up'),
    );
    try {
      const err = stderr();
      const stateDir = stateDirOf(err);
      assert.ok(stateDir.includes('kitset-state-') && existsSync(stateDir), `no state directory in:\n${err}`);
      const t0 = performance.now();
      child.kill('SIGTERM');
      const code = await exited;
      const ms = performance.now() - t0;
      assert.equal(code, 1, stderr()); // the guest did not finish its commands
      assert.match(stderr(), /SIGTERM: stopping the VM, VPNKit and DataKit/);
      assert.ok(ms < 10_000, `teardown took ${ms} ms`);
      assert.ok(!existsSync(stateDir), `state directory ${stateDir} left behind`);
      t.diagnostic(`teardown ${ms.toFixed(0)} ms`);
    } finally {
      child.kill('SIGKILL');
    }
  },
);

/** Why the busybox console tests cannot run, or undefined. */
function busyboxSkipReason(): string | undefined {
  return (
    skipReason() ??
    (findBusybox()
      ? undefined
      : 'riscv64 busybox not built: run bash guest/riscv-busybox/build.sh (scripts/prepare.d does in CI)')
  );
}

test(
  'kitset run with no command: busybox sh on stdin/stdout, with --share; `exit` ends the run',
  { timeout: 120_000 },
  async (t) => {
    const reason = busyboxSkipReason();
    if (reason) return t.skip(reason);
    const share = mkdtempSync(join(tmpdir(), 'kitset-share-'));
    try {
      writeFileSync(join(share, 'hello.txt'), 'hello from the host\n');
      const session = await runCommand(process.execPath, [CLI, 'run', '--memory', '64M', '--share', share], {
        timeoutMs: 60_000,
        input: 'cat /share/hello.txt\necho typed at the prompt > /share/out.txt\necho $((6*7))\nexit\n',
      });
      assert.equal(session.code, 0, session.stderr + session.stdout);
      assert.match(session.stderr, /console attached; exit or Ctrl-\] quits/);
      assert.match(session.stdout, /kitset:\/# /);
      assert.match(session.stdout, /^hello from the host\r?$/m);
      assert.match(session.stdout, /^42\r?$/m);
      assert.match(session.stdout, /KS exit 0/);
      assert.equal(readFileSync(join(share, 'out.txt'), 'utf8'), 'typed at the prompt\n');
    } finally {
      rmSync(share, { recursive: true, force: true });
    }
  },
);

test(
  'Ctrl-] on stdin quits the console session and tears everything down',
  { timeout: 120_000 },
  async (t) => {
    const reason = busyboxSkipReason();
    if (reason) return t.skip(reason);
    let typed = false;
    const { child, stderr, exited } = await startKitset(['--memory', '64M'], (out, stdin) => {
      if (!typed && out.endsWith('kitset:/# ')) {
        typed = true;
        stdin.write('echo $((6*7))\n');
      }
      return /^42\r?$/m.test(out);
    });
    try {
      const stateDir = stateDirOf(stderr());
      assert.ok(stateDir.includes('kitset-state-'), `no state directory in:\n${stderr()}`);
      const t0 = performance.now();
      child.stdin!.write('\x1d');
      const code = await exited;
      const ms = performance.now() - t0;
      assert.equal(code, 0, stderr());
      assert.ok(ms < 10_000, `teardown took ${ms} ms`);
      assert.ok(!existsSync(stateDir), `state directory ${stateDir} left behind`);
      t.diagnostic(`Ctrl-] to exit: ${ms.toFixed(0)} ms`);
    } finally {
      child.kill('SIGKILL');
    }
  },
);

function fnv1a(data: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data[i]!, 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

test(
  '--disk: the guest reads a raw image through virtio-blk as /dev/vda',
  { timeout: 120_000 },
  async (t) => {
    const reason = skipReason();
    if (reason) return t.skip(reason);
    const dir = mkdtempSync(join(tmpdir(), 'kitset-disk-'));
    try {
      const image = randomBytes(2 * 1024 * 1024);
      writeFileSync(join(dir, 'disk.img'), image);
      const run = await runCommand(
        process.execPath,
        [CLI, 'run', '--memory', '64M', '--disk', join(dir, 'disk.img'), '--', 'read /dev/vda'],
        { timeoutMs: 60_000 },
      );
      assert.equal(run.code, 0, run.stderr + run.stdout);
      assert.match(run.stdout, new RegExp(`KS read ok bytes ${image.length} fnv ${fnv1a(image)} ms \\d+`));
      const missing = await runCommand(
        process.execPath,
        [CLI, 'run', '--disk', join(dir, 'nope.img'), '--', 'read /dev/vda'],
        { timeoutMs: 60_000 },
      );
      assert.equal(missing.code, 2, missing.stderr);
      assert.match(missing.stderr, /kitset: --disk .*nope\.img: /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  '--vpnkit: virtio-net through a VPNKit on a Unix socket (hyperkit protocol), the same link interface',
  { timeout: 120_000 },
  async (t) => {
    const reason = skipReason();
    if (reason) return t.skip(reason);
    const dir = mkdtempSync(join(tmpdir(), 'kitset-vmnet-'));
    const payload = randomBytes(256 * 1024);
    const server = http.createServer((_req, res) => res.end(payload));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    // The guest's TSO frames, cut into MTU-sized ones by virtio-net (this link takes no offloads).
    let uploaded = 0;
    const sink = net.createServer((socket) => {
      socket.on('data', (d: Buffer) => {
        uploaded += d.length;
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    const sinkPort = (sink.address() as AddressInfo).port;
    let vpnkit: Daemon | undefined;
    try {
      const socket = join(dir, 'vpnkit.sock');
      vpnkit = await startDaemon(process.execPath, [VPNKIT_CLI, '--listen-vmnet', socket], {
        readyPattern: /listening for hyperkit/,
        readyTimeoutMs: 20_000,
      });
      const run = await runCommand(
        process.execPath,
        [
          CLI,
          'run',
          '--memory',
          '64M',
          '--vpnkit',
          socket,
          '--',
          `net; get 192.168.65.254:${port}/; send 192.168.65.254:${sinkPort} 2`,
        ],
        { timeoutMs: 60_000 },
      );
      assert.equal(run.code, 0, run.stderr + run.stdout);
      assert.match(run.stderr, /on the VPNKit at .*vpnkit\.sock/);
      assert.match(run.stdout, /KS net ok addr 192\.168\.65\.\d+ nameserver 192\.168\.65\.1/);
      assert.match(run.stdout, new RegExp(`KS get ok bytes ${payload.length} fnv ${fnv1a(payload)} `));
      assert.match(run.stdout, /KS send ok bytes 2097152 /);
      assert.equal(uploaded, 2 * 1024 * 1024);
      const published = await runCommand(
        process.execPath,
        [CLI, 'run', '--vpnkit', socket, '--publish', '8080:80', '--', 'net'],
        { timeoutMs: 60_000 },
      );
      assert.equal(published.code, 2);
      assert.match(published.stderr, /--publish needs the in-process VPNKit/);
    } finally {
      await vpnkit?.stop();
      sink.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  '--state keeps the DataKit store between runs (git sees the guest commits)',
  { timeout: 120_000 },
  async (t) => {
    const reason = skipReason();
    if (reason) return t.skip(reason);
    const state = mkdtempSync(join(tmpdir(), 'kitset-persist-'));
    const tx = '/datakit/branch/master/transactions/t';
    try {
      const first = await runCommand(
        process.execPath,
        [
          CLI,
          'run',
          '--memory',
          '64M',
          '--state',
          state,
          '--',
          `mkdir /datakit/branch/master; mkdir ${tx}; write ${tx}/rw/kept first run; write ${tx}/ctl commit`,
        ],
        { timeoutMs: 60_000 },
      );
      assert.equal(first.code, 0, first.stderr + first.stdout);
      const second = await runCommand(
        process.execPath,
        [CLI, 'run', '--memory', '64M', '--state', state, '--', 'cat /datakit/branch/master/ro/kept'],
        { timeoutMs: 60_000 },
      );
      assert.equal(second.code, 0, second.stderr + second.stdout);
      assert.match(second.stdout, /first run\r?\nKS cat ok \/datakit\/branch\/master\/ro\/kept bytes 10/);
      const log = await runCommand(
        'git',
        ['--git-dir', join(state, 'datakit', '.git'), 'log', '--oneline', 'master'],
        {
          timeoutMs: 10_000,
        },
      );
      assert.equal(log.code, 0, log.stderr);
      assert.equal(log.stdout.trim().split('\n').length, 1);
      assert.ok(existsSync(join(state, 'vsock')), 'the state directory is kept');
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  },
);
