import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { freePort } from '@kitset/testkit';
import { DataKitClient } from '../src/client.js';
import { DataKitServer } from '../src/server.js';
import { fsck, git, tempDir } from './helpers.js';

const cleanups: Array<() => void> = [];
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const c of cleanups) c();
});

function sourceRepo(root: string): string {
  const src = join(root, 'src');
  git(root, 'init', '-q', '-b', 'master', src);
  writeFileSync(join(src, 'foo'), 'foo\n');
  writeFileSync(join(src, 'x'), 'x\n');
  git(src, 'add', '.');
  git(src, 'commit', '-q', '-m', 'remote commit');
  return src;
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listening on ${port}`);
}

/** Smart HTTP: a tiny CGI gateway in front of `git http-backend`. */
function httpBackend(projectRoot: string): Server {
  return createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://localhost');
    const cgi = spawn('git', ['http-backend'], {
      env: {
        ...process.env,
        GIT_PROJECT_ROOT: projectRoot,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: u.pathname,
        QUERY_STRING: u.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
      },
    });
    req.pipe(cgi.stdin);
    const out: Buffer[] = [];
    cgi.stdout.on('data', (d: Buffer) => out.push(d));
    cgi.on('close', () => {
      const all = Buffer.concat(out);
      const split = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, split).toString().split('\r\n');
      let status = 200;
      for (const line of head) {
        const colon = line.indexOf(':');
        const key = line.slice(0, colon);
        const value = line.slice(colon + 1).trim();
        if (key.toLowerCase() === 'status') status = Number.parseInt(value, 10);
        else res.setHeader(key, value);
      }
      res.statusCode = status;
      res.end(all.subarray(split + 4));
    });
  });
}

async function fetchAndCheck(c: DataKitClient, remote: string, url: string, expected: string) {
  await c.mkdir(['remotes'], remote);
  await c.write(['remotes', remote, 'url'], url);
  await c.write(['remotes', remote, 'fetch'], 'master');
  for await (const line of c.lines(['remotes', remote, 'head'])) {
    assert.equal(line, expected, `${remote} head`);
    break;
  }
  assert.deepEqual((await c.list(['snapshots', expected, 'ro'])).sort(), ['foo', 'x']);
}

describe(
  'remotes: fetch over a local path, git:// and smart HTTP; push and auto-push',
  { timeout: 90_000 },
  () => {
    test('fetch from three transports and push back', { timeout: 60_000 }, async () => {
      const root = tempDir('remotes');
      cleanups.push(root.remove);
      const src = sourceRepo(root.path);
      const remoteHead = git(src, 'rev-parse', 'master').trim();
      const store = join(root.path, 'store');
      const server = await DataKitServer.start({ git: store, listen: ['tcp://127.0.0.1:0'] });
      const c = await DataKitClient.connect(server.addresses[0] ?? '');
      const daemonPort = await freePort();
      const daemon = spawn(
        'git',
        [
          'daemon',
          '--reuseaddr',
          '--export-all',
          `--base-path=${root.path}`,
          '--listen=127.0.0.1',
          `--port=${daemonPort}`,
          root.path,
        ],
        { stdio: 'ignore' },
      );
      children.push(daemon);
      const http = httpBackend(root.path);
      await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
      const httpPort = (http.address() as { port: number }).port;
      try {
        assert.deepEqual(await c.list(['remotes']), []);
        await fetchAndCheck(c, 'local', src, remoteHead);
        assert.deepEqual((await c.list(['remotes', 'local'])).sort(), ['fetch', 'head', 'push', 'url']);
        await waitPort(daemonPort);
        await fetchAndCheck(c, 'daemon', `git://127.0.0.1:${daemonPort}/src`, remoteHead);
        await fetchAndCheck(c, 'http', `http://127.0.0.1:${httpPort}/src`, remoteHead);

        // Errors as the original words them.
        await c.mkdir(['remotes'], 'nourl');
        await assert.rejects(
          c.write(['remotes', 'nourl', 'fetch'], 'master'),
          /error: remote url is not defined/,
        );
        await c.write(['remotes', 'nourl', 'url'], join(root.path, 'does-not-exist'));
        await assert.rejects(c.write(['remotes', 'nourl', 'fetch'], 'master'), /error: cannot fetch /);

        // Fast-forward a local branch to the fetched commit, change it, push it to a bare repo.
        const master = c.branch('master');
        await master.fastForward(remoteHead);
        const t = await master.transaction();
        await t.write('pushed', 'yes');
        await t.commit('local change');
        const bare = join(root.path, 'bare.git');
        git(root.path, 'init', '-q', '--bare', bare);
        await c.mkdir(['remotes'], 'out');
        await c.write(['remotes', 'out', 'url'], bare);
        await c.write(['remotes', 'out', 'push'], 'master');
        assert.equal(git(bare, 'rev-parse', 'master').trim(), await master.head());
        assert.equal(git(bare, 'show', 'master:pushed'), 'yes');
        fsck(store);
        fsck(bare);
      } finally {
        c.close();
        http.close();
        await server.close();
      }
    });

    test('--auto-push sends every new head to the remote', { timeout: 30_000 }, async () => {
      const root = tempDir('autopush');
      cleanups.push(root.remove);
      const bare = join(root.path, 'bare.git');
      git(root.path, 'init', '-q', '--bare', bare);
      const server = await DataKitServer.start({
        git: join(root.path, 'store'),
        listen: ['tcp://127.0.0.1:0'],
        autoPush: bare,
      });
      const c = await DataKitClient.connect(server.addresses[0] ?? '');
      try {
        for (let i = 0; i < 3; i++) {
          const t = await c.branch('main').transaction();
          await t.write('n', String(i));
          await t.commit(`change ${i}`);
        }
        const head = await c.branch('main').head();
        for (
          let i = 0;
          i < 100 && git(bare, 'for-each-ref', '--format=%(objectname)', 'refs/heads/main').trim() !== head;
          i++
        ) {
          await server.flushAutoPush();
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal(git(bare, 'rev-parse', 'main').trim(), head);
        assert.equal(git(bare, 'show', 'main:n'), '2');
        fsck(bare);
      } finally {
        c.close();
        await server.close();
      }
    });
  },
);
