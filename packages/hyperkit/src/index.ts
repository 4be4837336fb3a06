export { GuestMemoryError, HyperkitError, type HyperkitErrorCode } from './errors.js';
export { type MmioDevice, MmioBus } from './machine/bus.js';
export { Clock, TIMEBASE_HZ } from './machine/clock.js';
export { buildVirtDeviceTree, RISCV_ISA_STRING, type VirtDeviceTreeOptions } from './machine/devicetree.js';
export { type FdtNode, FdtNodeBuilder, parseFdt, serializeFdt } from './machine/fdt.js';
export type { HartInterruptInputs, IrqLine } from './machine/interrupts.js';
export { VIRT, virtioSlotBase } from './machine/layout.js';
export { GuestMemory } from './machine/memory.js';
export { type CpuBackend, type Privilege, StopReason } from './machine/backend.js';
export { type MachineExit, VirtMachine, type VirtMachineOptions } from './machine/virt.js';
export { RiscvHart, type SbiHandler } from './cpu/riscv/hart.js';
export {
  type BootInputs,
  type BootPlan,
  DEFAULT_OPENSBI,
  type FirmwareKind,
  loadBoot,
} from './boot/loader.js';
export { BuiltinSbi } from './boot/sbi.js';
export { createVM, parseMemorySize, VM, type VmExit, type VmOptions } from './vm.js';
export {
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  type VirtioDevice,
  type VirtioDeviceContext,
} from './virtio/device.js';
export { type ChainBuffer, type DescriptorChain, SplitVirtqueue, VirtqueueError } from './virtio/queue.js';
export { STATUS_DEVICE_NEEDS_RESET, VirtioMmioTransport } from './virtio/mmio.js';
export { main as hyperkitMain, parseArgs } from './cli.js';
export * from './virtio/devices/index.js';
