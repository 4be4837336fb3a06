import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hasCommand } from '@kitset/testkit';
import { buildInitrd, buildKernel, findBusybox } from '../src/guest.js';
import { type KitsetSystem, startSystem } from '../src/system.js';

const BOOT_DEADLINE_MS = 150_000;
const PAYLOAD_BYTES = 1024 * 1024 + 17;

/** The guest with busybox in its initramfs, or why not (scripts/prepare.d builds both in CI). */
async function guestOrSkipReason(): Promise<{ kernel: string; initrd: string } | string> {
  const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kitset', 'guest-riscv');
  if (!existsSync(join(cache, 'current', 'Image')))
    return 'riscv64 guest kernel not built: run bash guest/riscv/build.sh (scripts/prepare.d does in CI)';
  if (!hasCommand('riscv64-linux-gnu-gcc'))
    return 'riscv64-linux-gnu-gcc missing (apt-get install gcc-riscv64-linux-gnu)';
  const busybox = findBusybox();
  if (!busybox)
    return 'riscv64 busybox not built: run bash guest/riscv-busybox/build.sh (scripts/prepare.d does in CI)';
  try {
    return { kernel: await buildKernel(), initrd: await buildInitrd(() => {}, busybox) };
  } catch (err) {
    return `cannot prepare the guest: ${(err as Error).message}`;
  }
}

test(
  'kitset guest with busybox: ip, wget + md5sum, a DataKit commit from plain sh',
  { timeout: BOOT_DEADLINE_MS + 30_000 },
  async (t) => {
    const guest = await guestOrSkipReason();
    if (typeof guest === 'string') return t.skip(guest);

    const payload = randomBytes(PAYLOAD_BYTES);
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Length': payload.length });
      res.end(payload);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const httpPort = (server.address() as AddressInfo).port;
    let system: KitsetSystem | undefined;
    try {
      // One `sh` per step (kitset.run separates commands with `;`, so each script chains with &&).
      const commands = [
        // The kernel's DHCP lease (ip=dhcp), read back with busybox's ip; then busybox's own DHCP client
        // renews it from VPNKit and busybox's resolver asks VPNKit's DNS forwarder.
        'sh ip -4 addr show dev eth0 && ip route && cat /etc/resolv.conf',
        'sh udhcpc -n -q -i eth0 && nslookup host.kitset.internal',
        `sh wget -q -O /tmp/payload http://192.168.65.254:${httpPort}/payload && md5sum /tmp/payload && wc -c /tmp/payload`,
        'sh mkdir -p /datakit/branch/master && cd /datakit/branch/master/transactions && mkdir t1 && echo hi > t1/rw/f && echo commit from busybox sh > t1/msg && echo commit > t1/ctl && echo committed-$(cat ../ro/f)',
      ];
      const logs: string[] = [];
      system = await startSystem({
        kernel: guest.kernel,
        initrd: guest.initrd,
        memory: '128M',
        guestCommand: commands,
        stopOnSignals: false,
        log: (m) => logs.push(m),
      });
      const sys = system;
      let console = '';
      sys.console.output.on('data', (d: Buffer) => {
        console += d.toString('latin1');
      });
      const deadline = setTimeout(() => sys.vm.stop(), BOOT_DEADLINE_MS);
      const exit = await sys.exited;
      clearTimeout(deadline);
      const text = console.replace(/\r/g, '');
      const tail = `\nconsole:\n${text.slice(-4000)}\nlogs:\n${logs.join('\n')}`;

      await t.test('every shell step succeeded and the guest powered off', () => {
        assert.deepEqual(exit, { kind: 'poweroff', code: 0 }, tail);
        assert.equal(text.match(/^KS sh ok$/gm)?.length, commands.length, tail);
        assert.match(text, /^KS exit 0$/m, tail);
      });
      await t.test("busybox's ip shows the DHCP lease from VPNKit; resolv.conf has its nameserver", () => {
        assert.match(text, new RegExp(`^nameserver ${sys.gatewayAddress}$`, 'm'), tail);
        assert.match(text, new RegExp(`inet ${sys.guestAddress}/24 `), tail);
        assert.match(text, new RegExp(`^default via ${sys.gatewayAddress} dev eth0`, 'm'), tail);
        assert.match(
          text,
          new RegExp(`lease of ${sys.guestAddress} obtained from ${sys.gatewayAddress}`),
          tail,
        );
        assert.match(text, /^Name:\s+host\.kitset\.internal\nAddress: 192\.168\.65\.254$/m, tail);
      });
      await t.test('busybox wget downloads from host loopback through the gateway; md5sum matches', () => {
        const md5 = createHash('md5').update(payload).digest('hex');
        assert.match(text, new RegExp(`^${md5}  /tmp/payload$`, 'm'), tail);
        assert.match(text, new RegExp(`^${PAYLOAD_BYTES} /tmp/payload$`, 'm'), tail);
      });
      await t.test('a DataKit transaction committed with plain shell is in git log', async () => {
        assert.match(text, /^committed-hi$/m, tail);
        // DataKit acknowledges a commit once journalled and publishes it to the git directory soon after.
        await sys.datakit.settle();
        const gitDir = sys.datakit.repo.gitDir ?? '';
        const log = execFileSync('git', ['--git-dir', gitDir, 'log', '--format=%s', 'master'], {
          encoding: 'utf8',
        });
        assert.match(log, /^commit from busybox sh$/m);
        assert.equal(
          execFileSync('git', ['--git-dir', gitDir, 'show', 'master:f'], { encoding: 'utf8' }),
          'hi\n',
        );
      });
    } finally {
      await system?.stop();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  },
);

test(
  'the console without a command: an interactive busybox shell with job control; exit powers off',
  { timeout: 90_000 },
  async (t) => {
    const guest = await guestOrSkipReason();
    if (typeof guest === 'string') return t.skip(guest);
    const system = await startSystem({
      kernel: guest.kernel,
      initrd: guest.initrd,
      memory: '128M',
      consoleSize: { rows: 33, cols: 101 },
      stopOnSignals: false,
      log: () => {},
    });
    try {
      // Each answer is typed when its prompt appears, as a person would. Ctrl-C goes to the shell's
      // foreground job on its controlling tty, once that job says it runs (and then becomes `sleep`).
      const PROMPT = 'kitset:/# ';
      const script: Array<[prompt: string, typed: string]> = [
        [PROMPT, 'echo $((6*7))\n'],
        [PROMPT, "sh -c 'echo sleeping; exec sleep 30'\n"],
        ['\nsleeping\n', '\x03'],
        [PROMPT, 'echo status-$? && stty size && cd /datakit/branch && pwd\n'],
        ['kitset:/datakit/branch# ', 'exit\n'],
      ];
      let text = '';
      system.console.output.on('data', (d: Buffer) => {
        text += d.toString('latin1').replace(/\r/g, '');
        const next = script[0];
        if (next && text.endsWith(next[0])) {
          script.shift();
          system.console.input.write(next[1]);
        }
      });
      const deadline = setTimeout(() => system.vm.stop(), 60_000);
      const exit = await system.exited;
      clearTimeout(deadline);
      const tail = `\nconsole:\n${text.slice(-2000)}`;
      assert.deepEqual(exit, { kind: 'poweroff', code: 0 }, tail);
      assert.equal(script.length, 0, `prompts not reached${tail}`);
      assert.match(text, /^kitset:\/# echo \$\(\(6\*7\)\)\n42\n/m, tail);
      // Interrupted by SIGINT: 128 + 2.
      assert.match(text, /^status-130\n33 101\n\/datakit\/branch\n/m, tail);
      assert.match(text, /^kitset:\/datakit\/branch# exit\nKS sh ok\nKS exit 0$/m, tail);
    } finally {
      await system.stop();
    }
  },
);
