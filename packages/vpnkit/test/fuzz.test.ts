// Bad input: at least a million random and mutated frames, bounded in time; the stack must not throw,
// its state must stay within its limits and memory must stay flat.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../src/errors.js';
import { DhcpServer, defaultConfig } from '../src/services/index.js';
import { NetworkStack } from '../src/stack/index.js';
import { captured, hex } from './fixtures/captured.js';
import {
  ETHERTYPE_IPV4,
  IP_PROTOCOL_ICMP,
  IP_PROTOCOL_TCP,
  IP_PROTOCOL_UDP,
  TCP_ACK,
  TCP_SYN,
  TcpOptions,
  WireError,
  emitIpv4Header,
  emitTcpHeader,
  emitTcpOptions,
  internetChecksum,
  parseDns,
  parseIpv4,
  parseMac,
  pseudoHeaderSum,
  writeEthernetHeaderForTest,
} from './fuzz-imports.js';
import { ManualWorld, makeRng } from './harness.js';

const GATEWAY_MAC = parseMac('fa:3c:45:8b:c5:db');
const GUEST_MAC = parseMac('6e:e0:89:2e:b5:1b');
const GUEST = parseIpv4('10.9.0.2');
const GATEWAY = parseIpv4('10.9.0.1');

/** A TCP segment from the guest, as bytes, for the corpus. */
function tcpFrame(sourcePort: number, seq: number, ack: number, flags: number, payload: number): Uint8Array {
  const opts = new TcpOptions();
  if (flags & TCP_SYN) {
    opts.mss = 1460;
    opts.sackPermitted = true;
    opts.windowScale = 7;
    opts.hasTimestamps = true;
    opts.tsVal = 1000;
  }
  const frame = new Uint8Array(14 + 20 + 60 + payload);
  const optionsLength = emitTcpOptions(frame, 34 + 20, opts);
  const tcpLength = 20 + optionsLength + payload;
  for (let i = 0; i < payload; i++) frame[34 + 20 + optionsLength + i] = i & 0xff;
  emitTcpHeader(
    frame,
    34,
    GUEST,
    GATEWAY,
    { sourcePort, destinationPort: 80, sequence: seq, acknowledgment: ack, flags, window: 502 },
    optionsLength,
    payload,
  );
  emitIpv4Header(frame, 14, {
    source: GUEST,
    destination: GATEWAY,
    protocol: IP_PROTOCOL_TCP,
    payloadLength: tcpLength,
  });
  writeEthernetHeaderForTest(frame, GATEWAY_MAC, GUEST_MAC, ETHERTYPE_IPV4);
  return frame.subarray(0, 34 + tcpLength);
}

/** Makes IPv4 and L4 checksums valid again after a mutation, so the fuzz reaches the state machines. */
function fixChecksums(frame: Uint8Array, length: number): void {
  if (length < 34 || frame[12] !== 0x08 || frame[13] !== 0x00) return;
  const ihl = (frame[14]! & 0x0f) * 4;
  if (ihl < 20 || 14 + ihl > length) return;
  frame[24] = 0;
  frame[25] = 0;
  const sum = internetChecksum(frame, 14, 14 + ihl);
  frame[24] = sum >>> 8;
  frame[25] = sum & 0xff;
  const total = Math.min((frame[16]! << 8) | frame[17]!, length - 14);
  const l4 = 14 + ihl;
  const l4Length = total - ihl;
  if (l4Length < 8) return;
  const protocol = frame[23]!;
  const src = ((frame[26]! << 24) | (frame[27]! << 16) | (frame[28]! << 8) | frame[29]!) >>> 0;
  const dst = ((frame[30]! << 24) | (frame[31]! << 16) | (frame[32]! << 8) | frame[33]!) >>> 0;
  let offset: number;
  let initial = 0;
  if (protocol === IP_PROTOCOL_TCP && l4Length >= 20) offset = 16;
  else if (protocol === IP_PROTOCOL_UDP) offset = 6;
  else if (protocol === IP_PROTOCOL_ICMP) offset = 2;
  else return;
  if (protocol !== IP_PROTOCOL_ICMP) initial = pseudoHeaderSum(src, dst, protocol, l4Length);
  frame[l4 + offset] = 0;
  frame[l4 + offset + 1] = 0;
  const l4sum = internetChecksum(frame, l4, l4 + l4Length, initial);
  frame[l4 + offset] = l4sum >>> 8;
  frame[l4 + offset + 1] = l4sum & 0xff;
}

describe('fuzz', () => {
  it(
    'survives 1,000,000 random and mutated frames with bounded state and flat memory',
    { timeout: 60_000 },
    () => {
      const world = new ManualWorld();
      let framesOut = 0;
      const stack = new NetworkStack({
        mac: GATEWAY_MAC,
        localAddresses: [GATEWAY, parseIpv4('10.9.0.254')],
        output: () => {
          framesOut++;
        },
        now: world.now,
        schedule: world.schedule,
        maxHalfOpen: 128,
        maxConnections: 512,
      });
      const rng = makeRng(0xc0ffee);
      stack.onTcpConnection = (conn) => {
        if (rng() < 0.2) conn.reject();
        else {
          conn.onConnect = () => conn.write(new Uint8Array(3000));
          conn.onData = () => {
            if (rng() < 0.01) conn.pause();
            if (rng() < 0.01) conn.resume();
          };
          conn.onEnd = () => conn.end();
          conn.accept();
          accepted++;
        }
      };
      const dhcp = new DhcpServer(defaultConfig(), stack, silentLogger);
      let accepted = 0;
      let dnsParsed = 0;
      let dhcpSeen = 0;
      stack.onUdp = (_s, _sp, _d, destinationPort, payload) => {
        if (destinationPort === 67) {
          dhcpSeen++;
          dhcp.handle(payload);
        } else if (destinationPort === 53) {
          try {
            parseDns(payload);
            dnsParsed++;
          } catch (err) {
            assert.ok(err instanceof WireError, String(err));
          }
        }
      };
      stack.onIcmpEcho = () => {};

      const corpus: Uint8Array[] = Object.values(captured).map((h) => hex(h));
      for (let port = 40000; port < 40008; port++) {
        corpus.push(tcpFrame(port, 1000, 0, TCP_SYN, 0));
        corpus.push(tcpFrame(port, 1001, 0, TCP_ACK, 0));
        corpus.push(tcpFrame(port, 1001, 0, TCP_ACK, 1200));
      }
      const scratch = new Uint8Array(2048);
      const interesting = [0, 1, 0x7f, 0x80, 0xff, 0x40, 0x20, 0x3f];
      const total = 1_000_000;
      const deadline = Date.now() + 30_000;
      let heapAfterWarmup = 0;
      let n = 0;
      for (; n < total && Date.now() < deadline; n++) {
        let length: number;
        const r = rng();
        if (r < 0.15) {
          // Pure noise, sometimes with an Ethernet header that gets it past the first check.
          length = Math.floor(rng() * 1600);
          for (let i = 0; i < length; i++) scratch[i] = (rng() * 256) | 0;
          if (rng() < 0.5 && length >= 14) {
            writeEthernetHeaderForTest(
              scratch,
              GATEWAY_MAC,
              GUEST_MAC,
              rng() < 0.7 ? ETHERTYPE_IPV4 : 0x0806,
            );
            if (rng() < 0.5) fixChecksums(scratch, length);
          }
        } else {
          const base = corpus[Math.floor(rng() * corpus.length)]!;
          length = base.length;
          scratch.set(base);
          const mutations = 1 + Math.floor(rng() * 4);
          for (let m = 0; m < mutations; m++) {
            const kind = rng();
            const at = Math.floor(rng() * length);
            if (kind < 0.5) scratch[at] = (scratch[at]! ^ (1 << Math.floor(rng() * 8))) & 0xff;
            else if (kind < 0.8) scratch[at] = interesting[Math.floor(rng() * interesting.length)]!;
            else if (kind < 0.9) length = Math.max(0, Math.floor(rng() * length));
            else {
              const extra = Math.floor(rng() * 64);
              for (let i = 0; i < extra && length < scratch.length; i++)
                scratch[length++] = (rng() * 256) | 0;
            }
          }
          if (rng() < 0.6) fixChecksums(scratch, length);
        }
        stack.input(scratch.subarray(0, length));
        if (n % 256 === 0) {
          world.runTasks();
          world.time += 50;
          stack.poll();
        }
        if (n === 100_000) heapAfterWarmup = process.memoryUsage().heapUsed;
        assert.ok(stack.tcpConnectionCount <= 512);
        assert.ok(stack.halfOpenCount <= 128);
      }
      world.runTasks();
      assert.ok(n >= total, `only ${n} frames in 30 s`);
      assert.ok(stack.reassembliesInProgress <= 16);
      assert.ok(framesOut > 0);
      assert.ok(stack.stats.droppedMalformed > 0);
      // The mutations reach the state machines and parsers, not just the first checks.
      assert.ok(accepted > 100, `accepted ${accepted}`);
      assert.ok(dnsParsed > 100 && dhcpSeen > 100, `dns ${dnsParsed} dhcp ${dhcpSeen}`);
      const growth = process.memoryUsage().heapUsed - heapAfterWarmup;
      assert.ok(growth < 64 * 1024 * 1024, `heap grew by ${(growth / 1048576).toFixed(1)} MiB`);
    },
  );
});
