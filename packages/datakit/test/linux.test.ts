import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { guestImagesReady, runX86Guest } from '@kitset/testkit';
import { DataKitServer } from '../src/server.js';
import { fsck, git, tempDir } from './helpers.js';

const images = guestImagesReady();
const skip = images.ready ? false : images.reason;
const cleanups: Array<() => void> = [];
after(() => {
  for (const c of cleanups) c();
});

test(
  "Linux's own 9P client runs a transaction with plain shell and reads head.live",
  { skip, timeout: 150_000 },
  async () => {
    const dir = tempDir('linux');
    cleanups.push(dir.remove);
    const server = await DataKitServer.start({ git: dir.path, listen: ['tcp://127.0.0.1:0'] });
    const port = Number(new URL(server.addresses[0] ?? '').port);
    try {
      // The guest reaches the host's loopback as 10.0.2.2 (QEMU user networking).
      const script = `
set -e
mkdir -p /mnt/dk
mount -t 9p -o trans=tcp,port=${port},version=9p2000.u 10.0.2.2 /mnt/dk
cd /mnt/dk/branch
mkdir master
cd master
mkdir transactions/t1
echo hi > transactions/t1/rw/f
mkdir transactions/t1/rw/dir
echo nested > transactions/t1/rw/dir/g
echo "from linux" > transactions/t1/msg
echo commit > transactions/t1/ctl
echo "RO=$(cat ro/f)"
echo "LIVE=$(head -n1 head.live)"
echo "HEAD=$(cat head)"
echo "LS=$(ls ro | tr '\\n' ' ')"
mkdir transactions/t2
if echo frobnicate > transactions/t2/ctl 2>/tmp/err; then echo "CTL=accepted"; else echo "CTL=refused"; fi
echo close > transactions/t2/ctl
echo "TXNS=$(ls transactions | wc -l)"
cd /
umount /mnt/dk
# The same with 9P2000.L (Tlcreate, Tlopen with O_TRUNC, Treaddir, Tgetattr).
mkdir -p /mnt/dl
mount -t 9p -o trans=tcp,port=${port},version=9p2000.L 10.0.2.2 /mnt/dl
cd /mnt/dl/branch/master
mkdir transactions/t3
printf 'dotl' > transactions/t3/rw/l
chmod +x transactions/t3/rw/l
ln -s l transactions/t3/rw/link
echo "from dotl" > transactions/t3/msg
echo commit > transactions/t3/ctl
echo "DOTL=$(cat ro/l)"
echo "EXEC=$(test -x ro/l && echo yes || echo no)"
echo "LINK=$(readlink ro/link)"
echo "LIVEL=$(head -n1 head.live)"
if cat ro/missing 2>/dev/null; then echo "MISSING=found"; else echo "MISSING=enoent"; fi
cd /
umount /mnt/dl
`;
      const result = await runX86Guest({ script, timeoutMs: 140_000 });
      assert.equal(result.exitCode, 0, result.console.slice(-4000));
      if (process.env.DATAKIT_LINUX_LOG) console.log(result.output);
      const out = Object.fromEntries(
        result.output
          .split('\n')
          .filter((l) => /^[A-Z]+=/.test(l))
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      await server.settle(); // git sees what was acknowledged
      const head = git(dir.path, 'rev-parse', 'master~1').trim();
      assert.equal(out.RO, 'hi');
      assert.equal(out.LIVE, head);
      assert.equal(out.HEAD, head);
      assert.equal(out.LS?.trim(), 'dir f');
      assert.equal(out.CTL, 'refused');
      assert.equal(out.TXNS, '0');
      const final = git(dir.path, 'rev-parse', 'master').trim();
      assert.equal(out.DOTL, 'dotl');
      assert.equal(out.EXEC, 'yes');
      assert.equal(out.LINK, 'l');
      assert.equal(out.LIVEL, final);
      assert.equal(out.MISSING, 'enoent');
      assert.deepEqual(git(dir.path, 'log', '--format=%s', 'master').trim().split('\n'), [
        'from dotl',
        'from linux',
      ]);
      assert.equal(git(dir.path, 'show', 'master:dir/g'), 'nested\n');
      assert.match(
        git(dir.path, 'ls-tree', 'master', 'l', 'link'),
        /^100755 blob \S+\tl\n120000 blob \S+\tlink\n$/,
      );
      fsck(dir.path);
    } finally {
      await server.close();
    }
  },
);
