// The services layer end to end without root: a guest made of our own stack, joined to a Vpnkit by an
// in-memory link, reaching real host sockets on loopback through the NAT.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { describe, it } from 'node:test';
import { type Link, NetworkStack, Vpnkit, parseIpv4, silentLogger } from '../src/index.js';
import type { TcpConnection } from '../src/stack/tcp.js';

/** Two links joined back to back; frames cross on the next turn of the event loop, in batches. */
function linkPair(): [Link, Link] {
  const make = (): Link & { peer?: Link & { queue: Uint8Array[] }; queue: Uint8Array[] } => {
    const link = {
      description: 'memory',
      queue: [] as Uint8Array[],
      peer: undefined as (Link & { queue: Uint8Array[] }) | undefined,
      scheduled: false,
      onFrame: (_f: Uint8Array, _valid?: boolean) => {},
      onClose: (_e?: Error) => {},
      send(frame: Uint8Array) {
        const peer = this.peer;
        if (!peer) return;
        peer.queue.push(frame.slice());
        const p = peer as typeof link;
        if (!p.scheduled) {
          p.scheduled = true;
          setImmediate(() => {
            p.scheduled = false;
            const batch = p.queue.splice(0);
            for (const f of batch) p.onFrame(f, false);
          });
        }
      },
      close() {},
    };
    return link;
  };
  const a = make();
  const b = make();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

function guestAndVpnkit(config: ConstructorParameters<typeof Vpnkit>[1] = {}) {
  const [guestSide, vpnkitSide] = linkPair();
  const vpnkit = new Vpnkit(vpnkitSide, config, silentLogger);
  const guest = new NetworkStack({
    mac: 0x02_00_00_00_00_33,
    localAddresses: [parseIpv4('192.168.65.3')],
    output: (f) => guestSide.send(f),
  });
  guestSide.onFrame = (f) => guest.input(f);
  const timer = setInterval(() => guest.poll(), 20);
  return {
    vpnkit,
    guest,
    close: () => {
      clearInterval(timer);
      guest.closeAll();
      vpnkit.close();
    },
  };
}

const until = async (check: () => boolean, ms: number) => {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
};

describe('NAT through an in-memory link', () => {
  it(
    'a host socket that stops reading closes the window: the guest keeps its data',
    { timeout: 20_000 },
    async () => {
      let hostSocket: net.Socket | undefined;
      const server = net.createServer((s) => {
        hostSocket = s;
        s.pause(); // never reads
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as net.AddressInfo).port;
      const { guest, close } = guestAndVpnkit();
      try {
        const conn = guest.connectTcp(parseIpv4('192.168.65.3'), parseIpv4('192.168.65.254'), port);
        const total = 64 * 1024 * 1024;
        const chunk = new Uint8Array(1 << 20);
        let connected = false;
        conn.onConnect = () => {
          connected = true;
          for (let i = 0; i < total / chunk.length; i++) conn.write(chunk);
        };
        await until(() => connected, 5000);
        assert.ok(connected, 'the NAT connected to the host and completed the handshake');
        await new Promise((r) => setTimeout(r, 1500));
        const leftTheGuest = total - conn.bufferedAmount;
        // Kernel socket buffers on loopback, the host socket's buffer and one receive window at most.
        assert.ok(
          leftTheGuest < 24 * 1024 * 1024,
          `${(leftTheGuest / 1048576).toFixed(1)} MiB left the guest`,
        );
        assert.ok(leftTheGuest > 0);
        // Reading again lets everything through.
        let received = 0;
        hostSocket?.on('data', (d: Buffer) => {
          received += d.length;
        });
        hostSocket?.resume();
        await until(() => received === total, 15_000);
        assert.equal(received, total);
      } finally {
        close();
        server.close();
      }
    },
  );

  it('--max-connections refuses the connection past the cap with a reset', { timeout: 20_000 }, async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const { guest, vpnkit, close } = guestAndVpnkit({ maxConnections: 5 });
    try {
      const results: string[] = [];
      const conns: TcpConnection[] = [];
      for (let i = 0; i < 7; i++) {
        const c = guest.connectTcp(parseIpv4('192.168.65.3'), parseIpv4('192.168.65.254'), port);
        c.onConnect = () => results.push('connected');
        c.onClose = (reason) => results.push(reason);
        conns.push(c);
      }
      await until(() => results.length >= 7, 5000);
      assert.equal(results.filter((r) => r === 'connected').length, 5, results.join());
      assert.equal(results.filter((r) => r === 'reset').length, 2, results.join());
      assert.equal(vpnkit.nat.tcpProxyCount, 5);
    } finally {
      close();
      for (const s of sockets) s.destroy();
      server.close();
    }
  });

  it('UDP flows are capped and idle ones expire', { timeout: 20_000 }, async () => {
    const echo = dgram.createSocket('udp4');
    echo.on('message', (m, r) => echo.send(m, r.port, r.address));
    await new Promise<void>((r) => echo.bind(0, '127.0.0.1', r));
    const port = echo.address().port;
    const { guest, vpnkit, close } = guestAndVpnkit({ udpFlowLimit: 8, udpIdleMs: 300 });
    try {
      let replies = 0;
      guest.onUdp = () => {
        replies++;
      };
      for (let i = 0; i < 20; i++)
        guest.sendUdp(
          parseIpv4('192.168.65.3'),
          40000 + i,
          parseIpv4('192.168.65.254'),
          port,
          Uint8Array.of(i),
        );
      await until(() => replies >= 8, 3000);
      assert.ok(replies >= 8, `${replies} replies`);
      assert.ok(vpnkit.nat.udpFlowCount <= 8, `${vpnkit.nat.udpFlowCount} flows`);
      await until(() => vpnkit.nat.udpFlowCount === 0, 5000);
      assert.equal(vpnkit.nat.udpFlowCount, 0, 'idle flows expired');
    } finally {
      close();
      echo.close();
    }
  });

  it(
    'idle TCP connections are reset; ones with traffic either way are not',
    { timeout: 20_000 },
    async () => {
      const hostSockets: net.Socket[] = [];
      const hostClosed: boolean[] = [];
      const server = net.createServer((s) => {
        const i = hostSockets.push(s) - 1;
        hostClosed[i] = false;
        s.on('error', () => {});
        s.on('close', () => {
          hostClosed[i] = true;
        });
        s.on('data', () => {});
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as net.AddressInfo).port;
      const { guest, vpnkit, close } = guestAndVpnkit({ tcpIdleMs: 400 });
      const tickers: NodeJS.Timeout[] = [];
      try {
        const closes: string[] = ['open', 'open', 'open'];
        const conns = [0, 1, 2].map((i) => {
          const c = guest.connectTcp(parseIpv4('192.168.65.3'), parseIpv4('192.168.65.254'), port);
          c.onClose = (reason) => {
            closes[i] = reason;
          };
          return c;
        });
        await until(() => conns.every((c) => c.state === 'ESTABLISHED') && hostSockets.length === 3, 5000);
        assert.equal(hostSockets.length, 3);
        // conns[0] stays silent; conns[1] is kept busy by the guest, conns[2] by the host.
        const hostOf2 = hostSockets[2]!;
        tickers.push(setInterval(() => conns[1]!.write(Uint8Array.of(1)), 100));
        tickers.push(setInterval(() => hostOf2.write('x'), 100));
        await until(() => closes[0] !== 'open', 5000);
        assert.equal(closes[0], 'reset', 'the guest saw a reset');
        await until(() => hostClosed[0] === true, 2000);
        assert.equal(hostClosed[0], true, 'the host socket was closed');
        await new Promise((r) => setTimeout(r, 600));
        assert.deepEqual(closes.slice(1), ['open', 'open'], 'busy connections survive');
        assert.equal(vpnkit.nat.tcpIdleClosed, 1);
        for (const t of tickers) clearInterval(t);
        await until(() => closes[1] !== 'open' && closes[2] !== 'open', 5000);
        assert.deepEqual(closes, ['reset', 'reset', 'reset'], 'and are reset once they too fall silent');
      } finally {
        for (const t of tickers) clearInterval(t);
        close();
        for (const s of hostSockets) s.destroy();
        server.close();
      }
    },
  );
});
