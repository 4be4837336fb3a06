import { type Fid, NinePClient, OpenFlags } from '@kitset/ninep';
import { type LineStream, type TestFs, lineReader } from './harness.js';
import { bytes, utf8 } from './helpers.js';

/** TestFs over our 9P client talking to our 9P server (errors carry the server's text in 9P2000.u). */
export class NineFs implements TestFs {
  private constructor(
    readonly client: NinePClient,
    private readonly root: Fid,
  ) {}

  static async connect(url: string, version: '9P2000.u' | '9P2000' = '9P2000.u'): Promise<NineFs> {
    const client = await NinePClient.connect(url, { version });
    return new NineFs(client, await client.attach('test', ''));
  }

  close(): void {
    this.client.close();
  }

  /** A fid walked from this connection's attach root. */
  walk(path: string[]): Promise<Fid> {
    return this.client.walk(this.root, path);
  }

  private async with<T>(path: string[], fn: (fid: Fid) => Promise<T>): Promise<T> {
    const fid = await this.client.walk(this.root, path);
    try {
      return await fn(fid);
    } finally {
      await this.client.clunk(fid).catch(() => {});
    }
  }

  readdir(path: string[]) {
    return this.with(path, async (fid) => {
      await this.client.open(fid, OpenFlags.O_RDONLY);
      return (await this.client.readdir(fid)).map((e) => e.name);
    });
  }
  async mkdir(dir: string[], name: string) {
    await this.with(dir, (fid) => this.client.mkdir(fid, name));
  }
  async create(dir: string[], name: string, contents: string, perm: 'normal' | 'exec' | 'link' = 'normal') {
    await this.with(dir, async (fid) => {
      if (perm === 'link') {
        await this.client.symlink(fid, name, contents);
        return;
      }
      await this.client.create(fid, name, OpenFlags.O_WRONLY, perm === 'exec' ? 0o755 : 0o644);
      if (contents !== '') await this.client.write(fid, 0, bytes(contents));
    });
  }
  async write(path: string[], contents: string, opts: { truncate?: boolean } = {}) {
    if (opts.truncate) await this.truncate(path, 0);
    await this.with(path, async (fid) => {
      await this.client.open(fid, OpenFlags.O_WRONLY);
      await this.client.write(fid, 0, bytes(contents));
    });
  }
  async read(path: string[]) {
    const { size } = await this.stat(path);
    return this.readAt(path, 0, size);
  }
  readAt(path: string[], offset: number, count: number) {
    return this.with(path, async (fid) => {
      await this.client.open(fid, OpenFlags.O_RDONLY);
      return utf8(await this.client.read(fid, offset, count));
    });
  }
  async remove(path: string[]) {
    const fid = await this.client.walk(this.root, path);
    await this.client.remove(fid);
  }
  async rename(path: string[], newName: string) {
    await this.with(path, async (fid) => {
      const dir = await this.client.walk(this.root, path.slice(0, -1));
      try {
        await this.client.rename(fid, dir, newName);
      } finally {
        await this.client.clunk(dir).catch(() => {});
      }
    });
  }
  async truncate(path: string[], length: number) {
    await this.with(path, (fid) => this.client.setattr(fid, { size: length }));
  }
  async chmod(path: string[], perm: 'normal' | 'exec') {
    await this.with(path, (fid) => this.client.setattr(fid, { mode: perm === 'exec' ? 0o755 : 0o644 }));
  }
  stat(path: string[]) {
    return this.with(path, async (fid) => {
      const a = await this.client.getattr(fid);
      return { size: a.size, mode: a.mode, qidPath: a.qid.path };
    });
  }
  async walkQidTypes(path: string[]) {
    const r = await this.client.rpc(
      { type: 'Twalk', tag: 0, fid: this.root.id, newfid: 999_999, names: path },
      'Rwalk',
    );
    await this.client.rpc({ type: 'Tclunk', tag: 0, fid: 999_999 }, 'Rclunk').catch(() => {});
    return r.qids.map((q) => q.type);
  }
  async hold(path: string[]) {
    const fid = await this.client.walk(this.root, path);
    return {
      rename: async (newName: string) => {
        const dir = await this.client.walk(this.root, path.slice(0, -1));
        try {
          await this.client.rename(fid, dir, newName);
        } finally {
          await this.client.clunk(dir).catch(() => {});
        }
      },
      close: () => this.client.clunk(fid).catch(() => {}),
    };
  }
  async stream(path: string[]): Promise<LineStream> {
    const fid = await this.client.walk(this.root, path);
    await this.client.open(fid, OpenFlags.O_RDONLY);
    return lineReader(
      (offset, signal) => this.client.read(fid, offset, 256, { signal }),
      () => this.client.clunk(fid).catch(() => {}),
    );
  }
}
