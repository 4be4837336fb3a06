import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { type Server, Socket, connect, createServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { parseListenUrl } from '../address.js';
import type { FsBackend } from '../backend.js';
import { ServerConnection, type ServerOptions } from './connection.js';

export interface Listener {
  /** `tcp://HOST:PORT` (with the real port when 0 was asked for) or `unix:///path`. */
  readonly address: string;
  readonly port?: number;
  close(): Promise<void>;
}

/** Replies of one turn up to this many bytes in all are copied into one buffer for their write. */
const COPY_REPLIES_UP_TO = 16384;

/** Whether something accepts connections on the Unix socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/**
 * Serves one backend over any number of transports. Each accepted stream gets its own
 * ServerConnection (fid table, tags); `connection()` gives a bare one for byte-stream transports
 * such as virtio-9p.
 */
export class NinePServer {
  private readonly streams = new Set<Duplex>();
  private readonly listeners = new Set<Listener>();

  constructor(
    readonly backend: FsBackend,
    readonly options: ServerOptions = {},
  ) {}

  /** A sans-I/O connection: feed `receive(bytes)`, set `onSend`, call `close()`. */
  connection(): ServerConnection {
    return new ServerConnection(this.backend, this.options);
  }

  /** Serves 9P over a byte stream (a socket, a pipe, ...) until either side closes it. */
  handleStream(stream: Duplex): ServerConnection {
    const conn = this.connection();
    this.streams.add(stream);
    let pausedByServer = false;
    let pausedByWrites = false;
    const updateFlow = () => {
      if (pausedByServer || pausedByWrites) stream.pause();
      else stream.resume();
    };
    // A socket's write callback means the kernel has the bytes, so the buffer may be reused. An
    // in-process stream hands the very buffer to its reader, so it must never be recycled.
    const recyclable = stream instanceof Socket;
    // Replies finished in the same turn of the event loop leave in one write (many tags in flight
    // make many at once; a client's pipelined chain of requests, handled in one turn, gets its
    // replies in one segment instead of one per reply). Small ones are copied into one buffer: a
    // stream write per reply cost more than the copy.
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    let pendingDone: Array<() => void> | undefined;
    let flushSoon = false;
    let flushArmed = false;
    const flush = () => {
      flushSoon = false;
      if (pending.length === 0) return;
      const parts = pending;
      const bytes = pendingBytes;
      const dones = pendingDone;
      pending = [];
      pendingBytes = 0;
      pendingDone = undefined;
      const released = dones
        ? () => {
            for (const d of dones) d();
          }
        : undefined;
      if (stream.destroyed) {
        released?.();
        return;
      }
      let ok: boolean;
      if (parts.length === 1) ok = stream.write(parts[0]!, released);
      else if (bytes <= COPY_REPLIES_UP_TO) {
        ok = stream.write(Buffer.concat(parts, bytes));
        released?.(); // copied out
      } else {
        stream.cork();
        for (let i = 0; i < parts.length - 1; i++) stream.write(parts[i]!);
        ok = stream.write(parts[parts.length - 1]!, released);
        stream.uncork();
      }
      if (!ok && !pausedByWrites) {
        // The client is not reading its replies: stop reading its requests until it catches up.
        pausedByWrites = true;
        updateFlow();
        stream.once('drain', () => {
          pausedByWrites = false;
          updateFlow();
        });
      }
    };
    const armedFlush = () => {
      flushArmed = false;
      flush();
    };
    // After the immediates the backend scheduled in this turn, too: a reply that waits only for
    // one of them (DataKit's durable journal write, done there) joins the others.
    const armFlush = () => {
      if (flushArmed) return;
      flushArmed = true;
      setImmediate(() => setImmediate(armedFlush));
    };
    conn.onSend = (parts, release) => {
      if (stream.destroyed) {
        release?.();
        return;
      }
      for (const part of parts) {
        pending.push(part);
        pendingBytes += part.length;
      }
      if (release && recyclable) {
        pendingDone ??= [];
        pendingDone.push(release);
      }
      if (conn.outstanding > 0 && pendingBytes < 16384) armFlush();
      else if (!flushSoon) {
        // Nothing else in flight on this connection (no reply to wait for), or bulk data (reads,
        // which waiting for the turn to end would only delay): out at the end of this tick.
        flushSoon = true;
        process.nextTick(flush);
      }
    };
    conn.onPause = (paused) => {
      pausedByServer = paused;
      updateFlow();
    };
    conn.onClose = () => {
      if (!stream.destroyed) stream.destroy();
    };
    stream.on('data', (chunk: Buffer) => conn.receive(chunk));
    stream.on('error', () => {});
    stream.on('close', () => {
      this.streams.delete(stream);
      conn.close();
    });
    stream.on('end', () => {
      conn.close();
      stream.end();
    });
    return conn;
  }

  /** Listens on `tcp://HOST:PORT` or `unix:///path`. */
  async listen(url: string): Promise<Listener> {
    const where = parseListenUrl(url);
    const sockets = new Set<Socket>();
    const server: Server = createServer({ noDelay: true }, (socket: Socket) => {
      socket.setNoDelay(true);
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      this.handleStream(socket);
    });
    // A socket file left by a previous run would make listen fail; one with a live server behind it stays.
    if (where.kind === 'unix' && existsSync(where.path) && lstatSync(where.path).isSocket()) {
      if (await answers(where.path)) throw new Error(`${url} is in use by a running server`);
      unlinkSync(where.path);
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if (where.kind === 'tcp') server.listen(where.port, where.host, () => resolve());
      else server.listen(where.path, () => resolve());
    });
    server.on('error', (e) => (this.options.logger ?? console.error)(`ninep: listener error: ${e.message}`));
    let address: string;
    let port: number | undefined;
    if (where.kind === 'tcp') {
      const a = server.address();
      port = typeof a === 'object' && a ? a.port : where.port;
      const host = where.host.includes(':') ? `[${where.host}]` : where.host;
      address = `tcp://${host}:${port}`;
    } else address = `unix://${where.path}`;
    const listener: Listener = {
      address,
      ...(port !== undefined ? { port } : {}),
      close: () =>
        new Promise<void>((resolve) => {
          this.listeners.delete(listener);
          server.close(() => resolve());
          for (const s of sockets) s.destroy();
        }),
    };
    this.listeners.add(listener);
    return listener;
  }

  /** Stops every listener and drops every connection. */
  async close(): Promise<void> {
    for (const s of this.streams) s.destroy();
    this.streams.clear();
    await Promise.all([...this.listeners].map((l) => l.close()));
  }
}
