/**
 * Imported first by the CLI: V8 flags for a server process, which serves short bursts from a
 * fresh start as often as long runs, and whose other core is the clients'.
 * - `--interrupt-budget` at twice V8's default: hot code optimizes a little later. A fresh
 *   server's CPU per transaction over its first few hundred commits fell by 15-20%; nothing
 *   measurable over thousands.
 * - `--no-turbo-inlining`: TurboFan compiles each function alone, much faster. Over 400 commits
 *   8 writers' CPU per transaction fell by 14% and their rate rose 10%; over 3,000 the main
 *   thread ran within a few % of before, at the same rate.
 * The executable's `#!` line passes them; this sets them when the CLI is run as `node cli.js`,
 * before any of the server's code has run (V8 reads them as each function warms up).
 */
import { setFlagsFromString } from 'node:v8';

export const SERVER_V8_FLAGS = ['--interrupt-budget=135168', '--no-turbo-inlining'];

for (const flag of SERVER_V8_FLAGS) {
  const name = flag.replace(/^--(no-)?/, '').replace(/=.*$/, '');
  const given = process.execArgv.some((a) => a.replace(/^--(no-)?/, '').replace(/=.*$/, '') === name);
  if (!given) setFlagsFromString(flag);
}
