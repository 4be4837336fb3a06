#!/usr/bin/env node
import { rmSync } from 'node:fs';
import type net from 'node:net';
import { parseArgs } from 'node:util';
import { NinePServer } from '@kitset/ninep';
import { VpnkitError, consoleLogger } from './errors.js';
import { FaultLink } from './link/fault.js';
import type { Link } from './link/link.js';
import { PcapLink } from './link/pcap.js';
import { type StreamAddress, connectQemu, listenQemu } from './link/stream.js';
import { TapLink } from './link/tap.js';
import { listenVmnet } from './link/vmnet.js';
import { GuestNamespace } from './netns.js';
import { RootlessRun } from './rootless.js';
import { type VpnkitConfig, defaultConfig, parseForward } from './services/config.js';
import { type ForwardTarget, PortControlFs, createControlHttpServer } from './services/control.js';
import { Vpnkit } from './services/vpnkit.js';
import { parseIpv4 } from './wire/address.js';

const USAGE = `usage:
  vpnkit [options] [--listen-vmnet PATH] [--listen-qemu PATH|HOST:PORT] [--connect-qemu PATH|HOST:PORT] [--tap NAME]
  vpnkit run [options] [--dhcp] [--rootless] -- CMD [ARGS...]

Serves a user-space network to VMs (hyperkit's vpnkit protocol, QEMU -netdev stream) or TAP devices;
\`run\` starts CMD in a fresh network namespace whose only interface is a TAP device served by vpnkit;
without root (or with --rootless) the namespace is also a new user namespace, as with slirp4netns and pasta.

options:
  --forward tcp|udp:[HOST_ADDR:]HOST_PORT:GUEST_ADDR:GUEST_PORT   host-to-guest port forward (repeatable)
  --pcap FILE            record every frame to FILE (pcap)
  --mtu N                link MTU, 576..65520 (default 1500)
  --subnet CIDR          guest subnet (default 192.168.65.0/24; gateway .1, host alias .254, DHCP from .3)
  --host-alias ADDR|off  address that reaches the host's 127.0.0.1 (default 192.168.65.254)
  --dns SERVER[:PORT]    upstream resolver (repeatable; default: follow /etc/resolv.conf)
  --max-connections N    cap on concurrent guest TCP connections (default 8192)
  --tcp-idle-timeout S   reset NAT'd TCP connections idle for S seconds (default 300, 0 = never)
  --control-9p URL       serve VPNKit's 9P port-control files (unix:///path or tcp://127.0.0.1:PORT)
  --control-http PATH    serve the HTTP forwarding API (gvisor-tap-vsock style) on a Unix socket
  --no-offload           TAP without virtio-net headers (no checksum offload or TSO)
  --rootless            run: a user + network namespace even as root (the default when not root)
  --tun-device PATH      run --rootless: the TUN clone device to open (default /dev/net/tun)
  --faults SPEC          test only: drop=P,duplicate=P,reorder=P,corrupt=P
  -h, --help`;

function fail(message: string): never {
  process.stderr.write(`vpnkit: ${message}\n`);
  process.exit(2);
}

function parseAddress(text: string): StreamAddress {
  const m = /^(.+):(\d+)$/.exec(text);
  if (m && !text.includes('/')) return { host: m[1]!, port: Number(m[2]) };
  return { path: text };
}

function configFrom(values: Record<string, string | string[] | boolean | undefined>): VpnkitConfig {
  const c = defaultConfig();
  const str = (k: string) => values[k] as string | undefined;
  const list = (k: string) => (values[k] as string[] | undefined) ?? [];
  if (str('mtu')) {
    const mtu = Number(str('mtu'));
    if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65520) fail('--mtu must be an integer in 576..65520');
    c.mtu = mtu;
  }
  if (str('subnet')) {
    const [base, prefix] = (str('subnet') ?? '').split('/');
    const prefixLength = Number(prefix ?? '24');
    if (!(prefixLength >= 8 && prefixLength <= 29)) fail('--subnet prefix must be /8../29');
    const subnet = parseIpv4(base ?? '');
    const size = 2 ** (32 - prefixLength);
    c.subnet = subnet;
    c.prefixLength = prefixLength;
    c.gateway = subnet + 1;
    c.hostAlias = subnet + size - 2;
    c.dhcpFirst = subnet + 3;
    c.dhcpLast = subnet + size - 3;
  }
  const alias = str('host-alias');
  if (alias === 'off') c.hostAlias = null;
  else if (alias) c.hostAlias = parseIpv4(alias);
  c.dnsServers = list('dns');
  c.forwards = list('forward').map(parseForward);
  if (str('max-connections')) c.maxConnections = Number(str('max-connections'));
  if (str('tcp-idle-timeout') !== undefined) {
    const seconds = Number(str('tcp-idle-timeout'));
    if (!(seconds >= 0)) fail('--tcp-idle-timeout must be a number of seconds (0 = never)');
    c.tcpIdleMs = seconds * 1000;
  }
  return c;
}

function parseFaults(spec: string | undefined): ((link: Link) => Link) | undefined {
  if (!spec) return undefined;
  const options: Record<string, number> = {};
  for (const part of spec.split(',')) {
    const [key, value] = part.split('=');
    if (
      !key ||
      !['drop', 'duplicate', 'reorder', 'corrupt', 'seed'].includes(key) ||
      Number.isNaN(Number(value))
    )
      fail(`bad --faults part "${part}"`);
    options[key] = Number(value);
  }
  return (link) => new FaultLink(link, options);
}

const OPTIONS = {
  'listen-vmnet': { type: 'string', multiple: true },
  'listen-qemu': { type: 'string', multiple: true },
  'connect-qemu': { type: 'string', multiple: true },
  tap: { type: 'string', multiple: true },
  forward: { type: 'string', multiple: true },
  pcap: { type: 'string' },
  mtu: { type: 'string' },
  subnet: { type: 'string' },
  'host-alias': { type: 'string' },
  dns: { type: 'string', multiple: true },
  'max-connections': { type: 'string' },
  'tcp-idle-timeout': { type: 'string' },
  faults: { type: 'string' },
  'control-9p': { type: 'string' },
  'control-http': { type: 'string' },
  'no-offload': { type: 'boolean' },
  dhcp: { type: 'boolean' },
  rootless: { type: 'boolean' },
  'tun-device': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function serve(values: Record<string, string | string[] | boolean | undefined>): Promise<void> {
  const config = configFrom(values);
  const log = consoleLogger;
  const pcap = values.pcap as string | undefined;
  const faults = parseFaults(values.faults as string | undefined);
  let attached = 0;
  let dialing = 0;
  const live = new Set<Vpnkit>();
  // The control planes act on the most recently attached guest that is still there.
  await serveControl(values, () => [...live].pop()?.forwards);
  const attach = async (base: Link, preferred?: { mac: number; address: number }, reconnected = false) => {
    let link = base;
    if (pcap) link = new PcapLink(link, attached === 0 ? pcap : `${pcap}.${attached}`);
    if (faults) link = faults(link);
    attached++;
    // Port forwards belong to the first guest: two listeners cannot share one host port.
    const first = attached === 1 || reconnected;
    const vpnkit = new Vpnkit(link, first ? config : { ...config, forwards: [] }, log);
    await vpnkit.start();
    if (preferred && !vpnkit.dhcp.reserve(preferred.mac, preferred.address))
      log('warn', `${base.description}: preferred address not available; leasing another`);
    live.add(vpnkit);
    log('info', `serving ${base.description}`);
    vpnkit.onClose = (error) => {
      live.delete(vpnkit);
      log(error ? 'warn' : 'info', `${base.description} closed${error ? `: ${error.message}` : ''}`);
    };
    return vpnkit;
  };
  const servers: net.Server[] = [];
  for (const path of (values['listen-vmnet'] as string[] | undefined) ?? []) {
    rmSync(path, { force: true });
    servers.push(
      await listenVmnet(
        path,
        config.mtu,
        (client) =>
          void attach(
            client.link,
            client.preferredIpv4 === undefined
              ? undefined
              : { mac: client.mac, address: client.preferredIpv4 },
          ).catch(report),
        log,
      ),
    );
    log('info', `listening for hyperkit (vpnkit protocol) on ${path}`);
  }
  for (const text of (values['listen-qemu'] as string[] | undefined) ?? []) {
    const address = parseAddress(text);
    if ('path' in address) rmSync(address.path, { force: true });
    servers.push(await listenQemu(address, (link) => void attach(link).catch(report)));
    log('info', `listening for QEMU -netdev stream on ${text}`);
  }
  for (const text of (values['connect-qemu'] as string[] | undefined) ?? []) {
    // QEMU (-netdev stream,server=on) may restart: reconnect, backing off up to 5 s between tries.
    const address = parseAddress(text);
    let delay = 200;
    let connections = 0;
    const dial = (): void => {
      connectQemu(address).then(
        (link) => {
          delay = 200;
          void attach(link, undefined, connections++ > 0)
            .then((vpnkit) => {
              const closed = vpnkit.onClose;
              vpnkit.onClose = (error) => {
                closed(error);
                log('warn', `QEMU at ${text} went away; reconnecting`);
                setTimeout(dial, delay);
              };
            })
            .catch(report);
        },
        (err: Error) => {
          log('debug', err.message);
          delay = Math.min(delay * 2, 5000);
          setTimeout(dial, delay);
        },
      );
    };
    dial();
    dialing++;
    log('info', `connecting to QEMU -netdev stream at ${text} (reconnects)`);
  }
  for (const name of (values.tap as string[] | undefined) ?? [])
    await attach(TapLink.open(name, { mtu: config.mtu, vnetHdr: !values['no-offload'] && !pcap && !faults }));
  if (attached === 0 && dialing === 0 && servers.length === 0)
    fail(`nothing to serve: give --listen-vmnet, --listen-qemu, --connect-qemu or --tap\n${USAGE}`);
  const stop = () => {
    for (const s of servers) s.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** The run-time control planes (9P files, HTTP API) for the forwards of `vpnkit`. */
async function serveControl(
  values: Record<string, string | string[] | boolean | undefined>,
  target: ForwardTarget,
): Promise<void> {
  const ninep = values['control-9p'] as string | undefined;
  if (ninep) {
    await new NinePServer(new PortControlFs(target)).listen(ninep);
    consoleLogger('info', `port-control 9P files on ${ninep}`);
  }
  const httpPath = values['control-http'] as string | undefined;
  if (httpPath) {
    rmSync(httpPath, { force: true });
    await new Promise<void>((resolve) => createControlHttpServer(target).listen(httpPath, resolve));
    consoleLogger('info', `forwarding API on http+unix://${httpPath}`);
  }
}

async function run(
  values: Record<string, string | string[] | boolean | undefined>,
  command: string[],
): Promise<number> {
  if (command.length === 0) fail(`run needs a command after --\n${USAGE}`);
  const config = configFrom(values);
  const options: Parameters<typeof GuestNamespace.create>[0] = {
    config,
    configure: values.dhcp ? 'dhcp' : 'static',
  };
  const wrap = parseFaults(values.faults as string | undefined);
  if (wrap) options.wrapLink = wrap;
  if (values.pcap) options.pcap = values.pcap as string;
  if (values['no-offload']) options.offloads = false;
  const argv = values.dhcp
    ? ['sh', '-c', 'busybox udhcpc -q -n -i tap0 -t 5 >/dev/null 2>&1; exec "$@"', 'sh', ...command]
    : command;
  if (values.rootless || process.getuid?.() !== 0) {
    const tunDevice = values['tun-device'] as string | undefined;
    const rootless = await RootlessRun.start(argv, {
      ...options,
      configure: values.dhcp ? 'dhcp' : 'static',
      ...(tunDevice ? { tunDevice } : {}),
    });
    await serveControl(values, rootless.vpnkit.forwards);
    const forward = (signal: NodeJS.Signals) => rootless.child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    try {
      return await rootless.exited;
    } finally {
      rootless.close();
    }
  }
  const ns = await GuestNamespace.create(options);
  await serveControl(values, ns.vpnkit.forwards);
  const cleanup = () => ns.close();
  try {
    const child = ns.spawn(argv, { stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    return await new Promise<number>((resolve) => {
      child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
  } finally {
    await cleanup();
  }
}

function report(err: unknown): void {
  const message = err instanceof VpnkitError ? err.message : err instanceof Error ? err.message : String(err);
  process.stderr.write(`vpnkit: ${message}\n`);
}

async function main(argv: string[]): Promise<void> {
  const isRun = argv[0] === 'run';
  const rest = isRun ? argv.slice(1) : argv;
  const dashDash = rest.indexOf('--');
  const optionArgs = dashDash >= 0 ? rest.slice(0, dashDash) : rest;
  const command = dashDash >= 0 ? rest.slice(dashDash + 1) : [];
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: optionArgs, options: OPTIONS, allowPositionals: false }));
  } catch (err) {
    fail(`${(err as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (isRun) process.exitCode = await run(values, command);
  else await serve(values);
}

main(process.argv.slice(2)).catch((err) => {
  report(err);
  process.exit(1);
});
