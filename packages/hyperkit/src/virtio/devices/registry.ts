import type { Readable } from 'node:stream';
import { HyperkitError } from '../../errors.js';
import type { VirtioDevice } from '../device.js';
import type { EthernetLink } from './net/link.js';
import type { connectVpnkit } from './net/vpnkit-client.js';

// Each device's module (and what it brings: the 9P server, the TAP addon, sockets) loads when a device of
// its kind is created: a VM without it starts that much sooner (the hyperkit command's start counts in its
// boot time).

/** What device factories may need from whoever starts the VM. */
export interface DeviceFactoryContext {
  /** In-process links for `virtio-net,link=NAME` (the `kitset` package passes VPNKit's link here). */
  links?: Record<string, EthernetLink>;
  /** Where `virtio-console` output goes (default: the process's stdout). */
  consoleOutput?: (bytes: Uint8Array) => void;
  /** What `virtio-console,stdio` reads (default: the process's stdin). */
  consoleInput?: Readable;
}

/** A device with host resources (files, sockets) to release when the VM is gone. */
export interface ClosableDevice extends VirtioDevice {
  close?(): void;
}

export interface DeviceSpec {
  /** hyperkit's PCI slot number when given (`-s 2,virtio-blk,…`); orders the virtio-mmio slots. */
  slot: number | undefined;
  name: string;
  /** For virtio-console: where its host side is (stdin is for one console only). */
  console?: 'output' | 'stdio' | 'socket';
  create(ctx?: DeviceFactoryContext): Promise<ClosableDevice>;
}

const NAMES = [
  'virtio-blk',
  'virtio-9p',
  'virtio-net',
  'virtio-vpnkit',
  'virtio-sock',
  'virtio-rnd',
  'virtio-console',
] as const;

function bad(message: string): never {
  throw new HyperkitError('ERR_BAD_ARGUMENT', message);
}

/** Splits "k=v,k2=v2,flag" into a map; plain words map to "". */
function options(parts: string[], spec: string, allowed: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of parts) {
    const eq = p.indexOf('=');
    const key = eq < 0 ? p : p.slice(0, eq);
    if (!allowed.includes(key)) bad(`unknown option "${key}" in -s ${spec} (allowed: ${allowed.join(', ')})`);
    out.set(key, eq < 0 ? '' : p.slice(eq + 1));
  }
  return out;
}

function required(opts: Map<string, string>, key: string, spec: string): string {
  const v = opts.get(key);
  if (!v) bad(`-s ${spec} needs ${key}=…`);
  return v;
}

/**
 * Parses one hyperkit-style device argument: `[SLOT[:FUNC],]DEVICE[,OPTIONS]`, e.g. `virtio-blk,disk.qcow2`,
 * `4,virtio-9p,path=DIR,tag=share`, `virtio-sock,guest_cid=3,path=DIR,guest_forwards=2375;2376`,
 * `virtio-vpnkit,path=vpnkit.sock,uuid=…`, `virtio-net,tap=tap0`, `virtio-rnd`. Returns undefined for hyperkit's PCI
 * placeholders (hostbridge, lpc). Throws ERR_UNKNOWN_DEVICE for anything else unknown.
 */
export function parseDeviceSpec(spec: string): DeviceSpec | undefined {
  const parts = spec.split(',');
  let slot: number | undefined;
  if (/^\d+(:\d+)?$/.test(parts[0] ?? '')) slot = Number.parseInt(parts.shift()!, 10);
  const name = parts.shift() ?? '';
  if (name === 'hostbridge' || name === 'lpc' || name === 'amd_hostbridge') return undefined;
  switch (name) {
    case 'virtio-rnd':
    case 'virtio-rng':
      options(parts, spec, []);
      return { slot, name, create: async () => new (await import('./rng.js')).VirtioRng() };
    case 'virtio-console': {
      // virtio-console (output to stdout), virtio-console,stdio (stdin too), virtio-console,socket=PATH
      const opts = options(parts, spec, ['stdio', 'socket']);
      const socketPath = opts.get('socket');
      if (opts.has('socket') && !socketPath) bad(`-s ${spec} needs socket=PATH`);
      if (socketPath && opts.has('stdio')) bad(`-s ${spec}: give stdio or socket=PATH, not both`);
      return {
        slot,
        name,
        console: socketPath ? 'socket' : opts.has('stdio') ? 'stdio' : 'output',
        create: async (ctx) => {
          const { attachConsoleStreams, serveConsoleSocket } = await import('./console-backend.js');
          const dev = new (await import('./console.js')).VirtioConsole();
          if (socketPath) {
            try {
              dev.setDetach(await serveConsoleSocket(dev, socketPath));
            } catch (e) {
              bad(
                `virtio-console: cannot listen on ${socketPath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
              );
            }
          } else if (opts.has('stdio')) {
            dev.setDetach(attachConsoleStreams(dev, ctx?.consoleInput ?? process.stdin, process.stdout));
          } else dev.onOutput = ctx?.consoleOutput ?? ((b: Uint8Array) => process.stdout.write(b));
          return dev;
        },
      };
    }
    case 'virtio-blk': {
      // hyperkit: virtio-blk,PATH[,ro]; also path=PATH
      const path = parts[0] && !parts[0].includes('=') && parts[0] !== 'ro' ? parts.shift()! : undefined;
      const opts = options(parts, spec, ['path', 'ro', 'serial']);
      const file = path ?? required(opts, 'path', spec);
      const readOnly = opts.has('ro');
      const serial = opts.get('serial');
      return {
        slot,
        name,
        create: async () => {
          const [{ VirtioBlk }, { openDiskImage }] = await Promise.all([
            import('./blk/device.js'),
            import('./blk/qcow2.js'),
          ]);
          return new VirtioBlk(openDiskImage(file, readOnly), serial ? { serial } : {});
        },
      };
    }
    case 'virtio-9p': {
      const opts = options(parts, spec, ['path', 'tag', 'ro']);
      const dir = required(opts, 'path', spec);
      const tag = opts.get('tag') || 'share';
      const readOnly = opts.has('ro');
      return {
        slot,
        name,
        create: async () => {
          const { Virtio9p } = await import('./ninep.js');
          try {
            return Virtio9p.hostDirectory(dir, tag, readOnly);
          } catch (e) {
            return bad(`virtio-9p: cannot share ${dir}: ${(e as Error).message}`);
          }
        },
      };
    }
    case 'virtio-sock': {
      const opts = options(parts, spec, ['guest_cid', 'path', 'guest_forwards']);
      const guestCid = Number(required(opts, 'guest_cid', spec));
      if (!Number.isInteger(guestCid) || guestCid <= 2)
        bad(`bad guest_cid in -s ${spec} (an integer above 2)`);
      const path = required(opts, 'path', spec);
      const forwards = (opts.get('guest_forwards') ?? '')
        .split(';')
        .filter((s) => s !== '')
        .map((s) => {
          const n = Number(s);
          if (!Number.isInteger(n) || n < 0 || n >= 0xffffffff)
            bad(`bad guest_forwards port "${s}" in -s ${spec}`);
          return n;
        });
      return {
        slot,
        name,
        create: async () => {
          const { VirtioVsock } = await import('./vsock/device.js');
          const dev = new VirtioVsock({ guestCid, path, guestForwards: forwards });
          try {
            await dev.listen();
          } catch (e) {
            dev.close();
            bad(
              `virtio-sock: cannot listen in ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
            );
          }
          return dev;
        },
      };
    }
    case 'virtio-vpnkit': {
      const opts = options(parts, spec, ['path', 'uuid', 'mtu']);
      const path = required(opts, 'path', spec);
      const uuid = required(opts, 'uuid', spec);
      return {
        slot,
        name,
        create: async () => {
          const [{ connectVpnkit }, { VirtioNet }] = await Promise.all([
            import('./net/vpnkit-client.js'),
            import('./net/device.js'),
          ]);
          let conn: Awaited<ReturnType<typeof connectVpnkit>>;
          try {
            conn = await connectVpnkit(path, uuid);
          } catch (e) {
            if (e instanceof RangeError) bad(`-s ${spec}: ${e.message}`);
            throw e;
          }
          return new VirtioNet(conn.link, { mac: conn.mac, mtu: conn.mtu });
        },
      };
    }
    case 'virtio-net': {
      // virtio-net[,link=NAME] (an in-process link) or virtio-net,tap=NAME[,netns=PATH] (a Linux TAP device)
      const opts = options(parts, spec, ['link', 'tap', 'netns', 'mac', 'mtu', 'offloads']);
      const offloads = opts.get('offloads');
      if (offloads !== undefined && offloads !== 'on' && offloads !== 'off')
        bad(`-s ${spec}: offloads=on or offloads=off`);
      const tapName = opts.get('tap');
      if (opts.has('tap') && !tapName) bad(`-s ${spec} needs tap=NAME`);
      if (tapName && opts.has('link')) bad(`-s ${spec}: give link= or tap=, not both`);
      if (opts.has('netns') && !tapName) bad(`-s ${spec}: netns= goes with tap=`);
      const netnsPath = opts.get('netns');
      const linkName = opts.get('link') || 'default';
      const mac = opts.get('mac');
      const mtu = opts.has('mtu') ? Number(opts.get('mtu')) : undefined;
      return {
        slot,
        name,
        create: async (ctx) => {
          const { VirtioNet, parseMac } = await import('./net/device.js');
          let link: EthernetLink | undefined;
          if (tapName) {
            try {
              const { TapEthernetLink } = await import('./net/tap-link.js');
              link = new TapEthernetLink(tapName, { netnsPath, mtu, offloads: offloads !== 'off' });
            } catch (e) {
              bad(
                `virtio-net: cannot open TAP device "${tapName}"${netnsPath ? ` in ${netnsPath}` : ''}: ${(e as Error).message}`,
              );
            }
          } else {
            link = ctx?.links?.[linkName];
            if (!link) {
              bad(
                `virtio-net: no in-process link "${linkName}" (from the command line use tap=NAME, or virtio-vpnkit,path=SOCKET,uuid=UUID)`,
              );
            }
          }
          try {
            return new VirtioNet(link, {
              mac: mac ? parseMac(mac) : Uint8Array.of(2, 0x6b, 0x69, 0x74, 0, 1),
              mtu,
              offloads: offloads !== 'off',
            });
          } catch (e) {
            if (tapName) link.close();
            return bad(`-s ${spec}: ${(e as Error).message}`);
          }
        },
      };
    }
    default:
      throw new HyperkitError(
        'ERR_UNKNOWN_DEVICE',
        `unknown device "${name || spec}" in -s ${spec} (supported: ${NAMES.join(', ')}, hostbridge, lpc)`,
      );
  }
}

/** Creates the devices for a list of specs in slot order (specs without a slot keep their place after those with one). */
export async function createDevices(
  specs: DeviceSpec[],
  ctx?: DeviceFactoryContext,
): Promise<ClosableDevice[]> {
  const ordered = specs
    .map((s, i) => ({ s, key: s.slot ?? 1000 + i }))
    .sort((a, b) => a.key - b.key)
    .map((x) => x.s);
  if (ordered.length > 8) bad(`at most 8 virtio devices fit the virt board's slots (got ${ordered.length})`);
  const devices: ClosableDevice[] = [];
  try {
    for (const s of ordered) devices.push(await s.create(ctx));
  } catch (e) {
    for (const d of devices) d.close?.();
    throw e;
  }
  return devices;
}

/** Releases files and sockets held by devices (after the VM stopped). */
export function closeDevices(devices: readonly ClosableDevice[]): void {
  for (const d of devices) {
    try {
      d.close?.();
    } catch {
      // closing is best effort
    }
  }
}
