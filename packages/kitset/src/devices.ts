import {
  type DiskImage,
  type EthernetLink,
  Virtio9p,
  VirtioBlk,
  type VirtioDevice,
  VirtioNet,
  VirtioRng,
  VirtioVsock,
  connectVpnkit,
  openDiskImage,
} from '@kitset/hyperkit';
import { type FsBackend, HostFsBackend } from '@kitset/ninep';
import { KitsetError } from './errors.js';
import type { PipeEnd } from './link.js';

/** What the system asks of HyperKit's virtio devices. */
export interface DeviceRequest {
  /** Where virtio-net's frames go: VPNKit in this process (`ethernetLink`) or on a Unix socket. */
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
}

export interface DeviceHandles {
  /** In virtio-mmio slot order. */
  readonly list: VirtioDevice[];
  readonly net: VirtioNet;
  readonly vsock: VirtioVsock;
  close(): void;
}

/** VPNKit's end of the in-process pipe seen as HyperKit's EthernetLink: one interface, two transports. */
export function ethernetLink(end: PipeEnd): EthernetLink {
  return {
    send: (frame) => end.send(frame),
    onFrame: (cb) => {
      end.onFrame = cb;
    },
    close: () => end.close(),
  };
}

/**
 * Connects to a VPNKit listening on a Unix socket with hyperkit's vpnkit protocol (HyperKit's own client);
 * the reply gives the guest's MAC and the MTU.
 */
export async function connectVpnkitSocket(
  path: string,
  uuid: string,
): Promise<{ link: EthernetLink; mac: Uint8Array; mtu: number }> {
  try {
    return await connectVpnkit(path, uuid);
  } catch (err) {
    throw new KitsetError('ERR_KITSET_ARGUMENT', `--vpnkit ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Builds the VM's devices: virtio-net (to VPNKit), 9P (DataKit, share), vsock, rng, and blk for a disk. */
export async function createDevices(req: DeviceRequest): Promise<DeviceHandles> {
  let disk: DiskImage | undefined;
  if (req.disk !== undefined) {
    try {
      disk = openDiskImage(req.disk);
    } catch (err) {
      throw new KitsetError('ERR_KITSET_ARGUMENT', `--disk ${req.disk}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  const net = new VirtioNet(req.link, { mac: req.mac, mtu: req.mtu });
  const vsock = new VirtioVsock({ guestCid: req.guestCid, path: req.vsockDir });
  try {
    await vsock.listen();
  } catch (err) {
    vsock.close();
    net.close();
    disk?.close();
    throw err;
  }
  const list: VirtioDevice[] = [net, new Virtio9p(req.datakit, { tag: 'datakit' })];
  if (req.share !== undefined) list.push(new Virtio9p(new HostFsBackend(req.share), { tag: 'share' }));
  list.push(vsock, new VirtioRng());
  if (disk) list.push(new VirtioBlk(disk));
  return {
    list,
    net,
    vsock,
    close() {
      vsock.close();
      net.close();
      // After the VM stopped: what the guest wrote reaches the image file.
      disk?.flush();
      disk?.close();
    },
  };
}
