#!/usr/bin/env node
// `npm run bench -- NAME [args]`: runs bench/dist/NAME.js, which measures ours and its anchor in one run
// and prints a table with ratios. Without NAME, lists the benchmarks.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const dist = new URL('./dist/', import.meta.url).pathname;
const names = existsSync(dist)
  ? readdirSync(dist)
      .filter((f) => f.endsWith('.js') && !f.startsWith('_'))
      .map((f) => f.slice(0, -3))
  : [];
const [name, ...args] = process.argv.slice(2);
if (!name || !names.includes(name)) {
  console.error(
    `usage: npm run bench -- NAME\nbenchmarks: ${names.join(', ') || '(none built; run npm run build)'}`,
  );
  process.exit(name ? 1 : 0);
}
const child = spawn(process.execPath, [join(dist, `${name}.js`), ...args], { stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
