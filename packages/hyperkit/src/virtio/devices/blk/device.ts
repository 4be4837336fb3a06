import type { DescriptorChain } from '../../queue.js';
import { DeviceBase, DeviceId, gather, totalLength, views } from '../common.js';
import { DiskError, type DiskImage } from './disk.js';
import {
  BlkFeature,
  BlkRequestType,
  BlkStatus,
  HEADER_SIZE,
  ID_BYTES,
  SECTOR_SIZE,
  SEGMENT_SIZE,
  decodeHeader,
  decodeSegments,
  encodeConfig,
} from './request.js';

const QUEUE_SIZE = 128;
const MAX_SEGMENTS = QUEUE_SIZE - 2;
/** Sectors per discard / write-zeroes segment we accept (32 MiB). */
const MAX_RANGE_SECTORS = 65536;
const MAX_RANGE_SEGMENTS = 16;

export interface VirtioBlkOptions {
  /** Serial number reported by GET_ID (up to 20 bytes). */
  serial?: string;
}

/**
 * virtio-blk over a DiskImage (raw or qcow2). Requests complete synchronously: the VM is single-threaded
 * and the image I/O is local. Image errors become an I/O error status for that request; malformed chains
 * mark the device as needing reset.
 */
export class VirtioBlk extends DeviceBase {
  readonly deviceId = DeviceId.BLOCK;
  readonly features: bigint;
  readonly queueMaxSizes = [QUEUE_SIZE];
  private readonly config: Uint8Array;
  private readonly serial: Uint8Array;
  private readonly statusByte = new Uint8Array(1);
  private readonly headerBytes = new Uint8Array(HEADER_SIZE);
  /** Requests completed with an I/O error (tests and logs). */
  ioErrors = 0;
  lastIoError: string | undefined;

  constructor(
    readonly disk: DiskImage,
    options: VirtioBlkOptions = {},
  ) {
    super();
    let f =
      (1n << BigInt(BlkFeature.SEG_MAX)) |
      (1n << BigInt(BlkFeature.BLK_SIZE)) |
      (1n << BigInt(BlkFeature.FLUSH));
    if (disk.readOnly) f |= 1n << BigInt(BlkFeature.RO);
    else f |= (1n << BigInt(BlkFeature.DISCARD)) | (1n << BigInt(BlkFeature.WRITE_ZEROES));
    this.features = f;
    this.config = encodeConfig({
      capacitySectors: Math.floor(disk.size / SECTOR_SIZE),
      segMax: MAX_SEGMENTS,
      blockSize: SECTOR_SIZE,
      maxDiscardSectors: MAX_RANGE_SECTORS,
      maxDiscardSegments: MAX_RANGE_SEGMENTS,
      maxWriteZeroesSectors: MAX_RANGE_SECTORS,
      maxWriteZeroesSegments: MAX_RANGE_SEGMENTS,
    });
    this.serial = new TextEncoder().encode((options.serial ?? 'kitset-blk').slice(0, ID_BYTES));
  }

  override readConfig(offset: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (this.config[offset + i] ?? 0);
    return v >>> 0;
  }

  queueNotify(index: number): void {
    const ctx = this.ctx;
    if (!ctx || index !== 0) return;
    const q = ctx.queues[0]!;
    let used = false;
    for (let chain = q.pop(); chain; chain = q.pop()) {
      const written = this.handle(chain);
      if (written < 0) return; // device marked broken
      q.pushUsed(chain.head, written);
      used = true;
    }
    if (used) ctx.notifyUsed(0);
  }

  /** Processes one request; returns bytes written to the chain, or -1 after marking the device broken. */
  private handle(chain: DescriptorChain): number {
    const mem = this.ctx!.memory;
    const readableLen = totalLength(chain.readable);
    const writableLen = totalLength(chain.writable);
    if (readableLen < HEADER_SIZE || writableLen < 1) {
      this.fail(
        `block request without a header or status byte (${readableLen} readable, ${writableLen} writable)`,
      );
      return -1;
    }
    gather(mem, chain.readable, 0, this.headerBytes);
    const header = decodeHeader(this.headerBytes);
    const last = chain.writable[chain.writable.length - 1]!;
    const statusAddr = last.addr + last.len - 1;
    const dataIn = writableLen - 1;
    const dataOut = readableLen - HEADER_SIZE;
    let status: number = BlkStatus.OK;
    let written = 1;
    try {
      switch (header.type) {
        case BlkRequestType.IN: {
          this.checkRange(header.sector, dataIn);
          let pos = header.sector * SECTOR_SIZE;
          for (const v of views(mem, chain.writable, 0, dataIn)) {
            this.disk.read(pos, v);
            pos += v.length;
          }
          written += dataIn;
          break;
        }
        case BlkRequestType.OUT: {
          if (this.disk.readOnly) {
            status = BlkStatus.IOERR;
            break;
          }
          this.checkRange(header.sector, dataOut);
          let pos = header.sector * SECTOR_SIZE;
          for (const v of views(mem, chain.readable, HEADER_SIZE, dataOut)) {
            this.disk.write(pos, v);
            pos += v.length;
          }
          break;
        }
        case BlkRequestType.FLUSH:
          this.disk.flush();
          break;
        case BlkRequestType.GET_ID: {
          const id = new Uint8Array(Math.min(ID_BYTES, dataIn));
          id.set(this.serial.subarray(0, id.length));
          let off = 0;
          for (const v of views(mem, chain.writable, 0, id.length)) {
            v.set(id.subarray(off, off + v.length));
            off += v.length;
          }
          written += id.length;
          break;
        }
        case BlkRequestType.DISCARD:
        case BlkRequestType.WRITE_ZEROES: {
          if (this.disk.readOnly) {
            status = BlkStatus.IOERR;
            break;
          }
          if (dataOut % SEGMENT_SIZE !== 0 || dataOut / SEGMENT_SIZE > MAX_RANGE_SEGMENTS) {
            status = BlkStatus.UNSUPP;
            break;
          }
          const raw = new Uint8Array(dataOut);
          gather(mem, chain.readable, HEADER_SIZE, raw);
          for (const seg of decodeSegments(raw)) {
            if (seg.sectors > MAX_RANGE_SECTORS) throw new DiskError('range larger than advertised');
            this.checkRange(seg.sector, seg.sectors * SECTOR_SIZE);
            if (header.type === BlkRequestType.DISCARD) {
              this.disk.discard(seg.sector * SECTOR_SIZE, seg.sectors * SECTOR_SIZE);
            } else
              this.disk.writeZeroes(
                seg.sector * SECTOR_SIZE,
                seg.sectors * SECTOR_SIZE,
                (seg.flags & 1) !== 0,
              );
          }
          break;
        }
        default:
          status = BlkStatus.UNSUPP;
      }
    } catch (e) {
      if (!(e instanceof DiskError) && !isNodeIoError(e)) throw e;
      status = BlkStatus.IOERR;
      this.ioErrors++;
      this.lastIoError = e instanceof Error ? e.message : String(e);
    }
    this.statusByte[0] = status;
    mem.write(statusAddr, this.statusByte);
    return written;
  }

  private checkRange(sector: number, bytes: number): void {
    if (bytes % SECTOR_SIZE !== 0) throw new DiskError(`transfer of ${bytes} bytes is not whole sectors`);
    if (!(sector * SECTOR_SIZE + bytes <= this.disk.size)) {
      throw new DiskError(`sectors ${sector}+${bytes / SECTOR_SIZE} beyond the disk`);
    }
  }

  /** Closes the image (after the VM stopped). */
  close(): void {
    this.disk.close();
  }
}

function isNodeIoError(e: unknown): boolean {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && 'syscall' in e;
}
