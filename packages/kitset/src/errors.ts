export type KitsetErrorCode =
  | 'ERR_KITSET_ARGUMENT'
  | 'ERR_KITSET_GUEST_BUILD'
  | 'ERR_KITSET_PUBLISH'
  | 'ERR_KITSET_STATE_DIR';

/** Errors with a stable `code`; messages say what to do about them. */
export class KitsetError extends Error {
  constructor(
    readonly code: KitsetErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'KitsetError';
  }
}
