import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DiskError } from '../src/virtio/devices/blk/disk.js';
import { Qcow2Disk, openDiskImage } from '../src/virtio/devices/blk/qcow2.js';
import { haveCommand } from './harness.js';

const HAVE_QEMU_IMG = haveCommand('qemu-img');
const noQemuImg = 'qemu-img not installed (apt-get install qemu-utils)';
const tmp = mkdtempSync(join(tmpdir(), 'hk-qcow2-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function qemuImg(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('qemu-img', args, { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function asRaw(image: string): Uint8Array {
  const raw = join(tmp, `raw-${Math.random().toString(36).slice(2)}.img`);
  const r = qemuImg('convert', '-O', 'raw', image, raw);
  assert.equal(r.status, 0, r.out);
  const bytes = new Uint8Array(readFileSync(raw));
  rmSync(raw);
  return bytes;
}

/** Random writes, zeroes and discards applied to the image and to a plain model of the disk. */
function exercise(path: string, model: Uint8Array, seed: number, ops: number): void {
  const disk = openDiskImage(path);
  let s = seed;
  const rnd = (n: number) => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s % n;
  };
  const sectors = model.length / 512;
  for (let i = 0; i < ops; i++) {
    const start = rnd(sectors - 1);
    const count = 1 + rnd(Math.min(300, sectors - start));
    const off = start * 512;
    const len = count * 512;
    const kind = rnd(10);
    if (kind < 7) {
      const data = randomBytes(len);
      disk.write(off, data);
      model.set(data, off);
    } else if (kind < 9) {
      disk.writeZeroes(off, len, true);
      model.fill(0, off, off + len);
    } else {
      disk.discard(off, len);
      model.fill(0, off, off + len);
    }
    if (i % 50 === 0) {
      const back = new Uint8Array(len);
      disk.read(off, back);
      assert.deepEqual(back, model.subarray(off, off + len));
    }
  }
  disk.flush();
  disk.close();
}

describe('qcow2 images made by qemu-img', { concurrency: 1 }, () => {
  test(
    'v3 with lazy refcounts: random writes, zeroes, discards; qemu-img check clean and same bytes',
    { timeout: 60_000 },
    (t) => {
      if (!HAVE_QEMU_IMG) return t.skip(noQemuImg);
      const img = join(tmp, 'v3.qcow2');
      assert.equal(qemuImg('create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', img, '8M').status, 0);
      const model = new Uint8Array(8 << 20);
      exercise(img, model, 1, 400);
      const check = qemuImg('check', img);
      assert.equal(check.status, 0, check.out);
      assert.match(check.out, /No errors were found/);
      assert.deepEqual(asRaw(img), model);
    },
  );

  test(
    'v2 (compat=0.10) with 512-byte clusters: many refcount blocks allocated',
    { timeout: 60_000 },
    (t) => {
      if (!HAVE_QEMU_IMG) return t.skip(noQemuImg);
      const img = join(tmp, 'v2.qcow2');
      const r = qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10,cluster_size=512', img, '2M');
      assert.equal(r.status, 0, r.out);
      const model = new Uint8Array(2 << 20);
      exercise(img, model, 7, 300);
      const check = qemuImg('check', img);
      assert.equal(check.status, 0, check.out);
      assert.deepEqual(asRaw(img), model);
    },
  );

  test(
    'backing file: reads fall through, writes copy on write, the base is untouched',
    { timeout: 60_000 },
    (t) => {
      if (!HAVE_QEMU_IMG) return t.skip(noQemuImg);
      const baseRaw = join(tmp, 'base.raw');
      const pattern = randomBytes(4 << 20);
      writeFileSync(baseRaw, pattern);
      const base = join(tmp, 'base.qcow2');
      assert.equal(qemuImg('convert', '-O', 'qcow2', baseRaw, base).status, 0);
      const overlay = join(tmp, 'overlay.qcow2');
      const r = qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', overlay, '6M');
      assert.equal(r.status, 0, r.out);
      const model = new Uint8Array(6 << 20);
      model.set(pattern);
      const disk = openDiskImage(overlay);
      assert.ok(disk instanceof Qcow2Disk && disk.backing);
      const probe = new Uint8Array(70_000);
      disk.read(12_345 * 2, probe);
      assert.deepEqual(probe, model.subarray(24_690, 24_690 + 70_000));
      disk.close();
      exercise(overlay, model, 3, 200);
      assert.equal(qemuImg('check', overlay).status, 0);
      assert.deepEqual(asRaw(overlay), model);
      assert.deepEqual(asRaw(base).subarray(0, pattern.length), new Uint8Array(pattern));
    },
  );

  test(
    'read-only images refuse writes; dirty or unknown-feature images refuse to open for writing',
    { timeout: 30_000 },
    (t) => {
      if (!HAVE_QEMU_IMG) return t.skip(noQemuImg);
      const img = join(tmp, 'ro.qcow2');
      assert.equal(qemuImg('create', '-q', '-f', 'qcow2', img, '1M').status, 0);
      const ro = openDiskImage(img, true);
      assert.throws(() => ro.write(0, new Uint8Array(512)), DiskError);
      ro.close();
      const bytes = readFileSync(img);
      bytes[79] = 1; // incompatible_features: dirty
      writeFileSync(img, bytes);
      assert.throws(() => openDiskImage(img), /dirty/);
      openDiskImage(img, true).close();
      bytes[79] = 0x10; // extended L2 entries
      writeFileSync(img, bytes);
      assert.throws(() => openDiskImage(img, true), /incompatible features/);
      bytes[0] = 0;
      writeFileSync(img, bytes);
      // no longer qcow2: opened as a raw image of its own bytes
      const raw = openDiskImage(img, true);
      assert.equal(raw.size, bytes.length);
      raw.close();
    },
  );
});
