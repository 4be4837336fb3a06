import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateSync, inflateSync } from 'node:zlib';
import { StoreError } from './errors.js';
import { type ObjectType, type RawObject, hashObject, objectHeader, parseLooseObject } from './objects.js';
import { PackFile, PackIndex } from './pack.js';

/** Content-addressed object storage. Objects are immutable, so readers may cache freely. */
export interface ObjectDb {
  read(hash: string): Promise<RawObject | undefined>;
  write(type: ObjectType, data: Uint8Array): Promise<string>;
  has(hash: string): Promise<boolean>;
  /** Makes every object written so far durable (no-op in memory). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

export class MemoryObjectDb implements ObjectDb {
  private readonly objects = new Map<string, RawObject>();

  async read(hash: string): Promise<RawObject | undefined> {
    return this.objects.get(hash);
  }
  async write(type: ObjectType, data: Uint8Array): Promise<string> {
    const hash = hashObject(type, data);
    if (!this.objects.has(hash)) this.objects.set(hash, { type, data: Uint8Array.from(data) });
    return hash;
  }
  async has(hash: string): Promise<boolean> {
    return this.objects.has(hash);
  }
  async sync(): Promise<void> {}
  async close(): Promise<void> {}
}

export interface GitObjectDbOptions {
  /** fsync each loose object before it is renamed into place (default true). */
  fsync?: boolean;
}

/** Loose objects and packs of a git directory (`.git` or a bare repository). */
export class GitObjectDb implements ObjectDb {
  private packs: PackFile[] = [];
  private packNames = new Set<string>();
  private readonly fsync: boolean;
  private readonly dirsMade = new Set<string>();

  constructor(
    readonly gitDir: string,
    options: GitObjectDbOptions = {},
  ) {
    this.fsync = options.fsync ?? true;
  }

  private loosePath(hash: string): string {
    return join(this.gitDir, 'objects', hash.slice(0, 2), hash.slice(2));
  }

  async has(hash: string): Promise<boolean> {
    try {
      await stat(this.loosePath(hash));
      return true;
    } catch {
      return (await this.readPacked(hash)) !== undefined;
    }
  }

  async read(hash: string): Promise<RawObject | undefined> {
    let compressed: Buffer | undefined;
    try {
      compressed = await readFile(this.loosePath(hash));
    } catch {
      compressed = undefined;
    }
    if (compressed) return parseLooseObject(inflateSync(compressed), hash);
    return this.readPacked(hash);
  }

  private async readPacked(hash: string): Promise<RawObject | undefined> {
    for (let attempt = 0; attempt < 2; attempt++) {
      for (const pack of this.packs) {
        const obj = await pack.read(hash, (h) => this.read(h));
        if (obj) return obj;
      }
      // A miss may mean `git gc` or a fetch just wrote a new pack: rescan once.
      if (!(await this.rescanPacks())) break;
    }
    return undefined;
  }

  /** Opens packs not seen before; true when any was added. */
  private async rescanPacks(): Promise<boolean> {
    const dir = join(this.gitDir, 'objects', 'pack');
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return false;
    }
    let added = false;
    for (const name of names) {
      if (!name.endsWith('.idx') || this.packNames.has(name)) continue;
      const packPath = join(dir, `${name.slice(0, -4)}.pack`);
      try {
        const index = new PackIndex(await readFile(join(dir, name)), join(dir, name));
        this.packs.push(await PackFile.open(packPath, index));
        this.packNames.add(name);
        added = true;
      } catch (err) {
        if (err instanceof StoreError) throw err;
        // The .pack may not be in place yet (git writes .idx last, but be tolerant).
      }
    }
    return added;
  }

  async write(type: ObjectType, data: Uint8Array): Promise<string> {
    const hash = hashObject(type, data);
    const path = this.loosePath(hash);
    try {
      await stat(path);
      return hash;
    } catch {
      // not there yet
    }
    const dir = join(this.gitDir, 'objects', hash.slice(0, 2));
    if (!this.dirsMade.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.dirsMade.add(dir);
    }
    const tmp = join(dir, `tmp_obj_${randomBytes(6).toString('hex')}`);
    const bytes = deflateSync(Buffer.concat([objectHeader(type, data.length), data]), { level: 1 });
    const fh = await open(tmp, 'wx', 0o444);
    try {
      await fh.writeFile(bytes);
      if (this.fsync) await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    return hash;
  }

  async sync(): Promise<void> {}

  async close(): Promise<void> {
    for (const p of this.packs) await p.close();
    this.packs = [];
    this.packNames.clear();
  }
}
