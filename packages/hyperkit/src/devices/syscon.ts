import type { MmioDevice } from '../machine/bus.js';

/** What the guest asked for through the SiFive test device. */
export type PowerEvent = { kind: 'poweroff'; code: number } | { kind: 'reset' };

/**
 * SiFive test/"finisher" device at 0x100000: 0x5555 powers off (pass), (code << 16) | 0x3333 powers off
 * reporting failure `code`, 0x7777 resets.
 */
export class SifiveTest implements MmioDevice {
  readonly name = 'sifive-test';
  constructor(private readonly onPower: (event: PowerEvent) => void) {}

  read(): number {
    return 0;
  }

  write(offset: number, _size: number, value: number): void {
    if (offset !== 0) return;
    const status = value & 0xffff;
    if (status === 0x5555) this.onPower({ kind: 'poweroff', code: 0 });
    else if (status === 0x3333) this.onPower({ kind: 'poweroff', code: value >>> 16 });
    else if (status === 0x7777) this.onPower({ kind: 'reset' });
  }
}
