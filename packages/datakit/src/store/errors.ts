/** Errors of the git store. `code` is stable; messages say what to do. */
export type StoreErrorCode =
  | 'ERR_BAD_OBJECT'
  | 'ERR_MISSING_OBJECT'
  | 'ERR_BAD_PACK'
  | 'ERR_BAD_REF'
  | 'ERR_REF_LOCKED'
  | 'ERR_NOT_A_REPO'
  | 'ERR_IO'
  | 'ERR_CLOSED';

export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
  }
}
