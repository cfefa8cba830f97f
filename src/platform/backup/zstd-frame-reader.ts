/**
 * Decompression of a zstd stream of several frames (what zstd-frames.ts writes). Node's streaming
 * zstd decompressor stops at the end of the first frame, so the stream is cut into frames here by
 * reading the frame and block headers (RFC 8878 §3.1.1), and the frames are decompressed in the
 * libuv thread pool several at a time, their output emitted in order. A frame whose header does
 * not say it is small (a single-frame stream, as written before frames) is decompressed as a
 * stream instead, so memory stays bounded whatever the input. Skippable frames are skipped.
 */
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { once } from 'node:events';
import { createZstdDecompress, zstdDecompress, type ZstdDecompress } from 'node:zlib';
import { BackupError } from './errors.ts';
import { OrderedResults, settle } from './ordered-results.ts';

const ZSTD_MAGIC = 0xfd2fb528;
/** A frame whose header says it holds at most this much is held whole and decompressed in the pool. */
const HELD_OUTPUT_BYTES = 16 * 1024 * 1024;
/** Compressed bytes a held frame may take before it is decompressed as a stream after all. */
const HELD_FRAME_BYTES = HELD_OUTPUT_BYTES + 1024 * 1024;
const OUTPUT_CHUNK_BYTES = 256 * 1024;

function corrupt(message: string): BackupError {
  return new BackupError('checksum-mismatch', `zstd data is corrupt: ${message}`);
}

export class ZstdFramesDecompress extends Transform {
  readonly #concurrency = Math.max(2, availableParallelism() + 1);
  /** Bytes of the current frame still here, from frame offset #base on. */
  #parts: Buffer[] = [];
  #partsBytes = 0;
  #base = 0;
  /** Frame offset of the next header to read, and what it is; the frame's end once known. */
  #scanAt = 0;
  #next: 'magic' | 'block' | 'checksum' = 'magic';
  #checksumBytes = 0;
  #end: number | null = null;
  #skippable = false;
  /** Whether the current frame says it decompresses to little enough to be held whole. */
  #held = false;
  /** Set while the current frame is too large to hold and is decompressed as it arrives. */
  #streaming: ZstdDecompress | null = null;
  /** What the streaming decompressor failed with, thrown at the next step. */
  #streamFailure: Error | null = null;
  readonly #frames = new OrderedResults<Buffer>((output) => {
    if (!this.destroyed && output.length > 0) this.push(output);
  });

  override _transform(data: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    settle(callback, this.#take(data));
  }

  override _flush(callback: TransformCallback): void {
    const finish = async (): Promise<void> => {
      if (this.#streamFailure) throw this.#streamFailure;
      if (this.#base + this.#partsBytes > 0) throw corrupt('the stream ends inside a frame (truncated)');
      await this.#frames.drainTo(0);
    };
    settle(callback, finish());
  }

  async #take(data: Buffer): Promise<void> {
    if (this.#streamFailure) throw this.#streamFailure;
    this.#parts.push(data);
    this.#partsBytes += data.length;
    for (;;) {
      this.#end ??= this.#scan();
      if (this.#end === null || this.#base + this.#partsBytes < this.#end) break;
      await this.#frameDone(this.#end);
    }
    // Inside a frame: hand on (and let go of) what can go while it is read as a stream.
    const here = this.#base + this.#partsBytes;
    const scanned = this.#next !== 'magic';
    if (!this.#streaming && !this.#skippable && scanned && (!this.#held || this.#partsBytes > HELD_FRAME_BYTES)) {
      await this.#frames.drainTo(0);
      this.#streaming = createZstdDecompress({ chunkSize: OUTPUT_CHUNK_BYTES });
      this.#streaming.on('data', (chunk: Buffer) => this.push(chunk));
      this.#streaming.on('error', (err: Error) => {
        this.#streamFailure = corrupt(err.message);
      });
    }
    if (this.#streaming || this.#skippable) await this.#handOn(Math.min(here, this.#end ?? this.#scanAt));
  }

  /** Reads the headers that have arrived; returns where the current frame ends once that is known. */
  #scan(): number | null {
    for (;;) {
      const here = this.#base + this.#partsBytes;
      if (this.#next === 'magic') {
        if (here < 5) return null;
        const head = this.#peek(0, Math.min(here, 18));
        const magic = head.readUInt32LE(0);
        if ((magic & 0xfffffff0) === 0x184d2a50) {
          if (here < 8) return null;
          this.#skippable = true;
          return 8 + head.readUInt32LE(4);
        }
        if (magic !== ZSTD_MAGIC) throw corrupt('not a zstd frame');
        const descriptor = head[4] as number;
        if (descriptor & 0x08) throw corrupt('reserved bit set in a frame header');
        const singleSegment = (descriptor & 0x20) !== 0;
        const contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6] as number;
        const sizeAt = 5 + (singleSegment ? 0 : 1) + ([0, 1, 2, 4][descriptor & 0x03] as number);
        if (here < sizeAt + contentSizeBytes) return null;
        // The content size, when the header has it, says whether the frame can be held whole.
        let contentSize: number | null = null;
        if (contentSizeBytes === 1) contentSize = head.readUInt8(sizeAt);
        else if (contentSizeBytes === 2) contentSize = head.readUInt16LE(sizeAt) + 256;
        else if (contentSizeBytes === 4) contentSize = head.readUInt32LE(sizeAt);
        else if (contentSizeBytes === 8) contentSize = Number(head.readBigUInt64LE(sizeAt));
        this.#held = contentSize !== null && contentSize <= HELD_OUTPUT_BYTES;
        this.#checksumBytes = descriptor & 0x04 ? 4 : 0;
        this.#scanAt = sizeAt + contentSizeBytes;
        this.#next = 'block';
      } else if (this.#next === 'block') {
        if (here < this.#scanAt + 3) return null;
        const header = this.#peek(this.#scanAt, 3).readUIntLE(0, 3);
        const type = (header >> 1) & 0x03;
        if (type === 3) throw corrupt('reserved block type');
        this.#scanAt += 3 + (type === 1 ? 1 : header >>> 3);
        if (header & 0x01) this.#next = 'checksum';
      } else {
        return this.#scanAt + this.#checksumBytes;
      }
    }
  }

  /** `n` bytes from frame offset `at` (they are here), copied out. */
  #peek(at: number, n: number): Buffer {
    const out = Buffer.alloc(n);
    let skip = at - this.#base;
    let filled = 0;
    for (const part of this.#parts) {
      if (skip >= part.length) {
        skip -= part.length;
        continue;
      }
      filled += part.copy(out, filled, skip, Math.min(part.length, skip + n - filled));
      skip = 0;
      if (filled === n) break;
    }
    return out;
  }

  /** Hands the streaming decompressor (or nothing, for a skippable frame) the bytes before frame offset `upTo`, and drops them. */
  async #handOn(upTo: number): Promise<void> {
    while (this.#base < upTo && this.#parts.length > 0) {
      const part = this.#parts[0] as Buffer;
      const take = Math.min(part.length, upTo - this.#base);
      const streaming = this.#streaming;
      if (streaming && !streaming.write(part.subarray(0, take))) await once(streaming, 'drain').catch(() => undefined);
      if (this.#streamFailure) throw this.#streamFailure;
      if (take === part.length) this.#parts.shift();
      else this.#parts[0] = part.subarray(take);
      this.#partsBytes -= take;
      this.#base += take;
    }
  }

  /** The current frame, `end` bytes long, is all here: decompress it and start the next one. */
  async #frameDone(end: number): Promise<void> {
    if (this.#streaming || this.#skippable) {
      await this.#handOn(end);
      const streaming = this.#streaming;
      if (streaming) {
        const ended = once(streaming, 'end');
        streaming.end();
        await ended.catch(() => undefined);
        if (this.#streamFailure) throw this.#streamFailure;
      }
    } else {
      const all = this.#parts.length === 1 ? (this.#parts[0] as Buffer) : Buffer.concat(this.#parts, this.#partsBytes);
      await this.#decompressHeld(all.subarray(0, end - this.#base));
      this.#parts = [all.subarray(end - this.#base)];
      this.#partsBytes = all.length - (end - this.#base);
      this.#base = end;
    }
    // The rest belongs to the next frame, whose offsets start at 0.
    this.#parts = this.#parts.filter((part) => part.length > 0);
    this.#base = 0;
    this.#scanAt = 0;
    this.#next = 'magic';
    this.#end = null;
    this.#skippable = false;
    this.#held = false;
    this.#streaming = null;
  }

  async #decompressHeld(frame: Buffer): Promise<void> {
    await this.#frames.drainTo(this.#concurrency - 1);
    const done = this.#frames.start();
    zstdDecompress(frame, { chunkSize: OUTPUT_CHUNK_BYTES, maxOutputLength: HELD_OUTPUT_BYTES + 1 }, (err, output) => {
      done(err ? corrupt(err.message) : null, output);
    });
  }
}

export function createZstdFramesDecompress(): ZstdFramesDecompress {
  return new ZstdFramesDecompress();
}
