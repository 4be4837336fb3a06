/** Every error HyperKit raises on purpose carries a stable `code` that callers can branch on. */
export type HyperkitErrorCode =
  | 'ERR_GUEST_MEMORY_RANGE'
  | 'ERR_BAD_KERNEL'
  | 'ERR_BAD_INITRD'
  | 'ERR_BAD_DTB'
  | 'ERR_BAD_FIRMWARE'
  | 'ERR_TOO_LITTLE_MEMORY'
  | 'ERR_BAD_ARGUMENT'
  | 'ERR_UNKNOWN_DEVICE'
  | 'ERR_BUS_OVERLAP'
  | 'ERR_VM_STATE';

export class HyperkitError extends Error {
  readonly code: HyperkitErrorCode;
  constructor(code: HyperkitErrorCode, message: string) {
    super(message);
    this.name = 'HyperkitError';
    this.code = code;
  }
}

/** A guest-physical access outside guest RAM: raised by GuestMemory, never a host RangeError. */
export class GuestMemoryError extends HyperkitError {
  readonly address: number;
  readonly length: number;
  constructor(address: number, length: number) {
    super(
      'ERR_GUEST_MEMORY_RANGE',
      `guest memory access out of range: 0x${address.toString(16)} (+${length} bytes)`,
    );
    this.name = 'GuestMemoryError';
    this.address = address;
    this.length = length;
  }
}
