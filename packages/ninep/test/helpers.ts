import {
  type Attr,
  type Dialect,
  type DirEntry,
  Errno,
  FileMode,
  type FsBackend,
  type FsNode,
  type FsOpenFile,
  type Message,
  type MessageName,
  type MessageOf,
  NinePError,
  type Qid,
  QidType,
  type RequestContext,
  ServerConnection,
  type ServerOptions,
  decodeMessage,
  encodeMessage,
} from '../src/index.js';

/** A tiny in-memory tree: a root directory with files; "stream" blocks every read until aborted. */
export class MemoryBackend implements FsBackend {
  aborts = 0;
  readonly files = new Map<string, Uint8Array>([['data', new TextEncoder().encode('0123456789')]]);
  readonly root: FsNode;

  constructor() {
    let nextPath = 10n;
    const attrOf = (qid: Qid, mode: number, size: number): Attr => ({
      qid,
      mode,
      uid: 0,
      gid: 0,
      nlink: 1,
      rdev: 0,
      size,
      blksize: 4096,
      blocks: 0,
      atimeSec: 1,
      atimeNsec: 0,
      mtimeSec: 2,
      mtimeNsec: 0,
      ctimeSec: 3,
      ctimeNsec: 0,
    });
    const fileNode = (name: string): FsNode => {
      const qid: Qid = { type: QidType.FILE, version: 0, path: nextPath++ };
      return {
        qid,
        getattr: async () => attrOf(qid, FileMode.S_IFREG | 0o644, this.files.get(name)?.length ?? 0),
        open: async (): Promise<FsOpenFile> => ({
          read: async (offset: number, count: number, ctx: RequestContext) => {
            if (name === 'stream') {
              await new Promise<void>((_resolve, reject) => {
                const onAbort = () => {
                  this.aborts++;
                  reject(ctx.signal.reason);
                };
                if (ctx.signal.aborted) onAbort();
                else ctx.signal.addEventListener('abort', onAbort, { once: true });
              });
            }
            const data = this.files.get(name) ?? new Uint8Array();
            return data.subarray(offset, offset + count);
          },
          write: async (offset: number, data: Uint8Array) => {
            const old = this.files.get(name) ?? new Uint8Array();
            const next = new Uint8Array(Math.max(old.length, offset + data.length));
            next.set(old);
            next.set(data, offset);
            this.files.set(name, next);
            return data.length;
          },
          readdir: async () => {
            throw new NinePError(Errno.ENOTDIR);
          },
          close: async () => {},
        }),
      };
    };
    const rootQid: Qid = { type: QidType.DIR, version: 0, path: 1n };
    const children = new Map<string, FsNode>();
    this.root = {
      qid: rootQid,
      getattr: async () => attrOf(rootQid, FileMode.S_IFDIR | 0o755, 0),
      walk: async (name: string) => {
        if (name !== 'stream' && !this.files.has(name)) throw new NinePError(Errno.ENOENT);
        let n = children.get(name);
        if (!n) {
          n = fileNode(name);
          children.set(name, n);
        }
        return n;
      },
      open: async (): Promise<FsOpenFile> => ({
        read: async () => {
          throw new NinePError(Errno.EISDIR);
        },
        write: async () => {
          throw new NinePError(Errno.EISDIR);
        },
        readdir: async (offset: number): Promise<DirEntry[]> => {
          const names = ['stream', ...this.files.keys()];
          const out: DirEntry[] = [];
          for (let i = offset; i < names.length; i++) {
            const node = await this.root.walk!(names[i]!, undefined as unknown as RequestContext);
            out.push({ name: names[i]!, qid: node.qid, type: 8, offset: i + 1 });
          }
          return out;
        },
        close: async () => {},
      }),
      unlink: async (name: string) => {
        if (!this.files.delete(name)) throw new NinePError(Errno.ENOENT);
        children.delete(name);
      },
    };
  }

  async attach(): Promise<FsNode> {
    return this.root;
  }
}

/** Drives a ServerConnection with messages and collects decoded replies. */
export class Harness {
  readonly conn: ServerConnection;
  readonly replies: Message[] = [];
  readonly logs: string[] = [];
  closedReason: string | undefined | null = null;
  pauses: boolean[] = [];

  constructor(
    backend: FsBackend,
    public dialect: Dialect = '9P2000.L',
    options: ServerOptions = {},
  ) {
    this.conn = new ServerConnection(backend, { logger: (m) => this.logs.push(m), ...options });
    this.conn.onSend = (parts, release) => {
      const frame = Buffer.concat(parts);
      release?.();
      this.replies.push(decodeMessage(frame, this.dialect));
    };
    this.conn.onClose = (reason) => {
      this.closedReason = reason;
    };
    this.conn.onPause = (p) => this.pauses.push(p);
  }

  send(msg: Message): void {
    this.conn.receive(encodeMessage(msg, this.dialect));
  }

  /** Sends and waits until a reply with this tag arrives. */
  async rpc<K extends MessageName>(msg: Message, expect?: K): Promise<MessageOf<K>> {
    this.send(msg);
    const reply = await this.waitFor(msg.tag);
    if (expect && reply.type !== expect) throw new Error(`expected ${expect}, got ${JSON.stringify(reply)}`);
    return reply as MessageOf<K>;
  }

  async waitFor(tag: number, timeoutMs = 2000): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.replies.findIndex((r) => r.tag === tag);
      if (i >= 0) return this.replies.splice(i, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`no reply for tag ${tag}`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  async settle(): Promise<void> {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  }
}
