import { TestkitError } from './errors.js';
import { runCommand } from './process.js';

const NAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

/**
 * Creates network namespace `name` (`ip netns add`), runs `fn`, and always deletes it afterwards, killing
 * anything still running inside first, so a failed test leaves no namespace or process behind.
 * Needs root. Pick a name unique to the test (e.g. with the pid) since namespaces are machine-wide.
 */
export async function withNetns<T>(name: string, fn: (name: string) => Promise<T> | T): Promise<T> {
  if (!NAME_RE.test(name))
    throw new TestkitError('BAD_ARGUMENT', `withNetns: bad namespace name ${JSON.stringify(name)}`);
  await ip(['netns', 'add', name]);
  try {
    return await fn(name);
  } finally {
    await deleteNetns(name);
  }
}

async function deleteNetns(name: string): Promise<void> {
  const pids = await runCommand('ip', ['netns', 'pids', name], { timeoutMs: 5000 });
  for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  await ip(['netns', 'del', name]);
}

async function ip(args: string[]): Promise<void> {
  const r = await runCommand('ip', args, { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
}

/** Runs a command inside namespace `name` (`ip netns exec`). */
export function netnsExec(name: string, command: string, args: readonly string[], timeoutMs: number) {
  return runCommand('ip', ['netns', 'exec', name, command, ...args], { timeoutMs });
}
