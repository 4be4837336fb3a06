import * as hyperkit from '@kitset/hyperkit';
import type { VM, VirtioDevice } from '@kitset/hyperkit';
import { type FsBackend, HostFsBackend } from '@kitset/ninep';
import type { PipeEnd } from './link.js';

/** What the system asks of HyperKit's virtio devices. */
export interface DeviceRequest {
  /** VPNKit's peer end of the in-process Ethernet pipe. */
  link: PipeEnd;
  mac: number;
  mtu: number;
  /** The DataKit tree, served with tag `datakit`. */
  datakit: FsBackend;
  share: string | undefined;
  disk: string | undefined;
  vsockDir: string;
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

type Ctor<A extends unknown[]> = new (...args: A) => VirtioDevice;

/**
 * HyperKit's device classes, looked up by name so this package builds while HyperKit's device set
 * grows; a missing one is reported (`missing`) instead of failing the whole system.
 */
function hyperkitExport<T>(name: string): T | undefined {
  return (hyperkit as unknown as Record<string, unknown>)[name] as T | undefined;
}

/** Devices the system needs that this HyperKit build does not provide. */
export function missingDevices(): string[] {
  const wanted: Array<[string, string]> = [
    ['virtio-9p', 'Virtio9p'],
    ['virtio-net', 'VirtioNet'],
    ['virtio-vsock', 'VirtioVsock'],
    ['virtio-rng', 'VirtioRng'],
  ];
  return wanted.filter(([, name]) => hyperkitExport(name) === undefined).map(([device]) => device);
}

export function createDevices(req: DeviceRequest): DeviceHandles {
  const list: VirtioDevice[] = [];
  const missing: string[] = [];
  const closers: Array<() => void> = [];

  const Virtio9p = hyperkitExport<Ctor<[FsBackend, { tag: string }]>>('Virtio9p');
  if (Virtio9p) {
    list.push(new Virtio9p(req.datakit, { tag: 'datakit' }));
    if (req.share !== undefined) list.push(new Virtio9p(new HostFsBackend(req.share), { tag: 'share' }));
  } else missing.push('virtio-9p');

  missing.push('virtio-net', 'virtio-vsock');

  const VirtioRng = hyperkitExport<Ctor<[]>>('VirtioRng');
  if (VirtioRng) list.push(new VirtioRng());
  else missing.push('virtio-rng');

  if (missing.length > 0) req.log(`HyperKit lacks ${missing.join(', ')}; the guest runs without them`);
  return {
    list,
    missing,
    attach(vm: VM) {
      const connect = hyperkitExport<(machine: VM['machine']) => void>('connectDeviceWakeups');
      connect?.(vm.machine);
    },
    close() {
      for (const c of closers) c();
    },
  };
}
