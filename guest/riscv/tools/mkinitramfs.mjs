#!/usr/bin/env node
// Writes a gzip-compressed newc cpio archive (a Linux initramfs) from a list in the format of the
// kernel's usr/gen_init_cpio:
//   dir NAME MODE UID GID
//   file NAME SOURCE MODE UID GID        (SOURCE relative to the list file)
//   nod NAME MODE UID GID c|b MAJOR MINOR
//   slink NAME TARGET MODE UID GID
// Output is reproducible: mtimes are 0, inode numbers follow the list order, gzip has no name or time.
// Usage: node mkinitramfs.mjs LIST OUT.cpio.gz
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

function fail(message) {
  process.stderr.write(`mkinitramfs: ${message}\n`);
  process.exit(1);
}

const [listPath, outPath] = process.argv.slice(2);
if (!listPath || !outPath) fail('usage: node mkinitramfs.mjs LIST OUT.cpio.gz');

const chunks = [];
let size = 0;
let nextInode = 721; // any fixed start; gen_init_cpio uses 721 too

function push(bytes) {
  chunks.push(bytes);
  size += bytes.length;
  const pad = (4 - (size % 4)) % 4;
  if (pad) {
    chunks.push(new Uint8Array(pad));
    size += pad;
  }
}

function hex8(n) {
  return (n >>> 0).toString(16).padStart(8, '0');
}

function entry({
  name,
  mode,
  uid = 0,
  gid = 0,
  nlink = 1,
  data = new Uint8Array(0),
  rdevMajor = 0,
  rdevMinor = 0,
}) {
  const nameBytes = Buffer.from(`${name.replace(/^\/+/, '')}\0`, 'utf8');
  const header =
    '070701' +
    [
      name === 'TRAILER!!!' ? 0 : nextInode++,
      mode,
      uid,
      gid,
      nlink,
      0, // mtime
      data.length,
      0, // dev major
      0, // dev minor
      rdevMajor,
      rdevMinor,
      nameBytes.length,
      0, // check
    ]
      .map(hex8)
      .join('');
  chunks.push(Buffer.from(header, 'ascii'));
  size += header.length;
  push(nameBytes);
  if (data.length) push(data);
}

function octal(text, line) {
  if (!/^[0-7]+$/.test(text ?? '')) fail(`bad mode ${JSON.stringify(text)} in: ${line}`);
  return Number.parseInt(text, 8);
}

function integer(text, line) {
  if (!/^[0-9]+$/.test(text ?? '')) fail(`bad number ${JSON.stringify(text)} in: ${line}`);
  return Number.parseInt(text, 10);
}

const baseDir = dirname(resolve(listPath));
for (const raw of readFileSync(listPath, 'utf8').split('\n')) {
  const line = raw.trim();
  if (line === '' || line.startsWith('#')) continue;
  const f = line.split(/\s+/);
  switch (f[0]) {
    case 'dir':
      entry({
        name: f[1],
        mode: S_IFDIR | octal(f[2], line),
        uid: integer(f[3], line),
        gid: integer(f[4], line),
        nlink: 2,
      });
      break;
    case 'file': {
      const data = readFileSync(resolve(baseDir, f[2]));
      entry({
        name: f[1],
        mode: S_IFREG | octal(f[3], line),
        uid: integer(f[4], line),
        gid: integer(f[5], line),
        data,
      });
      break;
    }
    case 'nod': {
      const type = f[5] === 'c' ? S_IFCHR : f[5] === 'b' ? S_IFBLK : fail(`bad device type in: ${line}`);
      entry({
        name: f[1],
        mode: type | octal(f[2], line),
        uid: integer(f[3], line),
        gid: integer(f[4], line),
        rdevMajor: integer(f[6], line),
        rdevMinor: integer(f[7], line),
      });
      break;
    }
    case 'slink':
      entry({
        name: f[1],
        mode: S_IFLNK | octal(f[3], line),
        uid: integer(f[4], line),
        gid: integer(f[5], line),
        data: Buffer.from(f[2], 'utf8'),
      });
      break;
    default:
      fail(`unknown entry type in: ${line}`);
  }
}
entry({ name: 'TRAILER!!!', mode: 0 });
writeFileSync(outPath, gzipSync(Buffer.concat(chunks), { level: 9 }));
