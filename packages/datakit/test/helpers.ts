import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const gitEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Tester',
  GIT_AUTHOR_EMAIL: 'tester@example.com',
  GIT_COMMITTER_NAME: 'Tester',
  GIT_COMMITTER_EMAIL: 'tester@example.com',
  GIT_CONFIG_NOSYSTEM: '1',
  HOME: tmpdir(),
};

/** Runs real git in `cwd` and returns its stdout. */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env: gitEnv, encoding: 'utf8', maxBuffer: 64 << 20 });
}

export function gitBytes(cwd: string, args: string[], input?: Uint8Array): Buffer {
  return execFileSync('git', args, { cwd, env: gitEnv, input, maxBuffer: 64 << 20 });
}

/** `git fsck --strict` must be clean (throws with git's output otherwise). */
export function fsck(cwd: string): void {
  execFileSync('git', ['fsck', '--strict', '--no-dangling'], { cwd, env: gitEnv, stdio: 'pipe' });
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `kitset-datakit-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export const utf8 = (b: Uint8Array): string => Buffer.from(b).toString('utf8');
export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
