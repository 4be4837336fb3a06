export { DeviceBase, DeviceId, gather, scatter, totalLength, views } from './common.js';
export { VirtioRng } from './rng.js';
export { VirtioConsole } from './console.js';
export { attachConsoleStreams, serveConsoleSocket } from './console-backend.js';
export { type DiskImage, DiskError, RawDisk } from './blk/disk.js';
export { Qcow2Disk, openDiskImage, parseQcow2Header } from './blk/qcow2.js';
export { VirtioBlk, type VirtioBlkOptions } from './blk/device.js';
export { Virtio9p, type Virtio9pOptions } from './ninep.js';
export { connectDeviceWakeups, type WakeableMachine } from './wakeups.js';
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
