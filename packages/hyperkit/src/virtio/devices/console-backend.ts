import { lstatSync, unlinkSync } from 'node:fs';
import { type Server, type Socket, createServer } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { VirtioConsole } from './console.js';

/** Output kept while no client is attached to a console socket, replayed to the next one. */
const MAX_BACKLOG = 64 * 1024;

/** Joins a virtio-console to a pair of streams (e.g. stdin and stdout); returns a function that detaches. */
export function attachConsoleStreams(dev: VirtioConsole, input: Readable, output: Writable): () => void {
  const onData = (chunk: Buffer) => dev.input(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
  dev.onOutput = (bytes) => {
    output.write(bytes);
  };
  input.on('data', onData);
  return () => {
    input.off('data', onData);
    input.pause();
    dev.onOutput = () => {};
  };
}

/**
 * Serves a virtio-console on a Unix socket, as QEMU's `-chardev socket,path=…,server=on` does: one client at
 * a time reads the guest's output and types its input (a second client is turned away). Output written
 * while nobody is connected is kept, up to the last 64 KiB, for the next client. Resolves once listening.
 */
export async function serveConsoleSocket(dev: VirtioConsole, path: string): Promise<() => void> {
  removeStaleSocket(path);
  let client: Socket | null = null;
  let backlog: Uint8Array[] = [];
  let backlogBytes = 0;
  dev.onOutput = (bytes) => {
    if (client) {
      client.write(bytes);
      return;
    }
    backlog.push(bytes.slice());
    backlogBytes += bytes.length;
    while (backlogBytes > MAX_BACKLOG && backlog.length > 1) backlogBytes -= backlog.shift()!.length;
  };
  const server: Server = createServer((socket) => {
    socket.on('error', () => socket.destroy());
    if (client) {
      socket.end('hyperkit: the console is in use by another client\n');
      return;
    }
    client = socket;
    for (const b of backlog) socket.write(b);
    backlog = [];
    backlogBytes = 0;
    socket.on('data', (chunk: Buffer) =>
      dev.input(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)),
    );
    socket.on('close', () => {
      if (client === socket) client = null;
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return () => {
    client?.destroy();
    server.close();
    dev.onOutput = () => {};
    removeStaleSocket(path);
  };
}

/** Removes a socket left by an earlier run; never a regular file or directory. */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // absent
  }
}
