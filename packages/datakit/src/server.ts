import { type Listener, NinePServer } from '@kitset/ninep';
import { Repository, type RepositoryOptions } from './store/index.js';
import { DataKit, type DataKitOptions } from './tree/datakit.js';
import { vfsBackend } from './tree/fsnode.js';

export interface DataKitServerOptions extends DataKitOptions, RepositoryOptions {
  /** A git repository to serve (created if missing); without it, an in-memory store. */
  git?: string;
  /** Listen URLs: tcp://HOST:PORT or unix:///path (default tcp://127.0.0.1:5640). */
  listen?: string[];
  logger?: (message: string) => void;
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
    return new DataKitServer(repo, datakit, ninep, listeners);
  }

  async close(): Promise<void> {
    for (const l of this.listeners) await l.close();
    this.datakit.close();
    await this.repo.close();
  }
}
