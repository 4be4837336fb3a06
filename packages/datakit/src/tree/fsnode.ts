import {
  type Attr,
  type DirEntry,
  type FsBackend,
  type FsNode,
  type FsOpenFile,
  OpenFlags,
  type Qid,
  QidType,
  type RequestContext,
  type SetAttr,
} from '@kitset/ninep';
import { VfsError } from './errors.js';
import type { FileStat, Inode, VPerm } from './vfs.js';

const DT_DIR = 4;
const DT_REG = 8;
const DT_LNK = 10;

function permOfMode(mode: number): VPerm {
  return mode & 0o111 ? 'exec' : 'normal';
}

function modeOfStat(stat: FileStat): number {
  if (typeof stat.perm === 'object') return 0o120777;
  return stat.perm === 'exec' ? 0o100755 : 0o100644;
}

/** Serves a VFS inode through the 9P backend contract. Node objects are cheap views; the inode holds identity. */
export class VfsNode implements FsNode {
  constructor(readonly inode: Inode) {}

  get qid(): Qid {
    const n = this.inode.node;
    return { type: n.kind === 'dir' ? QidType.DIR : QidType.FILE, version: 0, path: this.inode.ino };
  }

  async getattr(_ctx?: RequestContext): Promise<Attr> {
    const n = this.inode.node;
    let mode = 0o40755;
    let size = 0;
    let qid = this.qid;
    if (n.kind === 'file') {
      const stat = await n.file.stat();
      mode = modeOfStat(stat);
      size = stat.length;
      qid = { ...qid, type: typeof stat.perm === 'object' ? QidType.SYMLINK : QidType.FILE };
    }
    return {
      qid,
      mode,
      uid: 0,
      gid: 0,
      nlink: 1,
      rdev: 0,
      size,
      blksize: 4096,
      blocks: Math.ceil(size / 512),
      atimeSec: 0,
      atimeNsec: 0,
      mtimeSec: 0,
      mtimeNsec: 0,
      ctimeSec: 0,
      ctimeNsec: 0,
    };
  }

  private dir() {
    const n = this.inode.node;
    if (n.kind !== 'dir') throw VfsError.notDir();
    return n.dir;
  }

  walk(name: string): FsNode | Promise<FsNode> {
    const found = this.dir().lookup(name);
    return found instanceof Promise ? found.then((inode) => new VfsNode(inode)) : new VfsNode(found);
  }

  async open(flags: number, ctx?: RequestContext): Promise<FsOpenFile> {
    const n = this.inode.node;
    if (n.kind === 'dir') return new DirHandle(this.inode);
    if (flags & OpenFlags.O_TRUNC) await n.file.truncate(0);
    const fd = await n.file.open();
    void ctx;
    return {
      // The context itself: its signal is made only if a stream read blocks.
      read: (offset, count, c) => fd.read(offset, count, c),
      write: async (offset, data, c) => {
        await fd.write(offset, data, c);
        return data.length;
      },
      readdir: async () => {
        throw VfsError.notDir();
      },
      close: async () => fd.close?.(),
    };
  }

  async create(name: string, flags: number, mode: number): Promise<{ node: FsNode; file: FsOpenFile }> {
    const inode = await this.dir().mkfile(name, permOfMode(mode));
    const node = new VfsNode(inode);
    return { node, file: await node.open(flags & ~OpenFlags.O_TRUNC) };
  }

  async mkdir(name: string): Promise<FsNode> {
    return new VfsNode(await this.dir().mkdir(name));
  }

  async symlink(name: string, target: string): Promise<FsNode> {
    return new VfsNode(await this.dir().mkfile(name, { link: target }));
  }

  async readlink(): Promise<string> {
    const n = this.inode.node;
    if (n.kind === 'dir') throw VfsError.isDir();
    const stat = await n.file.stat();
    if (typeof stat.perm !== 'object') throw VfsError.other('Not a symlink');
    return stat.perm.link;
  }

  async setattr(changes: SetAttr): Promise<void> {
    const n = this.inode.node;
    const wantsMode = changes.mode !== undefined;
    const wantsSize = changes.size !== undefined;
    if (wantsMode && wantsSize) throw VfsError.multipleUpdates();
    if (n.kind === 'dir') {
      if (wantsSize) throw VfsError.dirLength();
      if (wantsMode) throw VfsError.perm();
      return;
    }
    if (changes.size !== undefined) await n.file.truncate(changes.size);
    if (changes.mode !== undefined) {
      const kind = changes.mode & 0o170000;
      if (kind === 0o120000) {
        const stat = await n.file.stat();
        if (typeof stat.perm === 'object') return;
        throw VfsError.other('Missing target for symlink!');
      }
      await n.file.chmod(permOfMode(changes.mode));
    }
  }

  async unlink(name: string): Promise<void> {
    const child = await this.dir().lookup(name);
    if (child.node.kind === 'file') await child.node.file.remove();
    else await child.node.dir.remove();
  }

  async rename(oldName: string, newDir: FsNode, newName: string): Promise<void> {
    if (!(newDir instanceof VfsNode) || newDir.inode !== this.inode) throw VfsError.crossDirRename();
    const dir = this.dir();
    const child = await dir.lookup(oldName);
    await dir.rename(child, newName);
  }
}

class DirHandle implements FsOpenFile {
  private entries: Inode[] | undefined;
  constructor(private readonly inode: Inode) {}

  async read(): Promise<Uint8Array> {
    throw VfsError.isDir();
  }
  async write(): Promise<number> {
    throw VfsError.isDir();
  }
  async readdir(offset: number, count: number): Promise<DirEntry[]> {
    const n = this.inode.node;
    if (n.kind !== 'dir') return [];
    if (offset === 0 || !this.entries) {
      // Linux aborts a listing on an error, so a failing ls is an empty directory (as the original).
      this.entries = await n.dir.ls().catch(() => []);
    }
    const out: DirEntry[] = [];
    let bytes = 0;
    for (let i = offset; i < this.entries.length; i++) {
      const inode = this.entries[i];
      if (!inode) break;
      const node = new VfsNode(inode);
      const attr = await node.getattr().catch(() => undefined);
      const size = 24 + Buffer.byteLength(inode.basename) + 64;
      if (out.length > 0 && bytes + size > count) break;
      bytes += size;
      const type =
        inode.node.kind === 'dir' ? DT_DIR : attr && (attr.mode & 0o170000) === 0o120000 ? DT_LNK : DT_REG;
      out.push({
        name: inode.basename,
        qid: attr?.qid ?? node.qid,
        type,
        offset: i + 1,
        ...(attr ? { attr } : {}),
      });
    }
    return out;
  }
  async close(): Promise<void> {}
}

/** A backend whose every attach gets a fresh root (per-connection transactions, as the original). */
export function vfsBackend(makeRoot: () => Inode): FsBackend {
  return {
    attach: async () => new VfsNode(makeRoot()),
  };
}
