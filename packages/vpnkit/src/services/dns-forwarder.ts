import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import type { Logger } from '../errors.js';
import { type Ipv4Address, parseIpv4, writeIpv4 } from '../wire/address.js';
import {
  DNS_CLASS_IN,
  DNS_FLAG_AA,
  DNS_FLAG_QR,
  DNS_FLAG_RA,
  DNS_FLAG_RD,
  DnsHeader,
  type DnsMessageRepr,
  DnsRcode,
  DnsType,
  emitDns,
  parseDns,
} from '../wire/dns.js';
import type { VpnkitConfig } from './config.js';

interface Upstream {
  host: string;
  port: number;
}

const QUERY_TIMEOUT_MS = 2500;
const MAX_IN_FLIGHT = 512;

/** A file re-read only when its mtime or size changes, so resolver changes (VPN up/down) apply at once. */
class WatchedFile<T> {
  private stamp = '';
  private value: T;
  constructor(
    private readonly path: string,
    private readonly parse: (text: string) => T,
    private readonly fallback: T,
  ) {
    this.value = fallback;
  }
  get(): T {
    let stamp = 'missing';
    try {
      const st = statSync(this.path);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {}
    if (stamp !== this.stamp) {
      this.stamp = stamp;
      try {
        this.value = this.parse(readFileSync(this.path, 'utf8'));
      } catch {
        this.value = this.fallback;
      }
    }
    return this.value;
  }
}

export function parseResolvConf(text: string): Upstream[] {
  const out: Upstream[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m?.[1] && net.isIPv4(m[1])) out.push({ host: m[1], port: 53 });
  }
  return out;
}

export function parseHosts(text: string): Map<string, Ipv4Address> {
  const out = new Map<string, Ipv4Address>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [address, ...names] = line.split(/\s+/);
    if (!address || !net.isIPv4(address)) continue;
    for (const name of names)
      if (!out.has(name.toLowerCase())) out.set(name.toLowerCase(), parseIpv4(address));
  }
  return out;
}

function parseServer(spec: string): Upstream {
  const m = /^(.+?)(?::(\d+))?$/.exec(spec);
  return { host: m?.[1] ?? spec, port: m?.[2] ? Number(m[2]) : 53 };
}

/**
 * The DNS service on the gateway: answers the local names and /etc/hosts itself and forwards the rest to
 * the host's resolvers over UDP or TCP, each query from a fresh socket (random port) with a random ID.
 */
export class DnsForwarder {
  private readonly resolvConf: WatchedFile<Upstream[]>;
  private readonly hosts: WatchedFile<Map<string, Ipv4Address>>;
  private inFlight = 0;
  private readonly localNames: Map<string, Ipv4Address>;
  private closed = false;
  private readonly sockets = new Set<dgram.Socket | net.Socket>();

  constructor(
    private readonly config: VpnkitConfig,
    private readonly log: Logger,
  ) {
    this.resolvConf = new WatchedFile(config.resolvConfPath, parseResolvConf, []);
    this.hosts = new WatchedFile(config.hostsPath, parseHosts, new Map());
    this.localNames = new Map([[`gateway.${config.domainName}`, config.gateway]]);
    if (config.hostAlias !== null) this.localNames.set(`host.${config.domainName}`, config.hostAlias);
  }

  upstreams(): Upstream[] {
    if (this.config.dnsServers.length > 0) return this.config.dnsServers.map(parseServer);
    return this.resolvConf.get();
  }

  /** Answers `query` (a DNS message); calls `reply` at most once. */
  resolve(query: Uint8Array, transport: 'udp' | 'tcp', reply: (answer: Uint8Array) => void): void {
    if (this.closed) return;
    let message: DnsMessageRepr;
    try {
      message = parseDns(query);
    } catch {
      return; // not worth an answer
    }
    if (message.flags & DNS_FLAG_QR) return;
    const question = message.questions[0];
    if (message.questions.length !== 1 || !question) {
      reply(this.errorReply(message, DnsRcode.FormErr));
      return;
    }
    const local = this.answerLocally(message);
    if (local) {
      reply(local);
      return;
    }
    const upstreams = this.upstreams();
    if (upstreams.length === 0 || this.inFlight >= MAX_IN_FLIGHT) {
      reply(this.errorReply(message, DnsRcode.ServFail));
      return;
    }
    this.inFlight++;
    let done = false;
    const finish = (answer: Uint8Array | null) => {
      if (done) return;
      done = true;
      this.inFlight--;
      if (answer) {
        new DnsHeader(answer).id = message.id;
        reply(answer);
      } else reply(this.errorReply(message, DnsRcode.ServFail));
    };
    const tryServer = (index: number) => {
      const upstream = upstreams[index];
      if (!upstream || this.closed) {
        finish(null);
        return;
      }
      const next = () => tryServer(index + 1);
      if (transport === 'udp') this.queryUdp(upstream, query, finish, next);
      else this.queryTcp(upstream, query, finish, next);
    };
    tryServer(0);
  }

  private withRandomId(query: Uint8Array): { bytes: Uint8Array; id: number } {
    const bytes = Uint8Array.from(query);
    const id = randomInt(0, 65536);
    new DnsHeader(bytes).id = id;
    return { bytes, id };
  }

  private queryUdp(
    upstream: Upstream,
    query: Uint8Array,
    finish: (a: Uint8Array | null) => void,
    next: () => void,
  ): void {
    const { bytes, id } = this.withRandomId(query);
    const socket = dgram.createSocket('udp4');
    this.sockets.add(socket);
    let settled = false;
    const settle = (answer: Uint8Array | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      this.sockets.delete(socket);
      socket.close();
      if (answer) finish(answer);
      else next();
    };
    const timer = setTimeout(() => settle(null), QUERY_TIMEOUT_MS);
    socket.on('error', () => settle(null));
    socket.on('message', (msg, rinfo) => {
      if (rinfo.address !== upstream.host || rinfo.port !== upstream.port) return;
      if (msg.length < 12 || new DnsHeader(msg).id !== id) return;
      settle(new Uint8Array(msg.buffer, msg.byteOffset, msg.length));
    });
    socket.send(bytes, upstream.port, upstream.host, (err) => {
      if (err) settle(null);
    });
  }

  private queryTcp(
    upstream: Upstream,
    query: Uint8Array,
    finish: (a: Uint8Array | null) => void,
    next: () => void,
  ): void {
    const { bytes, id } = this.withRandomId(query);
    const socket = net.connect({ host: upstream.host, port: upstream.port });
    this.sockets.add(socket);
    let settled = false;
    let buffered = Buffer.alloc(0);
    const settle = (answer: Uint8Array | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      this.sockets.delete(socket);
      socket.destroy();
      if (answer) finish(answer);
      else next();
    };
    const timer = setTimeout(() => settle(null), QUERY_TIMEOUT_MS);
    socket.on('error', () => settle(null));
    socket.on('close', () => settle(null));
    socket.on('connect', () => {
      const prefix = Buffer.from([bytes.length >>> 8, bytes.length & 0xff]);
      socket.write(Buffer.concat([prefix, bytes]));
    });
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length > 70_000) return settle(null);
      if (buffered.length < 2) return;
      const length = buffered.readUInt16BE(0);
      if (buffered.length < 2 + length) return;
      const answer = buffered.subarray(2, 2 + length);
      if (answer.length < 12 || new DnsHeader(answer).id !== id) return settle(null);
      settle(Uint8Array.from(answer));
    });
  }

  private answerLocally(message: DnsMessageRepr): Uint8Array | null {
    const question = message.questions[0]!;
    const name = question.name.toLowerCase().replace(/\.$/, '');
    const address = this.localNames.get(name) ?? this.hosts.get().get(name);
    if (address === undefined) return null;
    const answers =
      question.type === DnsType.A && (question.class === DNS_CLASS_IN || question.class === 255)
        ? [{ name: question.name, type: DnsType.A, class: DNS_CLASS_IN, ttl: 60, data: ipBytes(address) }]
        : [];
    return emitDns({
      id: message.id,
      flags: DNS_FLAG_QR | DNS_FLAG_AA | DNS_FLAG_RA | (message.flags & DNS_FLAG_RD),
      questions: [question],
      answers,
      authorities: [],
      additionals: [],
    });
  }

  private errorReply(message: DnsMessageRepr, rcode: number): Uint8Array {
    return emitDns({
      id: message.id,
      flags: DNS_FLAG_QR | DNS_FLAG_RA | (message.flags & DNS_FLAG_RD) | rcode,
      questions: message.questions.slice(0, 1),
      answers: [],
      authorities: [],
      additionals: [],
    });
  }

  close(): void {
    this.closed = true;
    for (const s of this.sockets) {
      if (s instanceof net.Socket) s.destroy();
      else s.close();
    }
    this.sockets.clear();
  }

  describe(): string {
    return this.upstreams()
      .map((u) => `${u.host}:${u.port}`)
      .join(', ');
  }
}

function ipBytes(address: Ipv4Address): Uint8Array {
  const out = new Uint8Array(4);
  writeIpv4(out, 0, address);
  return out;
}
