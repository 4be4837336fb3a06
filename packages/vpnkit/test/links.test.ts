import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { guestImagesReady, runX86Guest } from '@kitset/testkit';
import {
  ARP_REPLY,
  ArpPacket,
  DhcpMessage,
  DhcpMessageType,
  ETHERTYPE_ARP,
  EthernetFrame,
  FaultLink,
  GuestNamespace,
  Ipv4Packet,
  StreamLink,
  TcpSegment,
  UdpDatagram,
  Vpnkit,
  connectVmnet,
  emitArp,
  formatMac,
  listenQemu,
  listenVmnet,
  macForUuid,
  parseIpv4,
  silentLogger,
  tapAddonPath,
  writeMac,
} from '../src/index.js';
import { writeEthernetHeader } from '../src/wire/ethernet.js';
import { captured, hex } from './fixtures/captured.js';

function arpRequestFor(mac: number, target: string): Uint8Array {
  const frame = new Uint8Array(42);
  writeEthernetHeader(frame, 0xffff_ffff_ffff, mac, ETHERTYPE_ARP);
  emitArp(frame, 14, {
    operation: 1,
    senderMac: mac,
    senderIp: parseIpv4('192.168.65.3'),
    targetMac: 0,
    targetIp: parseIpv4(target),
  });
  return frame;
}

describe('link: hyperkit vpnkit protocol (vmnet) over a Unix socket', () => {
  let dir: string;
  let server: net.Server;
  const kits: Vpnkit[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vpnkit-vmnet-'));
    server = await listenVmnet(
      join(dir, 'vmnet.sock'),
      1500,
      (client) => {
        const kit = new Vpnkit(client.link, {}, silentLogger);
        if (client.preferredIpv4 !== undefined) kit.dhcp.reserve(client.mac, client.preferredIpv4);
        kits.push(kit);
      },
      silentLogger,
    );
  });
  after(() => {
    for (const k of kits) k.close();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'negotiates a VIF with a MAC stable per UUID and carries u16-framed Ethernet',
    { timeout: 10_000 },
    async () => {
      const uuid = randomUUID();
      const first = await connectVmnet(join(dir, 'vmnet.sock'), uuid);
      assert.equal(first.mtu, 1500);
      assert.equal(first.maxPacketSize, 1514);
      assert.equal(first.mac, macForUuid(uuid));
      assert.equal(
        Number.parseInt(formatMac(first.mac).slice(0, 2), 16) & 0x03,
        0x02,
        'unicast, locally administered',
      );
      // The reply to an ARP request for the gateway comes back framed with a u16 LE length.
      const link = new StreamLink(first.socket, 'u16le', 'test client', 65535, first.leftover);
      const reply = await new Promise<Uint8Array>((resolve) => {
        link.onFrame = (f) => resolve(f.slice());
        link.send(arpRequestFor(first.mac, '192.168.65.1'));
      });
      const eth = new EthernetFrame(reply);
      assert.equal(eth.etherType, ETHERTYPE_ARP);
      assert.equal(eth.destination, first.mac);
      const arp = new ArpPacket(eth.payload());
      assert.equal(arp.operation, ARP_REPLY);
      assert.equal(arp.senderIp, parseIpv4('192.168.65.1'));
      link.close();

      const again = await connectVmnet(join(dir, 'vmnet.sock'), uuid);
      assert.equal(again.mac, first.mac, 'same UUID, same MAC');
      again.socket.destroy();
      const other = await connectVmnet(join(dir, 'vmnet.sock'), randomUUID());
      assert.notEqual(other.mac, first.mac);
      other.socket.destroy();
    },
  );
  it(
    'command 8 (preferred IPv4) makes DHCP offer that address to the guest',
    { timeout: 10_000 },
    async () => {
      const preferred = parseIpv4('192.168.65.77');
      const vif = await connectVmnet(join(dir, 'vmnet.sock'), randomUUID(), preferred);
      const link = new StreamLink(vif.socket, 'u16le', 'test client', 65535, vif.leftover);
      // A captured busybox DISCOVER, re-addressed to this VIF's MAC (UDP checksum 0 = none).
      const discover = hex(captured.dhcpDiscover);
      writeMac(discover, 6, vif.mac);
      writeMac(discover, 14 + 20 + 8 + 28, vif.mac);
      discover[14 + 20 + 6] = 0;
      discover[14 + 20 + 7] = 0;
      const offer = await new Promise<DhcpMessage>((resolve) => {
        link.onFrame = (f) => {
          const eth = new EthernetFrame(f);
          if (eth.etherType !== 0x0800) return;
          const ip = new Ipv4Packet(eth.payload());
          if (ip.protocol !== 17) return;
          resolve(new DhcpMessage(Uint8Array.from(new UdpDatagram(ip.payload()).payload())));
        };
        link.send(discover);
      });
      assert.equal(offer.messageType(), DhcpMessageType.Offer);
      assert.equal(offer.yourIp, preferred);
      link.close();
    },
  );
});

describe('link: stream framing', () => {
  it(
    'reassembles u32 BE frames written a byte at a time, and bounds what a peer that stops reading costs us',
    { timeout: 10_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'vpnkit-stream-'));
      const path = join(dir, 's.sock');
      const accepted = new Promise<net.Socket>((resolve) => {
        const server = net.createServer((socket) => {
          server.close();
          resolve(socket);
        });
        server.listen(path);
      });
      const client = net.connect(path);
      const peer = await accepted;
      try {
        const link = new StreamLink(client, 'u32be', 'test');
        const frames: number[] = [];
        link.onFrame = (f) => frames.push(f.length);
        // Three frames written one byte at a time.
        const wire = Buffer.concat(
          [60, 1514, 42].map((n) => {
            const b = Buffer.alloc(4 + n, n & 0xff);
            b.writeUInt32BE(n, 0);
            return b;
          }),
        );
        for (const byte of wire) peer.write(Buffer.of(byte));
        for (let i = 0; i < 100 && frames.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
        assert.deepEqual(frames, [60, 1514, 42]);
        // The peer never reads: 64 MiB of frames must not all queue up in our memory.
        peer.pause();
        const frame = new Uint8Array(65000);
        for (let i = 0; i < 1000; i++) link.send(frame);
        assert.ok(link.framesDropped > 0);
        assert.ok(client.writableLength < 16 * 1024 * 1024, `${client.writableLength} bytes queued`);
        link.close();
      } finally {
        peer.destroy();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

const guest = guestImagesReady();
const asRoot = process.getuid?.() === 0;

describe(
  'link: QEMU -netdev stream with the x86 Linux guest',
  { skip: guest.ready ? false : guest.reason },
  () => {
    it(
      'the guest gets a DHCP lease and downloads a file through the host alias',
      { timeout: 120_000 },
      async () => {
        const dir = mkdtempSync(join(tmpdir(), 'vpnkit-qemu-'));
        const body = randomBytes(4 << 20);
        const expected = createHash('sha256').update(body).digest('hex');
        const web = http.createServer((_req, res) => res.end(body));
        await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
        const port = (web.address() as net.AddressInfo).port;
        const kits: Vpnkit[] = [];
        const socketPath = join(dir, 'qemu.sock');
        const server = await listenQemu({ path: socketPath }, (link) =>
          kits.push(new Vpnkit(link, {}, silentLogger)),
        );
        try {
          const result = await runX86Guest({
            timeoutMs: 100_000,
            network: 'dhcp',
            netdev: ['-netdev', `stream,id=net0,server=off,addr.type=unix,addr.path=${socketPath}`],
            script: [
              'ip -4 addr show dev eth0 | grep -o "inet [0-9.]*"',
              'cat /etc/resolv.conf | grep nameserver',
              `wget -q -O /tmp/f http://192.168.65.254:${port}/file`,
              'sha256sum /tmp/f',
              'nslookup host.kitset.internal 2>&1 | grep -A1 host.kitset.internal | tail -1',
            ].join('\n'),
          });
          assert.equal(result.exitCode, 0, result.console.slice(-3000));
          assert.match(result.output, /inet 192\.168\.65\.\d+/);
          assert.match(result.output, /nameserver 192\.168\.65\.1/);
          assert.ok(result.output.includes(expected), result.output);
          assert.match(result.output, /192\.168\.65\.254/);
        } finally {
          for (const k of kits) k.close();
          server.close();
          web.close();
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
  },
);

describe(
  'vpnkit --connect-qemu (the CLI) with QEMU as the stream server',
  {
    skip: guest.ready ? false : guest.reason,
  },
  () => {
    it(
      'keeps dialing until QEMU listens, then the guest gets a lease and a file',
      { timeout: 120_000 },
      async () => {
        const dir = mkdtempSync(join(tmpdir(), 'vpnkit-qemu-server-'));
        const body = randomBytes(1 << 20);
        const expected = createHash('sha256').update(body).digest('hex');
        const web = http.createServer((_req, res) => res.end(body));
        await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
        const port = (web.address() as net.AddressInfo).port;
        const socketPath = join(dir, 'qemu.sock');
        const cli = new URL('../src/cli.js', import.meta.url).pathname;
        // Started before QEMU exists: it must retry.
        const vpnkit = spawn(process.execPath, [cli, '--connect-qemu', socketPath], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let log = '';
        vpnkit.stderr.on('data', (d: Buffer) => {
          log += d.toString();
        });
        try {
          await new Promise((r) => setTimeout(r, 500));
          const result = await runX86Guest({
            timeoutMs: 100_000,
            network: 'dhcp',
            netdev: ['-netdev', `stream,id=net0,server=on,addr.type=unix,addr.path=${socketPath}`],
            script: `wget -q -O /tmp/f http://192.168.65.254:${port}/f && sha256sum /tmp/f`,
          });
          assert.equal(result.exitCode, 0, result.console.slice(-2000) + log);
          assert.ok(result.output.includes(expected), result.output);
        } finally {
          vpnkit.kill('SIGKILL');
          web.close();
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
  },
);

describe(
  'link: fault injection with Linux in a namespace',
  {
    skip: asRoot && existsSync(tapAddonPath()) ? false : 'needs root and the TAP addon',
  },
  () => {
    it(
      'SACK recovery against Linux resends exactly the segments the injector dropped',
      { timeout: 60_000 },
      async () => {
        const body = randomBytes(1 << 20);
        const expected = createHash('sha256').update(body).digest('hex');
        const web = http.createServer((_req, res) => res.end(body));
        await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
        const port = (web.address() as net.AddressInfo).port;
        // Our data segments to the guest, by sequence number: how often each went out, in first-send order.
        const copies = new Map<number, number>();
        const dropped = new Set<number>();
        const dropIndexes = new Set([40, 41, 90, 300]);
        const ns = await GuestNamespace.create({
          log: silentLogger,
          wrapLink: (link) =>
            new FaultLink(link, {
              directions: 'out',
              dropIf: (frame) => {
                const eth = new EthernetFrame(frame);
                if (eth.etherType !== 0x0800) return false;
                const ip = new Ipv4Packet(eth.payload());
                if (ip.validate() !== null || ip.protocol !== 6) return false;
                const seg = new TcpSegment(ip.payload());
                if (seg.validate() !== null || seg.sourcePort !== port || seg.payloadLength === 0)
                  return false;
                const seq = seg.sequence;
                const copy = copies.get(seq);
                copies.set(seq, (copy ?? 0) + 1);
                if (copy === undefined && dropIndexes.has(copies.size - 1)) {
                  dropped.add(seq);
                  return true;
                }
                return false;
              },
            }),
        });
        try {
          const r = await ns.exec(
            ['sh', '-c', `curl -sS --max-time 30 http://192.168.65.254:${port}/ | sha256sum`],
            40_000,
          );
          assert.equal(r.stdout.split(' ')[0], expected, r.stderr);
          const resent = [...copies].filter(([, n]) => n > 1).map(([seq]) => seq);
          assert.equal(dropped.size, dropIndexes.size);
          assert.deepEqual(
            resent.sort((a, b) => a - b),
            [...dropped].sort((a, b) => a - b),
            `only the dropped segments went out twice (TAP queue drops: ${ns.tap.framesDropped})`,
          );
        } finally {
          await ns.close();
          web.close();
        }
      },
    );

    it(
      'TCP recovers from drops, duplicates, reordering and corruption in both directions',
      { timeout: 90_000 },
      async () => {
        const body = randomBytes(3 << 20);
        const expected = createHash('sha256').update(body).digest('hex');
        // GET returns `body`; POST answers with the sha256 of what it received (the upload direction).
        const web = http.createServer((req, res) => {
          if (req.method !== 'POST') {
            res.end(body);
            return;
          }
          const hash = createHash('sha256');
          req.on('data', (d: Buffer) => hash.update(d));
          req.on('end', () => res.end(hash.digest('hex')));
        });
        await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
        const port = (web.address() as net.AddressInfo).port;
        let fault: FaultLink | undefined;
        const ns = await GuestNamespace.create({
          log: silentLogger,
          wrapLink: (link) => {
            fault = new FaultLink(link, {
              drop: 0.01,
              duplicate: 0.01,
              reorder: 0.02,
              corrupt: 0.005,
              seed: 7,
            });
            return fault;
          },
        });
        try {
          const r = await ns.exec(
            ['sh', '-c', `curl -sS --max-time 60 http://192.168.65.254:${port}/ | sha256sum`],
            70_000,
          );
          assert.equal(r.stdout.split(' ')[0], expected, r.stderr);
          const up = await ns.exec(
            [
              'sh',
              '-c',
              'head -c 3145728 /dev/urandom > /tmp/vpnkit-up.$$ && sha256sum < /tmp/vpnkit-up.$$ && ' +
                `curl -sS --max-time 60 --data-binary @/tmp/vpnkit-up.$$ http://192.168.65.254:${port}/; rm -f /tmp/vpnkit-up.$$`,
            ],
            70_000,
          );
          const [sent, received] = up.stdout.split('\n');
          assert.equal(received?.trim(), sent?.split(' ')[0], up.stdout + up.stderr);
          assert.ok(fault);
          const c = fault.counts;
          assert.ok(
            c.dropped > 0 && c.duplicated > 0 && c.reordered > 0 && c.corrupted > 0,
            JSON.stringify(c),
          );
        } finally {
          await ns.close();
          web.close();
        }
      },
    );
  },
);
