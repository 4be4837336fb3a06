#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KitsetError } from './errors.js';
import { prepareGuest } from './guest.js';
import { type KitsetSystem, checkShare, parsePublish, startSystem } from './system.js';

const USAGE = `usage: kitset run [options] [-- guest command]

Boots a riscv64 Linux VM (HyperKit) networked by VPNKit and sharing DataKit's tree, all in this process.
Without a guest command, the guest's console is attached to this terminal with busybox's shell on it
(\`exit\` or Ctrl-] quits; Ctrl-C goes to the guest); with one, it runs in the guest and kitset exits with
the number of failed guest commands.

options:
  --share DIR            share a host directory (9P tag "share", mounted on /share)
  --publish [ADDR:]HOSTPORT:GUESTPORT[/udp]
                         forward a host port to the guest (repeatable; ADDR defaults to 127.0.0.1)
  --disk FILE            raw or qcow2 image as /dev/vda
  --memory SIZE          guest RAM (default 256M)
  --mtu N                the guest link's MTU, 576..65520 (default 1500; the guest's TCP sends and
                         receives 64 KiB segments through virtio-net's TSO whatever the MTU)
  --state DIR            keep DataKit's git store, its socket and vsock sockets here (default: temporary)
  --vpnkit PATH          use the VPNKit listening on this Unix socket (vpnkit --listen-vmnet PATH)
                         instead of one in this process
  -h, --help             this text

guest commands (separate several with ';'):
  net | dns NAME | get IP:PORT/PATH | send IP:PORT MIB | serve PORT | vsock-echo PORT |
  ls DIR | cat FILE | read FILE | drain FILE | mkdir DIR | write FILE TEXT... | sleep MS | sh SCRIPT (busybox)
The guest is 192.168.65.3; the host's 127.0.0.1 is 192.168.65.254; DataKit's tree is on /datakit.`;

export interface RunArgs {
  share?: string;
  publish: string[];
  disk?: string;
  memory?: string;
  state?: string;
  vpnkit?: string;
  mtu?: number;
  command: string[];
}

/** Parses `run`'s arguments (everything after `run`). */
export function parseRunArgs(argv: string[]): RunArgs {
  const out: RunArgs = { publish: [], command: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      out.command = argv
        .slice(i + 1)
        .join(' ')
        .split(';')
        .map((c) => c.trim())
        .filter((c) => c !== '');
      break;
    }
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new KitsetError('ERR_KITSET_ARGUMENT', `${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--share':
        out.share = value();
        checkShare(out.share);
        break;
      case '--publish':
      case '-p': {
        const spec = value();
        parsePublish(spec); // reject bad specs before building anything
        out.publish.push(spec);
        break;
      }
      case '--disk':
        out.disk = value();
        break;
      case '--memory':
      case '-m':
        out.memory = value();
        break;
      case '--state':
        out.state = value();
        break;
      case '--vpnkit':
        out.vpnkit = value();
        break;
      case '--mtu': {
        const text = value();
        const mtu = Number(text);
        if (!/^\d+$/.test(text) || mtu < 576 || mtu > 65520)
          throw new KitsetError('ERR_KITSET_ARGUMENT', `--mtu ${text}: expected a number from 576 to 65520`);
        out.mtu = mtu;
        break;
      }
      default:
        throw new KitsetError('ERR_KITSET_ARGUMENT', `unknown option ${arg} (kitset --help lists them)`);
    }
  }
  return out;
}

const CTRL_RIGHT_BRACKET = 0x1d;
/** What kitset's guest init prints once its console is open. */
const GUEST_READY = 'KS up';

/**
 * Attaches the console to this terminal until the guest powers off or the user presses Ctrl-] (telnet's
 * escape). The terminal is raw, so every other key, Ctrl-C included, goes to the guest: its shell has the
 * console as controlling tty and interrupts the command it runs.
 */
function attachConsole(system: KitsetSystem): void {
  system.console.output.pipe(process.stdout, { end: false });
  const stdin = process.stdin;
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.on('data', (chunk: Buffer) => {
    const quit = chunk.indexOf(CTRL_RIGHT_BRACKET);
    if (quit >= 0) {
      if (quit > 0) system.console.input.write(chunk.subarray(0, quit));
      void system.stop();
      return;
    }
    system.console.input.write(chunk);
  });
  stdin.pause(); // adding a 'data' listener started the flow
  // Bytes typed (or piped) before the guest's init has its console open would be lost while the
  // kernel's serial driver starts; start reading once init says it is up.
  let seen = '';
  const waitForInit = (d: Buffer) => {
    seen = (seen + d.toString('latin1')).slice(-64);
    if (!seen.includes(GUEST_READY)) return;
    system.console.output.off('data', waitForInit);
    stdin.resume();
  };
  system.console.output.on('data', waitForInit);
  void system.exited.finally(() => {
    if (stdin.isTTY) stdin.setRawMode(false);
    stdin.pause();
  });
}

/** Runs the guest command; resolves with kitset's exit status (the guest's count of failed commands). */
async function runCommand(system: KitsetSystem): Promise<number> {
  let status: number | undefined;
  let pending = '';
  system.console.output.on('data', (d: Buffer) => {
    const text = d.toString('latin1');
    process.stdout.write(text);
    pending += text;
    let nl = pending.indexOf('\n');
    while (nl >= 0) {
      const m = /^KS exit (\d+)/.exec(pending.slice(0, nl).replace(/\r$/, ''));
      if (m) status = Number(m[1]);
      pending = pending.slice(nl + 1);
      nl = pending.indexOf('\n');
    }
  });
  const exit = await system.exited;
  if (status === undefined) {
    process.stderr.write(
      `kitset: the guest stopped (${JSON.stringify(exit)}) before finishing its commands\n`,
    );
    return 1;
  }
  return Math.min(status, 125);
}

export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === undefined || verb === '-h' || verb === '--help' || verb === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return verb === undefined ? 2 : 0;
  }
  if (verb !== 'run')
    throw new KitsetError('ERR_KITSET_ARGUMENT', `unknown command "${verb}" (try kitset run)`);
  if (rest.includes('-h') || rest.includes('--help')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const args = parseRunArgs(rest);
  const progress = (line: string) => process.stderr.write(`kitset: ${line}\n`);
  progress('preparing the guest image (the first build of the kernel takes several minutes)');
  const guest = await prepareGuest(progress);
  const interactive = args.command.length === 0;
  const system = await startSystem({
    kernel: guest.kernel,
    initrd: guest.initrd,
    ...(args.share !== undefined ? { share: args.share } : {}),
    ...(args.disk !== undefined ? { disk: args.disk } : {}),
    ...(args.memory !== undefined ? { memory: args.memory } : {}),
    ...(args.state !== undefined ? { stateDir: args.state } : {}),
    ...(args.vpnkit !== undefined ? { vpnkitSocket: args.vpnkit } : {}),
    ...(args.mtu !== undefined ? { vpnkit: { mtu: args.mtu } } : {}),
    publish: args.publish,
    guestCommand: args.command,
    ...(interactive && process.stdout.isTTY
      ? { consoleSize: { rows: process.stdout.rows, cols: process.stdout.columns } }
      : {}),
  });
  const network = system.vpnkit
    ? `guest ${system.guestAddress} (${system.guestMac}); host loopback is ${system.hostAddress ?? 'off'}`
    : `guest ${system.guestMac} on the VPNKit at ${args.vpnkit}`;
  progress(`${network}; DataKit at ${system.datakitAddress}; vsock sockets in ${system.vsockDir}`);
  for (const p of system.published)
    progress(`published ${p.protocol} ${p.hostAddress}:${p.hostPort} -> guest port ${p.guestPort}`);
  let status = 0;
  try {
    if (!interactive) status = await runCommand(system);
    else {
      progress('console attached; exit or Ctrl-] quits');
      attachConsole(system);
      await system.exited;
    }
  } finally {
    await system.stop();
  }
  return status;
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      process.stderr.write(`kitset: ${message}\n`);
      process.exit(err instanceof KitsetError && err.code === 'ERR_KITSET_ARGUMENT' ? 2 : 1);
    },
  );
}
