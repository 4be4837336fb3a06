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
