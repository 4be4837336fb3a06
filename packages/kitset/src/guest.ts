import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KitsetError } from './errors.js';

/** The kernel and initramfs `kitset run` boots. */
export interface GuestImage {
  kernel: string;
  initrd: string;
}

export type Progress = (line: string) => void;

/** The monorepo root (the nearest ancestor with `.ci/` and `guest/`), found from this module. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, '.ci')) && existsSync(join(dir, 'guest'))) return dir;
    const parent = dirname(dir);
    if (parent === dir)
      throw new KitsetError(
        'ERR_KITSET_GUEST_BUILD',
        'cannot find the Kitset checkout (guest/ and .ci/) above this module; run kitset from the repository',
      );
    dir = parent;
  }
}

export function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kitset');
}

/** Runs a command, passing each stderr line to `progress`; resolves with its stdout. */
function runWithProgress(command: string, args: string[], progress: Progress): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let pending = '';
    const tail: string[] = [];
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        progress(line);
        tail.push(line);
        if (tail.length > 20) tail.shift();
      }
    });
    child.once('error', (err) =>
      reject(
        new KitsetError('ERR_KITSET_GUEST_BUILD', `cannot run ${command}: ${err.message}`, { cause: err }),
      ),
    );
    child.once('close', (code, signal) => {
      if (pending) progress(pending);
      if (code === 0) resolve(stdout);
      else
        reject(
          new KitsetError(
            'ERR_KITSET_GUEST_BUILD',
            `${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${tail.join('\n')}`,
          ),
        );
    });
  });
}

const INIT_SOURCE = 'packages/kitset/guest/init.c';
/** The libc-free runtime shared with guest/riscv-devtest's init. */
const NOLIBC_DIR = 'guest/common';
const GCC = 'riscv64-linux-gnu-gcc';
const GCC_FLAGS = [
  '-Os',
  '-static',
  '-nostdlib',
  '-ffreestanding',
  '-fno-builtin',
  '-fno-stack-protector',
  '-fno-pie',
  '-no-pie',
  '-fno-asynchronous-unwind-tables',
  '-fno-ident',
  '-Wall',
  '-Wextra',
  '-Werror',
  '-Wl,--build-id=none',
  '-Wl,--no-relax',
  '-Wl,-e,_start',
];

/** busybox for the guest, built by guest/riscv-busybox/build.sh (scripts/prepare.d/35-riscv-busybox.sh). */
export interface GuestBusybox {
  binary: string;
  /** `busybox.links`: one absolute applet path a line (`/bin/sh`, `/sbin/udhcpc`, `/usr/bin/wget`, ...). */
  links: string[];
}

/** The busybox guest/riscv-busybox/build.sh last built (its `current` result), or null when there is none. */
export function findBusybox(): GuestBusybox | null {
  const dir = join(cacheDir(), 'guest-riscv-busybox', 'current');
  const binary = join(dir, 'busybox');
  const linksFile = join(dir, 'busybox.links');
  if (!existsSync(binary) || !existsSync(linksFile)) return null;
  const links = readFileSync(linksFile, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /^\/[A-Za-z0-9_./[-]+$/.test(line) && !line.includes('..'));
  return { binary, links };
}

/**
 * busybox's udhcpc hands a lease to this script (`$1` = bound/renew/deconfig, details in the environment):
 * it configures the interface, the default route and /etc/resolv.conf with busybox's own `ip`.
 */
const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/\${mask:-24}" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    rm -f /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
    echo "udhcpc: $interface $ip/\${mask:-24} router $router dns $dns lease $lease" ;;
esac
exit 0
`;

const ETC_PASSWD = 'root:x:0:0:root:/root:/bin/sh\n';
const ETC_GROUP = 'root:x:0:\n';

/** initramfs entries (mkinitramfs list lines) for busybox, its applet links and the files its tools expect. */
function busyboxEntries(busybox: GuestBusybox): string[] {
  const dirs = new Set<string>([
    '/bin',
    '/sbin',
    '/usr',
    '/usr/bin',
    '/usr/sbin',
    '/etc',
    '/tmp',
    '/usr/share',
  ]);
  dirs.add('/usr/share/udhcpc');
  for (const link of busybox.links) if (dirname(link) !== '/') dirs.add(dirname(link));
  const lines = [...dirs].sort().map((dir) => `dir ${dir} 0755 0 0`);
  lines.push(`file /bin/busybox ${busybox.binary} 0755 0 0`);
  // /init stays kitset's own init.c; /linuxrc (busybox's init under another name) is left out.
  for (const link of busybox.links)
    if (!['/bin/busybox', '/init', '/linuxrc'].includes(link))
      lines.push(`slink ${link} /bin/busybox 0777 0 0`);
  lines.push('file /usr/share/udhcpc/default.script udhcpc.script 0755 0 0');
  // Names for uid/gid 0, so `ps`, `ls -l` and `id` say root.
  lines.push('file /etc/passwd passwd 0644 0 0', 'file /etc/group group 0644 0 0', 'dir /root 0700 0 0');
  // The kernel's DHCP client (ip=dhcp) writes its nameservers here in resolv.conf's format.
  lines.push('slink /etc/resolv.conf /proc/net/pnp 0777 0 0');
  return lines;
}

/**
 * Builds kitset's guest initramfs (`packages/kitset/guest/init.c` as /init) into
 * `<cache>/kitset-guest/<key>/initrd.cpio.gz`, keyed by a hash of its inputs; reused when present.
 */
export async function buildInitrd(
  progress: Progress = () => {},
  busybox: GuestBusybox | null = findBusybox(),
): Promise<string> {
  const root = repoRoot();
  const source = readFileSync(join(root, INIT_SOURCE));
  const mkinitramfs = join(root, 'guest/riscv/tools/mkinitramfs.mjs');
  const hash = createHash('sha256')
    .update(source)
    .update(readFileSync(join(root, NOLIBC_DIR, 'nolibc.h')))
    .update(readFileSync(mkinitramfs))
    .update(GCC_FLAGS.join(' '));
  if (busybox)
    hash
      .update(readFileSync(busybox.binary))
      .update(busybox.links.join('\n'))
      .update(UDHCPC_SCRIPT)
      .update(ETC_PASSWD)
      .update(ETC_GROUP);
  const key = hash.digest('hex').slice(0, 16);
  const base = join(cacheDir(), 'kitset-guest');
  const out = join(base, key);
  const initrd = join(out, 'initrd.cpio.gz');
  if (existsSync(initrd)) return initrd;
  progress(
    `[kitset] building the guest initramfs ${key}${busybox ? ' with busybox' : ' (no busybox: bash guest/riscv-busybox/build.sh)'}`,
  );
  mkdirSync(base, { recursive: true });
  const tmp = mkdtempSync(join(base, '.tmp-'));
  try {
    await runWithProgress(
      GCC,
      [...GCC_FLAGS, '-I', join(root, NOLIBC_DIR), '-o', join(tmp, 'init'), join(root, INIT_SOURCE)],
      progress,
    );
    if (busybox) {
      writeFileSync(join(tmp, 'udhcpc.script'), UDHCPC_SCRIPT);
      writeFileSync(join(tmp, 'passwd'), ETC_PASSWD);
      writeFileSync(join(tmp, 'group'), ETC_GROUP);
    }
    writeFileSync(
      join(tmp, 'initramfs.list'),
      [
        'dir /dev 0755 0 0',
        'nod /dev/console 0600 0 0 c 5 1',
        'dir /proc 0755 0 0',
        'dir /sys 0755 0 0',
        'dir /datakit 0755 0 0',
        'dir /share 0755 0 0',
        'file /init init 0755 0 0',
        ...(busybox ? busyboxEntries(busybox) : []),
        '',
      ].join('\n'),
    );
    await runWithProgress(
      process.execPath,
      [mkinitramfs, join(tmp, 'initramfs.list'), join(tmp, 'initrd.cpio.gz')],
      progress,
    );
    try {
      renameSync(tmp, out);
    } catch (err) {
      // Another kitset built the same key meanwhile: theirs is as good as ours.
      if (!existsSync(initrd)) throw err;
      rmSync(tmp, { recursive: true, force: true });
    }
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (err instanceof KitsetError && /ENOENT/.test(err.message))
      throw new KitsetError(
        'ERR_KITSET_GUEST_BUILD',
        `${GCC} not found: apt-get install gcc-riscv64-linux-gnu (or run bash scripts/install-deps.sh)`,
      );
    throw err;
  }
  return initrd;
}

/** Builds (or reuses) the riscv64 kernel with `guest/riscv/build.sh --print-dir`; returns the Image path. */
export async function buildKernel(progress: Progress = () => {}): Promise<string> {
  const root = repoRoot();
  const stdout = await runWithProgress('bash', [join(root, 'guest/riscv/build.sh'), '--print-dir'], progress);
  const dir = stdout.trim().split('\n').pop() ?? '';
  const kernel = join(dir, 'Image');
  if (!dir || !existsSync(kernel))
    throw new KitsetError(
      'ERR_KITSET_GUEST_BUILD',
      `guest/riscv/build.sh printed "${dir}" but ${kernel} is missing`,
    );
  return kernel;
}

/** The kernel and kitset's initramfs, built when missing (the kernel takes minutes the first time). */
export async function prepareGuest(progress: Progress = () => {}): Promise<GuestImage> {
  const kernel = await buildKernel(progress);
  const initrd = await buildInitrd(progress);
  return { kernel, initrd };
}
