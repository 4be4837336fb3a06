/**
 * @kitset/ninep — 9P2000, 9P2000.u and 9P2000.L for Node.
 *
 * - Codec (`wire/`): `decodeMessage(frame, dialect)` gives plain message objects whose byte payloads
 *   are views of the frame; `encodeMessageInto(msg, dialect, buf)` writes into a buffer you own;
 *   `FrameSplitter` cuts a byte stream into frames.
 * - Server (`server/`): `new NinePServer(backend).listen('tcp://127.0.0.1:5640' | 'unix:///path')`,
 *   `handleStream(duplex)`, or a bare sans-I/O `ServerConnection` (`receive(bytes)`, `onSend`).
 *   Backends implement the small `FsBackend`/`FsNode`/`FsOpenFile` contract in `backend.ts`.
 * - Client (`client/`): `await NinePClient.connect(url | duplex, { version, msize })`, then
 *   `attach`, `walk`, `open`, `read`, `write`, `readdir`, ... and `readFile`/`writeFile`.
 * - Host directory (`hostfs/`): `new HostFsBackend(dir, { readOnly })`, confined to `dir`.
 */
export * from './backend.js';
export * from './wire/index.js';
export * from './server/index.js';
export * from './hostfs/index.js';
export * from './client/index.js';
