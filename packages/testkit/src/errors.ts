/** Errors from the test helpers, with stable codes so suites can tell a slow guest from a broken one. */
export type TestkitErrorCode =
  | 'GUEST_IMAGES_MISSING'
  | 'GUEST_TIMEOUT'
  | 'GUEST_NO_STATUS'
  | 'GUEST_ABORTED'
  | 'QEMU_FAILED'
  | 'COMMAND_TIMEOUT'
  | 'PROCESS_NOT_READY'
  | 'BAD_ARGUMENT';

export class TestkitError extends Error {
  override readonly name = 'TestkitError';
  constructor(
    readonly code: TestkitErrorCode,
    message: string,
    /** Whatever the peer printed (QEMU's serial console, a daemon's output), for the failure message. */
    readonly output = '',
  ) {
    super(output ? `${message}\n--- output (last 4000 chars) ---\n${output.slice(-4000)}` : message);
  }
}
