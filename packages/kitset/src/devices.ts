import {
  type DiskImage,
  type EthernetLink,
  NET_HDR_F_DATA_VALID,
  NET_HDR_F_NEEDS_CSUM,
  NET_HDR_GSO_NONE,
  NET_HDR_GSO_TCPV4,
  NET_HDR_GSO_TCPV6,
  type NetOffload,
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
import type { LinkOffloads } from '@kitset/vpnkit';
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

/**
 * What VPNKit's end of the in-process pipe offers VPNKit: it may send TCP frames with partial checksums and
 * up to 64 KiB of payload (IPv4's total length fits 16 bits); virtio-net hands them to the guest as they
 * are, or finishes them when the guest did not negotiate the offloads.
 */
export const PIPE_OFFLOADS: LinkOffloads = { checksum: true, tsoMaxPayload: 65535 - 20 - 60 };

/**
 * The VM's end of the in-process pipe seen as HyperKit's EthernetLink: one interface, two transports. It
 * takes partial checksums and TSO frames from virtio-net as they are (VPNKit's stack takes a large TCP
 * segment whose checksum the guest vouches for, as from a TAP device with vnet headers).
 */
export function ethernetLink(end: PipeEnd): EthernetLink {
  const rx: NetOffload = {
    flags: 0,
    gsoType: NET_HDR_GSO_NONE,
    headerLength: 0,
    gsoSize: 0,
    checksumStart: 0,
    checksumOffset: 0,
  };
  return {
    offloads: { checksum: true, tso: true },
    send: (frame, offload) => {
      if (offload && offload.flags & NET_HDR_F_NEEDS_CSUM) end.sendChecksumValid(frame);
      else end.send(frame);
    },
    onFrame: (cb) => {
      end.onOffloadFrame = (frame, offload) => {
        if (!offload) {
          // VPNKit's own frames carry full, correct checksums: the guest need not verify them.
          rx.flags = NET_HDR_F_DATA_VALID;
          rx.gsoType = NET_HDR_GSO_NONE;
          rx.gsoSize = 0;
          cb(frame, rx);
          return;
        }
        const payload = frame.length - offload.headerLength;
        const gso = offload.gsoSize > 0 && payload > offload.gsoSize;
        rx.flags = NET_HDR_F_NEEDS_CSUM;
        rx.gsoType = gso ? tsoType(frame) : NET_HDR_GSO_NONE;
        rx.headerLength = offload.headerLength;
        rx.gsoSize = gso ? offload.gsoSize : 0;
        rx.checksumStart = offload.checksumStart;
        rx.checksumOffset = offload.checksumOffset;
        cb(frame, rx);
      };
    },
    close: () => end.close(),
  };
}

/** TCPV4 or TCPV6 by the frame's EtherType. */
function tsoType(frame: Uint8Array): number {
  return frame[12] === 0x86 && frame[13] === 0xdd ? NET_HDR_GSO_TCPV6 : NET_HDR_GSO_TCPV4;
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
