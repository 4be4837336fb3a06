import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestkitError } from './errors.js';
import { hasCommand } from './process.js';

/** What guest/x86/build.sh records about the images it made. */
export interface GuestManifest {
  key: string;
  kernelPackage: string;
  kernelVersion: string;
  kernelRelease: string;
  busyboxVersion: string;
  modules: string[];
}

export type GuestImages =
  | { ready: true; dir: string; kernel: string; initrd: string; manifest: GuestManifest }
  | { ready: false; reason: string };

const QEMU = 'qemu-system-x86_64';

/** Where the x86 guest lives: $KITSET_GUEST_X86_DIR, else the build script's `current` in the cache. */
export function x86GuestDir(): string {
  const override = process.env.KITSET_GUEST_X86_DIR;
  if (override) return override;
  const cache = process.env.XDG_CACHE_HOME || join(process.env.HOME ?? tmpdir(), '.cache');
  return join(cache, 'kitset', 'guest-x86', 'current');
}

/**
 * Whether the x86 guest can boot here. When not, `reason` says what to run, for `test(..., { skip })`.
 */
export function guestImagesReady(): GuestImages {
  if (!hasCommand(QEMU))
    return { ready: false, reason: `${QEMU} not installed (run scripts/install-deps.sh)` };
  const dir = x86GuestDir();
  const kernel = join(dir, 'vmlinuz');
  const initrd = join(dir, 'initramfs.cpio.gz');
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(kernel) || !existsSync(initrd) || !existsSync(manifestPath)) {
    return {
      ready: false,
      reason: `x86 guest images missing in ${dir} (run scripts/prepare.d/10-x86-guest.sh)`,
    };
  }
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as GuestManifest;
  return { ready: true, dir, kernel, initrd, manifest };
}

export interface X86GuestOptions {
  /** Shell script (busybox sh) run as root in /root; its exit status becomes `exitCode`. */
  script: string;
  /** Whole run, boot included; QEMU is killed at the deadline and the promise rejects (GUEST_TIMEOUT). */
  timeoutMs: number;
  /**
   * QEMU arguments defining the guest's network backend with id `net0`; default `-netdev user,id=net0`
   * (QEMU's user network: the guest is 10.0.2.15 and reaches the host's 127.0.0.1 as 10.0.2.2).
   * VPNKit's tests pass e.g. `['-netdev', 'stream,id=net0,addr.type=unix,addr.path=/tmp/vpnkit.sock']`.
   */
  netdev?: string[];
  /** QEMU NIC model attached to net0 (default virtio-net-pci; e1000 also works). */
  nic?: string;
  /** How the guest configures its interface (default static 10.0.2.15/24 via 10.0.2.2). */
  network?: 'static' | 'dhcp' | 'none';
  memoryMiB?: number;
  /** Extra files, visible in the guest as /kitset/NAME (QEMU fw_cfg; keep to a few MiB). */
  files?: Record<string, string | Uint8Array>;
  /** Extra kernel command-line words (e.g. `kitset.ip=10.0.2.20/24`). */
  kernelArgs?: string[];
  /** Anything else for QEMU (extra devices, a second NIC). */
  qemuArgs?: string[];
  /** Each console line as it arrives (for progress or to react while the guest runs). */
  onLine?: (line: string) => void;
  signal?: AbortSignal;
}

export interface X86GuestResult {
  /** The script's exit status, from the KITSET-SCRIPT-EXIT marker. */
  exitCode: number;
  /** The whole serial console (kernel messages, init, script), with \n line ends. */
  console: string;
  /** Only what the script printed (between the BEGIN and EXIT markers). */
  output: string;
  durationMs: number;
}

const BEGIN = 'KITSET-SCRIPT-BEGIN';
const EXIT_RE = /^KITSET-SCRIPT-EXIT=(\d+)$/;
const CONSOLE_LIMIT = 8 * 1024 * 1024;
/** After the exit marker the guest powers off at once; this only catches a guest that hangs doing so. */
const POWEROFF_GRACE_MS = 5000;

/** Boots the cached x86 guest under QEMU (TCG), runs `script`, and returns its status and the console. */
export async function runX86Guest(options: X86GuestOptions): Promise<X86GuestResult> {
  const images = guestImagesReady();
  if (!images.ready) throw new TestkitError('GUEST_IMAGES_MISSING', images.reason);
  if (!(options.timeoutMs > 0)) throw new TestkitError('BAD_ARGUMENT', 'runX86Guest: timeoutMs must be > 0');
  const work = await mkdtemp(join(tmpdir(), 'kitset-guest-'));
  try {
    const scriptPath = join(work, 'script.sh');
    await writeFile(scriptPath, options.script);
    const fwCfg = ['-fw_cfg', `name=opt/kitset/script,file=${scriptPath}`];
    for (const [name, content] of Object.entries(options.files ?? {})) {
      if (!/^[A-Za-z0-9._-]{1,40}$/.test(name)) {
        throw new TestkitError(
          'BAD_ARGUMENT',
          `runX86Guest: file name ${JSON.stringify(name)} is not a plain name`,
        );
      }
      const path = join(work, `file-${name}`);
      await writeFile(path, content);
      fwCfg.push('-fw_cfg', `name=opt/kitset/files/${name},file=${path}`);
    }
    const kernelArgs = [
      'console=ttyS0',
      'quiet',
      'panic=-1',
      // TCG boots faster without these probes, and the guest needs none of them.
      'mitigations=off',
      'tsc=reliable',
      `kitset.net=${options.network ?? 'static'}`,
      ...(options.kernelArgs ?? []),
    ];
    const accel = process.env.KITSET_QEMU_ACCEL || 'tcg';
    const args = [
      '-nodefaults',
      '-no-user-config',
      '-machine',
      `pc,accel=${accel}`,
      '-m',
      String(options.memoryMiB ?? 256),
      '-smp',
      '1',
      '-display',
      'none',
      '-monitor',
      'none',
      '-serial',
      'stdio',
      '-no-reboot',
      '-kernel',
      images.kernel,
      '-initrd',
      images.initrd,
      '-append',
      kernelArgs.join(' '),
      ...(options.netdev ?? ['-netdev', 'user,id=net0']),
      '-device',
      `${options.nic ?? 'virtio-net-pci'},netdev=net0`,
      ...fwCfg,
      ...(options.qemuArgs ?? []),
    ];
    return await bootAndWatch(args, options);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function bootAndWatch(args: string[], options: X86GuestOptions): Promise<X86GuestResult> {
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    const qemu = spawn(QEMU, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let consoleSize = 0;
    let partial = '';
    let stderr = '';
    let beginLine = -1;
    let exitCode: number | undefined;
    let exitLine = -1;
    let failure: TestkitError | undefined;
    let settled = false;

    const consoleText = () => lines.join('\n') + (partial ? `\n${partial}` : '');
    const fail = (code: 'GUEST_TIMEOUT' | 'GUEST_ABORTED', message: string) => {
      if (failure || exitCode !== undefined) return;
      failure = new TestkitError(code, message, consoleText());
      qemu.kill('SIGKILL');
    };
    const deadline = setTimeout(
      () => fail('GUEST_TIMEOUT', `x86 guest: no exit status within ${options.timeoutMs} ms; QEMU killed`),
      options.timeoutMs,
    );
    let poweroffTimer: NodeJS.Timeout | undefined;
    const onAbort = () => fail('GUEST_ABORTED', 'x86 guest: aborted; QEMU killed');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) onAbort();

    const onLine = (raw: string) => {
      const line = raw.replace(/\r+$/, '').replace(/^\r+/, '');
      if (consoleSize < CONSOLE_LIMIT) {
        lines.push(line);
        consoleSize += line.length + 1;
      }
      options.onLine?.(line);
      if (line === BEGIN && beginLine < 0) beginLine = lines.length - 1;
      const m = EXIT_RE.exec(line);
      if (m && exitCode === undefined && beginLine >= 0) {
        exitCode = Number(m[1]);
        exitLine = lines.length - 1;
        poweroffTimer = setTimeout(() => qemu.kill('SIGKILL'), POWEROFF_GRACE_MS);
      }
    };
    qemu.stdout.setEncoding('utf8');
    qemu.stdout.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const p of parts) onLine(p);
      // A line with no end in sight is still bounded: flush it as a line.
      if (partial.length > 64 * 1024) {
        onLine(partial);
        partial = '';
      }
    });
    qemu.stderr.setEncoding('utf8');
    qemu.stderr.on('data', (chunk: string) => {
      if (stderr.length < 64 * 1024) stderr += chunk;
    });
    const finish = (err?: Error, result?: X86GuestResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      if (poweroffTimer) clearTimeout(poweroffTimer);
      options.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else if (result) resolvePromise(result);
    };
    qemu.once('error', (err) =>
      finish(new TestkitError('QEMU_FAILED', `x86 guest: cannot start ${QEMU}: ${err.message}`)),
    );
    qemu.once('close', (code, signal) => {
      if (partial) {
        onLine(partial);
        partial = '';
      }
      if (failure) return finish(failure);
      if (exitCode === undefined) {
        const why = stderr.trim() ? `; QEMU said: ${stderr.trim()}` : '';
        return finish(
          new TestkitError(
            stderr.trim() && beginLine < 0 ? 'QEMU_FAILED' : 'GUEST_NO_STATUS',
            `x86 guest: QEMU ended (${signal ?? code}) without a script exit status${why}`,
            consoleText(),
          ),
        );
      }
      finish(undefined, {
        exitCode,
        console: consoleText(),
        output: lines.slice(beginLine + 1, exitLine).join('\n'),
        durationMs: Date.now() - started,
      });
    });
  });
}
