import { type ChildProcess, spawn } from 'node:child_process';
import { constants, accessSync } from 'node:fs';
import { Socket, createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { TestkitError } from './errors.js';

/** Whether `name` is an executable on PATH (or in the sbin folders, where diod and ip live). */
export function hasCommand(name: string): boolean {
  if (name.includes('/')) return isExecutable(name);
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const extra of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!dirs.includes(extra)) dirs.push(extra);
  return dirs.some((dir) => isExecutable(join(dir, name)));
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface CommandResult {
  /** Exit status, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout as raw bytes, for binary output (diodcat of a binary file). */
  stdoutBytes: Uint8Array;
}

export interface RunCommandOptions {
  timeoutMs: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed. */
  input?: string | Uint8Array;
  /** Output beyond this many bytes per stream is dropped (default 16 MiB). */
  maxOutputBytes?: number;
}

/** Runs a command to completion, bounded in time (killed with SIGKILL at the deadline, then rejects). */
export function runCommand(
  command: string,
  args: readonly string[],
  options: RunCommandOptions,
): Promise<CommandResult> {
  const limit = options.maxOutputBytes ?? 16 * 1024 * 1024;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? withSbinPath(process.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout = new BoundedText(limit);
    const stderr = new BoundedText(limit);
    child.stdout.on('data', (b: Buffer) => stdout.add(b));
    child.stderr.on('data', (b: Buffer) => stderr.add(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(
          new TestkitError(
            'COMMAND_TIMEOUT',
            `${command} ${args.join(' ')}: no exit within ${options.timeoutMs} ms; killed`,
            stdout.text() + stderr.text(),
          ),
        );
        return;
      }
      resolvePromise({
        code,
        signal,
        stdout: stdout.text(),
        stderr: stderr.text(),
        stdoutBytes: stdout.bytes(),
      });
    });
    child.stdin.on('error', () => {
      // The command may exit without reading its input; that is its business.
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Collects a child's output up to a limit, so a chatty peer cannot grow a test's memory without bound. */
class BoundedText {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit: number) {}
  add(chunk: Buffer): void {
    if (this.size >= this.limit) return;
    const kept = chunk.subarray(0, this.limit - this.size);
    this.chunks.push(kept);
    this.size += kept.length;
  }
  bytes(): Buffer {
    const all = Buffer.concat(this.chunks);
    this.chunks.length = 0;
    this.chunks.push(all);
    return all;
  }
  text(): string {
    return this.bytes().toString('utf8');
  }
}

function withSbinPath(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const parts = (env.PATH ?? '/usr/bin:/bin').split(delimiter);
  for (const extra of ['/usr/sbin', '/sbin']) if (!parts.includes(extra)) parts.push(extra);
  return { ...env, PATH: parts.join(delimiter) };
}

export interface DaemonOptions {
  /** Resolve once the daemon's stdout or stderr matches (else once it has been spawned). */
  readyPattern?: RegExp;
  /** Or once a TCP connection to 127.0.0.1:port succeeds. */
  readyPort?: number;
  readyTimeoutMs: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

export interface Daemon {
  readonly child: ChildProcess;
  /** Everything printed so far (stdout and stderr interleaved, bounded). */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. Safe to call twice. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts a long-running peer (diod, our own CLI) and waits until it is ready. A daemon that exits or
 * misses its deadline is killed and the promise rejects with its output.
 */
export async function startDaemon(
  command: string,
  args: readonly string[],
  options: DaemonOptions,
): Promise<Daemon> {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? withSbinPath(process.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = new BoundedText(1024 * 1024);
  let exited = child.exitCode !== null;
  const gone = new Promise<void>((r) =>
    child.once('close', () => {
      exited = true;
      r();
    }),
  );
  const daemon: Daemon = {
    child,
    output: () => out.text(),
    async stop(graceMs = 2000) {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await gone;
      clearTimeout(timer);
    },
  };
  const ready = new Promise<void>((resolvePromise, reject) => {
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolvePromise();
    };
    const timer = setTimeout(
      () =>
        finish(
          new TestkitError(
            'PROCESS_NOT_READY',
            `${command}: not ready within ${options.readyTimeoutMs} ms`,
            out.text(),
          ),
        ),
      options.readyTimeoutMs,
    );
    const onData = (b: Buffer) => {
      out.add(b);
      if (options.readyPattern?.test(out.text())) finish();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (err) => finish(err));
    child.once('close', (code, signal) =>
      finish(
        new TestkitError(
          'PROCESS_NOT_READY',
          `${command} exited (${signal ?? code}) before it was ready`,
          out.text(),
        ),
      ),
    );
    if (options.readyPort !== undefined) {
      void pollPort(options.readyPort, options.readyTimeoutMs, () => done).then((ok) => ok && finish());
    } else if (!options.readyPattern) {
      child.once('spawn', () => finish());
    }
  });
  try {
    await ready;
  } catch (err) {
    await daemon.stop(500);
    throw err;
  }
  return daemon;
}

async function pollPort(port: number, timeoutMs: number, cancelled: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !cancelled()) {
    if (await canConnect(port)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolvePromise(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, '127.0.0.1', () => done(true));
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for peers like diod that need a number up front). */
export function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePromise(port));
    });
  });
}
