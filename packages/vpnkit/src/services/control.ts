import http from 'node:http';
import {
  type Attr,
  type DirEntry,
  Errno,
  FileMode,
  type FsBackend,
  type FsNode,
  type FsOpenFile,
  NinePError,
  QidType,
} from '@kitset/ninep';
import { VpnkitError } from '../errors.js';
import { formatIpv4, parseIpv4 } from '../wire/address.js';
import type { PortForward } from './config.js';
import { describeForward } from './forwarder.js';
import type { PortForwarder } from './forwarder.js';

/**
 * Which guest's forwards a control plane acts on: a fixed one, or (for a server whose guests come and go)
 * whichever is attached now.
 */
export type ForwardTarget = PortForwarder | (() => PortForwarder | undefined);

function resolveTarget(target: ForwardTarget): PortForwarder {
  const forwards = typeof target === 'function' ? target() : target;
  if (!forwards) throw new VpnkitError('ERR_VPNKIT_LINK', 'no guest is attached');
  return forwards;
}

/** VPNKit's 9P names: `tcp:0.0.0.0:8080:tcp:192.168.65.3:80` (host side first, then the guest side). */
export function parseControlName(name: string): PortForward {
  const parts = name.split(':');
  const [proto, hostAddress, hostPort, proto2, guestAddress, guestPort] = parts;
  const bad = () =>
    new NinePError(
      Errno.EINVAL,
      `bad forward "${name}": expected tcp|udp:HOST_IP:PORT:tcp|udp:GUEST_IP:PORT`,
    );
  if (parts.length !== 6 || (proto !== 'tcp' && proto !== 'udp') || proto2 !== proto) throw bad();
  const port = (text: string | undefined) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw bad();
    return n;
  };
  try {
    parseIpv4(hostAddress ?? '');
    return {
      protocol: proto,
      hostAddress: hostAddress ?? '',
      hostPort: port(hostPort),
      guestAddress: parseIpv4(guestAddress ?? ''),
      guestPort: port(guestPort),
    };
  } catch (err) {
    if (err instanceof NinePError) throw err;
    throw bad();
  }
}

let nextPath = 100n;
const now = () => Math.floor(Date.now() / 1000);

function attr(path: bigint, dir: boolean, size = 0): Attr {
  const t = now();
  return {
    qid: { type: dir ? QidType.DIR : QidType.FILE, version: 0, path },
    mode: dir ? FileMode.S_IFDIR | 0o755 : FileMode.S_IFREG | 0o644,
    uid: 0,
    gid: 0,
    nlink: 1,
    rdev: 0,
    size,
    blksize: 4096,
    blocks: 0,
    atimeSec: t,
    atimeNsec: 0,
    mtimeSec: t,
    mtimeNsec: 0,
    ctimeSec: t,
    ctimeNsec: 0,
  };
}

class Entry {
  readonly path = nextPath++;
  readonly ctlPath = nextPath++;
  /** How many open ctl fids hold the forward; it ends with the last one. */
  holders = 0;
  /** The forwarder that bound it (guests may come and go meanwhile). */
  owner: PortForwarder | undefined;
  status = 'ERROR not bound yet: open ctl to bind\n';
  bound = false;
  constructor(
    readonly name: string,
    readonly forward: PortForward,
  ) {}
}

/**
 * VPNKit's port-control file system: `mkdir tcp:0.0.0.0:8080:tcp:192.168.65.3:80` makes a directory whose
 * `ctl` file binds the forward when opened; reading it says `OK ...` or `ERROR ...`, and the forward lives
 * as long as that fid (clunk, or rmdir, ends it).
 */
export class PortControlFs implements FsBackend {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly target: ForwardTarget) {}

  async attach(): Promise<FsNode> {
    return this.root();
  }

  private root(): FsNode {
    return {
      qid: { type: QidType.DIR, version: 0, path: 1n },
      getattr: async () => attr(1n, true),
      walk: async (name) => {
        const entry = this.entries.get(name);
        if (!entry) throw new NinePError(Errno.ENOENT);
        return this.entryNode(entry);
      },
      mkdir: async (name) => {
        if (this.entries.has(name)) throw new NinePError(Errno.EEXIST);
        const entry = new Entry(name, parseControlName(name));
        this.entries.set(name, entry);
        return this.entryNode(entry);
      },
      unlink: async (name) => {
        const entry = this.entries.get(name);
        if (!entry) throw new NinePError(Errno.ENOENT);
        this.release(entry, true);
      },
      open: async () =>
        this.listing(() =>
          [...this.entries.values()].map((e) => ({ name: e.name, path: e.path, dir: true })),
        ),
    };
  }

  private entryNode(entry: Entry): FsNode {
    return {
      qid: { type: QidType.DIR, version: 0, path: entry.path },
      getattr: async () => attr(entry.path, true),
      walk: async (name) => {
        if (name !== 'ctl') throw new NinePError(Errno.ENOENT);
        return this.ctlNode(entry);
      },
      open: async () => this.listing(() => [{ name: 'ctl', path: entry.ctlPath, dir: false }]),
    };
  }

  private ctlNode(entry: Entry): FsNode {
    return {
      qid: { type: QidType.FILE, version: 0, path: entry.ctlPath },
      getattr: async () => attr(entry.ctlPath, false, entry.status.length),
      open: async () => {
        entry.holders++;
        if (!entry.bound) {
          try {
            entry.owner = resolveTarget(this.target);
            await entry.owner.add(entry.forward);
            entry.bound = true;
            entry.status = `OK ${entry.forward.hostAddress}:${entry.forward.hostPort}\n`;
          } catch (err) {
            entry.status = `ERROR ${err instanceof VpnkitError ? err.message : String(err)}\n`;
          }
        }
        let closed = false;
        const file: FsOpenFile = {
          read: async (offset, count) => Buffer.from(entry.status).subarray(offset, offset + count),
          write: async (_offset, data) => data.length, // the name already says what to do
          readdir: async () => {
            throw new NinePError(Errno.ENOTDIR);
          },
          close: async () => {
            if (closed) return;
            closed = true;
            entry.holders--;
            if (entry.holders === 0) this.release(entry, true);
          },
        };
        return file;
      },
    };
  }

  private release(entry: Entry, forget: boolean): void {
    if (entry.bound) entry.owner?.remove(entry.forward);
    entry.bound = false;
    entry.status = 'ERROR closed\n';
    if (forget) this.entries.delete(entry.name);
  }

  private listing(list: () => Array<{ name: string; path: bigint; dir: boolean }>): FsOpenFile {
    return {
      read: async () => {
        throw new NinePError(Errno.EISDIR);
      },
      write: async () => {
        throw new NinePError(Errno.EISDIR);
      },
      readdir: async (offset) => {
        const all = list();
        return all.slice(offset).map(
          (e, i): DirEntry => ({
            name: e.name,
            qid: { type: e.dir ? QidType.DIR : QidType.FILE, version: 0, path: e.path },
            type: e.dir ? 4 : 8,
            offset: offset + i + 1,
          }),
        );
      },
      close: async () => {},
    };
  }

  /** Names of the live forwards. */
  names(): string[] {
    return [...this.entries.keys()];
  }
}

interface ExposeRequest {
  local?: string;
  remote?: string;
  protocol?: string;
}

function splitHostPort(text: string | undefined, what: string): [string, number] {
  const m = /^(.*):(\d+)$/.exec(text ?? '');
  if (!m)
    throw new VpnkitError(
      'ERR_VPNKIT_FORWARD_SPEC',
      `${what} must be HOST:PORT, got ${JSON.stringify(text)}`,
    );
  return [m[1] || '127.0.0.1', Number(m[2])];
}

/**
 * An HTTP API for forwards on a Unix socket, in the shape of gvisor-tap-vsock's:
 * `GET /services/forwarder/all`, `POST /services/forwarder/expose {local, remote, protocol}`,
 * `POST /services/forwarder/unexpose {local, protocol}`.
 */
export function createControlHttpServer(target: ForwardTarget): http.Server {
  const toForward = (forwards: PortForwarder, body: ExposeRequest, needRemote: boolean): PortForward => {
    const protocol = body.protocol ?? 'tcp';
    if (protocol !== 'tcp' && protocol !== 'udp')
      throw new VpnkitError('ERR_VPNKIT_FORWARD_SPEC', `protocol must be tcp or udp, got ${protocol}`);
    const [hostAddress, hostPort] = splitHostPort(body.local, 'local');
    if (!needRemote) {
      const found = forwards
        .list()
        .find((f) => f.protocol === protocol && f.hostAddress === hostAddress && f.hostPort === hostPort);
      if (!found) throw new VpnkitError('ERR_VPNKIT_FORWARD_SPEC', `no ${protocol} forward on ${body.local}`);
      return found;
    }
    const [guest, guestPort] = splitHostPort(body.remote, 'remote');
    return { protocol, hostAddress, hostPort, guestAddress: parseIpv4(guest), guestPort };
  };
  return http.createServer((req, res) => {
    const reply = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': status === 200 ? 'application/json' : 'text/plain' });
      res.end(typeof value === 'string' ? `${value}\n` : JSON.stringify(value));
    };
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 65536) chunks.push(c);
    });
    req.on('end', () => {
      void (async () => {
        try {
          const forwards = resolveTarget(target);
          if (req.method === 'GET' && req.url === '/services/forwarder/all') {
            reply(
              200,
              forwards.list().map((f) => ({
                local: `${f.hostAddress}:${f.hostPort}`,
                remote: `${formatIpv4(f.guestAddress)}:${f.guestPort}`,
                protocol: f.protocol,
                name: describeForward(f),
              })),
            );
            return;
          }
          if (
            req.method !== 'POST' ||
            (req.url !== '/services/forwarder/expose' && req.url !== '/services/forwarder/unexpose')
          ) {
            reply(404, `unknown endpoint ${req.method} ${req.url}`);
            return;
          }
          if (size > 65536) throw new VpnkitError('ERR_VPNKIT_FORWARD_SPEC', 'request body too large');
          const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as ExposeRequest;
          if (req.url === '/services/forwarder/expose') await forwards.add(toForward(forwards, body, true));
          else forwards.remove(toForward(forwards, body, false));
          reply(200, { ok: true });
        } catch (err) {
          const status =
            err instanceof SyntaxError
              ? 400
              : err instanceof VpnkitError && err.code === 'ERR_VPNKIT_LINK'
                ? 503
                : 500;
          reply(status, (err as Error).message);
        }
      })();
    });
  });
}
