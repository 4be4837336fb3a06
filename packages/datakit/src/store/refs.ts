import { mkdirSync, readFileSync } from 'node:fs';
import { appendFile, open, readFile, readdir, rename, rmdir, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { StoreError } from './errors.js';
import { type Signature, isHash } from './objects.js';

/**
 * References (branch heads). `update` is a compare-and-swap: it succeeds only when the ref still
 * has `expected` (undefined = must not exist), so concurrent writers (other connections, or `git`
 * itself) never silently overwrite each other.
 */
export interface RefStore {
  read(name: string): Promise<string | undefined>;
  /** Names (full, e.g. refs/heads/master) and values of every ref under `prefix`. */
  list(prefix: string): Promise<Map<string, string>>;
  update(
    name: string,
    value: string | undefined,
    expected: string | undefined,
    who: Signature,
    message: string,
    /** Runs under the ref's lock once the compare succeeded, before the ref changes (write-ahead logging). */
    beforeChange?: () => Promise<void>,
  ): Promise<boolean>;
  /** Reflog lines (oldest first) as [old, new] pairs. */
  reflog(name: string): Promise<Array<{ old: string; new: string; message: string }>>;
}

const ZERO = '0000000000000000000000000000000000000000';

/** git check-ref-format rules for one branch name (which may contain "/"). */
export function isValidBranchName(name: string): boolean {
  if (name === '' || name === '@' || name.length > 200) return false;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we reject
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(name)) return false;
  if (name.includes('..') || name.includes('@{') || name.includes('//')) return false;
  if (name.startsWith('/') || name.endsWith('/') || name.endsWith('.')) return false;
  for (const part of name.split('/')) if (part.startsWith('.') || part.endsWith('.lock')) return false;
  return true;
}

export class MemoryRefStore implements RefStore {
  private readonly refs = new Map<string, string>();
  private readonly logs = new Map<string, Array<{ old: string; new: string; message: string }>>();

  async read(name: string): Promise<string | undefined> {
    return this.refs.get(name);
  }
  async list(prefix: string): Promise<Map<string, string>> {
    return new Map([...this.refs].filter(([k]) => k.startsWith(prefix)));
  }
  async update(
    name: string,
    value: string | undefined,
    expected: string | undefined,
    _who: Signature,
    message: string,
    beforeChange?: () => Promise<void>,
  ): Promise<boolean> {
    const current = this.refs.get(name);
    if (current !== expected) return false;
    await beforeChange?.();
    if (this.refs.get(name) !== current) return false;
    if (value === undefined) {
      this.refs.delete(name);
      this.logs.delete(name);
    } else {
      this.refs.set(name, value);
      const log = this.logs.get(name) ?? [];
      log.push({ old: current ?? ZERO, new: value, message });
      this.logs.set(name, log);
    }
    return true;
  }
  async reflog(name: string) {
    return [...(this.logs.get(name) ?? [])];
  }
}

export interface GitRefStoreOptions {
  fsync?: boolean;
  /** How long to wait for another process's lock before giving up (ms). */
  lockTimeoutMs?: number;
}

/** Loose refs plus packed-refs, updated the way git does: `<ref>.lock`, write, fsync, rename. */
export class GitRefStore implements RefStore {
  private readonly fsync: boolean;
  private readonly lockTimeoutMs: number;

  constructor(
    readonly gitDir: string,
    options: GitRefStoreOptions = {},
  ) {
    this.fsync = options.fsync ?? true;
    this.lockTimeoutMs = options.lockTimeoutMs ?? 2000;
  }

  private async readPacked(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let text: string;
    try {
      text = await readFile(join(this.gitDir, 'packed-refs'), 'utf8');
    } catch {
      return out;
    }
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#') || line.startsWith('^')) continue;
      const sp = line.indexOf(' ');
      const hash = line.slice(0, sp);
      if (isHash(hash)) out.set(line.slice(sp + 1), hash);
    }
    return out;
  }

  /** The ref's value, read synchronously (the update path: a few small page-cache reads). */
  readNow(name: string): string | undefined {
    let text: string | undefined;
    try {
      text = readFileSync(join(this.gitDir, name), 'utf8').trim();
    } catch {
      text = undefined;
    }
    if (text === undefined) {
      let packed: string;
      try {
        packed = readFileSync(join(this.gitDir, 'packed-refs'), 'utf8');
      } catch {
        return undefined;
      }
      for (const line of packed.split('\n'))
        if (line.endsWith(` ${name}`) && isHash(line.slice(0, 40))) return line.slice(0, 40);
      return undefined;
    }
    if (text.startsWith('ref: ')) return this.readNow(text.slice(5));
    if (!isHash(text)) throw new StoreError('ERR_BAD_REF', `${name}: not a hash: ${JSON.stringify(text)}`);
    return text;
  }

  private async readLoose(name: string): Promise<string | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.gitDir, name), 'utf8');
    } catch {
      return undefined;
    }
    text = text.trim();
    if (text.startsWith('ref: ')) return this.read(text.slice(5));
    if (!isHash(text)) throw new StoreError('ERR_BAD_REF', `${name}: not a hash: ${JSON.stringify(text)}`);
    return text;
  }

  async read(name: string): Promise<string | undefined> {
    return (await this.readLoose(name)) ?? (await this.readPacked()).get(name);
  }

  async list(prefix: string): Promise<Map<string, string>> {
    const out = await this.readPacked();
    for (const key of [...out.keys()]) if (!key.startsWith(prefix)) out.delete(key);
    const walk = async (rel: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await readdir(join(this.gitDir, rel), { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const child = `${rel}/${e.name}`;
        if (e.isDirectory()) await walk(child);
        else if (e.isFile() && !e.name.endsWith('.lock')) {
          const value = await this.readLoose(child).catch(() => undefined);
          if (value) out.set(child, value);
        }
      }
    };
    await walk(prefix.replace(/\/$/, ''));
    return out;
  }

  private readonly dirsMade = new Set<string>();

  /** mkdir -p, remembered (pruneEmptyDirs forgets what it removes). */
  private ensureDir(dir: string): void {
    if (this.dirsMade.has(dir)) return;
    mkdirSync(dir, { recursive: true });
    this.dirsMade.add(dir);
  }

  /** Takes `<name>.lock` as git does (waiting a while for another holder); the caller must release it. */
  async lock(name: string): Promise<import('node:fs/promises').FileHandle> {
    const lockPath = join(this.gitDir, `${name}.lock`);
    this.ensureDir(dirname(lockPath));
    const deadline = Date.now() + this.lockTimeoutMs;
    for (;;) {
      try {
        return await open(lockPath, 'wx', 0o644);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || Date.now() > deadline)
          throw new StoreError(
            'ERR_REF_LOCKED',
            `cannot lock ${name}: ${(err as Error).message} (is another git process running? remove ${lockPath} if not)`,
          );
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }

  async update(
    name: string,
    value: string | undefined,
    expected: string | undefined,
    who: Signature,
    message: string,
    beforeChange?: () => Promise<void>,
  ): Promise<boolean> {
    const lockPath = join(this.gitDir, `${name}.lock`);
    // Creating the lock and renaming it wait for the file system's journal when the disk is busy:
    // in the thread pool, so the event loop keeps serving meanwhile. The reads are page-cache hits.
    const fh = await this.lock(name);
    let closed = false;
    let renamed = false;
    try {
      const current = this.readNow(name);
      if (current !== expected) return false;
      await beforeChange?.();
      if (value === undefined) {
        await unlink(join(this.gitDir, name)).catch(() => {});
        await this.removePacked(name);
        await unlink(join(this.gitDir, 'logs', name)).catch(() => {});
        await this.pruneEmptyDirs(name);
        return true;
      }
      await fh.write(`${value}\n`);
      // Like git with core.fsync=reference: the ref's contents are fsynced before the rename.
      if (this.fsync) await fh.sync();
      await fh.close();
      closed = true;
      await rename(lockPath, join(this.gitDir, name));
      renamed = true;
      const logPath = join(this.gitDir, 'logs', name);
      this.ensureDir(dirname(logPath));
      await appendFile(logPath, GitRefStore.reflogLine(current, value, who, message));
      return true;
    } finally {
      if (!renamed) {
        if (!closed) await fh.close().catch(() => {});
        await unlink(lockPath).catch(() => {});
      }
    }
  }

  /** Gives up a lock taken with `lock` without changing the ref. */
  async unlock(name: string, fh: import('node:fs/promises').FileHandle): Promise<void> {
    await fh.close().catch(() => {});
    await unlink(join(this.gitDir, `${name}.lock`)).catch(() => {});
  }

  /**
   * Sets a ref whose lock we hold (from `lock`) to `value`, appending `reflog` lines (from
   * `reflogLine`). If it throws, the ref is unchanged and the lock is still ours, `fh` still open:
   * nobody can move the ref before the caller retries (or gives the lock up with `unlock`). The
   * lock is renamed over the ref while still open, so a failed close cannot lose it either.
   * Resolves false when the ref was set but the reflog lines could not be appended.
   */
  async commitLocked(
    name: string,
    fh: import('node:fs/promises').FileHandle,
    value: string,
    reflog: readonly string[],
  ): Promise<boolean> {
    const lockPath = join(this.gitDir, `${name}.lock`);
    await fh.write(`${value}\n`, 0);
    if (this.fsync) await fh.sync();
    // Atomic: when it fails, the lock is still in place.
    await rename(lockPath, join(this.gitDir, name));
    await fh.close().catch(() => {});
    if (reflog.length === 0) return true;
    const logPath = join(this.gitDir, 'logs', name);
    try {
      this.ensureDir(dirname(logPath));
      await appendFile(logPath, reflog.join(''));
      return true;
    } catch {
      return false;
    }
  }

  static reflogLine(old: string | undefined, value: string, who: Signature, message: string): string {
    return `${old ?? ZERO} ${value} ${who.name} <${who.email}> ${who.time} ${who.tz}\t${message.replace(/\n/g, ' ')}\n`;
  }

  private async removePacked(name: string): Promise<void> {
    const packed = await this.readPacked();
    if (!packed.has(name)) return;
    const fh = await this.lock('packed-refs');
    const lockPath = join(this.gitDir, 'packed-refs.lock');
    try {
      const text = await readFile(join(this.gitDir, 'packed-refs'), 'utf8');
      const lines = text.split('\n');
      const kept: string[] = [];
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i] ?? '';
        if (line.endsWith(` ${name}`) && !line.startsWith('#')) {
          if (lines[i + 1]?.startsWith('^')) i++;
          continue;
        }
        kept.push(line);
      }
      await fh.writeFile(kept.join('\n'));
      if (this.fsync) await fh.sync();
      await fh.close();
      await rename(lockPath, join(this.gitDir, 'packed-refs'));
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(lockPath).catch(() => {});
      throw err;
    }
  }

  private async pruneEmptyDirs(name: string): Promise<void> {
    let dir = dirname(name);
    while (dir.startsWith('refs/heads/')) {
      try {
        await rmdir(join(this.gitDir, dir));
        this.dirsMade.clear();
      } catch {
        return;
      }
      dir = dirname(dir);
    }
  }

  async reflog(name: string) {
    let text: string;
    try {
      text = await readFile(join(this.gitDir, 'logs', name), 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const tab = l.indexOf('\t');
        return { old: l.slice(0, 40), new: l.slice(41, 81), message: tab < 0 ? '' : l.slice(tab + 1) };
      });
  }
}
