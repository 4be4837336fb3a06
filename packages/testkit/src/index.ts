/**
 * Test-only helpers that drive real peers: the x86 QEMU Linux guest, network namespaces, git, daemons.
 * Imported by `test/` folders and `bench/` only, never by a package's src/.
 */
export { TestkitError, type TestkitErrorCode } from './errors.js';
export { findRepoRoot } from './repo.js';
export {
  hasCommand,
  runCommand,
  startDaemon,
  freePort,
  type CommandResult,
  type RunCommandOptions,
  type Daemon,
  type DaemonOptions,
} from './process.js';
export {
  runX86Guest,
  guestImagesReady,
  x86GuestDir,
  type X86GuestOptions,
  type X86GuestResult,
  type GuestImages,
  type GuestManifest,
} from './guest.js';
export { withNetns, netnsExec } from './netns.js';
export { gitFsck, type FsckResult } from './git.js';
export { seededRandom } from './random.js';
export {
  riscvQemuArgs,
  riscvBareMetalGccArgs,
  type RiscvQemuBoot,
  type RiscvBareMetalBuild,
} from './riscv.js';
