export type VpnkitErrorCode =
  | 'ERR_VPNKIT_CONFIG'
  | 'ERR_VPNKIT_FORWARD_SPEC'
  | 'ERR_VPNKIT_FORWARD_BIND'
  | 'ERR_VPNKIT_LINK'
  | 'ERR_VPNKIT_PROTOCOL'
  | 'ERR_VPNKIT_TAP'
  | 'ERR_VPNKIT_NETNS';

/** Errors with a stable `code`; messages say what to do about them. */
export class VpnkitError extends Error {
  constructor(
    readonly code: VpnkitErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'VpnkitError';
  }
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Logger = (level: LogLevel, message: string) => void;

export const consoleLogger: Logger = (level, message) => {
  if (level === 'debug' && !process.env.VPNKIT_DEBUG) return;
  process.stderr.write(`vpnkit: ${level}: ${message}\n`);
};

export const silentLogger: Logger = () => {};
