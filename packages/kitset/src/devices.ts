import * as hyperkit from '@kitset/hyperkit';
import type { VM, VirtioDevice } from '@kitset/hyperkit';
import { type FsBackend, HostFsBackend } from '@kitset/ninep';
import { KitsetError } from './errors.js';
import type { PipeEnd } from './link.js';

/** What the system asks of HyperKit's virtio devices. */
export interface DeviceRequest {
  /** Where virtio-net's frames go: VPNKit in this process or on a Unix socket (see `ethernetLink`). */
  link: EthernetLink;
  mac: Uint8Array;
  mtu: number;
  /** The DataKit tree, served with tag `datakit`. */
  datakit: FsBackend;
  share: string | undefined;
  disk: string | undefined;
  vsockDir: string;
  /** The guest's vsock context id. */
  guestCid: number;
  log: (message: string) => void;
}

export interface DeviceHandles {
  /** In virtio-mmio slot order. */
  readonly list: VirtioDevice[];
  /** Devices HyperKit does not provide (yet); the guest runs without them. */
  readonly missing: string[];
  /** Connects device wake-ups to the VM's run loop. */
  attach(vm: VM): void;
  close(): void;
}

/** HyperKit's framed-Ethernet link (virtio-net's side); VPNKit's `Link` is the other side's shape. */
export interface EthernetLink {
  send(frame: Uint8Array): void;
  onFrame(cb: (frame: Uint8Array) => void): void;
  close(): void;
}
type Closable = VirtioDevice & { close(): void };
interface HyperkitDevices {
  Virtio9p: new (backend: FsBackend, options: { tag: string }) => VirtioDevice;
  VirtioNet: new (link: EthernetLink, options: { mac: Uint8Array; mtu?: number }) => Closable;
  VirtioVsock: new (options: { guestCid: number; path: string; guestForwards?: number[] }) => Closable & {
    listen(): Promise<void>;
  };
  VirtioRng: new () => VirtioDevice;
  VirtioBlk: new (disk: unknown, options?: { readOnly?: boolean }) => VirtioDevice;
  openDiskImage: (path: string, readOnly?: boolean) => unknown;
  connectDeviceWakeups: (machine: VM['machine']) => void;
  connectVpnkit: (
    path: string,
    uuid: string,
  ) => Promise<{ link: EthernetLink; mac: Uint8Array; mtu: number; maxPacketSize: number }>;
}

const DEVICE_EXPORTS: Array<[string, keyof HyperkitDevices]> = [
  ['virtio-9p', 'Virtio9p'],
  ['virtio-net', 'VirtioNet'],
  ['virtio-vsock', 'VirtioVsock'],
  ['virtio-rng', 'VirtioRng'],
  ['virtio-blk', 'VirtioBlk'],
  ['vpnkit-socket', 'connectVpnkit'],
];

/**
 * HyperKit's device classes, looked up by name so this package builds and runs while HyperKit's
 * public API grows; a missing one is reported (`missing`) instead of failing the whole system.
 */
function lookup(source: object = hyperkit): Partial<HyperkitDevices> {
  return source as Partial<HyperkitDevices>;
}

/**
 * Connects to a VPNKit listening on a Unix socket with hyperkit's vpnkit protocol (HyperKit's own client);
 * the reply gives the guest's MAC and the MTU.
 */
export async function connectVpnkitSocket(
  path: string,
  uuid: string,
  source?: object,
): Promise<{ link: EthernetLink; mac: Uint8Array; mtu: number }> {
  const hk = lookup(source);
  if (!hk.connectVpnkit)
    throw new KitsetError(
      'ERR_KITSET_DEVICE_MISSING',
      '--vpnkit: this HyperKit does not export connectVpnkit',
    );
  try {
    return await hk.connectVpnkit(path, uuid);
  } catch (err) {
    throw new KitsetError('ERR_KITSET_ARGUMENT', `--vpnkit ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Devices the system needs that this HyperKit build does not export. */
export function missingDevices(source?: object): string[] {
  const hk = lookup(source);
  return DEVICE_EXPORTS.filter(([, name]) => hk[name] === undefined).map(([device]) => device);
}

/** VPNKit's in-process pipe end seen as HyperKit's EthernetLink. */
export function ethernetLink(end: PipeEnd): EthernetLink {
  return {
    send: (frame) => end.send(frame),
    onFrame: (cb) => {
      end.onFrame = cb;
    },
    close: () => end.close(),
  };
}

/** Builds the VM's devices: virtio-net (to VPNKit), 9P (DataKit, share), vsock, rng, blk. */
export async function createDevices(req: DeviceRequest, source?: object): Promise<DeviceHandles> {
  const hk = lookup(source);
  const list: VirtioDevice[] = [];
  const closers: Array<() => void> = [];
  const missing = missingDevices(source);

  if (hk.VirtioNet) {
    const net = new hk.VirtioNet(req.link, { mac: req.mac, mtu: req.mtu });
    closers.push(() => net.close());
    list.push(net);
  }
  if (hk.Virtio9p) {
    list.push(new hk.Virtio9p(req.datakit, { tag: 'datakit' }));
    if (req.share !== undefined) list.push(new hk.Virtio9p(new HostFsBackend(req.share), { tag: 'share' }));
  }
  if (hk.VirtioVsock) {
    const vsock = new hk.VirtioVsock({ guestCid: req.guestCid, path: req.vsockDir });
    await vsock.listen();
    closers.push(() => vsock.close());
    list.push(vsock);
  }
  if (hk.VirtioRng) list.push(new hk.VirtioRng());
  if (req.disk !== undefined) {
    if (!hk.VirtioBlk || !hk.openDiskImage)
      throw new KitsetError('ERR_KITSET_DEVICE_MISSING', '--disk: this HyperKit does not export virtio-blk');
    let disk: unknown;
    try {
      disk = hk.openDiskImage(req.disk);
    } catch (err) {
      throw new KitsetError('ERR_KITSET_ARGUMENT', `--disk ${req.disk}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    list.push(new hk.VirtioBlk(disk));
  }
  // virtio-blk matters only with a disk; the vpnkit-socket client is not a device.
  const absent = missing.filter(
    (m) => (m !== 'virtio-blk' || req.disk !== undefined) && m !== 'vpnkit-socket',
  );
  if (absent.length > 0)
    req.log(`HyperKit does not export ${absent.join(', ')}; the guest runs without them`);
  return {
    list,
    missing,
    attach(vm: VM) {
      hk.connectDeviceWakeups?.(vm.machine);
    },
    close() {
      for (const c of closers.splice(0)) c();
    },
  };
}
