import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Attr,
  type FsBackend,
  type FsNode,
  type FsOpenFile,
  type Message,
  NOFID,
  NONUNAME,
  NinePError,
  type Qid,
  decodeMessage,
  encodeMessage,
} from '@kitset/ninep';
import { GuestMemory } from '../src/machine/memory.js';
import { Virtio9p } from '../src/virtio/devices/ninep.js';
import { VirtioMmioTransport } from '../src/virtio/mmio.js';

const RAM = 0x8000_0000;
const QSIZE = 16;

function attrOf(qid: Qid, mode: number): Attr {
  return {
    qid,
    mode,
    uid: 0,
    gid: 0,
    nlink: 1,
    rdev: 0,
    size: 0,
    blksize: 4096,
    blocks: 0,
    atimeSec: 0,
    atimeNsec: 0,
    mtimeSec: 0,
    mtimeNsec: 0,
    ctimeSec: 0,
    ctimeNsec: 0,
  };
}

/** A tree that is not a host directory: one file whose reads block until flushed (like DataKit's head.live). */
class BlockingTree implements FsBackend {
  reads = 0;
  aborted = 0;
  async attach(): Promise<FsNode> {
    const fileQid: Qid = { type: 0, version: 0, path: 2n };
    const file: FsNode = {
      qid: fileQid,
      getattr: async () => attrOf(fileQid, 0o100444),
      open: async (): Promise<FsOpenFile> => ({
        read: (_offset, _count, ctx) =>
          new Promise<Uint8Array>((_resolve, reject) => {
            this.reads++;
            ctx.signal.addEventListener('abort', () => {
              this.aborted++;
              reject(ctx.signal.reason);
            });
          }),
        write: async () => {
          throw new NinePError(30);
        },
        readdir: async () => [],
        close: async () => {},
      }),
    };
    const rootQid: Qid = { type: 0x80, version: 0, path: 1n };
    return {
      qid: rootQid,
      getattr: async () => attrOf(rootQid, 0o040555),
      walk: async (name) => {
        if (name !== 'live') throw new NinePError(2);
        return file;
      },
    };
  }
}

test(
  'virtio-9p serves any FsBackend; a flushed request gets its buffers back empty after Rflush',
  { timeout: 20_000 },
  async () => {
    const backend = new BlockingTree();
    const device = new Virtio9p(backend, { tag: 'tree' });
    device.log = () => {};
    const mem = new GuestMemory(RAM, 1 << 20);
    const t = new VirtioMmioTransport(mem, { set() {} }, device);
    // config space: tag length then the tag
    assert.equal(t.read(0x100, 2), 4);
    assert.equal(
      String.fromCharCode(t.read(0x102, 1), t.read(0x103, 1), t.read(0x104, 1), t.read(0x105, 1)),
      'tree',
    );
    t.write(0x070, 4, 3);
    for (const sel of [0, 1]) {
      t.write(0x014, 4, sel);
      const f = t.read(0x010, 4) & (sel === 0 ? ~(1 << 29) : ~0);
      t.write(0x024, 4, sel);
      t.write(0x020, 4, f);
    }
    t.write(0x070, 4, 3 | 8);
    const desc = RAM;
    const avail = RAM + 0x1000;
    const used = RAM + 0x2000;
    t.write(0x030, 4, 0);
    t.write(0x038, 4, QSIZE);
    t.write(0x080, 4, desc);
    t.write(0x090, 4, avail);
    t.write(0x0a0, 4, used);
    t.write(0x044, 4, 1);
    t.write(0x070, 4, 3 | 8 | 4);

    let availIdx = 0;
    let nextHead = 0;
    let usedSeen = 0;
    const replyAt = new Map<number, number>();
    /** Posts one request as a two-descriptor chain (request, reply buffer); returns the head index. */
    const send = (msg: Message): number => {
      const bytes = encodeMessage(msg, '9P2000.L');
      const head = nextHead;
      nextHead = (nextHead + 2) % QSIZE;
      const reqAddr = RAM + 0x10000 + head * 0x2000;
      const repAddr = reqAddr + 0x1000;
      mem.write(reqAddr, bytes);
      mem.writeU64(desc + 16 * head, reqAddr);
      mem.writeU32(desc + 16 * head + 8, bytes.length);
      mem.writeU16(desc + 16 * head + 12, 1);
      mem.writeU16(desc + 16 * head + 14, head + 1);
      mem.writeU64(desc + 16 * (head + 1), repAddr);
      mem.writeU32(desc + 16 * (head + 1) + 8, 0x1000);
      mem.writeU16(desc + 16 * (head + 1) + 12, 2);
      mem.writeU16(avail + 4 + 2 * (availIdx % QSIZE), head);
      availIdx++;
      mem.writeU16(avail + 2, availIdx);
      replyAt.set(head, repAddr);
      t.write(0x050, 4, 0);
      return head;
    };
    /** Waits for used entries: [head, bytes written]. */
    const completions = async (n: number): Promise<[number, number][]> => {
      const out: [number, number][] = [];
      for (let i = 0; i < 200 && out.length < n; i++) {
        await new Promise((r) => setTimeout(r, 5));
        while (usedSeen !== mem.readU16(used + 2)) {
          const slot = used + 4 + 8 * (usedSeen % QSIZE);
          out.push([mem.readU32(slot), mem.readU32(slot + 4)]);
          usedSeen++;
        }
      }
      return out;
    };
    const reply = (head: number, len: number) =>
      decodeMessage(mem.slice(replyAt.get(head)!, len), '9P2000.L');
    const call = async (msg: Message): Promise<Message> => {
      const head = send(msg);
      const [c] = await completions(1);
      assert.ok(c, `no reply to ${msg.type}`);
      assert.equal(c[0], head);
      return reply(c[0], c[1]);
    };

    assert.equal(
      (await call({ type: 'Tversion', tag: 0xffff, msize: 8192, version: '9P2000.L' })).type,
      'Rversion',
    );
    assert.equal(
      (
        await call({
          type: 'Tattach',
          tag: 1,
          fid: 0,
          afid: NOFID,
          uname: 'root',
          aname: '',
          nUname: NONUNAME,
        })
      ).type,
      'Rattach',
    );
    assert.equal((await call({ type: 'Twalk', tag: 2, fid: 0, newfid: 1, names: ['live'] })).type, 'Rwalk');
    assert.equal((await call({ type: 'Tlopen', tag: 3, fid: 1, flags: 0 })).type, 'Rlopen');
    const readHead = send({ type: 'Tread', tag: 10, fid: 1, offset: 0, count: 100 });
    assert.deepEqual(await completions(1), [], 'the read blocks');
    assert.equal(device.inFlight, 1);
    const flushHead = send({ type: 'Tflush', tag: 11, oldtag: 10 });
    const done = await completions(2);
    const byHead = new Map(done);
    assert.equal(byHead.get(readHead), 0, 'the flushed read comes back with nothing written');
    assert.ok((byHead.get(flushHead) ?? 0) > 0);
    assert.equal(reply(flushHead, byHead.get(flushHead)!).type, 'Rflush');
    assert.equal(backend.aborted, 1);
    assert.equal(device.inFlight, 0);
    assert.equal((await call({ type: 'Tclunk', tag: 12, fid: 1 })).type, 'Rclunk');
    assert.equal(t.failure, undefined);
    t.write(0x070, 4, 0);
  },
);
