import { TIMEBASE_HZ } from './clock.js';
import { FdtNodeBuilder, serializeFdt } from './fdt.js';
import { VIRT, virtioSlotBase } from './layout.js';

export const RISCV_ISA_STRING = 'rv64imafdc_zicsr_zifencei_zihintpause';

export interface VirtDeviceTreeOptions {
  ramSize: number;
  bootargs: string;
  initrd?: { start: number; end: number } | undefined;
  /** How many virtio-mmio slots to describe (QEMU describes all 8; empty slots report device id 0). */
  virtioSlots?: number;
  /**
   * Random bytes for `/chosen/rng-seed`, as QEMU's virt board gives the guest (32 of them): Linux mixes them
   * into its entropy pool and, when it trusts the boot loader, has its RNG ready at once instead of
   * deriving every early random number from the pool. Omitted: no seed.
   */
  rngSeed?: Uint8Array | undefined;
}

const PHANDLE_CPU_INTC = 1;
const PHANDLE_PLIC = 2;
const PHANDLE_TEST = 3;

function reg(base: number, size: number): number[] {
  return [Math.floor(base / 0x1_0000_0000), base >>> 0, Math.floor(size / 0x1_0000_0000), size >>> 0];
}

/** Builds the DTB of a one-hart `virt` machine, laid out as QEMU does. */
export function buildVirtDeviceTree(opts: VirtDeviceTreeOptions): Uint8Array {
  const root = new FdtNodeBuilder('')
    .prop('#address-cells', [2])
    .prop('#size-cells', [2])
    .prop('compatible', 'riscv-virtio')
    .prop('model', 'riscv-virtio,qemu');

  const chosen = root.child('chosen');
  if (opts.rngSeed !== undefined) chosen.prop('rng-seed', opts.rngSeed);
  chosen.prop('bootargs', opts.bootargs).prop('stdout-path', `/soc/serial@${VIRT.uart.base.toString(16)}`);
  if (opts.initrd) {
    chosen.prop('linux,initrd-start', { u64: [opts.initrd.start] });
    chosen.prop('linux,initrd-end', { u64: [opts.initrd.end] });
  }

  root
    .child(`memory@${VIRT.ram.base.toString(16)}`)
    .prop('device_type', 'memory')
    .prop('reg', reg(VIRT.ram.base, opts.ramSize));

  const cpus = root
    .child('cpus')
    .prop('#address-cells', [1])
    .prop('#size-cells', [0])
    .prop('timebase-frequency', [TIMEBASE_HZ]);
  const cpu = cpus
    .child('cpu@0')
    .prop('device_type', 'cpu')
    .prop('reg', [0])
    .prop('status', 'okay')
    .prop('compatible', 'riscv')
    .prop('riscv,isa', RISCV_ISA_STRING)
    .prop('mmu-type', 'riscv,sv48');
  cpu
    .child('interrupt-controller')
    .prop('#interrupt-cells', [1])
    .prop('interrupt-controller', null)
    .prop('compatible', 'riscv,cpu-intc')
    .prop('phandle', [PHANDLE_CPU_INTC]);

  const soc = root
    .child('soc')
    .prop('#address-cells', [2])
    .prop('#size-cells', [2])
    .prop('compatible', 'simple-bus')
    .prop('ranges', null);

  soc
    .child(`rtc@${VIRT.rtc.base.toString(16)}`)
    .prop('interrupts', [VIRT.rtc.irq])
    .prop('interrupt-parent', [PHANDLE_PLIC])
    .prop('reg', reg(VIRT.rtc.base, VIRT.rtc.size))
    .prop('compatible', 'google,goldfish-rtc');
  soc
    .child(`serial@${VIRT.uart.base.toString(16)}`)
    .prop('interrupts', [VIRT.uart.irq])
    .prop('interrupt-parent', [PHANDLE_PLIC])
    .prop('clock-frequency', [VIRT.uart.clockHz])
    .prop('reg', reg(VIRT.uart.base, VIRT.uart.size))
    .prop('compatible', 'ns16550a');
  soc
    .child(`test@${VIRT.testDevice.base.toString(16)}`)
    .prop('phandle', [PHANDLE_TEST])
    .prop('reg', reg(VIRT.testDevice.base, VIRT.testDevice.size))
    .prop('compatible', ['sifive,test1', 'sifive,test0', 'syscon']);
  soc
    .child('poweroff')
    .prop('value', [0x5555])
    .prop('offset', [0])
    .prop('regmap', [PHANDLE_TEST])
    .prop('compatible', 'syscon-poweroff');
  soc
    .child('reboot')
    .prop('value', [0x7777])
    .prop('offset', [0])
    .prop('regmap', [PHANDLE_TEST])
    .prop('compatible', 'syscon-reboot');
  const slots = opts.virtioSlots ?? VIRT.virtio.count;
  for (let i = slots - 1; i >= 0; i--) {
    const base = virtioSlotBase(i);
    soc
      .child(`virtio_mmio@${base.toString(16)}`)
      .prop('interrupts', [VIRT.virtio.firstIrq + i])
      .prop('interrupt-parent', [PHANDLE_PLIC])
      .prop('reg', reg(base, VIRT.virtio.stride))
      .prop('compatible', 'virtio,mmio');
  }
  soc
    .child(`plic@${VIRT.plic.base.toString(16)}`)
    .prop('phandle', [PHANDLE_PLIC])
    .prop('riscv,ndev', [VIRT.plic.sources])
    .prop('reg', reg(VIRT.plic.base, VIRT.plic.size))
    .prop('interrupts-extended', [PHANDLE_CPU_INTC, 11, PHANDLE_CPU_INTC, 9])
    .prop('interrupt-controller', null)
    .prop('compatible', ['sifive,plic-1.0.0', 'riscv,plic0'])
    .prop('#address-cells', [0])
    .prop('#interrupt-cells', [1]);
  soc
    .child(`clint@${VIRT.clint.base.toString(16)}`)
    .prop('interrupts-extended', [PHANDLE_CPU_INTC, 3, PHANDLE_CPU_INTC, 7])
    .prop('reg', reg(VIRT.clint.base, VIRT.clint.size))
    .prop('compatible', ['sifive,clint0', 'riscv,clint0']);

  return serializeFdt(root);
}
