/**
 * Linux's own 9P client against our server: a QEMU guest (guest/x86) mounts a host directory served by
 * NinePServer over TCP with each dialect in turn, works in it with ordinary tools, and the test checks the
 * results on the host side. Also checks that nothing outside the export is reachable from the guest.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type X86GuestResult, guestImagesReady, runX86Guest } from '@kitset/testkit';
import { HostFsBackend, type Listener, NinePServer } from '../src/index.js';

const images = guestImagesReady();
const skip = images.ready ? false : images.reason;

/** The three dialects, the folder each works in, and whether it can make symlinks. */
const DIALECTS = [
  { version: '9p2000', dir: 'v9p2000', symlinks: false },
  { version: '9p2000.u', dir: 'v9p2000u', symlinks: true },
  { version: '9p2000.L', dir: 'v9p2000L', symlinks: true },
] as const;

const HELLO = 'hello from the host\n';
const HOST_BIG = randomBytes(3 * 1024 * 1024 + 77);
const md5 = (data: Uint8Array) => createHash('md5').update(data).digest('hex');
const secret = `kitset-secret-${randomBytes(8).toString('hex')}`;
let top = '';
let exportDir = '';
let outsideDir = '';
let run: X86GuestResult | undefined;
let sections = new Map<string, string>();

function guestScript(port: number): string {
  const lines = [
    'fail=0',
    // Each step prints its output; a failing step is reported and counted, the rest still run.
    'step() { name="$1"; shift; echo "-- $name"; if ! "$@"; then echo "STEP-FAILED $name"; fail=$((fail+1)); fi; }',
    'mkdir -p /mnt/9p',
  ];
  for (const d of DIALECTS) {
    const w = `/mnt/9p/${d.dir}`;
    lines.push(
      `echo "=== BEGIN ${d.version}"`,
      `if mount -t 9p -o trans=tcp,port=${port},version=${d.version} 10.0.2.2 /mnt/9p; then`,
      `  step ls ls -1 ${w}/seed-dir`,
      `  step cat cat ${w}/hello.txt`,
      `  step write sh -c 'echo "written by guest" > ${w}/new.txt'`,
      `  step overwrite sh -c 'printf "short" > ${w}/seed-dir/one.txt'`,
      `  step append sh -c 'echo "appended by guest" >> ${w}/hello.txt'`,
      `  step mkdir mkdir ${w}/made-dir`,
      `  step write-in-dir sh -c 'echo inner > ${w}/made-dir/inner.txt'`,
      `  step mv-same-dir mv ${w}/new.txt ${w}/renamed.txt`,
      `  step mv-other-dir mv ${w}/renamed.txt ${w}/made-dir/moved.txt`,
      `  step rm rm ${w}/to-delete.txt`,
      `  step rmdir rmdir ${w}/empty-dir`,
      `  step stat stat -c '%s %F' ${w}/hello.txt ${w}/made-dir`,
      `  step ls-after ls -1 ${w}/made-dir`,
      `  step chmod chmod 600 ${w}/seed-dir/two.txt`,
      `  step truncate truncate -s 3 ${w}/seed-dir/two.txt`,
      // Larger than any msize, so reads and writes span many messages.
      `  step md5-host-file md5sum ${w}/host-big.bin`,
      `  step write-big dd if=/dev/urandom of=${w}/guest-big.bin bs=65536 count=40 2>/dev/null`,
      `  step md5-guest-file md5sum ${w}/guest-big.bin`,
    );
    if (d.version === '9p2000.L') lines.push(`  step hardlink ln ${w}/hello.txt ${w}/hard-link`);
    if (d.symlinks) {
      lines.push(
        `  step symlink ln -s hello.txt ${w}/link-to-hello`,
        `  step readlink readlink ${w}/link-to-hello`,
        `  step cat-link cat ${w}/link-to-hello`,
        // Escape attempts. The guest resolves symlinks itself, so these must reach only the guest's own
        // files or nothing; the host's secret must never show up.
        `  ln -s /etc ${w}/etc-link`,
        `  echo "-- escape-etc"; cat ${w}/etc-link/passwd`,
        `  echo "-- escape-host-abs"; cat ${w}/host-abs-link`,
        `  echo "-- escape-host-rel"; cat ${w}/host-rel-link`,
      );
    }
    lines.push(
      `  echo "-- escape-dotdot"; cat /mnt/9p/../outside/secret.txt ${w}/../../outside/secret.txt`,
      '  cd /',
      '  step umount umount /mnt/9p',
      'else',
      `  echo "STEP-FAILED mount-${d.version}"; fail=$((fail+1))`,
      'fi',
      `echo "=== END ${d.version}"`,
    );
  }
  lines.push('exit $fail');
  return `${lines.join('\n')}\n`;
}

let server: Listener | undefined;

before(
  async () => {
    if (skip) return;
    top = await mkdtemp(join(tmpdir(), 'kitset-linux9p-'));
    exportDir = join(top, 'export');
    outsideDir = join(top, 'outside');
    await mkdir(outsideDir, { recursive: true });
    await writeFile(join(outsideDir, 'secret.txt'), `${secret}\n`);
    for (const d of DIALECTS) {
      const w = join(exportDir, d.dir);
      await mkdir(join(w, 'seed-dir'), { recursive: true });
      await mkdir(join(w, 'empty-dir'));
      await writeFile(join(w, 'hello.txt'), HELLO);
      await writeFile(join(w, 'to-delete.txt'), 'bye\n');
      await writeFile(join(w, 'host-big.bin'), HOST_BIG);
      await writeFile(join(w, 'seed-dir', 'one.txt'), 'one\n');
      await writeFile(join(w, 'seed-dir', 'two.txt'), 'two\n');
      await symlink(join(outsideDir, 'secret.txt'), join(w, 'host-abs-link'));
      await symlink('../../outside/secret.txt', join(w, 'host-rel-link'));
    }
    const ninep = new NinePServer(new HostFsBackend(exportDir), { logger: () => {} });
    const listening = await ninep.listen('tcp://127.0.0.1:0');
    server = listening;
    const port = listening.port;
    assert.ok(port, 'server listens on a TCP port');
    run = await runX86Guest({ script: guestScript(port), timeoutMs: 100_000 });
    // KITSET_SHOW_GUEST=1 prints what the guest did, for debugging a failure by eye.
    if (process.env.KITSET_SHOW_GUEST) console.log(run.output);
    sections = new Map();
    for (const m of run.output.matchAll(/=== BEGIN (\S+)\n([\s\S]*?)=== END \1/g)) sections.set(m[1]!, m[2]!);
  },
  { timeout: 150_000 },
);

after(async () => {
  await server?.close();
  if (top) await rm(top, { recursive: true, force: true });
});

/** The output of step `name` within a dialect's section: the lines after `-- name` up to the next step. */
function stepOutput(version: string, name: string): string {
  const section = sections.get(version) ?? '';
  const start = section.indexOf(`-- ${name}\n`);
  if (start < 0) return '';
  const rest = section.slice(start + name.length + 4);
  const end = rest.search(/^-- /m);
  return end < 0 ? rest : rest.slice(0, end);
}

test('the guest ran every step of every dialect', { skip, timeout: 5000 }, () => {
  assert.ok(run);
  assert.equal(run.exitCode, 0, run.output);
  assert.doesNotMatch(run.output, /STEP-FAILED/);
  assert.equal(sections.size, 3, run.output);
});

for (const d of DIALECTS) {
  test(
    `Linux mounts it with version=${d.version}: ls, cat, write, append, mkdir, mv, rm, rmdir, stat, chmod, truncate, large files`,
    { skip, timeout: 5000 },
    () => {
      assert.ok(run);
      const w = join(exportDir, d.dir);
      const out = (name: string) => stepOutput(d.version, name);
      // What the guest saw.
      assert.equal(out('ls'), 'one.txt\ntwo.txt\n', run.output);
      assert.equal(out('cat'), HELLO);
      const [fileStat, dirStat] = out('stat').split('\n');
      assert.equal(fileStat, `${HELLO.length + 'appended by guest\n'.length} regular file`);
      assert.match(dirStat ?? '', /^\d+ directory$/);
      assert.equal(out('ls-after'), 'inner.txt\nmoved.txt\n');
      // What the host has.
      assert.equal(readFileSync(join(w, 'hello.txt'), 'utf8'), `${HELLO}appended by guest\n`);
      assert.equal(readFileSync(join(w, 'seed-dir', 'one.txt'), 'utf8'), 'short');
      assert.ok(lstatSync(join(w, 'made-dir')).isDirectory());
      assert.equal(readFileSync(join(w, 'made-dir', 'inner.txt'), 'utf8'), 'inner\n');
      assert.equal(readFileSync(join(w, 'made-dir', 'moved.txt'), 'utf8'), 'written by guest\n');
      assert.ok(!existsSync(join(w, 'new.txt')) && !existsSync(join(w, 'renamed.txt')));
      assert.ok(!existsSync(join(w, 'to-delete.txt')));
      assert.ok(!existsSync(join(w, 'empty-dir')));
      assert.equal(lstatSync(join(w, 'seed-dir', 'two.txt')).mode & 0o777, 0o600);
      assert.equal(readFileSync(join(w, 'seed-dir', 'two.txt'), 'utf8'), 'two');
      assert.equal(out('md5-host-file').split(' ')[0], md5(HOST_BIG));
      const guestBig = readFileSync(join(w, 'guest-big.bin'));
      assert.equal(guestBig.length, 40 * 65536);
      assert.equal(out('md5-guest-file').split(' ')[0], md5(guestBig));
      if (d.version === '9p2000.L') {
        assert.equal(lstatSync(join(w, 'hard-link')).ino, lstatSync(join(w, 'hello.txt')).ino);
        assert.equal(lstatSync(join(w, 'hello.txt')).nlink, 2);
      }
    },
  );
}

for (const d of DIALECTS.filter((x) => x.symlinks)) {
  test(`Linux makes symlinks with version=${d.version}`, { skip, timeout: 5000 }, () => {
    const w = join(exportDir, d.dir);
    assert.equal(stepOutput(d.version, 'readlink'), 'hello.txt\n');
    assert.equal(stepOutput(d.version, 'cat-link'), `${HELLO}appended by guest\n`);
    assert.ok(lstatSync(join(w, 'link-to-hello')).isSymbolicLink());
    assert.equal(readlinkSync(join(w, 'link-to-hello')), 'hello.txt');
    // A symlink to /etc is stored as written; it is the guest's own /etc it leads to.
    assert.equal(readlinkSync(join(w, 'etc-link')), '/etc');
  });
}

test('nothing outside the export is reachable from the guest', { skip, timeout: 5000 }, () => {
  assert.ok(run);
  assert.ok(!run.console.includes(secret), 'the host secret outside the export reached the guest');
  // The host's /etc/passwd has system users the guest's two-line passwd lacks.
  const hostPasswd = readFileSync('/etc/passwd', 'utf8');
  const hostOnly = hostPasswd
    .split('\n')
    .find((l) => l && !l.startsWith('root:') && !l.startsWith('nobody:'));
  if (hostOnly)
    assert.ok(!run.console.includes(hostOnly), `host /etc/passwd line reached the guest: ${hostOnly}`);
  for (const d of DIALECTS.filter((x) => x.symlinks)) {
    assert.match(stepOutput(d.version, 'escape-etc'), /^root:x:0:0:root:\/root:\/bin\/sh\n/);
  }
  // The guest wrote nothing outside the export.
  assert.deepEqual(readdirSync(top).sort(), ['export', 'outside']);
  assert.deepEqual(readdirSync(outsideDir), ['secret.txt']);
  assert.equal(readFileSync(join(outsideDir, 'secret.txt'), 'utf8'), `${secret}\n`);
});
