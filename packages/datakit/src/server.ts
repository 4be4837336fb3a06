import { type Listener, NinePServer } from '@kitset/ninep';
import { Repository, type RepositoryOptions } from './store/index.js';
import { DataKit, type DataKitOptions, pushBranch } from './tree/datakit.js';
import { vfsBackend } from './tree/fsnode.js';

export interface DataKitServerOptions extends DataKitOptions, RepositoryOptions {
  /** A git repository to serve (created if missing); without it, an in-memory store. */
  git?: string;
  /** Listen URLs: tcp://HOST:PORT or unix:///path (default tcp://127.0.0.1:5640). */
  listen?: string[];
  logger?: (message: string) => void;
  /** Push every branch to this git URL whenever its head changes (beyond the original). */
  autoPush?: string;
}

/** DataKit served over 9P: one repository, one DataKit tree, a fresh root per connection. */
export class DataKitServer {
  private constructor(
    readonly repo: Repository,
    readonly datakit: DataKit,
    readonly ninep: NinePServer,
    readonly listeners: Listener[],
  ) {}

  get addresses(): string[] {
    return this.listeners.map((l) => l.address);
  }

  static async start(options: DataKitServerOptions = {}): Promise<DataKitServer> {
    const repo = options.git ? await Repository.open(options.git, options) : Repository.memory(options);
    const datakit = new DataKit(repo, options);
    const ninep = new NinePServer(
      vfsBackend(() => datakit.root()),
      {
        ...(options.logger ? { logger: options.logger } : {}),
      },
    );
    const listeners: Listener[] = [];
    try {
      for (const url of options.listen ?? ['tcp://127.0.0.1:5640']) listeners.push(await ninep.listen(url));
    } catch (err) {
      for (const l of listeners) await l.close();
      datakit.close();
      await repo.close();
      throw err;
    }
    const server = new DataKitServer(repo, datakit, ninep, listeners);
    if (options.autoPush) server.startAutoPush(options.autoPush, options.logger ?? console.error);
    return server;
  }

  private stopAutoPush: (() => void) | undefined;
  private pushing: Promise<void> = Promise.resolve();

  /** Pushes changed branches to `url`, one push at a time, coalescing changes that arrive meanwhile. */
  private startAutoPush(url: string, log: (message: string) => void): void {
    const gitDir = this.repo.gitDir;
    if (!gitDir) throw new Error('--auto-push needs a git store (--git PATH)');
    const dirty = new Set<string>();
    let running = false;
    const drain = async () => {
      running = true;
      while (dirty.size > 0) {
        const [branch] = dirty;
        if (branch === undefined) break;
        dirty.delete(branch);
        if ((await this.repo.head(branch)) === undefined) continue;
        await this.repo.settle(); // git pushes what the git directory has
        const failure = await pushBranch(gitDir, url, branch);
        if (failure !== undefined) log(`datakit: auto-push of ${branch} to ${url} failed: ${failure}`);
      }
      running = false;
    };
    this.stopAutoPush = this.repo.onHeadChange((branch) => {
      dirty.add(branch);
      if (!running) this.pushing = drain();
    });
  }

  /** Resolves when pushes already started have finished. */
  async flushAutoPush(): Promise<void> {
    await this.pushing;
  }

  /** Resolves once every acknowledged commit is in the git directory (what `git` run now sees). */
  settle(): Promise<void> {
    return this.repo.settle();
  }

  async close(): Promise<void> {
    this.stopAutoPush?.();
    await this.pushing;
    for (const l of this.listeners) await l.close();
    this.datakit.close();
    await this.repo.close();
  }
}
