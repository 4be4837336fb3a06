#!/usr/bin/env node
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseListenUrl } from './address.js';
import { HostFsBackend } from './hostfs/hostfs.js';
import { type Listener, NinePServer } from './server/server.js';

const USAGE = `usage: ninep serve DIR [--listen URL]... [--read-only] [--msize BYTES]

Exports DIR over 9P (9P2000, 9P2000.u and 9P2000.L).
  --listen URL   tcp://HOST:PORT or unix:///path (repeatable; default tcp://127.0.0.1:5640)
  --read-only    refuse every change
  --msize BYTES  the largest message size to agree to (default 1048576)`;

class UsageError extends Error {}

interface ServeArgs {
  dir: string;
  listen: string[];
  readOnly: boolean;
  msize: number | undefined;
}

function parseArgs(argv: string[]): ServeArgs {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError('missing command');
  if (command !== 'serve') throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  const args: ServeArgs = { dir: '', listen: [], readOnly: false, msize: undefined };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    const value = (): string => {
      const v = rest[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--listen' || a.startsWith('--listen=')) {
      const url = a === '--listen' ? value() : a.slice('--listen='.length);
      try {
        parseListenUrl(url);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      args.listen.push(url);
    } else if (a === '--read-only') args.readOnly = true;
    else if (a === '--msize') {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 4096)
        throw new UsageError('--msize must be an integer of at least 4096');
      args.msize = n;
    } else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else if (args.dir === '') args.dir = a;
    else throw new UsageError(`unexpected argument ${JSON.stringify(a)}`);
  }
  if (args.dir === '') throw new UsageError('missing DIR');
  if (args.listen.length === 0) args.listen.push('tcp://127.0.0.1:5640');
  return args;
}

function mountHint(l: Listener): string {
  if (l.address.startsWith('unix://'))
    return `mount -t 9p -o trans=unix,version=9p2000.L ${l.address.slice('unix://'.length)} /mnt`;
  const where = parseListenUrl(l.address);
  const host = where.kind === 'tcp' ? where.host : '';
  return `mount -t 9p -o trans=tcp,port=${l.port},version=9p2000.L ${host} /mnt`;
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  let args: ServeArgs;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`ninep: ${e.message}\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  const dir = resolve(args.dir);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true });
    console.log(`created ${dir}`);
  } else if (!statSync(dir).isDirectory()) {
    console.error(`ninep: ${dir} is not a directory`);
    return 2;
  }
  const server = new NinePServer(new HostFsBackend(dir, { readOnly: args.readOnly }), {
    ...(args.msize !== undefined ? { maxMsize: args.msize } : {}),
  });
  const listeners: Listener[] = [];
  try {
    for (const url of args.listen) listeners.push(await server.listen(url));
  } catch (e) {
    console.error(`ninep: cannot listen: ${(e as Error).message}`);
    await server.close();
    return 1;
  }
  console.log(`serving ${dir}${args.readOnly ? ' (read-only)' : ''}`);
  for (const l of listeners) {
    console.log(`listening on ${l.address}`);
    console.log(`mount it with: ${mountHint(l)}`);
  }
  await new Promise<void>((resolveStop) => {
    const stop = (signal: string) => {
      console.log(`${signal}: shutting down`);
      resolveStop();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await server.close();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(`ninep: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  },
);
