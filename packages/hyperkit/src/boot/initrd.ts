import { gunzipSync } from 'node:zlib';
import { HyperkitError } from '../errors.js';
import { isGzip } from './kernel-image.js';

function bad(msg: string): never {
  throw new HyperkitError('ERR_BAD_INITRD', `initrd: ${msg}`);
}

/**
 * Checks an initramfs before boot: gzip integrity (CRC and length, so truncation is caught) and the newc
 * cpio structure up to its TRAILER!!! entry. Returns the bytes to load (unchanged: the kernel unpacks).
 */
export function checkInitrd(data: Uint8Array): Uint8Array {
  if (data.length === 0) bad('file is empty');
  let cpio = data;
  if (isGzip(data)) {
    try {
      cpio = new Uint8Array(gunzipSync(data));
    } catch (e) {
      bad(`gzip data is corrupt or truncated (${(e as Error).message})`);
    }
  }
  const dec = new TextDecoder('latin1');
  let pos = 0;
  for (let entries = 0; ; entries++) {
    if (pos + 110 > cpio.length) bad(`cpio archive truncated at byte ${pos} (no TRAILER!!! entry)`);
    const magic = dec.decode(cpio.subarray(pos, pos + 6));
    if (magic !== '070701' && magic !== '070702') {
      bad(
        entries === 0
          ? 'not a newc cpio archive (optionally gzip-compressed)'
          : `bad cpio header at byte ${pos}`,
      );
    }
    const field = (i: number) =>
      Number.parseInt(dec.decode(cpio.subarray(pos + 6 + i * 8, pos + 14 + i * 8)), 16);
    const fileSize = field(6);
    const nameSize = field(11);
    if (!Number.isFinite(fileSize) || !Number.isFinite(nameSize)) bad(`bad cpio header at byte ${pos}`);
    const nameStart = pos + 110;
    const name = dec.decode(cpio.subarray(nameStart, nameStart + nameSize - 1));
    const dataStart = (nameStart + nameSize + 3) & ~3;
    const next = (dataStart + fileSize + 3) & ~3;
    if (dataStart + fileSize > cpio.length) bad(`cpio entry "${name}" is truncated`);
    if (name === 'TRAILER!!!') return data;
    pos = next;
  }
}
