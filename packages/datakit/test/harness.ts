import type { FsNode, FsOpenFile, RequestContext } from '@kitset/ninep';
import { OpenFlags } from '@kitset/ninep';
import { bytes, utf8 } from './helpers.js';

/** What the ported black-box scenarios need from a 9P-ish file system (direct FsNode calls or a real 9P client). */
export interface TestFs {
  readdir(path: string[]): Promise<string[]>;
  mkdir(dir: string[], name: string): Promise<void>;
  create(dir: string[], name: string, contents: string, perm?: 'normal' | 'exec' | 'link'): Promise<void>;
  /** Opens for writing (after truncating to 0 if asked) and writes at offset 0. */
  write(path: string[], contents: string, opts?: { truncate?: boolean }): Promise<void>;
  /** Stat for the length, then read that much. */
  read(path: string[]): Promise<string>;
  readAt(path: string[], offset: number, count: number): Promise<string>;
  remove(path: string[]): Promise<void>;
  rename(path: string[], newName: string): Promise<void>;
  truncate(path: string[], length: number): Promise<void>;
  chmod(path: string[], perm: 'normal' | 'exec'): Promise<void>;
  stat(path: string[]): Promise<{ size: number; mode: number; qidPath: bigint }>;
  walkQidTypes(path: string[]): Promise<number[]>;
  stream(path: string[]): Promise<LineStream>;
  /** Keeps a fid on `path` (as the original test does) so it can be renamed after changes. */
  hold(path: string[]): Promise<{ rename(newName: string): Promise<void>; close(): Promise<void> }>;
}

export interface LineStream {
  line(): Promise<string>;
  close(): Promise<void>;
}

/**
 * Reads lines from a stream file the way the original's test does: a background reader hands
 * each line over through a one-place mailbox (it blocks until the line is taken, then reads on),
 * "" once is a flush and twice is end-of-stream.
 */
export function lineReader(
  readChunk: (offset: number, signal: AbortSignal) => Promise<Uint8Array>,
  onClose: () => Promise<void>,
): LineStream {
  const abort = new AbortController();
  type Item = { line: string } | { error: Error };
  const ready: Item[] = [];
  let wakeTaker: (() => void) | undefined;
  let wakePutter: (() => void) | undefined;
  const put = async (item: Item) => {
    ready.push(item);
    wakeTaker?.();
    await new Promise<void>((r) => {
      wakePutter = r;
    });
  };
  void (async () => {
    let buffer = '';
    let offset = 0;
    let sawFlush = false;
    try {
      for (;;) {
        const nl = buffer.indexOf('\n');
        if (nl >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          await put({ line });
          continue;
        }
        const data = await readChunk(offset, abort.signal);
        if (data.length === 0) {
          if (sawFlush) throw new Error('Unexpected end-of-stream');
          sawFlush = true;
          continue;
        }
        sawFlush = false;
        offset += data.length;
        buffer += utf8(data);
      }
    } catch (err) {
      if (!abort.signal.aborted) await put({ error: err as Error });
    }
  })();
  return {
    async line() {
      while (ready.length === 0)
        await new Promise<void>((r) => {
          wakeTaker = r;
        });
      const item = ready.shift() as Item;
      wakePutter?.();
      if ('error' in item) throw item.error;
      return item.line;
    },
    async close() {
      abort.abort();
      wakePutter?.();
      await onClose();
    },
  };
}

export function ctxOf(signal: AbortSignal = new AbortController().signal): RequestContext {
  return { signal, uid: 0, uname: 'test', dialect: '9P2000.u' };
}

/** TestFs over FsNode calls, resolving ".." by the path walked so far (as a 9P server does). */
export class DirectFs implements TestFs {
  constructor(private readonly root: FsNode) {}

  private async walkAll(path: string[]): Promise<FsNode[]> {
    const stack: FsNode[] = [this.root];
    for (const step of path) {
      if (step === '..') {
        if (stack.length > 1) stack.pop();
        continue;
      }
      const top = stack[stack.length - 1];
      if (!top?.walk) throw new Error('cannot walk');
      stack.push(await top.walk(step, ctxOf()));
    }
    return stack;
  }
  private async node(path: string[]): Promise<FsNode> {
    const all = await this.walkAll(path);
    const n = all[all.length - 1];
    if (!n) throw new Error('empty walk');
    return n;
  }
  private async open(path: string[], flags: number): Promise<FsOpenFile> {
    const n = await this.node(path);
    if (!n.open) throw new Error('cannot open');
    return n.open(flags, ctxOf());
  }

  async readdir(path: string[]) {
    const f = await this.open(path, OpenFlags.O_RDONLY);
    const out: string[] = [];
    let offset = 0;
    for (;;) {
      const entries = await f.readdir(offset, 8192, ctxOf());
      if (entries.length === 0) break;
      for (const e of entries) out.push(e.name);
      offset = entries[entries.length - 1]?.offset ?? offset;
    }
    await f.close();
    return out;
  }
  async mkdir(dir: string[], name: string) {
    const n = await this.node(dir);
    if (!n.mkdir) throw new Error('no mkdir');
    await n.mkdir(name, 0o755, 0, ctxOf());
  }
  async create(dir: string[], name: string, contents: string, perm: 'normal' | 'exec' | 'link' = 'normal') {
    const n = await this.node(dir);
    if (perm === 'link') {
      if (!n.symlink) throw new Error('no symlink');
      await n.symlink(name, contents, 0, ctxOf());
      return;
    }
    if (!n.create) throw new Error('no create');
    const { file } = await n.create(name, OpenFlags.O_WRONLY, perm === 'exec' ? 0o755 : 0o644, 0, ctxOf());
    await file.write(0, bytes(contents), ctxOf());
    await file.close();
  }
  async write(path: string[], contents: string, opts: { truncate?: boolean } = {}) {
    if (opts.truncate) await this.truncate(path, 0);
    const f = await this.open(path, OpenFlags.O_WRONLY);
    try {
      await f.write(0, bytes(contents), ctxOf());
    } finally {
      await f.close();
    }
  }
  async read(path: string[]) {
    const { size } = await this.stat(path);
    return this.readAt(path, 0, size);
  }
  async readAt(path: string[], offset: number, count: number) {
    const f = await this.open(path, OpenFlags.O_RDONLY);
    try {
      return utf8(await f.read(offset, count, ctxOf()));
    } finally {
      await f.close();
    }
  }
  async remove(path: string[]) {
    const parent = await this.node(path.slice(0, -1));
    const child = await this.node(path);
    if (!parent.unlink) throw new Error('no unlink');
    await parent.unlink(path[path.length - 1] ?? '', (child.qid.type & 0x80) !== 0, ctxOf());
  }
  async rename(path: string[], newName: string) {
    const parent = await this.node(path.slice(0, -1));
    if (!parent.rename) throw new Error('no rename');
    await parent.rename(path[path.length - 1] ?? '', parent, newName, ctxOf());
  }
  async truncate(path: string[], length: number) {
    const n = await this.node(path);
    if (!n.setattr) throw new Error('no setattr');
    await n.setattr({ size: length }, ctxOf());
  }
  async chmod(path: string[], perm: 'normal' | 'exec') {
    const n = await this.node(path);
    if (!n.setattr) throw new Error('no setattr');
    await n.setattr({ mode: perm === 'exec' ? 0o100755 : 0o100644 }, ctxOf());
  }
  async stat(path: string[]) {
    const a = await (await this.node(path)).getattr(ctxOf());
    return { size: a.size, mode: a.mode, qidPath: a.qid.path };
  }
  async walkQidTypes(path: string[]) {
    const all = await this.walkAll(path);
    return all.slice(1).map((n) => n.qid.type);
  }
  async hold(path: string[]) {
    const parent = await this.node(path.slice(0, -1));
    let name = path[path.length - 1] ?? '';
    return {
      rename: async (newName: string) => {
        if (!parent.rename) throw new Error('no rename');
        await parent.rename(name, parent, newName, ctxOf());
        name = newName;
      },
      close: async () => {},
    };
  }
  async stream(path: string[]) {
    const f = await this.open(path, OpenFlags.O_RDONLY);
    return lineReader(
      (offset, signal) => f.read(offset, 256, ctxOf(signal)),
      () => f.close(),
    );
  }
}
