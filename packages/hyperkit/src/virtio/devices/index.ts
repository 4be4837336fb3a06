export { DeviceBase, DeviceId, gather, scatter, totalLength, views } from './common.js';
export { VirtioRng } from './rng.js';
export { VirtioConsole } from './console.js';
export { attachConsoleStreams, serveConsoleSocket } from './console-backend.js';
export { type DiskImage, DiskError, RawDisk } from './blk/disk.js';
export { Qcow2Disk, openDiskImage, parseQcow2Header } from './blk/qcow2.js';
export { VirtioBlk, type VirtioBlkOptions } from './blk/device.js';
export { Virtio9p, type Virtio9pOptions } from './ninep.js';

import type { VirtioDevice } from '../device.js';
import { DeviceBase } from './common.js';

/** What connectDeviceWakeups needs of a machine: its run-loop kick and its virtio slots. */
export interface WakeableMachine {
  kick(): void;
  readonly virtio: readonly { readonly device: VirtioDevice | undefined }[];
}

/**
 * Lets devices that complete work asynchronously (sockets, 9P backends) wake a guest idling in WFI, so an
 * interrupt is taken at once rather than at the next timer tick.
 */
export function connectDeviceWakeups(machine: WakeableMachine): void {
  for (const slot of machine.virtio) {
    if (slot.device instanceof DeviceBase) slot.device.wakeGuest = () => machine.kick();
  }
}
export { VirtioVsock, type VirtioVsockOptions } from './vsock/device.js';
export { VsockOp, decodeVsockHeader, encodeVsockHeader, socketName } from './vsock/packet.js';
export { type EthernetLink, linkPair } from './net/link.js';
export {
  type LinkOffloadSupport,
  type NetOffload,
  NET_HDR_F_DATA_VALID,
  NET_HDR_F_NEEDS_CSUM,
  NET_HDR_GSO_NONE,
  NET_HDR_GSO_TCPV4,
  NET_HDR_GSO_TCPV6,
  finishChecksum,
  segmentTcp,
} from './net/offload.js';
export { TapEthernetLink, type TapLinkOptions } from './net/tap-link.js';
export { VirtioNet, type VirtioNetOptions, parseMac } from './net/device.js';
export { connectVpnkit, type VpnkitConnection } from './net/vpnkit-client.js';
export {
  type ClosableDevice,
  type DeviceFactoryContext,
  type DeviceSpec,
  closeDevices,
  createDevices,
  parseDeviceSpec,
} from './registry.js';
