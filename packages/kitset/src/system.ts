import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { type Socket, createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { PassThrough, Writable } from 'node:stream';
import { DataKitServer, vfsBackend } from '@kitset/datakit';
import { type EthernetLink, type VM, type VmExit, createVM } from '@kitset/hyperkit';
import {
  type Logger,
  type PortForward,
  Vpnkit,
  type VpnkitConfig,
  formatIpv4,
  formatMac,
  macForUuid,
  parseIpv4,
  readMac,
  writeMac,
} from '@kitset/vpnkit';
import {
  type DeviceHandles,
  PIPE_OFFLOADS,
  connectVpnkitSocket,
  createDevices,
  ethernetLink,
} from './devices.js';
import { KitsetError } from './errors.js';
import { framePipe } from './link.js';

export interface SystemOptions {
  /** The guest kernel (riscv64 Image) and initramfs; see `prepareGuest()`. */
  kernel: string;
  initrd: string;
  /** Guest RAM, e.g. "256M" (default). */
  memory?: number | string;
  /** A host directory the guest mounts over virtio-9p with tag `share`. */
  share?: string;
  /** Host ports forwarded to the guest: `HOSTPORT:GUESTPORT`, `HOSTADDR:HOSTPORT:GUESTPORT`, `.../udp`. */
  publish?: string[];
  /** A raw or qcow2 disk image for virtio-blk (`/dev/vda` in the guest). */
  disk?: string;
  /**
   * Commands for kitset's guest init (`kitset.run=` on the kernel command line), e.g.
   * `['net', 'get 192.168.65.254:8080/']`; without them the console is an interactive busybox shell (a
   * `kitset#` prompt for init's own commands when the initramfs has no busybox), and `exit` powers off.
   */
  guestCommand?: string[];
  /** The terminal the console is shown on (rows, columns), so the guest shell's line editing wraps there. */
  consoleSize?: { rows: number; cols: number };
  /** Extra kernel command-line words. */
  cmdline?: string;
  /**
   * Where state lives: `datakit/` (the DataKit store, a git repository), `datakit.sock` (its 9P socket for host
   * processes), `vsock/` (vsock's Unix sockets). Default: a temporary directory removed by `stop()`.
   */
  stateDir?: string;
  /** Stable identity: the guest MAC (and so its DHCP address) derives from it. */
  uuid?: string;
  /**
   * Connect virtio-net to a VPNKit already listening on this Unix socket (hyperkit's vpnkit protocol,
   * e.g. `vpnkit --listen-vmnet PATH`) instead of starting one in this process. Same link interface,
   * other transport; `publish` is then that VPNKit's business.
   */
  vpnkitSocket?: string;
  /** VPNKit settings (subnet, DNS servers, MTU: default DEFAULT_MTU, ...) for the in-process VPNKit. */
  vpnkit?: Partial<VpnkitConfig>;
  /** Stop everything on SIGINT/SIGTERM (default true). */
  stopOnSignals?: boolean;
  /** Diagnostics (default: stderr). */
  log?: (message: string) => void;
}

/**
 * The guest link's MTU unless told otherwise: Ethernet's. An emulated guest spends its time per packet,
 * but virtio-net's TSO and checksum offloads let its TCP move 64 KiB segments anyway, so a bigger MTU no
 * longer pays (measured on our RISC-V emulator, 16 MiB guest→host: 365 ms at 1500, 458 ms at 65520).
 */
export const DEFAULT_MTU = 1500;

/** The guest's vsock context id (hyperkit's default). */
export const GUEST_CID = 3;

export interface PublishedPort {
  protocol: 'tcp' | 'udp';
  hostAddress: string;
  hostPort: number;
  guestPort: number;
}

/** A running system: DataKit, VPNKit and the VM, wired together. */
export interface KitsetSystem {
  readonly vm: VM;
  /** The in-process VPNKit (null with `vpnkitSocket`). */
  readonly vpnkit: Vpnkit | null;
  readonly datakit: DataKitServer;
  readonly devices: DeviceHandles;
  readonly stateDir: string;
  /** The DataKit 9P server for host processes (`unix:///…/datakit.sock`). */
  readonly datakitAddress: string;
  /** The vsock Unix-socket directory. */
  readonly vsockDir: string;
  /** The address DHCP gives the guest, e.g. 192.168.65.3 (null: decided by an external VPNKit). */
  readonly guestAddress: string | null;
  readonly guestMac: string;
  /** The gateway's address for the host's 127.0.0.1, e.g. 192.168.65.254 (null when turned off). */
  readonly hostAddress: string | null;
  readonly gatewayAddress: string | null;
  readonly published: readonly PublishedPort[];
  readonly console: { output: PassThrough; input: Writable };
  /**
   * Opens a stream to a vsock port the guest listens on, through `<vsockDir>/connect` (hyperkit's
   * `CCCCCCCC.PPPPPPPP\n` preamble). A port with no listener closes the socket at once.
   */
  connectVsock(port: number): Socket;
  /** Resolves when the guest powers off or resets, or the VM is stopped. */
  readonly exited: Promise<VmExit>;
  /** Stops the VM, VPNKit and DataKit (in that order); safe to call more than once. */
  stop(): Promise<void>;
}

/** Parses `HOSTPORT:GUESTPORT`, `HOSTADDR:HOSTPORT:GUESTPORT`, either with an optional `/tcp` or `/udp`. */
export function parsePublish(spec: string): PublishedPort {
  const bad = () =>
    new KitsetError(
      'ERR_KITSET_ARGUMENT',
      `bad --publish "${spec}": expected HOSTPORT:GUESTPORT or HOSTADDR:HOSTPORT:GUESTPORT, optionally /tcp or /udp`,
    );
  const [ports, protocol = 'tcp', ...extra] = spec.split('/');
  if (extra.length > 0 || (protocol !== 'tcp' && protocol !== 'udp') || ports === undefined) throw bad();
  const parts = ports.split(':');
  if (parts.length !== 2 && parts.length !== 3) throw bad();
  const hostAddress = parts.length === 3 ? parts[0]! : '127.0.0.1';
  const port = (text: string | undefined) => {
    if (!text || !/^\d+$/.test(text)) throw bad();
    const n = Number(text);
    if (n < 1 || n > 65535) throw bad();
    return n;
  };
  if (parts.length === 3) {
    try {
      parseIpv4(hostAddress);
    } catch {
      throw bad();
    }
  }
  return {
    protocol,
    hostAddress,
    hostPort: port(parts[parts.length - 2]),
    guestPort: port(parts[parts.length - 1]),
  };
}

/** Throws ERR_KITSET_ARGUMENT unless `dir` is a directory. */
export function checkShare(dir: string): void {
  const path = resolve(dir);
  if (!existsSync(path) || !statSync(path).isDirectory())
    throw new KitsetError('ERR_KITSET_ARGUMENT', `--share ${dir}: not a directory`);
}

/** The kernel command line: serial console, the kernel's own DHCP client, and kitset's init commands. */
export function guestCmdline(
  options: Pick<SystemOptions, 'guestCommand' | 'cmdline' | 'share' | 'consoleSize'>,
  network = true,
): string {
  // Without a network device the kernel's DHCP client would wait for one for seconds. loglevel=3: errors
  // still show; the boot's warnings (e.g. a second power-off handler) do not clutter the shell.
  const words = ['console=ttyS0', 'quiet', 'loglevel=3', ...(network ? ['ip=dhcp'] : [])];
  if (options.share !== undefined) words.push('kitset.share');
  const size = options.consoleSize;
  if (size && Number.isInteger(size.rows) && Number.isInteger(size.cols) && size.rows > 0 && size.cols > 0)
    words.push(`kitset.winsize=${Math.min(size.rows, 9999)}x${Math.min(size.cols, 9999)}`);
  if (options.cmdline) words.push(options.cmdline);
  const commands = options.guestCommand ?? [];
  if (commands.length > 0) {
    const script = commands.join(';');
    if (/["\n]/.test(script))
      throw new KitsetError('ERR_KITSET_ARGUMENT', 'guest commands cannot contain double quotes or newlines');
    words.push(`kitset.run="${script}"`);
  }
  return words.join(' ');
}

/**
 * Starts DataKit (a git store under the state directory), VPNKit and a HyperKit VM wired to both in
 * this process: the VM's virtio-net talks to VPNKit over an in-process framed-Ethernet pipe (the same
 * `Link` interface a Unix socket carries), virtio-9p serves the DataKit tree (tag `datakit`) and
 * optionally a host directory (tag `share`), published ports are VPNKit port forwards to the guest's
 * reserved DHCP address, and vsock maps to Unix sockets in `<state>/vsock`.
 */
export async function startSystem(options: SystemOptions): Promise<KitsetSystem> {
  const log = options.log ?? ((m: string) => process.stderr.write(`kitset: ${m}\n`));
  const vpnkitLog: Logger = (level, message) => {
    // VPNKit's info lines (every DHCP lease, every forward) are noise on a console; KITSET_DEBUG shows them.
    if ((level === 'debug' || level === 'info') && !process.env.KITSET_DEBUG) return;
    log(`vpnkit: ${message}`);
  };
  if (options.share !== undefined) checkShare(options.share);
  const published = (options.publish ?? []).map(parsePublish);

  const ownStateDir = options.stateDir === undefined;
  const stateDir = options.stateDir
    ? resolve(options.stateDir)
    : mkdtempSync(join(tmpdir(), 'kitset-state-'));
  try {
    mkdirSync(stateDir, { recursive: true });
  } catch (err) {
    throw new KitsetError(
      'ERR_KITSET_STATE_DIR',
      `cannot create state directory ${stateDir}: ${String(err)}`,
      {
        cause: err,
      },
    );
  }
  const vsockDir = join(stateDir, 'vsock');
  mkdirSync(vsockDir, { recursive: true });
  const datakitSocket = join(stateDir, 'datakit.sock');
  rmSync(datakitSocket, { force: true });

  // Undo what was started if a later step fails.
  const undo: Array<() => Promise<void> | void> = [];
  const unwind = async () => {
    for (const step of undo.reverse()) await Promise.resolve(step()).catch(() => {});
    if (ownStateDir) rmSync(stateDir, { recursive: true, force: true });
  };
  try {
    const datakit = await DataKitServer.start({
      git: join(stateDir, 'datakit'),
      listen: [`unix://${datakitSocket}`],
      logger: (m) => log(`datakit: ${m}`),
    });
    undo.push(() => datakit.close());

    const uuid = options.uuid ?? randomUUID();
    let vpnkit: Vpnkit | null = null;
    let network: { link: EthernetLink; mac: Uint8Array; mtu: number };
    let guestIp: number | null = null;
    let config: VpnkitConfig | null = null;
    if (options.vpnkitSocket !== undefined) {
      if (published.length > 0)
        throw new KitsetError(
          'ERR_KITSET_ARGUMENT',
          '--publish needs the in-process VPNKit; with --vpnkit, ask that VPNKit for forwards instead',
        );
      const remote = await connectVpnkitSocket(options.vpnkitSocket, uuid);
      undo.push(() => remote.link.close());
      network = remote;
    } else {
      const [vmEnd, vpnkitEnd] = framePipe('virtio-net (in-process)', 'vpnkit (in-process)');
      vpnkitEnd.offloads = PIPE_OFFLOADS;
      const local = new Vpnkit(vpnkitEnd, { mtu: DEFAULT_MTU, ...options.vpnkit }, vpnkitLog);
      vpnkit = local;
      undo.push(() => local.close());
      config = local.config;
      const mac = macForUuid(uuid);
      // The guest's address is fixed before boot so published ports know where to go.
      const ip = config.dhcpFirst;
      guestIp = ip;
      local.dhcp.reserve(mac, ip);
      for (const p of published) {
        const forward: PortForward = {
          protocol: p.protocol,
          hostAddress: p.hostAddress,
          hostPort: p.hostPort,
          guestAddress: ip,
          guestPort: p.guestPort,
        };
        try {
          await local.addForward(forward);
        } catch (err) {
          throw new KitsetError(
            'ERR_KITSET_PUBLISH',
            `--publish ${p.hostAddress}:${p.hostPort}:${p.guestPort}: ${(err as Error).message}`,
            { cause: err },
          );
        }
      }
      const macBytes = new Uint8Array(6);
      writeMac(macBytes, 0, mac);
      network = { link: ethernetLink(vmEnd), mac: macBytes, mtu: config.mtu };
    }

    const devices = await createDevices({
      link: network.link,
      mac: network.mac,
      mtu: network.mtu,
      datakit: vfsBackend(() => datakit.datakit.root()),
      share: options.share === undefined ? undefined : resolve(options.share),
      disk: options.disk,
      vsockDir,
      guestCid: GUEST_CID,
    });
    undo.push(() => devices.close());
    const vm = await createVM({
      memory: options.memory ?? '256M',
      kernel: options.kernel,
      initrd: options.initrd,
      cmdline: guestCmdline(options),
      devices: devices.list,
    });
    const exited = vm.run();

    let stopping: Promise<void> | undefined;
    const onSignal = (signal: NodeJS.Signals) => {
      log(`${signal}: stopping the VM, VPNKit and DataKit`);
      void stop();
    };
    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        vm.stop();
        await exited.catch(() => undefined);
        await unwind();
      })();
      return stopping;
    };
    if (options.stopOnSignals !== false) {
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    }
    return {
      vm,
      vpnkit,
      datakit,
      devices,
      stateDir,
      datakitAddress: `unix://${datakitSocket}`,
      vsockDir,
      guestAddress: guestIp === null ? null : formatIpv4(guestIp),
      guestMac: formatMac(readMac(network.mac, 0)),
      hostAddress: config?.hostAlias == null ? null : formatIpv4(config.hostAlias),
      gatewayAddress: config === null ? null : formatIpv4(config.gateway),
      published,
      console: vm.console,
      exited,
      stop,
      connectVsock(port: number): Socket {
        if (!Number.isInteger(port) || port < 0 || port > 0xffffffff)
          throw new KitsetError('ERR_KITSET_ARGUMENT', `bad vsock port ${port}`);
        const hex = (n: number) => n.toString(16).padStart(8, '0');
        const socket = createConnection(join(vsockDir, 'connect'));
        socket.write(`${hex(GUEST_CID)}.${hex(port)}\n`);
        return socket;
      },
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}
