import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The monorepo's root: the nearest ancestor holding `.ci/` (tests run from `dist/`, so relative paths
 * from a test file are fragile). Starts at `from`, else at this module, else at the working directory.
 */
export function findRepoRoot(from?: string): string {
  const starts = from ? [resolve(from)] : [dirname(fileURLToPath(import.meta.url)), process.cwd()];
  for (const start of starts) {
    let dir = start;
    for (;;) {
      if (existsSync(join(dir, '.ci')) && existsSync(join(dir, 'package.json'))) return dir;
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  throw new Error(`findRepoRoot: no ancestor of ${starts.join(' or ')} contains .ci/ and package.json`);
}
