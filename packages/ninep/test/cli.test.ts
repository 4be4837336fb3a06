import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NinePClient } from '../src/index.js';

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(join(d, '.ci')) && dirname(d) !== d) d = dirname(d);
  return d;
}
const cli = join(repoRoot(), 'packages/ninep/dist/src/cli.js');

test('bad command lines exit 2 with a usage message', { timeout: 10000 }, () => {
  for (const args of [
    [],
    ['frobnicate'],
    ['serve'],
    ['serve', '/tmp', '--listen', 'http://x'],
    ['serve', '/tmp', '--bogus'],
  ]) {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 5000 });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /usage: ninep serve DIR/);
  }
});

test(
  'serve prints its address and mount line, serves files, and exits cleanly on SIGTERM',
  { timeout: 15000 },
  async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'ninep-cli-'));
    fs.writeFileSync(join(dir, 'f.txt'), 'from cli');
    const sock = join(dir, 's.sock');
    let child: ChildProcess | undefined;
    try {
      child = spawn(
        process.execPath,
        [cli, 'serve', dir, '--listen', 'tcp://127.0.0.1:0', '--listen', `unix://${sock}`],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
      });
      for (let i = 0; i < 200 && !/mount it with:.*\n.*\n.*mount it with/s.test(out); i++)
        await new Promise((r) => setTimeout(r, 25));
      const m = /listening on (tcp:\/\/127\.0\.0\.1:(\d+))/.exec(out);
      assert.ok(m, out);
      assert.match(out, new RegExp(`mount -t 9p -o trans=tcp,port=${m[2]},version=9p2000.L 127.0.0.1 /mnt`));
      assert.match(out, /listening on unix:\/\//);
      for (const url of [m[1]!, `unix://${sock}`]) {
        const c = await NinePClient.connect(url);
        await c.attach();
        assert.equal(new TextDecoder().decode(await c.readFile('f.txt')), 'from cli');
        c.close();
      }
      const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      if (child && child.exitCode === null) child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);
