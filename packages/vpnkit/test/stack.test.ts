import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NetworkStack } from '../src/stack/index.js';
import type { TcpConnection } from '../src/stack/tcp.js';
import { captured, hex } from './fixtures/captured.js';
import { ManualWorld, Pair, makeRng, pseudoRandomBytes, sha256 } from './harness.js';
import {
  ARP_REPLY,
  ArpPacket,
  ETHERTYPE_ARP,
  EthernetFrame,
  ICMP_ECHO_REPLY,
  IcmpPacket,
  Ipv4Packet,
  Reassembler,
  TCP_ACK,
  TCP_RST,
  TCP_SYN,
  TcpOptions,
  TcpSegment,
  parseIpv4,
  parseMac,
} from './stack-imports.js';

const GATEWAY_MAC = parseMac('fa:3c:45:8b:c5:db'); // the captured frames were sent to this MAC

function capturedStack(): { stack: NetworkStack; out: Uint8Array[]; world: ManualWorld } {
  const world = new ManualWorld();
  const out: Uint8Array[] = [];
  const stack = new NetworkStack({
    mac: GATEWAY_MAC,
    localAddresses: [parseIpv4('10.9.0.1')],
    output: (f) => out.push(f.slice()),
    now: world.now,
    schedule: world.schedule,
  });
  return { stack, out, world };
}

function ipOf(frame: Uint8Array): Ipv4Packet {
  const ip = new Ipv4Packet(new EthernetFrame(frame).payload());
  assert.equal(ip.validate(), null);
  return ip;
}

describe('stack: ARP and ICMP with captured Linux frames', () => {
  it('answers ARP for its own addresses only', () => {
    const { stack, out } = capturedStack();
    stack.input(hex(captured.arpRequest));
    assert.equal(out.length, 1);
    const eth = new EthernetFrame(out[0]!);
    assert.equal(eth.etherType, ETHERTYPE_ARP);
    const arp = new ArpPacket(eth.payload());
    assert.equal(arp.operation, ARP_REPLY);
    assert.equal(arp.senderMac, GATEWAY_MAC);
    assert.equal(arp.senderIp, parseIpv4('10.9.0.1'));
    assert.equal(arp.targetIp, parseIpv4('10.9.0.2'));
    // The same request for an address we do not own gets no answer.
    const other = hex(captured.arpRequest);
    other[14 + 27] = 77;
    stack.input(other);
    assert.equal(out.length, 1);
  });

  it('reassembles a fragmented ping and answers with fragments that reassemble to the same payload', () => {
    const { stack, out, world } = capturedStack();
    stack.input(hex(captured.icmpFragment3)); // out of order on purpose
    stack.input(hex(captured.icmpFragment1));
    assert.equal(out.length, 0);
    stack.input(hex(captured.icmpFragment2));
    assert.equal(out.length, 3, 'a 3008-byte echo reply needs three 1500-byte fragments');
    const reassembler = new Reassembler();
    let whole: Uint8Array | null = null;
    for (const f of out) whole = reassembler.add(ipOf(f), world.time) ?? whole;
    assert.ok(whole);
    const reply = new IcmpPacket(new Ipv4Packet(whole).payload());
    assert.equal(reply.validate(), null);
    assert.equal(reply.type, ICMP_ECHO_REPLY);
    assert.equal(reply.echoIdentifier, 0x278b);
    const request = new Reassembler();
    let requestWhole: Uint8Array | null = null;
    for (const name of ['icmpFragment1', 'icmpFragment2', 'icmpFragment3'] as const)
      requestWhole = request.add(ipOf(hex(captured[name])), 0) ?? requestWhole;
    assert.ok(requestWhole);
    assert.deepEqual(reply.payload(), new IcmpPacket(new Ipv4Packet(requestWhole).payload()).payload());
  });

  it('bounds reassembly state', () => {
    const { stack } = capturedStack();
    for (let id = 0; id < 1000; id++) {
      const f = hex(captured.icmpFragment1);
      f[14 + 4] = id >>> 8;
      f[14 + 5] = id & 0xff;
      f[14 + 10] = 0;
      f[14 + 11] = 0;
      const ip = new Ipv4Packet(f.subarray(14));
      let sum = 0;
      for (let i = 0; i < 20; i += 2) sum += (f[14 + i]! << 8) | f[14 + i + 1]!;
      while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
      f[14 + 10] = (~sum >>> 8) & 0xff;
      f[14 + 11] = ~sum & 0xff;
      assert.equal(ip.validate(), null);
      stack.input(f);
    }
    assert.ok(stack.reassembliesInProgress <= 16);
  });
});

describe('stack: TCP with a captured Linux SYN', () => {
  it('answers with a SYN-ACK that echoes the offered options', () => {
    const { stack, out, world } = capturedStack();
    let pending: TcpConnection | undefined;
    stack.onTcpConnection = (conn) => {
      pending = conn;
    };
    stack.input(hex(captured.tcpSyn));
    assert.ok(pending);
    assert.equal(pending.state, 'PENDING');
    assert.equal(out.length, 0, 'nothing is sent before the application accepts');
    pending.accept();
    world.runTasks();
    assert.equal(out.length, 1);
    const ip = ipOf(out[0]!);
    const seg = new TcpSegment(ip.payload());
    assert.equal(seg.validate(ip.source, ip.destination), null);
    assert.equal(seg.flags, TCP_SYN | TCP_ACK);
    assert.equal(seg.acknowledgment, 2024958633);
    const opts = new TcpOptions();
    assert.ok(seg.parseOptions(opts));
    assert.equal(opts.mss, 1460);
    assert.equal(opts.sackPermitted, true);
    assert.equal(opts.hasTimestamps, true);
    assert.equal(opts.tsEcr, 2529819643);
    assert.ok(opts.windowScale >= 0);
  });

  it('rejects with RST|ACK when the application refuses', () => {
    const { stack, out } = capturedStack();
    stack.input(hex(captured.tcpSyn)); // default listener rejects
    assert.equal(out.length, 1);
    const seg = new TcpSegment(ipOf(out[0]!).payload());
    assert.equal(seg.flags, TCP_RST | TCP_ACK);
    assert.equal(seg.acknowledgment, 2024958633);
  });
});

function connectPair(pair: Pair, port = 80) {
  const server: TcpConnection[] = [];
  pair.b.onTcpConnection = (conn) => {
    server.push(conn);
    conn.accept();
  };
  const client = pair.a.connectTcp(parseIpv4('192.168.65.3'), parseIpv4('192.168.65.1'), port);
  return { client, server };
}

function newPair(options: { receiveBuffer?: number; mtu?: number } = {}): Pair {
  return new Pair(
    { localAddresses: [parseIpv4('192.168.65.3')], ...options },
    { localAddresses: [parseIpv4('192.168.65.1')], ...options },
  );
}

async function transfer(pair: Pair, size: number, tickMs: number) {
  const { client, server } = connectPair(pair);
  const data = pseudoRandomBytes(size, 42);
  const received: Uint8Array[] = [];
  let receivedBytes = 0;
  let ended = false;
  let clientClosed = false;
  pair.b.onTcpConnection = (conn) => {
    server.push(conn);
    conn.onData = (c) => {
      received.push(c.slice());
      receivedBytes += c.length;
    };
    conn.onEnd = () => {
      ended = true;
      conn.end();
    };
    conn.accept();
  };
  client.onConnect = () => {
    for (let off = 0; off < size; off += 65536) client.write(data.subarray(off, off + 65536));
    client.end();
  };
  client.onClose = () => {
    clientClosed = true;
  };
  pair.pump(200_000, tickMs, () => ended && (client.state === 'TIME_WAIT' || clientClosed));
  return { data, received, receivedBytes, ended, client, server, clientClosed };
}

describe('stack: TCP between two stacks', () => {
  it('transfers 1 MiB and closes cleanly', async () => {
    const pair = newPair();
    const r = await transfer(pair, 1 << 20, 10);
    assert.equal(r.receivedBytes, 1 << 20);
    assert.equal(sha256(r.received), sha256([r.data]));
    assert.ok(r.ended);
    // The side that closed first sits in TIME_WAIT, then is forgotten.
    assert.equal(r.client.state, 'TIME_WAIT');
    pair.pump(1000, 0);
    pair.world.time += 60_000;
    pair.a.poll();
    pair.b.poll();
    assert.equal(r.client.state, 'CLOSED');
    assert.equal(pair.a.tcpConnectionCount, 0);
    assert.equal(pair.b.tcpConnectionCount, 0);
  });

  it('recovers from drops, duplicates and reordering in both directions', async () => {
    const pair = newPair();
    const rng = makeRng(7);
    let held: Uint8Array | null = null;
    const fault = (f: Uint8Array): Uint8Array[] => {
      const r = rng();
      if (r < 0.05) return [];
      if (r < 0.08) return [f, f];
      if (r < 0.15 && !held) {
        held = f;
        return [];
      }
      if (held) {
        const h = held;
        held = null;
        return [f, h];
      }
      return [f];
    };
    pair.faultAtoB = fault;
    pair.faultBtoA = fault;
    const r = await transfer(pair, 512 * 1024, 50);
    assert.equal(r.receivedBytes, 512 * 1024);
    assert.equal(sha256(r.received), sha256([r.data]));
    assert.ok(r.ended);
  });

  it('closes the window on a paused consumer and never buffers past it', () => {
    const receiveBuffer = 64 * 1024;
    const pair = newPair({ receiveBuffer });
    const size = 1 << 20;
    const data = pseudoRandomBytes(size, 3);
    const received: Uint8Array[] = [];
    let receivedBytes = 0;
    const server: TcpConnection[] = [];
    pair.b.onTcpConnection = (conn) => {
      server.push(conn);
      conn.onData = (c) => {
        received.push(c.slice());
        receivedBytes += c.length;
        conn.pause(); // a consumer that takes one chunk and stalls
      };
      conn.accept();
    };
    const client = pair.a.connectTcp(parseIpv4('192.168.65.3'), parseIpv4('192.168.65.1'), 80);
    client.onConnect = () => {
      for (let off = 0; off < size; off += 65536) client.write(data.subarray(off, off + 65536));
    };
    pair.pump(10_000, 100);
    const conn = server[0]!;
    // Paused: everything the peer could send fits in the buffer we advertised; the rest waits at the sender.
    assert.ok(receivedBytes <= receiveBuffer, `delivered ${receivedBytes} while paused`);
    assert.equal(conn.receiveWindow(), 0);
    assert.ok(client.bufferedAmount >= size - receiveBuffer - 65536);
    conn.onData = (c) => {
      received.push(c.slice());
      receivedBytes += c.length;
    };
    conn.resume();
    pair.pump(200_000, 100, () => receivedBytes === size);
    assert.equal(receivedBytes, size);
    assert.equal(sha256(received), sha256([data]));
  });

  it('keeps half-open state bounded under a SYN flood and still serves a real connection', () => {
    const pair = new Pair(
      { localAddresses: [parseIpv4('10.9.0.7')] },
      { mac: GATEWAY_MAC, localAddresses: [parseIpv4('10.9.0.1')], maxHalfOpen: 256 },
    );
    pair.b.onTcpConnection = (conn) => conn.accept(); // SYN-ACKs go out, the flood never ACKs
    const syn = hex(captured.tcpSyn);
    const ip = new Ipv4Packet(syn.subarray(14));
    const tcpStart = 14 + ip.headerLength;
    for (let i = 0; i < 10_000; i++) {
      // Vary the source port and fix up the TCP checksum incrementally (RFC 1624).
      const oldPort = (syn[tcpStart]! << 8) | syn[tcpStart + 1]!;
      const newPort = 1024 + i;
      syn[tcpStart] = newPort >>> 8;
      syn[tcpStart + 1] = newPort & 0xff;
      const oldSum = (syn[tcpStart + 16]! << 8) | syn[tcpStart + 17]!;
      let sum = (~oldSum & 0xffff) + (~oldPort & 0xffff) + newPort;
      while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
      const fixed = ~sum & 0xffff;
      syn[tcpStart + 16] = fixed >>> 8;
      syn[tcpStart + 17] = fixed & 0xff;
      pair.b.input(syn);
      pair.world.runTasks();
      assert.ok(pair.b.halfOpenCount <= 256);
    }
    assert.ok(pair.b.tcpConnectionCount <= 256);
    assert.ok(pair.b.stats.halfOpenEvicted >= 10_000 - 256);
    pair.framesTo('a').length = 0; // SYN-ACKs addressed to the flood's MAC

    // A real client still gets through.
    const accepted: TcpConnection[] = [];
    pair.b.onTcpConnection = (conn) => {
      accepted.push(conn);
      conn.onData = (c) => conn.write(c.slice());
      conn.accept();
    };
    const client = pair.a.connectTcp(parseIpv4('10.9.0.7'), parseIpv4('10.9.0.1'), 8000);
    let echoed = '';
    client.onConnect = () => client.write(new TextEncoder().encode('still alive'));
    client.onData = (c) => {
      echoed += new TextDecoder().decode(c);
    };
    pair.pump(10_000, 10, () => echoed === 'still alive');
    assert.equal(client.state, 'ESTABLISHED');
    assert.equal(echoed, 'still alive');
  });

  it('resets a connection to a port nobody accepts', () => {
    const pair = newPair();
    pair.b.onTcpConnection = (conn) => conn.reject();
    const client = pair.a.connectTcp(parseIpv4('192.168.65.3'), parseIpv4('192.168.65.1'), 81);
    let reason = '';
    client.onClose = (r) => {
      reason = r;
    };
    pair.pump(1000, 0);
    assert.equal(reason, 'reset');
    assert.equal(pair.a.tcpConnectionCount, 0);
  });

  it('works at MTU 65520 with 64 KiB segments', async () => {
    const pair = newPair({ mtu: 65520 });
    const r = await transfer(pair, 4 << 20, 10);
    assert.equal(r.receivedBytes, 4 << 20);
    assert.equal(sha256(r.received), sha256([r.data]));
  });
});

describe('stack: checksum offload and TSO (virtio-net header semantics)', () => {
  it('sends large segments with a partial checksum the peer can finish, and accepts unverified ones', () => {
    const frames: Array<{
      frame: Uint8Array;
      gsoSize: number;
      headerLength: number;
      start: number;
      offset: number;
    }> = [];
    const world = new ManualWorld();
    let tails = 0;
    const stack = new NetworkStack({
      mac: GATEWAY_MAC,
      localAddresses: [parseIpv4('10.9.0.1')],
      output: (f, o, tail) => {
        // The stack may hand the payload over as a separate piece; a link writes both as one frame.
        const frame = new Uint8Array(f.length + (tail?.length ?? 0));
        frame.set(f);
        if (tail) frame.set(tail, f.length);
        if (tail) tails++;
        frames.push({
          frame,
          gsoSize: o?.gsoSize ?? -1,
          headerLength: o?.headerLength ?? 0,
          start: o?.checksumStart ?? 0,
          offset: o?.checksumOffset ?? 0,
        });
      },
      offloads: { checksum: true, tsoMaxPayload: 60_000 },
      now: world.now,
      schedule: world.schedule,
    });
    let server: TcpConnection | undefined;
    stack.onTcpConnection = (conn) => {
      server = conn;
      conn.onConnect = () => conn.write(pseudoRandomBytes(100_000, 9));
      conn.accept();
    };
    // The captured SYN, then the client's ACK of our SYN-ACK, both marked checksum-valid by the "kernel".
    const syn = hex(captured.tcpSyn);
    syn[14 + 20 + 16] = 0; // a partial checksum would not verify: prove we do not check it
    stack.input(syn, true);
    world.runTasks();
    assert.ok(server);
    const synAck = new TcpSegment(ipOf(frames[0]!.frame).payload());
    const ackFrame = hex(captured.tcpSyn);
    const ip = new Ipv4Packet(ackFrame.subarray(14));
    const tcp = new TcpSegment(ip.payload());
    const b = tcp.buf;
    const ack = (synAck.sequence + 1) >>> 0;
    const seq = (tcp.sequence + 1) >>> 0;
    b.set([seq >>> 24, (seq >>> 16) & 255, (seq >>> 8) & 255, seq & 255], 4);
    b.set([ack >>> 24, (ack >>> 16) & 255, (ack >>> 8) & 255, ack & 255], 8);
    b[13] = TCP_ACK;
    b[14] = 0x7f; // a large window (scaled by 2^10)
    frames.length = 0;
    stack.input(ackFrame, true);
    world.runTasks();
    assert.equal(server.state, 'ESTABLISHED');
    assert.ok(frames.length >= 1);
    const big = frames[0]!;
    const bigIp = ipOf(big.frame);
    const seg = new TcpSegment(bigIp.payload());
    assert.ok(seg.payloadLength > 1460, `segment of ${seg.payloadLength} bytes`);
    assert.equal(big.gsoSize, 1448, 'segments cut at the peer MSS minus timestamps');
    assert.ok(tails > 0, 'payloads went to the link without a copy into the frame buffer');
    assert.equal(big.start, 34);
    assert.equal(big.offset, 16);
    assert.equal(big.headerLength, 34 + seg.headerLength);
    // Finish the checksum as the peer would: one's complement sum from checksumStart to the end.
    const full = big.frame.slice();
    let sum = 0;
    for (let i = big.start; i < full.length; i += 2) sum += (full[i]! << 8) | (full[i + 1] ?? 0);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    const finished = ~sum & 0xffff;
    full[big.start + big.offset] = finished >>> 8;
    full[big.start + big.offset + 1] = finished & 0xff;
    const finishedIp = ipOf(full);
    assert.equal(
      new TcpSegment(finishedIp.payload()).validate(finishedIp.source, finishedIp.destination),
      null,
    );
  });
});

/** The data segments in a frame stream, by sequence number relative to the sender's ISN. */
function dataSegmentOf(frame: Uint8Array, iss: number): { seq: number; length: number } | null {
  const eth = new EthernetFrame(frame);
  if (eth.etherType !== 0x0800) return null;
  const ip = new Ipv4Packet(eth.payload());
  if (ip.validate() !== null || ip.protocol !== 6) return null;
  const seg = new TcpSegment(ip.payload());
  if (seg.validate() !== null || seg.payloadLength === 0) return null;
  return { seq: (seg.sequence - iss) >>> 0, length: seg.payloadLength };
}

describe('stack: SACK scoreboard (RFC 6675) and selective retransmission', () => {
  /**
   * Sends `size` bytes from a to b; `drop(seq, copy)` decides per data segment from a (copy = how many
   * times that sequence was sent before). Returns how often each sequence went out.
   */
  function lossyTransfer(size: number, drop: (seq: number, copy: number) => boolean) {
    const pair = newPair();
    const { client } = connectPair(pair);
    const sent = new Map<number, number>();
    let iss = -1;
    pair.faultAtoB = (f) => {
      if (iss < 0) return [f];
      const d = dataSegmentOf(f, seqAddIss(iss));
      if (!d) return [f];
      const copy = sent.get(d.seq) ?? 0;
      sent.set(d.seq, copy + 1);
      return drop(d.seq, copy) ? [] : [f];
    };
    const data = pseudoRandomBytes(size, 9);
    const received: Uint8Array[] = [];
    let receivedBytes = 0;
    pair.b.onTcpConnection = (conn) => {
      conn.onData = (c) => {
        received.push(c.slice());
        receivedBytes += c.length;
      };
      conn.accept();
    };
    client.onConnect = () => {
      iss = client.iss;
      client.write(data);
    };
    pair.pump(100_000, 10, () => receivedBytes === size && client.sndUna === client.sndMax);
    assert.equal(receivedBytes, size);
    assert.equal(sha256(received), sha256([data]));
    return { sent, client };
  }
  const seqAddIss = (iss: number) => (iss + 1) >>> 0; // data starts one past the ISN
  const MSS = 1460 - 12; // timestamps on

  it('resends exactly the dropped segments of a window', () => {
    const lost = new Set([5 * MSS, 9 * MSS, 13 * MSS]);
    const { sent, client } = lossyTransfer(40 * MSS, (seq, copy) => copy === 0 && lost.has(seq));
    const resent = [...sent].filter(([, n]) => n > 1).map(([seq]) => seq);
    assert.deepEqual(
      resent.sort((x, y) => x - y),
      [...lost],
    );
    assert.equal(client.retransmittedSegments, lost.size);
    assert.equal(client.retransmittedBytes, lost.size * MSS);
    assert.deepEqual(client.sackScoreboard, [], 'the scoreboard empties once everything is acknowledged');
  });

  it('after a retransmission timeout skips what the peer SACKed (no go-back-N)', () => {
    // Two holes whose originals and fast retransmissions are all lost: only the timeout recovers them,
    // and going back from the first hole must not resend the SACKed segments between and after them.
    const holes = new Set([4 * MSS, 10 * MSS]);
    const { sent, client } = lossyTransfer(30 * MSS, (seq, copy) => holes.has(seq) && copy < 2);
    for (const hole of holes) assert.equal(sent.get(hole), 3, `segment at ${hole} sent three times`);
    const others = [...sent].filter(([seq, n]) => !holes.has(seq) && n > 1);
    assert.deepEqual(others, [], 'no SACKed segment went out twice');
    assert.equal(client.retransmittedSegments, 4);
  });
});

describe('stack: delayed ACK', () => {
  function exchange(reply: boolean) {
    const delayed: Array<() => void> = [];
    const pair = new Pair(
      { localAddresses: [parseIpv4('192.168.65.3')] },
      { localAddresses: [parseIpv4('192.168.65.1')], scheduleDelayedAcks: (fn) => delayed.push(fn) },
    );
    const { client } = connectPair(pair);
    pair.b.onTcpConnection = (conn) => {
      conn.onData = () => {
        if (reply) conn.write(Uint8Array.from([79, 75]));
      };
      conn.accept();
    };
    let got = 0;
    client.onData = (d) => {
      got += d.length;
    };
    pair.pump(1000, 0);
    assert.equal(client.state, 'ESTABLISHED');
    const before = pair.b.stats.framesOut;
    client.write(Uint8Array.from([71, 69, 84]));
    pair.pump(1000, 0);
    return { pair, client, delayed, framesFromServer: () => pair.b.stats.framesOut - before, got: () => got };
  }

  it('lets the reply carry the ACK of a small request', () => {
    const { client, framesFromServer, got, delayed, pair } = exchange(true);
    assert.equal(got(), 2);
    assert.equal(framesFromServer(), 1, 'one segment: the reply with the ACK, no pure ACK before it');
    assert.equal(client.sndUna, client.sndMax, 'the request is acknowledged');
    for (const fn of delayed.splice(0)) fn();
    pair.pump(1000, 0);
    assert.equal(framesFromServer(), 1, 'nothing left to send when the delay ends');
  });

  it('sends the ACK when the delay ends if no reply came', () => {
    const { client, framesFromServer, delayed, pair } = exchange(false);
    assert.equal(framesFromServer(), 0, 'the ACK waits');
    assert.equal(delayed.length, 1);
    for (const fn of delayed.splice(0)) fn();
    pair.pump(1000, 0);
    assert.equal(framesFromServer(), 1);
    assert.equal(client.sndUna, client.sndMax);
  });
});
