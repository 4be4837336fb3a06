import {
  DirMode,
  Errno,
  type Fid,
  type Message,
  NinePClient,
  NinePClientError,
  OpenFlags,
  flagsToOpenMode,
} from '@kitset/ninep';
import { hashObject } from './store/objects.js';

export type PathLike = string | readonly string[];

function parts(path: PathLike): string[] {
  return typeof path === 'string' ? path.split('/').filter((p) => p !== '') : [...path];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const asBytes = (d: Uint8Array | string) => (typeof d === 'string' ? encoder.encode(d) : d);

/** Errors the server reported, with its (original DataKit) message. */
export class DataKitError extends Error {
  override readonly name = 'DataKitError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * One file operation sent as a chain on a fid of its own: a walk from the root to `path`, the
 * `requests` on the fid, a clunk.
 */
interface ChainStep {
  readonly path: readonly string[];
  readonly requests: (fid: number) => Message[];
  readonly what: string;
  /** Errors of this step that are not errors (e.g. mkdir of an existing directory). */
  readonly ignore?: (err: NinePClientError) => boolean;
  /** Called when the step succeeded. */
  readonly done?: () => void;
}

const alreadyExists = (err: NinePClientError) => err.message.endsWith('Already exists');

function wrap(err: unknown, what: string): never {
  if (err instanceof NinePClientError) throw new DataKitError(err.code, `${what}: ${err.message}`);
  throw err;
}

/**
 * A typed DataKit client over our 9P client (9P2000.u, so the server's error texts arrive).
 * `await client.branch('master').transaction()` → write, merge, commit; `watch()` yields tree hashes.
 */
export class DataKitClient {
  private constructor(
    readonly ninep: NinePClient,
    /** The attached root fid, for raw 9P calls through `ninep`. */
    readonly root: Fid,
  ) {}

  static async connect(
    url = 'tcp://127.0.0.1:5640',
    options: { msize?: number } = {},
  ): Promise<DataKitClient> {
    const ninep = await NinePClient.connect(url, { version: '9P2000.u', ...options });
    try {
      const root = await ninep.attach('datakit', '');
      return new DataKitClient(ninep, root);
    } catch (err) {
      ninep.close();
      throw err;
    }
  }

  close(): void {
    this.ninep.close();
  }

  // ---- pipelined requests ----

  /** Fid numbers for pipelined chains, far above the ones NinePClient hands out. */
  private nextChainFid = 0x40000000;
  private readonly freeChainFids: number[] = [];

  /**
   * Several chains on one fid number, sent back to back: each walk waits on the server for the
   * previous chain's clunk, so they run in order, in one round trip. Each reports its own first
   * error; a failed chain does not stop the next (the server cannot know), so callers chain only
   * steps whose order, not success, matters.
   */
  /** @internal */
  async chains(steps: readonly ChainStep[]): Promise<void> {
    if (steps.some((s) => s.path.length > 16)) {
      // One Twalk carries at most 16 names: walk most of the way first, one step at a time.
      for (const step of steps) {
        let from: Fid;
        try {
          from = await this.ninep.walk(this.root, step.path.slice(0, -16));
        } catch (err) {
          wrap(err, step.what);
        }
        try {
          await this.send(from, [{ ...step, path: step.path.slice(-16) }]);
        } finally {
          this.ninep.clunk(from).catch(() => {});
        }
      }
      return;
    }
    await this.send(this.root, steps);
  }

  private send(from: Fid, steps: readonly ChainStep[]): Promise<void> {
    if (steps.length === 0) return Promise.resolve();
    const fid = this.freeChainFids.pop() ?? this.nextChainFid++;
    // Each step's first failure; settled once every reply of every step is in.
    const failures: Array<{ reason: unknown } | undefined> = new Array(steps.length);
    let outstanding = 0;
    let finish: () => void = () => {};
    const done = new Promise<void>((resolve, reject) => {
      finish = () => {
        let first: { reason: unknown; what: string } | undefined;
        for (let i = 0; i < steps.length; i++) {
          const step = steps[i] as ChainStep;
          const failure = failures[i];
          if (!failure) step.done?.();
          else if (step.ignore && failure.reason instanceof NinePClientError && step.ignore(failure.reason))
            step.done?.();
          else first ??= { reason: failure.reason, what: step.what };
        }
        if (!first) resolve();
        else {
          try {
            wrap(first.reason, first.what);
          } catch (err) {
            reject(err);
          }
        }
      };
    });
    const settled = () => {
      if (--outstanding === 0) finish();
    };
    const track = <T>(i: number, reply: Promise<T>, check?: (r: T) => unknown) => {
      outstanding++;
      reply.then(
        (r) => {
          const problem = check?.(r);
          if (problem !== undefined) failures[i] ??= { reason: problem };
          settled();
        },
        (reason: unknown) => {
          failures[i] ??= { reason };
          settled();
        },
      );
    };
    let clunked: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i] as ChainStep;
      const names = step.path;
      track(
        i,
        this.ninep.rpc({ type: 'Twalk', tag: 0, fid: from.id, newfid: fid, names: [...names] }, 'Rwalk'),
        (r) =>
          r.qids.length < names.length
            ? new NinePClientError(Errno.ENOENT, `walk failed at ${JSON.stringify(names[r.qids.length])}`)
            : undefined,
      );
      for (const msg of step.requests(fid)) {
        const expect = `R${msg.type.slice(1)}` as Message['type'];
        track(
          i,
          msg.type === 'Twrite'
            ? this.ninep.rpc(msg, expect, undefined, msg.data)
            : this.ninep.rpc(msg, expect),
        );
      }
      clunked = this.ninep.rpc({ type: 'Tclunk', tag: 0, fid }, 'Rclunk');
      clunked.catch(() => {});
    }
    // The number is free once the server has answered the last clunk (or has no such fid).
    clunked.then(
      () => this.freeChainFids.push(fid),
      () => this.freeChainFids.push(fid),
    );
    return done;
  }

  /** Opens `path` for writing (truncating) and writes `data`: one round trip. */
  private writeChain(path: readonly string[], data: Uint8Array): Promise<void> {
    return this.chains([this.writeStep(path, data)]);
  }

  /** @internal Opening `path` for writing (truncating) and writing `data`, as a chain step. */
  writeStep(path: PathLike, data: Uint8Array): ChainStep {
    const p = parts(path);
    return {
      path: p,
      requests: (fid) => [
        { type: 'Topen', tag: 0, fid, mode: flagsToOpenMode(OpenFlags.O_WRONLY | OpenFlags.O_TRUNC) },
        ...this.writes(fid, data),
      ],
      what: `write /${p.join('/')}`,
    };
  }

  private writes(fid: number, data: Uint8Array): Message[] {
    const out: Message[] = [];
    let offset = 0;
    do {
      const part = data.subarray(offset, offset + this.ninep.maxIo);
      out.push({ type: 'Twrite', tag: 0, fid, offset, data: part });
      offset += part.length;
    } while (offset < data.length);
    return out;
  }

  // ---- raw file access (paths from the root of the DataKit tree) ----

  async withFid<T>(path: PathLike, fn: (fid: Fid) => Promise<T>): Promise<T> {
    let fid: Fid;
    try {
      fid = await this.ninep.walk(this.root, parts(path));
    } catch (err) {
      wrap(err, `/${parts(path).join('/')}`);
    }
    try {
      return await fn(fid);
    } finally {
      // Not awaited: the clunk is pipelined behind the next request instead of costing a round trip.
      this.ninep.clunk(fid).catch(() => {});
    }
  }

  private readonly createdBranches = new Set<string>();

  forgetBranch(name: string): void {
    this.createdBranches.delete(name);
  }

  /** mkdir of a branch once per connection (the server keeps it for the connection's life). */
  async ensureBranch(name: string): Promise<void> {
    const step = this.ensureBranchStep(name);
    if (step) await this.chains([step]);
  }

  /** @internal The mkdir of `ensureBranch` as a chain step; undefined when done already. */
  ensureBranchStep(name: string): ChainStep | undefined {
    if (this.createdBranches.has(name)) return undefined;
    return this.mkdirStep(['branch'], name, () => this.createdBranches.add(name));
  }

  async read(path: PathLike): Promise<Uint8Array> {
    return this.withFid(path, async (fid) => {
      try {
        await this.ninep.open(fid, OpenFlags.O_RDONLY);
        const chunks: Uint8Array[] = [];
        let offset = 0;
        for (;;) {
          const data = await this.ninep.read(fid, offset, this.ninep.maxIo);
          if (data.length === 0) break;
          chunks.push(Uint8Array.from(data));
          offset += data.length;
        }
        return Buffer.concat(chunks);
      } catch (err) {
        wrap(err, `read /${parts(path).join('/')}`);
      }
    });
  }

  async readText(path: PathLike): Promise<string> {
    return decoder.decode(await this.read(path));
  }

  async list(path: PathLike): Promise<string[]> {
    return this.withFid(path, async (fid) => {
      try {
        await this.ninep.open(fid, OpenFlags.O_RDONLY);
        return (await this.ninep.readdir(fid)).map((e) => e.name);
      } catch (err) {
        wrap(err, `ls /${parts(path).join('/')}`);
      }
    });
  }

  /**
   * Writes `first`, then `second`, in one round trip (the server runs them in order). The second
   * write happens even if the first fails; the first error is thrown.
   */
  async writeInOrder(
    first: PathLike,
    firstData: Uint8Array | string,
    second: PathLike,
    secondData: Uint8Array | string,
  ): Promise<void> {
    await this.chains([
      this.writeStep(first, asBytes(firstData)),
      this.writeStep(second, asBytes(secondData)),
    ]);
  }

  /** Writes a whole existing file (truncating first), as `echo data > file` does: one round trip. */
  async write(path: PathLike, data: Uint8Array | string): Promise<void> {
    await this.writeChain(parts(path), asBytes(data));
  }

  /** Creates (or replaces) file `name` in directory `dir` with `data`: one round trip. */
  async create(dir: PathLike, name: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
    await this.chains([this.createStep(dir, name, asBytes(data), mode)]);
  }

  /** Makes directory `name` in `dir` (already existing is fine): one round trip. */
  async mkdir(dir: PathLike, name: string): Promise<void> {
    await this.chains([this.mkdirStep(dir, name)]);
  }

  /** @internal The mkdir as a chain step, to send along with others. */
  mkdirStep(dir: PathLike, name: string, done?: () => void): ChainStep {
    return {
      path: parts(dir),
      requests: (fid) => [
        {
          type: 'Tcreate',
          tag: 0,
          fid,
          name,
          perm: (DirMode.DMDIR | 0o755) >>> 0,
          mode: 0,
          extension: '',
        },
      ],
      what: `mkdir /${[...parts(dir), name].join('/')}`,
      ignore: alreadyExists,
      ...(done ? { done } : {}),
    };
  }

  /** @internal The create of `create()` as a chain step. */
  createStep(dir: PathLike, name: string, data: Uint8Array, mode: number): ChainStep {
    return {
      path: parts(dir),
      requests: (fid) => [
        {
          type: 'Tcreate',
          tag: 0,
          fid,
          name,
          perm: mode & 0o777,
          mode: flagsToOpenMode(OpenFlags.O_WRONLY | OpenFlags.O_TRUNC),
          extension: '',
        },
        ...(data.length > 0 ? this.writes(fid, data) : []),
      ],
      what: `create /${[...parts(dir), name].join('/')}`,
    };
  }

  async remove(path: PathLike): Promise<void> {
    let fid: Fid;
    try {
      fid = await this.ninep.walk(this.root, parts(path));
      await this.ninep.remove(fid);
    } catch (err) {
      wrap(err, `remove /${parts(path).join('/')}`);
    }
  }

  /** Lines of a stream file (head.live, tree.live, reflog) until `signal` aborts. */
  async *lines(path: PathLike, signal?: AbortSignal): AsyncGenerator<string> {
    const fid = await this.ninep
      .walk(this.root, parts(path))
      .catch((err) => wrap(err, `/${parts(path).join('/')}`));
    try {
      await this.ninep.open(fid, OpenFlags.O_RDONLY);
      let offset = 0;
      let buffer = '';
      let empties = 0;
      for (;;) {
        const data = await this.ninep.read(fid, offset, 4096, signal ? { signal } : {});
        if (data.length === 0) {
          if (++empties >= 2) return;
          continue;
        }
        empties = 0;
        offset += data.length;
        buffer += decoder.decode(data);
        for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
          yield buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
        }
      }
    } finally {
      await this.ninep.clunk(fid).catch(() => {});
    }
  }

  // ---- DataKit objects ----

  async branches(): Promise<string[]> {
    return this.list(['branch']);
  }

  branch(name: string): Branch {
    return new Branch(this, name);
  }

  snapshot(commit: string): Snapshot {
    return new Snapshot(this, commit);
  }
}

export class Snapshot {
  constructor(
    private readonly client: DataKitClient,
    readonly commit: string,
  ) {}
  read(path: PathLike): Promise<Uint8Array> {
    return this.client.read(['snapshots', this.commit, 'ro', ...parts(path)]);
  }
  list(path: PathLike = []): Promise<string[]> {
    return this.client.list(['snapshots', this.commit, 'ro', ...parts(path)]);
  }
  async message(): Promise<string> {
    return (await this.client.readText(['snapshots', this.commit, 'msg'])).replace(/\n$/, '');
  }
  async parents(): Promise<string[]> {
    return (await this.client.readText(['snapshots', this.commit, 'parents'])).split('\n').filter((l) => l);
  }
  /** Changes from `other` to this snapshot: lines like "+ path". */
  async diff(other: string): Promise<string[]> {
    return (await this.client.readText(['snapshots', this.commit, 'diff', other]))
      .split('\n')
      .filter((l) => l);
  }
}

export class Branch {
  constructor(
    private readonly client: DataKitClient,
    readonly name: string,
  ) {}

  private path(...rest: string[]) {
    return ['branch', this.name, ...rest];
  }

  /** Makes the branch visible on this connection (it is stored with its first commit). */
  async create(): Promise<void> {
    await this.client.ensureBranch(this.name);
  }

  async remove(): Promise<void> {
    await this.client.remove(this.path());
    this.client.forgetBranch(this.name);
  }

  async head(): Promise<string | undefined> {
    await this.create();
    const h = (await this.client.readText(this.path('head'))).trim();
    return h === '' ? undefined : h;
  }

  async fastForward(commit: string): Promise<void> {
    await this.create();
    await this.client.write(this.path('fast-forward'), commit);
  }

  read(path: PathLike): Promise<Uint8Array> {
    return this.client.read(this.path('ro', ...parts(path)));
  }

  list(path: PathLike = []): Promise<string[]> {
    return this.client.list(this.path('ro', ...parts(path)));
  }

  /**
   * Starts a transaction (named `name`, or a fresh name). Its mkdir is sent with the
   * transaction's first operation, in the same round trip: an error in it is reported there.
   */
  async transaction(
    name = `t${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
  ) {
    const branch = this.client.ensureBranchStep(this.name);
    const setup = [...(branch ? [branch] : []), this.client.mkdirStep(this.path('transactions'), name)];
    return new Transaction(this.client, this.path('transactions', name), setup);
  }

  /** Current head, then each new head (undefined: the branch was deleted). */
  async *heads(signal?: AbortSignal): AsyncGenerator<string | undefined> {
    await this.create();
    for await (const line of this.client.lines(this.path('head.live'), signal))
      yield line === '' ? undefined : line;
  }

  /** Hash lines of `path` ("D-<tree>", "F-<blob>", ...; undefined when absent), now and at each change. */
  async *watch(path: PathLike = [], signal?: AbortSignal): AsyncGenerator<string | undefined> {
    await this.create();
    const nodes = parts(path).map((p) => `${p}.node`);
    for await (const line of this.client.lines(this.path('watch', ...nodes, 'tree.live'), signal))
      yield line === '' ? undefined : line;
  }
}

export class Transaction {
  /** Steps not sent yet (the transaction's mkdir, writes): they go out together at the end of the tick. */
  private unsent: ChainStep[];
  /** For the writes in `unsent`: each path's hash line once they are done (`commit` checks them). */
  private readonly written = new Map<string, string>();
  /** A write in `unsent` whose outcome `commit` cannot check: its chain is sent and awaited first. */
  private uncheckable = false;
  private flushQueued = false;
  /** Chains sent whose outcome nobody has awaited yet (write-behind): the next operation reports it. */
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly client: DataKitClient,
    readonly path: string[],
    /** Steps to send first (the transaction's mkdir). */
    setup: ChainStep[] = [],
  ) {
    this.unsent = setup;
  }

  /**
   * Sends the unsent steps as one chain (after the chains in flight: the server runs chains on
   * different fids in any order); its outcome is reported by the next operation.
   */
  private flush(): void {
    this.flushQueued = false;
    if (this.unsent.length === 0) return;
    const steps = this.takeUnsent();
    const before = this.inFlight;
    const sent = before ? before.then(() => this.client.chains(steps)) : this.client.chains(steps);
    sent.catch(() => {}); // reported by whoever awaits `inFlight`
    this.inFlight = sent;
  }

  private takeUnsent(): ChainStep[] {
    const steps = this.unsent;
    this.unsent = [];
    this.written.clear();
    this.uncheckable = false;
    return steps;
  }

  /**
   * Waits for the chains in flight; throws their first error (once: the operation that gets it
   * is not done, and steps still unsent stay queued for the next one).
   */
  private async landed(): Promise<void> {
    const inFlight = this.inFlight;
    if (!inFlight) return;
    this.inFlight = undefined;
    await inFlight;
  }

  /** Waits for every step sent or queued so far; throws the first error among them. */
  private async settled(): Promise<void> {
    this.flush();
    await this.landed();
  }

  /** `steps` after the queued ones, in one round trip (once the chains in flight are done). */
  private async send(steps: ChainStep[]): Promise<void> {
    await this.landed();
    await this.client.chains([...this.takeUnsent(), ...steps]);
  }

  /**
   * Makes the transaction's directory now (it is otherwise made along with the first operation),
   * e.g. before using `path` with the raw file calls; reports errors of writes made before.
   */
  async begin(): Promise<void> {
    await this.settled();
  }

  private ready(): Promise<void> {
    return this.settled();
  }

  /**
   * Writes `path` in the working tree, creating parent directories and the file as needed.
   * Write-behind: the requests go out at the end of the tick, together with anything else the
   * transaction is asked meanwhile (`commit`: a single-file transaction is one round trip), and
   * resolve without waiting for the reply. A failed write is reported by the transaction's next
   * operation, and `commit` then commits nothing (it sends the hash of every file it has not
   * heard back about, and the server refuses the commit unless `rw/` matches).
   */
  async write(
    path: PathLike,
    data: Uint8Array | string,
    options: { executable?: boolean } = {},
  ): Promise<void> {
    const p = parts(path);
    const name = p.pop();
    if (name === undefined) throw new DataKitError('ERR_BAD_PATH', 'cannot write the root');
    const bytes = asBytes(data);
    for (let i = 0; i < p.length; i++)
      this.unsent.push(this.client.mkdirStep([...this.path, 'rw', ...p.slice(0, i)], p[i] ?? ''));
    this.unsent.push(
      this.client.createStep([...this.path, 'rw', ...p], name, bytes, options.executable ? 0o755 : 0o644),
    );
    const full = [...p, name].join('/');
    // A hash line is `<hash> <path>\n`, and the server trims the command it is sent.
    if (full.includes('\n') || /\s$/.test(full)) this.uncheckable = true;
    else this.written.set(full, `${options.executable ? 'X' : 'F'}-${hashObject('blob', bytes)}`);
    if (!this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(() => this.flush());
    }
  }

  async read(path: PathLike): Promise<Uint8Array> {
    await this.ready();
    return this.client.read([...this.path, 'rw', ...parts(path)]);
  }

  async remove(path: PathLike): Promise<void> {
    await this.ready();
    return this.client.remove([...this.path, 'rw', ...parts(path)]);
  }

  mkdir(path: PathLike): Promise<void> {
    const p = parts(path);
    const name = p.pop() ?? '';
    return this.send([this.client.mkdirStep([...this.path, 'rw', ...p], name)]);
  }

  setMessage(msg: string): Promise<void> {
    return this.send([this.client.writeStep([...this.path, 'msg'], asBytes(msg))]);
  }

  async parents(): Promise<string[]> {
    await this.ready();
    return (await this.client.readText([...this.path, 'parents'])).split('\n').filter((l) => l);
  }

  setParents(parents: string[]): Promise<void> {
    const text = parents.map((p) => `${p}\n`).join('');
    return this.send([this.client.writeStep([...this.path, 'parents'], asBytes(text))]);
  }

  /** Merges `commit` into the working tree; returns the conflicting paths (resolve them, then commit). */
  async merge(commit: string): Promise<string[]> {
    await this.send([this.client.writeStep([...this.path, 'merge'], asBytes(commit))]);
    return this.conflicts();
  }

  async conflicts(): Promise<string[]> {
    await this.ready();
    return (await this.client.readText([...this.path, 'conflicts'])).split('\n').filter((l) => l);
  }

  /**
   * Commits (three-way merging into the branch head); with `msg`, sets the message first (in the
   * ctl write itself). Sent with the writes not sent yet, in the same round trip; resolves once
   * the commit is durable.
   * Throws the first error of the transaction's writes not yet reported (nothing is committed then).
   */
  async commit(msg?: string): Promise<void> {
    const limit = Math.min(this.client.ninep.maxIo, 64 << 10);
    for (;;) {
      await this.landed();
      // Checked and taken with no await in between: a write made meanwhile is in both or neither.
      let command = msg === undefined ? 'commit' : `commit\nmsg ${JSON.stringify(msg)}`;
      for (const [path, line] of this.written) command += `\n${line} ${path}`;
      let bytes = asBytes(command);
      // One write must carry the whole command: otherwise wait for the writes first, and send
      // a message too long for it through the msg file.
      if (this.uncheckable || (bytes.length > limit && this.written.size > 0)) {
        this.flush();
        continue;
      }
      const steps: ChainStep[] = [];
      if (bytes.length > limit) {
        steps.push(this.client.writeStep([...this.path, 'msg'], asBytes(msg ?? '')));
        bytes = asBytes('commit');
      }
      steps.push(this.client.writeStep([...this.path, 'ctl'], bytes));
      await this.client.chains([...this.takeUnsent(), ...steps]);
      return;
    }
  }

  /** Closes the transaction without committing; errors of writes not yet reported are dropped. */
  async abort(): Promise<void> {
    await this.landed().catch(() => {});
    const ignored = this.takeUnsent().map((step) => ({ ...step, ignore: () => true }));
    await this.client.chains([...ignored, this.client.writeStep([...this.path, 'ctl'], asBytes('close'))]);
  }
}

/** One typed key of a ConfigRecord: its current value (the default while the key is absent). */
export class ConfigField<T> {
  /** Bumped each time the value changes. */
  version = 0;
  constructor(
    readonly key: string,
    readonly defaultValue: T,
    private readonly parse: (text: string) => T,
    public value: T,
  ) {}

  /** @internal */
  update(text: string | undefined): boolean {
    const next = text === undefined ? this.defaultValue : this.parse(text.replace(/\n$/, ''));
    if (next === this.value) return false;
    this.value = next;
    this.version++;
    return true;
  }
}

/**
 * A configuration record kept as one file per key under a directory of a branch, as go-datakit's
 * record: typed fields with defaults, reloaded whenever the directory's tree changes.
 */
export class ConfigRecord {
  private readonly fields = new Map<string, ConfigField<unknown>>();
  private readonly dir: string[];

  constructor(
    private readonly client: DataKitClient,
    readonly branch: string,
    dir: PathLike = [],
  ) {
    this.dir = parts(dir);
  }

  private field<T>(key: string, defaultValue: T, parse: (text: string) => T): ConfigField<T> {
    if (key === '' || key.includes('/'))
      throw new DataKitError('ERR_BAD_KEY', `bad config key ${JSON.stringify(key)}`);
    const f = new ConfigField(key, defaultValue, parse, defaultValue);
    this.fields.set(key, f as ConfigField<unknown>);
    return f;
  }

  stringField(key: string, defaultValue: string): ConfigField<string> {
    return this.field(key, defaultValue, (t) => t);
  }

  boolField(key: string, defaultValue: boolean): ConfigField<boolean> {
    return this.field(key, defaultValue, (t) => t.trim() === 'true');
  }

  intField(key: string, defaultValue: number): ConfigField<number> {
    return this.field(key, defaultValue, (t) => {
      const n = Number.parseInt(t.trim(), 10);
      return Number.isFinite(n) ? n : defaultValue;
    });
  }

  /** Re-reads every field from the branch head; returns the keys that changed. */
  async load(): Promise<string[]> {
    const head = await this.client.branch(this.branch).head();
    const changed: string[] = [];
    for (const [key, f] of this.fields) {
      let text: string | undefined;
      if (head) {
        try {
          text = decoder.decode(await this.client.read(['snapshots', head, 'ro', ...this.dir, key]));
        } catch (err) {
          if (!(err instanceof DataKitError)) throw err;
          text = undefined;
        }
      }
      if (f.update(text)) changed.push(key);
    }
    return changed;
  }

  /** Yields the changed keys each time the record's directory changes (first: the initial load). */
  async *updates(signal?: AbortSignal): AsyncGenerator<string[]> {
    for await (const _hash of this.client.branch(this.branch).watch(this.dir, signal))
      yield await this.load();
  }

  /** Sets keys in one commit. */
  async set(values: Record<string, string | number | boolean>, message = 'Update config'): Promise<void> {
    const t = await this.client.branch(this.branch).transaction();
    try {
      for (const [key, value] of Object.entries(values)) await t.write([...this.dir, key], `${value}\n`);
      await t.commit(message);
    } catch (err) {
      await t.abort().catch(() => {});
      throw err;
    }
  }
}
