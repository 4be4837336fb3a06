import type { Logger } from '../errors.js';
import { type TapAddon, loadTapAddon } from '../link/tap.js';
import type { NetworkStack } from '../stack/stack.js';
import type { Ipv4Address } from '../wire/address.js';
import { internetChecksum } from '../wire/checksum.js';
import { ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST } from '../wire/icmp.js';

interface EchoFlow {
  guest: Ipv4Address;
  guestIdentifier: number;
  lastActive: number;
}

const FLOW_LIMIT = 1024;
const FLOW_IDLE_MS = 60_000;

/**
 * Guest pings to the outside world, through one host ICMP socket: an unprivileged ICMP datagram socket
 * where net.ipv4.ping_group_range allows it, else a raw socket (root). Each guest (address, identifier)
 * gets an identifier of ours so replies find their way back and never collide with the host's own pings.
 */
export class IcmpForwarder {
  private readonly addon: TapAddon;
  private readonly fd: number;
  private readonly raw: boolean;
  private readonly watcher: unknown;
  private readonly byOurId = new Map<number, EchoFlow>();
  private readonly byGuest = new Map<string, number>();
  /** Datagram mode only: requests awaiting a reply, by destination and sequence. */
  private readonly inFlight = new Map<string, EchoFlow>();
  private nextId = 1;
  private readonly rx = new Uint8Array(65536);
  private readonly from = new Uint32Array(1);
  private readonly tx = new Uint8Array(65536);
  private closed = false;

  private constructor(
    private readonly stack: NetworkStack,
    private readonly log: Logger,
  ) {
    this.addon = loadTapAddon();
    const { fd, raw } = this.addon.icmpOpen();
    this.fd = fd;
    this.raw = raw;
    this.watcher = this.addon.watch(fd, () => this.readable());
    log('debug', `ICMP echo forwarding through a ${raw ? 'raw' : 'datagram'} socket`);
  }

  /** Null (with a log line) when the host allows no ICMP socket or the addon is missing. */
  static open(stack: NetworkStack, log: Logger): IcmpForwarder | null {
    try {
      return new IcmpForwarder(stack, log);
    } catch (err) {
      log(
        'warn',
        `ICMP echo to addresses outside the stack is disabled: ${(err as Error).message} ` +
          '(allow it with: sysctl net.ipv4.ping_group_range="0 2147483647")',
      );
      return null;
    }
  }

  echo(
    guest: Ipv4Address,
    destination: Ipv4Address,
    identifier: number,
    sequence: number,
    payload: Uint8Array,
  ): void {
    if (this.closed || payload.length > this.tx.length - 8) return;
    const key = `${guest}:${identifier}`;
    let ourId = this.byGuest.get(key);
    if (ourId === undefined) {
      if (this.byOurId.size >= FLOW_LIMIT) this.expire(true);
      for (let tries = 0; tries < 65536; tries++) {
        const candidate = this.nextId;
        this.nextId = (this.nextId % 65535) + 1;
        if (!this.byOurId.has(candidate)) {
          ourId = candidate;
          break;
        }
      }
      if (ourId === undefined) return;
      this.byGuest.set(key, ourId);
      this.byOurId.set(ourId, { guest, guestIdentifier: identifier, lastActive: Date.now() });
    }
    const flow = this.byOurId.get(ourId);
    if (flow) flow.lastActive = Date.now();
    const t = this.tx;
    t[0] = ICMP_ECHO_REQUEST;
    t[1] = 0;
    t[2] = 0;
    t[3] = 0;
    t[4] = ourId >>> 8;
    t[5] = ourId & 0xff;
    t[6] = sequence >>> 8;
    t[7] = sequence & 0xff;
    t.set(payload, 8);
    const sum = internetChecksum(t, 0, 8 + payload.length);
    t[2] = sum >>> 8;
    t[3] = sum & 0xff;
    if (!this.raw && flow) {
      if (this.inFlight.size >= FLOW_LIMIT) this.inFlight.clear();
      this.inFlight.set(`${destination}:${sequence}`, flow);
    }
    this.addon.icmpSend(this.fd, destination, t.subarray(0, 8 + payload.length));
  }

  private readable(): void {
    for (let i = 0; i < 64 && !this.closed; i++) {
      const n = this.addon.icmpRecv(this.fd, this.rx, this.from);
      if (n < 0) return;
      let offset = 0;
      if (this.raw) {
        if (n < 20) continue;
        offset = (this.rx[0]! & 0x0f) * 4;
      }
      if (n - offset < 8 || this.rx[offset] !== ICMP_ECHO_REPLY) continue;
      const id = (this.rx[offset + 4]! << 8) | this.rx[offset + 5]!;
      const sequence = (this.rx[offset + 6]! << 8) | this.rx[offset + 7]!;
      let flow: EchoFlow | undefined;
      if (this.raw) flow = this.byOurId.get(id);
      else {
        // A datagram socket's kernel owns the identifier: match by who answered and the sequence.
        const key = `${this.from[0]}:${sequence}`;
        flow = this.inFlight.get(key);
        this.inFlight.delete(key);
      }
      if (!flow) continue;
      flow.lastActive = Date.now();
      this.stack.sendIcmpEchoReply(
        this.from[0]!,
        flow.guest,
        flow.guestIdentifier,
        sequence,
        this.rx.subarray(offset + 8, n),
      );
    }
  }

  private expire(force: boolean): void {
    const cutoff = Date.now() - FLOW_IDLE_MS;
    for (const [id, flow] of this.byOurId) {
      if (force || flow.lastActive < cutoff) {
        this.byOurId.delete(id);
        this.byGuest.delete(`${flow.guest}:${flow.guestIdentifier}`);
        if (force) return;
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.unwatch(this.watcher);
    this.addon.close(this.fd);
  }
}
