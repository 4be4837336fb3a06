import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { captured, hex } from './fixtures/captured.js';
import {
  ARP_REPLY,
  ArpPacket,
  DNS_CLASS_IN,
  DNS_FLAG_QR,
  DhcpMessage,
  DhcpMessageType,
  DhcpOption,
  DnsType,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  EthernetFrame,
  ICMP_ECHO_REQUEST,
  IP_PROTOCOL_ICMP,
  IP_PROTOCOL_TCP,
  IP_PROTOCOL_UDP,
  IcmpPacket,
  Ipv4Packet,
  TCP_ACK,
  TCP_PSH,
  TCP_SYN,
  TcpOptions,
  TcpSegment,
  UdpDatagram,
  emitArp,
  emitDhcp,
  emitDns,
  emitEthernetHeaderForTest,
  emitIpv4Header,
  emitTcpHeader,
  emitTcpOptions,
  emitUdpHeader,
  formatIpv4,
  formatMac,
  internetChecksum,
  parseDns,
  parseIpv4,
  parseMac,
  readDnsName,
  tcpOptionsLength,
} from './wire-imports.js';

function ipOf(frameHex: string): Ipv4Packet {
  const frame = new EthernetFrame(hex(frameHex));
  assert.equal(frame.validate(), null);
  assert.equal(frame.etherType, ETHERTYPE_IPV4);
  const ip = new Ipv4Packet(frame.payload());
  assert.equal(ip.validate(), null);
  return ip;
}

describe('wire: addresses and checksum', () => {
  it('round-trips IPv4 and MAC text', () => {
    assert.equal(formatIpv4(parseIpv4('192.168.65.254')), '192.168.65.254');
    assert.equal(parseIpv4('10.9.0.1'), 0x0a090001);
    assert.throws(() => parseIpv4('1.2.3.256'), { code: 'ERR_WIRE_MALFORMED' });
    assert.equal(formatMac(parseMac('6e:5e:df:9e:0e:87')), '6e:5e:df:9e:0e:87');
  });
  it('computes the RFC 1071 example and an odd-length sum', () => {
    // Wikipedia's IPv4 header example, checksum b861.
    const header = hex('450000730000400040110000c0a80001c0a800c7');
    assert.equal(internetChecksum(header, 0, header.length), 0xb861);
    assert.equal(internetChecksum(Uint8Array.of(0x01), 0, 1), 0xfeff);
  });
});

describe('wire: Ethernet + ARP', () => {
  it('decodes a captured ARP request and reply', () => {
    const request = new EthernetFrame(hex(captured.arpRequest));
    assert.equal(request.etherType, ETHERTYPE_ARP);
    assert.equal(formatMac(request.destination), 'ff:ff:ff:ff:ff:ff');
    const arp = new ArpPacket(request.payload());
    assert.equal(arp.validate(), null);
    assert.equal(arp.operation, 1);
    assert.equal(formatIpv4(arp.targetIp), '10.9.0.1');
    assert.equal(formatIpv4(arp.senderIp), '10.9.0.2');
    assert.equal(formatMac(arp.senderMac), '6e:e0:89:2e:b5:1b');

    const reply = new EthernetFrame(hex(captured.arpReply));
    const rebuilt = new Uint8Array(reply.buf.length);
    emitEthernetHeaderForTest(rebuilt, reply.destination, reply.source, ETHERTYPE_ARP);
    const replyArp = new ArpPacket(reply.payload());
    emitArp(rebuilt, 14, {
      operation: ARP_REPLY,
      senderMac: replyArp.senderMac,
      senderIp: replyArp.senderIp,
      targetMac: replyArp.targetMac,
      targetIp: replyArp.targetIp,
    });
    assert.deepEqual(rebuilt, reply.buf);
  });
  it('rejects short and non-IPv4 ARP', () => {
    assert.equal(new ArpPacket(new Uint8Array(10)).validate(), 'ERR_WIRE_TRUNCATED');
    assert.equal(new ArpPacket(new Uint8Array(28)).validate(), 'ERR_WIRE_UNSUPPORTED');
  });
});

describe('wire: IPv4 + ICMP', () => {
  it('decodes captured fragments and re-emits an identical header', () => {
    const first = ipOf(captured.icmpFragment1);
    assert.equal(first.identification, 0x618e);
    assert.equal(first.moreFragments, true);
    assert.equal(first.fragmentOffset, 0);
    assert.equal(first.totalLength, 1500);
    assert.equal(first.protocol, IP_PROTOCOL_ICMP);
    const second = ipOf(captured.icmpFragment2);
    assert.equal(second.fragmentOffset, 1480);
    assert.equal(second.checksum, 0xdec5);
    const last = ipOf(captured.icmpFragment3);
    assert.equal(last.moreFragments, false);
    assert.equal(last.fragmentOffset, 2960);

    const header = new Uint8Array(20);
    emitIpv4Header(header, 0, {
      source: second.source,
      destination: second.destination,
      protocol: second.protocol,
      payloadLength: second.totalLength - 20,
      identification: second.identification,
      ttl: second.ttl,
      moreFragments: true,
      fragmentOffset: second.fragmentOffset,
    });
    assert.deepEqual(header, second.buf.subarray(0, 20));
  });
  it('the first fragment carries the echo request header', () => {
    const icmp = new IcmpPacket(ipOf(captured.icmpFragment1).payload());
    assert.equal(icmp.type, ICMP_ECHO_REQUEST);
    assert.equal(icmp.echoIdentifier, 0x278b);
    assert.equal(icmp.echoSequence, 1);
  });
  it('detects a corrupted header checksum and bad lengths', () => {
    const bytes = hex(captured.icmpFragment3);
    bytes[22] = (bytes[22] ?? 0) ^ 1; // TTL
    assert.equal(new Ipv4Packet(bytes.subarray(14)).validate(), 'ERR_WIRE_CHECKSUM');
    const short = hex(captured.icmpFragment3).subarray(14, 40);
    assert.equal(new Ipv4Packet(short).validate(), 'ERR_WIRE_TRUNCATED');
  });
});

describe('wire: UDP, DNS, DHCP', () => {
  it('decodes the captured DNS query and response and verifies UDP checksums', () => {
    const ip = ipOf(captured.dnsQuery);
    assert.equal(ip.protocol, IP_PROTOCOL_UDP);
    const udp = new UdpDatagram(ip.payload());
    assert.equal(udp.validate(ip.source, ip.destination), null);
    assert.equal(udp.destinationPort, 53);
    const query = parseDns(udp.payload());
    assert.equal(query.id, 0x4389);
    assert.deepEqual(query.questions, [{ name: 'www.example.test', type: DnsType.A, class: DNS_CLASS_IN }]);
    assert.equal(query.additionals[0]?.type, DnsType.OPT);

    const responseIp = ipOf(captured.dnsResponse);
    const response = parseDns(new UdpDatagram(responseIp.payload()).payload());
    assert.equal(response.flags & DNS_FLAG_QR, DNS_FLAG_QR);
    assert.equal(response.answers.length, 1);
    assert.equal(response.answers[0]?.name, 'www.example.test');
    assert.deepEqual([...(response.answers[0]?.data ?? [])], [10, 1, 2, 3]);

    // Re-encoding with compression gives dnsmasq's exact bytes (it compresses the answer name too).
    assert.deepEqual(emitDns(response), new UdpDatagram(responseIp.payload()).payload());

    const corrupt = hex(captured.dnsQuery);
    corrupt[corrupt.length - 1] = (corrupt[corrupt.length - 1] ?? 0) ^ 0xff;
    const corruptIp = new Ipv4Packet(corrupt.subarray(14));
    assert.equal(
      new UdpDatagram(corruptIp.payload()).validate(corruptIp.source, corruptIp.destination),
      'ERR_WIRE_CHECKSUM',
    );
  });
  it('re-emits a UDP header with the same checksum', () => {
    const ip = ipOf(captured.dnsResponse);
    const original = new UdpDatagram(ip.payload());
    const copy = Uint8Array.from(original.buf.subarray(0, original.length));
    copy.fill(0, 0, 8);
    emitUdpHeader(
      copy,
      0,
      ip.source,
      ip.destination,
      original.sourcePort,
      original.destinationPort,
      original.length - 8,
    );
    assert.deepEqual(copy, original.buf.subarray(0, original.length));
  });
  it('rejects DNS pointer loops and truncated names', () => {
    const loop = Uint8Array.of(0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1);
    assert.throws(() => parseDns(loop), { code: 'ERR_WIRE_MALFORMED' });
    assert.throws(() => readDnsName(Uint8Array.of(5, 97, 98), 0), { code: 'ERR_WIRE_TRUNCATED' });
  });
  it('decodes captured DHCP discover/request/ack and re-emits the ack', () => {
    const discover = new DhcpMessage(new UdpDatagram(ipOf(captured.dhcpDiscover).payload()).payload());
    assert.equal(discover.validate(), null);
    assert.equal(discover.messageType(), DhcpMessageType.Discover);
    assert.equal(discover.transactionId, 0x0d215635);
    assert.equal(formatMac(discover.clientMac), '6e:e0:89:2e:b5:1b');
    const request = new DhcpMessage(new UdpDatagram(ipOf(captured.dhcpRequest).payload()).payload());
    assert.equal(request.messageType(), DhcpMessageType.Request);
    const requested = request.options().get(DhcpOption.RequestedIp);
    assert.ok(requested);
    assert.deepEqual([...requested], [10, 9, 0, 56]);

    const ackBytes = new UdpDatagram(ipOf(captured.dhcpAck).payload()).payload();
    const ack = new DhcpMessage(ackBytes);
    assert.equal(ack.messageType(), DhcpMessageType.Ack);
    assert.equal(formatIpv4(ack.yourIp), '10.9.0.56');
    const rebuilt = new Uint8Array(ackBytes.length);
    emitDhcp(rebuilt, 0, {
      op: ack.op,
      transactionId: ack.transactionId,
      flags: ack.flags,
      clientIp: ack.clientIp,
      yourIp: ack.yourIp,
      serverIp: ack.serverIp,
      relayIp: ack.relayIp,
      clientMac: ack.clientMac,
      options: [...ack.options()],
    });
    // dnsmasq fills `secs` from the request; everything else must match byte for byte.
    rebuilt[8] = ackBytes[8] ?? 0;
    rebuilt[9] = ackBytes[9] ?? 0;
    assert.deepEqual(rebuilt, ackBytes);
  });
});

describe('wire: TCP', () => {
  it('decodes the captured SYN options and checksum', () => {
    const ip = ipOf(captured.tcpSyn);
    assert.equal(ip.protocol, IP_PROTOCOL_TCP);
    const tcp = new TcpSegment(ip.payload());
    assert.equal(tcp.validate(ip.source, ip.destination), null);
    assert.equal(tcp.flags, TCP_SYN);
    assert.equal(tcp.sequence, 2024958632);
    assert.equal(tcp.destinationPort, 8000);
    const opts = new TcpOptions();
    assert.equal(tcp.parseOptions(opts), true);
    assert.equal(opts.mss, 1460);
    assert.equal(opts.sackPermitted, true);
    assert.equal(opts.hasTimestamps, true);
    assert.equal(opts.tsVal, 2529819643);
    assert.equal(opts.tsEcr, 0);
    assert.equal(opts.windowScale, 10);
  });
  it('re-emits the captured data segment byte for byte', () => {
    const ip = ipOf(captured.tcpHttpGet);
    const original = new TcpSegment(ip.payload());
    assert.equal(original.flags, TCP_ACK | TCP_PSH);
    assert.equal(original.acknowledgment, 1293406600);
    assert.equal(original.payloadLength, 83);
    assert.equal(new TextDecoder().decode(original.payload().subarray(0, 14)), 'GET /cap.sh HT');
    const opts = new TcpOptions();
    original.parseOptions(opts);
    const copy = Uint8Array.from(original.buf);
    copy.fill(0, 0, original.headerLength);
    const optionsLength = emitTcpOptions(copy, 20, opts);
    assert.equal(optionsLength, tcpOptionsLength(opts));
    emitTcpHeader(
      copy,
      0,
      ip.source,
      ip.destination,
      {
        sourcePort: original.sourcePort,
        destinationPort: original.destinationPort,
        sequence: original.sequence,
        acknowledgment: original.acknowledgment,
        flags: original.flags,
        window: original.window,
      },
      optionsLength,
      original.payloadLength,
    );
    assert.deepEqual(copy, original.buf);
  });
  it('emits and parses SACK blocks, and rejects overrunning options', () => {
    const opts = new TcpOptions();
    opts.sackCount = 2;
    opts.sackBlocks.set([100, 200, 0xfffffff0, 5]);
    const buf = new Uint8Array(60);
    const len = emitTcpOptions(buf, 20, opts);
    buf[12] = ((20 + len) / 4) << 4;
    const parsed = new TcpOptions();
    assert.equal(new TcpSegment(buf.subarray(0, 20 + len)).parseOptions(parsed), true);
    assert.equal(parsed.sackCount, 2);
    assert.deepEqual([...parsed.sackBlocks.subarray(0, 4)], [100, 200, 0xfffffff0, 5]);

    const bad = new Uint8Array(24);
    bad[12] = 6 << 4;
    bad.set([2, 10, 0, 0], 20); // MSS claiming 10 bytes
    assert.equal(new TcpSegment(bad).parseOptions(parsed), false);
  });
});
