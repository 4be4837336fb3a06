#!/usr/bin/env -S node --interrupt-budget=135168 --no-turbo-inlining
/**
 * `datakit [--git PATH] [--listen URL]...` serves DataKit over 9P (default tcp://127.0.0.1:5640;
 * without --git, an in-memory store). `datakit ls|cat|write|commit|log|watch` talk to a running server.
 */
import './v8flags.js';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DataKitClient } from './client.js';
import { DataKitServer } from './server.js';

const usage = `usage:
  datakit [--git PATH] [--listen URL]... [--auto-push URL]
                                                serve (default --listen tcp://127.0.0.1:5640, in-memory store);
                                                --auto-push pushes every changed branch to URL
  datakit ls PATH                               list a directory of the DataKit tree (e.g. branch/master/ro)
  datakit cat PATH                              print a file of the DataKit tree
  datakit write BRANCH FILE [TEXT] [-m MSG]     commit FILE with TEXT (or stdin) on BRANCH
  datakit commit BRANCH -m MSG FILE=TEXT...     commit several files in one transaction
  datakit log BRANCH [-n N]                     history of BRANCH
  datakit watch BRANCH [PATH]                   print the tree hash of PATH now and at each change
options for the client commands: --addr URL (default $DATAKIT_ADDR or tcp://127.0.0.1:5640)`;

function fail(message: string): never {
  console.error(`datakit: ${message}`);
  process.exit(1);
}

async function serve(values: { git?: string; listen?: string[]; 'auto-push'?: string }): Promise<void> {
  if (values['auto-push'] && !values.git)
    fail('--auto-push needs --git PATH (the in-memory store cannot push)');
  const server = await DataKitServer.start({
    ...(values.git ? { git: values.git } : {}),
    ...(values['auto-push'] ? { autoPush: values['auto-push'] } : {}),
    listen: values.listen && values.listen.length > 0 ? values.listen : ['tcp://127.0.0.1:5640'],
  });
  console.log(
    `datakit: serving ${values.git ? `git repository ${values.git}` : 'an in-memory store'} on ${server.addresses.join(', ')}`,
  );
  const stop = () => {
    void server.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

async function client(addr: string): Promise<DataKitClient> {
  try {
    return await DataKitClient.connect(addr);
  } catch (err) {
    fail(
      `cannot reach a DataKit server at ${addr} (${(err as Error).message}); start one with \`datakit --git PATH\``,
    );
  }
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      git: { type: 'string' },
      listen: { type: 'string', multiple: true },
      'auto-push': { type: 'string' },
      addr: { type: 'string' },
      message: { type: 'string', short: 'm' },
      n: { type: 'string', short: 'n' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  const [command, ...args] = positionals;
  if (command === undefined || command === 'serve') return serve(values);
  const addr = values.addr ?? process.env.DATAKIT_ADDR ?? 'tcp://127.0.0.1:5640';
  const need = (n: number) => {
    if (args.length < n) fail(`${command}: missing arguments\n${usage}`);
  };
  switch (command) {
    case 'ls': {
      const c = await client(addr);
      for (const name of await c.list(args[0] ?? '')) console.log(name);
      c.close();
      return;
    }
    case 'cat': {
      need(1);
      const c = await client(addr);
      process.stdout.write(await c.read(args[0] ?? ''));
      c.close();
      return;
    }
    case 'write':
    case 'commit': {
      need(2);
      const [branch, ...rest] = args as [string, ...string[]];
      const files: Array<[string, string | Uint8Array]> = [];
      if (command === 'write') {
        const [file, text] = rest as [string, string | undefined];
        files.push([file, text ?? readFileSync(0)]);
      } else {
        for (const spec of rest) {
          const eq = spec.indexOf('=');
          if (eq <= 0) fail(`commit: expected FILE=TEXT, got ${JSON.stringify(spec)}`);
          files.push([spec.slice(0, eq), spec.slice(eq + 1)]);
        }
      }
      const c = await client(addr);
      const b = c.branch(branch);
      const t = await b.transaction();
      try {
        for (const [file, data] of files) await t.write(file, data);
        await t.commit(values.message ?? `datakit ${command} ${files.map(([f]) => f).join(' ')}`);
      } catch (err) {
        await t.abort().catch(() => {});
        throw err;
      }
      console.log(await b.head());
      c.close();
      return;
    }
    case 'log': {
      need(1);
      const c = await client(addr);
      let commit = await c.branch(args[0] ?? '').head();
      let left = Number(values.n ?? '20');
      while (commit && left-- > 0) {
        const s = c.snapshot(commit);
        console.log(`${commit} ${(await s.message()).split('\n')[0]}`);
        commit = (await s.parents())[0];
      }
      c.close();
      return;
    }
    case 'watch': {
      need(1);
      const c = await client(addr);
      for await (const line of c.branch(args[0] ?? '').watch(args[1] ?? '')) console.log(line ?? '(absent)');
      c.close();
      return;
    }
    default:
      fail(`unknown command ${JSON.stringify(command)}\n${usage}`);
  }
}

main(process.argv.slice(2)).catch((err: Error) => fail(err.message));
