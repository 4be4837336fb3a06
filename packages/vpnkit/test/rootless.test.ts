// Rootless `vpnkit run`, run as an unprivileged user (nobody, via setpriv): a user + network namespace,
// the TAP fd handed to vpnkit over SCM_RIGHTS, and curl inside reaching an HTTP server on host loopback.
// Needs root only to switch to that user (and, where /dev/net/tun is root-only, to make a usable copy).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tapAddonPath } from '../src/index.js';

const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];

function asNobody(command: string, args: string[]): boolean {
  try {
    execFileSync('setpriv', [...NOBODY, command, ...args], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * The TUN clone device nobody may open: /dev/net/tun on a stock system (mode 0666). Where a container made
 * it root-only, nobody gets its own node for the same device (in `dir`) rather than loosening the system one.
 */
function usableTunDevice(dir: string): string | null {
  if (asNobody('sh', ['-c', 'exec 3<>/dev/net/tun'])) return '/dev/net/tun';
  const own = join(dir, 'tun');
  try {
    execFileSync('mknod', ['-m', '0666', own, 'c', '10', '200'], { stdio: 'ignore' });
  } catch {
    return null;
  }
  return asNobody('sh', ['-c', `exec 3<>${own}`]) ? own : null;
}

let dir = '';
let tunDevice: string | null = null;

function skipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to switch to an unprivileged user (setpriv)';
  if (!existsSync(tapAddonPath())) return 'TAP addon not built (scripts/prepare.d/20-tap-addon.sh)';
  for (const tool of ['setpriv', 'unshare', 'curl', 'ip', 'mknod'])
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} not installed`;
    }
  if (!asNobody('unshare', ['--user', '--map-root-user', '--net', '--mount', 'true']))
    return 'this kernel forbids unprivileged user namespaces (unshare --user fails for nobody)';
  const cli = new URL('../src/cli.js', import.meta.url).pathname;
  const readable = `const fs=require('fs');for(const p of ${JSON.stringify([cli, tapAddonPath()])})fs.accessSync(p,fs.constants.R_OK)`;
  if (!asNobody(process.execPath, ['-e', readable]))
    return 'the checkout is not readable by nobody (e.g. under a 0700 home directory)';
  dir = mkdtempSync(join(tmpdir(), 'vpnkit-rootless-test-'));
  chmodSync(dir, 0o755);
  tunDevice = usableTunDevice(dir);
  if (tunDevice === null) return '/dev/net/tun is root-only here and a usable copy cannot be made (mknod)';
  return null;
}

const skip = skipReason();
// Whether skipped or not, the scratch directory goes when the file's tests are done.
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('vpnkit run as an unprivileged user', { skip: skip ?? false, timeout: 60_000 }, () => {
  const cli = new URL('../src/cli.js', import.meta.url).pathname;
  let server: http.Server;
  let port: number;
  const body = randomBytes(1 << 20);
  const digest = createHash('sha256').update(body).digest('hex');

  before(async () => {
    server = http.createServer((_req, res) => res.end(body));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });

  after(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  function runAsNobody(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn('setpriv', [...NOBODY, process.execPath, cli, 'run', ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, HOME: dir },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? 1, stdout, stderr });
      });
    });
  }

  it(
    'curl inside reaches host loopback through the host alias and its name',
    { timeout: 40_000 },
    async () => {
      const script = [
        'echo uid=$(id -u)',
        'ip -o -4 addr show dev tap0',
        `curl -sS -m 15 http://192.168.65.254:${port}/ | sha256sum`,
        `curl -sS -m 15 http://host.kitset.internal:${port}/ | sha256sum`,
      ].join('; ');
      const r = await runAsNobody(['--tun-device', tunDevice ?? '/dev/net/tun', '--', 'sh', '-c', script]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /uid=0\n/, 'root inside its own user namespace');
      assert.match(r.stdout, /192\.168\.65\.3\/24/);
      const sums = r.stdout.match(/^[0-9a-f]{64}/gm) ?? [];
      assert.deepEqual(sums, [digest, digest], r.stderr);
    },
  );

  it(
    'passes the exit status through, and says why when the TUN device is unusable',
    { timeout: 30_000 },
    async () => {
      const r = await runAsNobody(['--tun-device', tunDevice ?? '/dev/net/tun', '--', 'sh', '-c', 'exit 7']);
      assert.equal(r.code, 7, r.stderr);
      const bad = await runAsNobody(['--tun-device', join(dir, 'absent'), '--', 'true']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /rootless run: create TAP device .*absent/);
    },
  );
});
