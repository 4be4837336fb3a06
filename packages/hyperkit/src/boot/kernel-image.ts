import { gunzipSync } from 'node:zlib';
import { HyperkitError } from '../errors.js';

/** A parsed RISC-V Linux `Image` (Documentation/riscv/boot-image-header.rst). */
export interface RiscvImage {
  /** Offset from the start of RAM where the image must be placed (2 MiB on RV64). */
  textOffset: number;
  /** Memory the kernel occupies from its load address, bss included. */
  imageSize: number;
  payload: Uint8Array;
}

const HEADER_SIZE = 64;
const MAGIC2 = 0x05435352; // "RSC\x05"

function bad(msg: string): never {
  throw new HyperkitError('ERR_BAD_KERNEL', `kernel: ${msg}`);
}

export function isGzip(data: Uint8Array): boolean {
  return data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b;
}

/** Parses and checks an Image (optionally gzip-compressed, like Image.gz). */
export function parseRiscvImage(input: Uint8Array): RiscvImage {
  let data = input;
  if (isGzip(data)) {
    try {
      data = new Uint8Array(gunzipSync(data));
    } catch (e) {
      bad(`gzip-compressed image is corrupt or truncated (${(e as Error).message})`);
    }
  }
  if (data.length < HEADER_SIZE)
    bad(`truncated: ${data.length} bytes, shorter than the 64-byte Image header`);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const magic2 = dv.getUint32(56, true);
  const legacyMagic = String.fromCharCode(...data.subarray(48, 53));
  if (magic2 !== MAGIC2 && legacyMagic !== 'RISCV') {
    bad('not a RISC-V Linux Image (no "RSC\\x05" magic at offset 56); give an Image or an ELF vmlinux');
  }
  const textOffset = Number(dv.getBigUint64(8, true));
  const imageSize = Number(dv.getBigUint64(16, true));
  if (textOffset % 4096 !== 0 || textOffset > 1 << 30)
    bad(`implausible text_offset 0x${textOffset.toString(16)}`);
  if (imageSize === 0) bad('header gives image_size 0');
  if (data.length > imageSize) {
    bad(`corrupt header: file is ${data.length} bytes but image_size says ${imageSize}`);
  }
  // The file holds everything up to the end of initialised data; bss follows. No header records that
  // length, so require the file to reach at least half of image_size (real Images are 60-95% of it).
  if (data.length < imageSize / 2) {
    bad(`truncated: file is ${data.length} bytes but the kernel occupies ${imageSize} bytes`);
  }
  return { textOffset, imageSize, payload: data };
}
