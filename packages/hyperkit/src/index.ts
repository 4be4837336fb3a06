export { GuestMemoryError, HyperkitError, type HyperkitErrorCode } from './errors.js';
export { type MmioDevice, MmioBus } from './machine/bus.js';
export { Clock, TIMEBASE_HZ } from './machine/clock.js';
export { buildVirtDeviceTree, RISCV_ISA_STRING, type VirtDeviceTreeOptions } from './machine/devicetree.js';
export { type FdtNode, FdtNodeBuilder, parseFdt, serializeFdt } from './machine/fdt.js';
export type { HartInterruptInputs, IrqLine } from './machine/interrupts.js';
export { VIRT, virtioSlotBase } from './machine/layout.js';
export { GuestMemory } from './machine/memory.js';
export { type CpuBackend, type Privilege, StopReason } from './machine/backend.js';
