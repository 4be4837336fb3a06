/** Why a byte buffer is not a valid packet. Stable codes so callers can count drops by reason. */
export type WireErrorCode =
  | 'ERR_WIRE_TRUNCATED'
  | 'ERR_WIRE_MALFORMED'
  | 'ERR_WIRE_CHECKSUM'
  | 'ERR_WIRE_UNSUPPORTED';

export class WireError extends Error {
  constructor(
    readonly code: WireErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'WireError';
  }
}
