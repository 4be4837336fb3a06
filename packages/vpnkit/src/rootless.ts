import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Logger, VpnkitError, consoleLogger } from './errors.js';
import type { Link } from './link/link.js';
import { PcapLink } from './link/pcap.js';
import { TapLink, loadTapAddon } from './link/tap.js';
import type { RootlessChildSpec } from './rootless-child.js';
import { type VpnkitConfig, defaultConfig } from './services/config.js';
import { Vpnkit } from './services/vpnkit.js';
import { formatIpv4 } from './wire/address.js';

export interface RootlessRunOptions {
  config?: Partial<VpnkitConfig>;
  /** 'static' (default) assigns the first DHCP address and a default route; 'dhcp' leaves it to the command. */
  configure?: 'static' | 'dhcp';
  /** The TUN clone device to open inside the namespace (default /dev/net/tun). */
  tunDevice?: string;
  pcap?: string;
  offloads?: boolean;
  wrapLink?: (link: Link) => Link;
  /** stdio of the command (default: inherit). */
  stdio?: 'inherit' | 'pipe';
  log?: Logger;
  /** How long to wait for the namespace to hand over its TAP device. */
  timeoutMs?: number;
}

/**
 * `vpnkit run` without privileges, the way slirp4netns and pasta do it: the command runs in a new user +
 * network (+ mount) namespace, made by `unshare --map-root-user`, where it may create a TAP device; the
 * namespace's first process passes the TAP fd back to us over a Unix socket (SCM_RIGHTS) and we serve it
 * from the host's network namespace, so the guest's flows leave as our ordinary sockets.
 */
export class RootlessRun {
  private closed = false;

  private constructor(
    readonly vpnkit: Vpnkit,
    readonly child: ChildProcess,
    /** The command's exit status (128 if killed by a signal). */
    readonly exited: Promise<number>,
    private readonly scratch: string,
  ) {}

  static async start(command: string[], options: RootlessRunOptions = {}): Promise<RootlessRun> {
    const config = { ...defaultConfig(), ...options.config };
    const log = options.log ?? consoleLogger;
    const addon = loadTapAddon();
    const vnetHdr = options.offloads ?? (!options.pcap && !options.wrapLink);
    const scratch = mkdtempSync(join(tmpdir(), 'vpnkit-rootless-'));
    const resolvConf = join(scratch, 'resolv.conf');
    writeFileSync(
      resolvConf,
      `nameserver ${formatIpv4(config.gateway)}\nsearch ${config.searchDomains.join(' ')}\n`,
    );
    const spec: RootlessChildSpec = {
      tunDevice: options.tunDevice ?? '/dev/net/tun',
      vnetHdr,
      mtu: config.mtu,
      address:
        (options.configure ?? 'static') === 'static'
          ? `${formatIpv4(config.dhcpFirst)}/${config.prefixLength}`
          : null,
      gateway: formatIpv4(config.gateway),
      resolvConf,
    };
    const [ours, theirs] = addon.socketPair();
    const childScript = new URL('./rootless-child.js', import.meta.url).pathname;
    const stdio = options.stdio ?? 'inherit';
    let child: ChildProcess;
    try {
      child = spawn(
        'unshare',
        [
          '--user',
          '--map-root-user',
          '--net',
          '--mount',
          '--',
          process.execPath,
          childScript,
          JSON.stringify(spec),
          ...command,
        ],
        { stdio: [stdio, stdio, stdio, theirs] },
      );
    } finally {
      addon.close(theirs);
    }
    const exited = new Promise<number>((resolve) => {
      child.on('error', () => resolve(127));
      child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
    let tapFd: number;
    try {
      tapFd = await receiveFd(ours, options.timeoutMs ?? 15_000, exited);
    } catch (err) {
      child.kill('SIGKILL');
      rmSync(scratch, { recursive: true, force: true });
      throw err;
    } finally {
      addon.close(ours);
    }
    let link: Link = TapLink.fromFd(tapFd, 'tap0', { mtu: config.mtu, vnetHdr });
    if (options.pcap) link = new PcapLink(link, options.pcap);
    if (options.wrapLink) link = options.wrapLink(link);
    const vpnkit = new Vpnkit(link, config, log);
    const run = new RootlessRun(vpnkit, child, exited, scratch);
    try {
      await vpnkit.start();
    } catch (err) {
      child.kill('SIGKILL');
      run.close();
      throw err;
    }
    void exited.then(() => run.close());
    return run;
  }

  /** Stops serving (the command loses its network) and removes scratch files. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.vpnkit.close();
    rmSync(this.scratch, { recursive: true, force: true });
  }
}

/** Waits for the namespace's first process to send the TAP fd (or to exit without doing so). */
function receiveFd(socket: number, timeoutMs: number, exited: Promise<number>): Promise<number> {
  const addon = loadTapAddon();
  return new Promise<number>((resolve, reject) => {
    let watcher: unknown = null;
    let done = false;
    const finish = (fd: number | null, error?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (watcher) addon.unwatch(watcher);
      if (fd !== null) resolve(fd);
      else reject(error);
    };
    const failed = (why: string) =>
      finish(
        null,
        new VpnkitError(
          'ERR_VPNKIT_NETNS',
          `rootless run: ${why} (needs unprivileged user namespaces, util-linux unshare and a usable TUN device)`,
        ),
      );
    const timer = setTimeout(
      () => failed('the namespace did not hand over its TAP device in time'),
      timeoutMs,
    );
    watcher = addon.watch(socket, () => {
      try {
        const fd = addon.recvFd(socket);
        if (fd >= 0) finish(fd);
        else if (fd === -2) failed('the namespace closed without a TAP device');
      } catch (err) {
        failed((err as Error).message);
      }
    });
    void exited.then((code) => failed(`the namespace setup exited with status ${code}`));
  });
}
