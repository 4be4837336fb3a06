// The inside half of a rootless `vpnkit run`: started by `unshare --user --map-root-user --net --mount`,
// so it is root only in its own user namespace. It creates the TAP device there, hands its fd to the
// vpnkit parent over fd 3 (SCM_RIGHTS), configures the interface, and runs the command.
import { execFileSync, spawn } from 'node:child_process';
import { loadTapAddon } from './link/tap.js';

/** What the parent tells the child (argv[2], JSON). */
export interface RootlessChildSpec {
  tunDevice: string;
  vnetHdr: boolean;
  mtu: number;
  /** "ADDR/PREFIX" to assign, or null when the command configures the interface itself (DHCP). */
  address: string | null;
  gateway: string;
  /** A resolv.conf naming the gateway, bind-mounted over /etc/resolv.conf (best effort). */
  resolvConf: string;
}

const FD_SOCKET = 3;

function say(message: string): void {
  process.stderr.write(`vpnkit: ${message}\n`);
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function main(): number | Promise<number> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as RootlessChildSpec;
  const command = process.argv.slice(3);
  const addon = loadTapAddon();
  try {
    const { fd } = addon.open('tap0', '', spec.vnetHdr, spec.tunDevice);
    const sent = addon.sendFd(FD_SOCKET, fd);
    addon.close(fd);
    addon.close(FD_SOCKET);
    if (!sent) throw new Error('could not hand the TAP device to vpnkit');
  } catch (err) {
    say(
      `rootless run: ${(err as Error).message} (${spec.tunDevice} must be usable by this user; it is mode 0666 on a stock system)`,
    );
    return 1;
  }
  try {
    ip(['link', 'set', 'lo', 'up']);
    ip(['link', 'set', 'tap0', 'mtu', String(spec.mtu), 'up']);
    if (spec.address) {
      ip(['addr', 'add', spec.address, 'dev', 'tap0']);
      ip(['route', 'add', 'default', 'via', spec.gateway]);
    }
  } catch (err) {
    say(
      `rootless run: configuring tap0 failed: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`,
    );
    return 1;
  }
  try {
    execFileSync('mount', ['--bind', spec.resolvConf, '/etc/resolv.conf'], { stdio: 'ignore' });
  } catch {
    say('rootless run: could not bind-mount resolv.conf; name resolution uses the host resolvers');
  }
  const child = spawn(command[0] ?? 'sh', command.slice(1), { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  return new Promise<number>((resolve) => {
    child.on('error', (err) => {
      say(`${command[0]}: ${err.message}`);
      resolve(127);
    });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

Promise.resolve(main()).then((code) => process.exit(code));
