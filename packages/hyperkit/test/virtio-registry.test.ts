import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { HyperkitError } from '../src/errors.js';
import { VirtioBlk } from '../src/virtio/devices/blk/device.js';
import { VirtioNet } from '../src/virtio/devices/net/device.js';
import { linkPair } from '../src/virtio/devices/net/link.js';
import { Virtio9p } from '../src/virtio/devices/ninep.js';
import { closeDevices, createDevices, parseDeviceSpec } from '../src/virtio/devices/registry.js';
import { VirtioRng } from '../src/virtio/devices/rng.js';
import { VirtioVsock } from '../src/virtio/devices/vsock/device.js';

const tmp = mkdtempSync(join(tmpdir(), 'hk-registry-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof HyperkitError ? e.code : 'other';
  }
  return undefined;
}

describe('-s device specs in hyperkit shape', () => {
  test('parses names, slots and options; rejects the unknown with a clear error', { timeout: 10_000 }, () => {
    assert.equal(parseDeviceSpec('0:0,hostbridge'), undefined);
    assert.equal(parseDeviceSpec('31,lpc'), undefined);
    const blk = parseDeviceSpec('4,virtio-blk,disk.qcow2');
    assert.equal(blk?.slot, 4);
    assert.equal(blk?.name, 'virtio-blk');
    assert.equal(parseDeviceSpec('virtio-rnd')?.slot, undefined);
    assert.equal(
      code(() => parseDeviceSpec('virtio-gpu')),
      'ERR_UNKNOWN_DEVICE',
    );
    assert.equal(
      code(() => parseDeviceSpec('virtio-9p,tag=x')),
      'ERR_BAD_ARGUMENT',
    ); // no path
    assert.equal(
      code(() => parseDeviceSpec('virtio-sock,guest_cid=2,path=/tmp')),
      'ERR_BAD_ARGUMENT',
    );
    assert.equal(
      code(() => parseDeviceSpec('virtio-sock,guest_cid=3,path=/tmp,bogus=1')),
      'ERR_BAD_ARGUMENT',
    );
    assert.equal(
      code(() => parseDeviceSpec('virtio-vpnkit,path=/x')),
      'ERR_BAD_ARGUMENT',
    ); // no uuid
    assert.match(
      (() => {
        try {
          parseDeviceSpec('virtio-gpu');
        } catch (e) {
          return (e as Error).message;
        }
        return '';
      })(),
      /unknown device "virtio-gpu".*supported: virtio-blk/,
    );
  });

  test('creates devices in slot order and closes them', { timeout: 10_000 }, async () => {
    const disk = join(tmp, 'd.raw');
    writeFileSync(disk, Buffer.alloc(1 << 20));
    const share = join(tmp, 'share');
    mkdirSync(share);
    const socks = join(tmp, 'socks');
    mkdirSync(socks);
    const specs = [
      `5,virtio-sock,guest_cid=3,path=${socks},guest_forwards=22;80`,
      'virtio-rnd',
      `2,virtio-blk,${disk},ro`,
      `3,virtio-9p,path=${share},tag=share`,
      'virtio-net,link=vpnkit,mac=02:00:00:00:00:07,mtu=1400',
    ].map((s) => parseDeviceSpec(s)!);
    const [a] = linkPair();
    const devices = await createDevices(specs, { links: { vpnkit: a } });
    try {
      assert.ok(devices[0] instanceof VirtioBlk);
      assert.ok(devices[0].disk.readOnly);
      assert.ok(devices[1] instanceof Virtio9p);
      assert.ok(devices[2] instanceof VirtioVsock);
      assert.ok(devices[3] instanceof VirtioRng);
      assert.ok(devices[4] instanceof VirtioNet);
      assert.equal(devices[4].readConfig(10, 2), 1400); // MTU in config space
      assert.equal(devices[4].readConfig(5, 1), 7); // last MAC byte
    } finally {
      closeDevices(devices);
    }
    await assert.rejects(createDevices([parseDeviceSpec('virtio-net')!]), /no in-process link/);
    await assert.rejects(
      createDevices([parseDeviceSpec(`virtio-blk,${join(tmp, 'missing.img')}`)!]),
      /cannot open/,
    );
  });
});
