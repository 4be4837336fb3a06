// Run-time forwards through both control planes: VPNKit's 9P port-control files (served by @kitset/ninep,
// driven by its client) and the HTTP API, reaching a server in a namespace behind our stack.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NinePClient, NinePServer, OpenFlags } from '@kitset/ninep';
import {
  GuestNamespace,
  PortControlFs,
  createControlHttpServer,
  parseControlName,
  silentLogger,
  tapAddonPath,
} from '../src/index.js';

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

function exchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    let got = '';
    c.on('connect', () => c.end(text));
    c.on('data', (d) => {
      got += d.toString();
    });
    c.on('end', () => resolve(got));
    c.on('error', reject);
  });
}

function request(socketPath: string, method: string, path: string, body?: unknown) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = http.request({ socketPath, method, path }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe('control: 9P names', () => {
  it('parses VPNKit forward names and rejects bad ones', () => {
    const f = parseControlName('tcp:127.0.0.1:8080:tcp:192.168.65.3:80');
    assert.equal(f.hostPort, 8080);
    assert.equal(f.guestPort, 80);
    assert.throws(() => parseControlName('tcp:127.0.0.1:8080:udp:192.168.65.3:80'), { errno: 22 });
    assert.throws(() => parseControlName('tcp:nothing'), { errno: 22 });
  });
});

const skip =
  process.getuid?.() !== 0 ? 'needs root' : existsSync(tapAddonPath()) ? false : 'TAP addon not built';

describe('control planes with a server in a namespace', { skip, timeout: 60_000 }, () => {
  let ns: GuestNamespace;
  let server: ChildProcess;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vpnkit-control-'));
    ns = await GuestNamespace.create({ log: silentLogger });
    const script = `require('net').createServer(c=>{c.on('data',d=>c.write(d.toString().toUpperCase()));c.on('end',()=>c.end())})
      .listen(8080,'0.0.0.0',()=>console.log('listening'));setTimeout(()=>process.exit(0),50000);`;
    server = ns.spawn([process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      server.stdout?.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
      server.on('exit', () => reject(new Error('namespace server exited')));
    });
  });
  after(async () => {
    server?.kill('SIGKILL');
    await ns?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    '9P: mkdir + open ctl binds the forward, reading ctl reports it, clunk removes it',
    { timeout: 20_000 },
    async () => {
      const socket = join(dir, 'port.9p');
      const ninep = new NinePServer(new PortControlFs(ns.vpnkit.forwards));
      const listener = await ninep.listen(`unix://${socket}`);
      const client = await NinePClient.connect(`unix://${socket}`);
      try {
        const port = await freePort();
        const name = `tcp:127.0.0.1:${port}:tcp:192.168.65.3:8080`;
        const root = await client.attach();
        await client.mkdir(root, name);
        const listed = (
          await client.readdir(await client.open(await client.walk(root, []), OpenFlags.O_RDONLY))
        ).map((e) => e.name);
        assert.ok(listed.includes(name), JSON.stringify(listed));
        const ctl = await client.open(await client.walk(root, [name, 'ctl']), OpenFlags.O_RDWR);
        const status = new TextDecoder().decode(await client.read(ctl, 0, 4096));
        assert.equal(status, `OK 127.0.0.1:${port}\n`);
        assert.equal(await exchange(port, 'over nine p'), 'OVER NINE P');
        // A second forward on the same port fails, and says why in its ctl file.
        const clash = `tcp:127.0.0.1:${port}:tcp:192.168.65.3:9`;
        await client.mkdir(root, clash);
        const clashCtl = await client.open(await client.walk(root, [clash, 'ctl']), OpenFlags.O_RDONLY);
        assert.match(
          new TextDecoder().decode(await client.read(clashCtl, 0, 4096)),
          /^ERROR .*cannot listen.*in use/i,
        );
        await client.clunk(clashCtl);
        // The forward lives as long as the fid.
        await client.clunk(ctl);
        await assert.rejects(exchange(port, 'gone'), { code: 'ECONNREFUSED' });
        await assert.rejects(client.mkdir(root, 'tcp:bad'), (e: { errno?: number }) => e.errno === 22);
      } finally {
        client.close();
        await listener.close();
      }
    },
  );

  it('HTTP: expose, list, unexpose', { timeout: 20_000 }, async () => {
    const socket = join(dir, 'api.sock');
    const api = createControlHttpServer(ns.vpnkit.forwards);
    await new Promise<void>((r) => api.listen(socket, r));
    try {
      const port = await freePort();
      const local = `127.0.0.1:${port}`;
      const exposed = await request(socket, 'POST', '/services/forwarder/expose', {
        local,
        remote: '192.168.65.3:8080',
        protocol: 'tcp',
      });
      assert.equal(exposed.status, 200, exposed.text);
      assert.equal(await exchange(port, 'over http'), 'OVER HTTP');
      const all = JSON.parse((await request(socket, 'GET', '/services/forwarder/all')).text) as Array<{
        local: string;
      }>;
      assert.ok(all.some((f) => f.local === local));
      const again = await request(socket, 'POST', '/services/forwarder/expose', {
        local,
        remote: '192.168.65.3:9',
        protocol: 'tcp',
      });
      assert.equal(again.status, 500);
      assert.match(again.text, /in use/i);
      const removed = await request(socket, 'POST', '/services/forwarder/unexpose', {
        local,
        protocol: 'tcp',
      });
      assert.equal(removed.status, 200, removed.text);
      await assert.rejects(exchange(port, 'gone'), { code: 'ECONNREFUSED' });
      assert.equal((await request(socket, 'GET', '/nope')).status, 404);
    } finally {
      api.close();
    }
  });
});
