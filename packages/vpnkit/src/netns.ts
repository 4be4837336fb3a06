import { type ChildProcess, type SpawnOptions, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { type Logger, VpnkitError, consoleLogger } from './errors.js';
import type { Link } from './link/link.js';
import { PcapLink } from './link/pcap.js';
import { TapLink } from './link/tap.js';
import { type VpnkitConfig, defaultConfig } from './services/config.js';
import { Vpnkit } from './services/vpnkit.js';
import { formatIpv4 } from './wire/address.js';

const execFileAsync = promisify(execFile);

async function ip(args: string[]): Promise<void> {
  try {
    await execFileAsync('ip', args);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new VpnkitError(
      'ERR_VPNKIT_NETNS',
      `ip ${args.join(' ')} failed: ${stderr || (err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

export interface GuestNamespaceOptions {
  /** Namespace name (default: a fresh random one). */
  name?: string;
  config?: Partial<VpnkitConfig>;
  /** 'static' assigns the first DHCP address and a default route; 'dhcp' leaves it to the caller; 'none' = link up only. */
  configure?: 'static' | 'dhcp' | 'none';
  pcap?: string;
  /** Use TAP checksum/TSO offloads (default: yes, unless pcap or wrapLink is given). */
  offloads?: boolean;
  /** Wraps the TAP link (e.g. a FaultLink) before the stack sees it. */
  wrapLink?: (link: Link) => Link;
  log?: Logger;
}

/**
 * A network namespace whose only interface (besides lo) is a TAP device served by our stack: what
 * `vpnkit run` and the tests use. Needs CAP_SYS_ADMIN and CAP_NET_ADMIN (root, for now).
 */
export class GuestNamespace {
  private closed = false;

  private constructor(
    readonly name: string,
    readonly vpnkit: Vpnkit,
    readonly tap: TapLink,
    readonly address: string,
    readonly config: VpnkitConfig,
  ) {}

  static async create(options: GuestNamespaceOptions = {}): Promise<GuestNamespace> {
    const name = options.name ?? `vpnkit-${process.pid}-${randomBytes(3).toString('hex')}`;
    const config = { ...defaultConfig(), ...options.config };
    const log = options.log ?? consoleLogger;
    await ip(['netns', 'add', name]);
    let tap: TapLink | undefined;
    try {
      // Offloads (virtio-net headers: checksums and TSO) unless a wrapper must see wire-exact frames.
      const vnetHdr = options.offloads ?? (!options.pcap && !options.wrapLink);
      tap = TapLink.open('tap0', { netnsPath: `/run/netns/${name}`, mtu: config.mtu, vnetHdr });
      let link: Link = tap;
      if (options.pcap) link = new PcapLink(link, options.pcap);
      if (options.wrapLink) link = options.wrapLink(link);
      const vpnkit = new Vpnkit(link, config, log);
      await vpnkit.start();
      const address = formatIpv4(config.dhcpFirst);
      await ip(['-n', name, 'link', 'set', 'lo', 'up']);
      await ip(['-n', name, 'link', 'set', 'tap0', 'mtu', String(config.mtu), 'up']);
      // `ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf.
      mkdirSync(`/etc/netns/${name}`, { recursive: true });
      writeFileSync(
        `/etc/netns/${name}/resolv.conf`,
        `nameserver ${formatIpv4(config.gateway)}\nsearch ${config.searchDomains.join(' ')}\n`,
      );
      if ((options.configure ?? 'static') === 'static') {
        await ip(['-n', name, 'addr', 'add', `${address}/${config.prefixLength}`, 'dev', 'tap0']);
        await ip(['-n', name, 'route', 'add', 'default', 'via', formatIpv4(config.gateway)]);
      }
      return new GuestNamespace(name, vpnkit, tap, address, config);
    } catch (err) {
      tap?.close();
      await ip(['netns', 'del', name]).catch(() => {});
      rmSync(`/etc/netns/${name}`, { recursive: true, force: true });
      throw err;
    }
  }

  /** Spawns `argv` inside the namespace. */
  spawn(argv: string[], options: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.name, ...argv], options);
  }

  /** Runs `argv` inside the namespace and collects its output (bounded by `timeoutMs`). */
  exec(argv: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = this.spawn(argv, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (d: Buffer) => {
        if (stdout.length < 1 << 20) stdout += d.toString();
      });
      child.stderr?.on('data', (d: Buffer) => {
        if (stderr.length < 1 << 20) stderr += d.toString();
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
      });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.vpnkit.close();
    await ip(['netns', 'del', this.name]).catch(() => {});
    rmSync(`/etc/netns/${this.name}`, { recursive: true, force: true });
  }
}
