import { runCommand } from './process.js';

export interface FsckResult {
  ok: boolean;
  exitCode: number | null;
  /** git's stdout and stderr together: the problems it found, if any. */
  output: string;
}

/** `git fsck --strict` on a repository (bare or not): the check that a store we wrote is real git. */
export async function gitFsck(repoPath: string, timeoutMs = 60_000): Promise<FsckResult> {
  const r = await runCommand('git', ['-C', repoPath, 'fsck', '--strict', '--no-progress'], {
    timeoutMs,
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', LC_ALL: 'C' },
  });
  return { ok: r.code === 0, exitCode: r.code, output: (r.stdout + r.stderr).trim() };
}
