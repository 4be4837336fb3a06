export { KitsetError, type KitsetErrorCode } from './errors.js';
export { buildInitrd, buildKernel, type GuestImage, prepareGuest, type Progress, repoRoot } from './guest.js';
export { framePipe, PipeEnd } from './link.js';
export type { DeviceHandles } from './devices.js';
export {
  checkShare,
  DEFAULT_MTU,
  guestCmdline,
  type KitsetSystem,
  parsePublish,
  type PublishedPort,
  startSystem,
  type SystemOptions,
} from './system.js';
