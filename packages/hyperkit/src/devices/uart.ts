import type { MmioDevice } from '../machine/bus.js';
import type { IrqLine } from '../machine/interrupts.js';

/**
 * NS16550A UART (the subset Linux's 8250 driver and OpenSBI use). Transmit is instantaneous: bytes go to
 * `onTransmit`. Received bytes queue in a bounded FIFO; input beyond it is dropped, as on real hardware.
 */
const RX_FIFO_LIMIT = 4096;

const IER_RX = 1;
const IER_THRE = 2;
const LSR_DR = 0x01;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;

export class Ns16550a implements MmioDevice {
  readonly name = 'ns16550a';
  private readonly rx: number[] = [];
  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private scr = 0;
  private dll = 0;
  private dlm = 0;
  private threPending = false;

  constructor(
    private readonly irq: IrqLine,
    private readonly onTransmit: (byte: number) => void,
  ) {}

  /** Queues host input for the guest; returns how many bytes were accepted. */
  receive(bytes: Uint8Array): number {
    let n = 0;
    for (const b of bytes) {
      if (this.rx.length >= RX_FIFO_LIMIT) break;
      this.rx.push(b);
      n++;
    }
    this.update();
    return n;
  }

  /** Takes one pending input byte (for the SBI legacy getchar), or -1. */
  takeByte(): number {
    const b = this.rx.shift();
    this.update();
    return b ?? -1;
  }

  private update(): void {
    const rxInt = (this.ier & IER_RX) !== 0 && this.rx.length > 0;
    const txInt = (this.ier & IER_THRE) !== 0 && this.threPending;
    this.irq.set(rxInt || txInt);
  }

  read(offset: number, _size: number): number {
    const dlab = (this.lcr & 0x80) !== 0;
    switch (offset) {
      case 0:
        if (dlab) return this.dll;
        {
          const b = this.rx.shift() ?? 0;
          this.update();
          return b;
        }
      case 1:
        return dlab ? this.dlm : this.ier;
      case 2: {
        // IIR: receive data outranks THR empty; FIFOs reported enabled
        let iir = 0xc1;
        if ((this.ier & IER_RX) !== 0 && this.rx.length > 0) iir = 0xc4;
        else if ((this.ier & IER_THRE) !== 0 && this.threPending) {
          iir = 0xc2;
          this.threPending = false; // reading IIR acknowledges THRE
          this.update();
        }
        return iir;
      }
      case 3:
        return this.lcr;
      case 4:
        return this.mcr;
      case 5:
        return LSR_THRE | LSR_TEMT | (this.rx.length > 0 ? LSR_DR : 0);
      case 6:
        // MSR: loopback off; report CTS, DSR and DCD asserted
        return 0xb0;
      case 7:
        return this.scr;
      default:
        return 0;
    }
  }

  write(offset: number, _size: number, value: number): void {
    const v = value & 0xff;
    const dlab = (this.lcr & 0x80) !== 0;
    switch (offset) {
      case 0:
        if (dlab) this.dll = v;
        else {
          this.onTransmit(v);
          this.threPending = true;
          this.update();
        }
        return;
      case 1:
        if (dlab) this.dlm = v;
        else {
          if ((v & IER_THRE) !== 0 && (this.ier & IER_THRE) === 0) this.threPending = true;
          this.ier = v & 0x0f;
          this.update();
        }
        return;
      case 2:
        if (v & 2) this.rx.length = 0; // FCR: clear receive FIFO
        this.update();
        return;
      case 3:
        this.lcr = v;
        return;
      case 4:
        this.mcr = v;
        return;
      case 7:
        this.scr = v;
        return;
      default:
        return;
    }
  }
}
