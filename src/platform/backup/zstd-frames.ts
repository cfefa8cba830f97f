/**
 * zstd compression on every core: the input is cut into blocks of a few MiB, each compressed as
 * an independent zstd frame by Node's zlib in the libuv thread pool, several at a time, and the
 * frames are emitted in input order. Concatenated frames are one valid zstd stream (RFC 8878
 * §3.1): `zstd -d` and Node's own decompressor read them as one. Each frame carries its content
 * checksum. Memory stays bounded: the blocks in flight and their results, whatever the input.
 */
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { constants as zlib, zstdCompress } from 'node:zlib';
import { OrderedResults, settle } from './ordered-results.ts';

/** Input per frame: large enough that frames cost little ratio, small enough to keep cores busy. */
export const FRAME_BYTES = 4 * 1024 * 1024;
/** Output buffer per frame: most frames fit (pages compress 3-20x); an incompressible one takes a few passes. */
const OUTPUT_CHUNK_BYTES = 1024 * 1024;

export interface ZstdFramesOptions {
  level: number;
  /** Frames compressed at once; one more than the cores by default, at least 2. */
  concurrency?: number;
  /** Input bytes per frame (FRAME_BYTES by default). */
  frameBytes?: number;
}

export class ZstdFramesCompress extends Transform {
  readonly #level: number;
  readonly #concurrency: number;
  readonly #frameBytes: number;
  /** Blocks whose frames are done, to fill again: no fresh memory per frame. */
  readonly #spare: Buffer[] = [];
  #block: Buffer | null = null;
  #filled = 0;
  #started = 0;
  readonly #frames = new OrderedResults<Buffer>((frame) => {
    if (!this.destroyed) this.push(frame);
  });

  constructor(options: ZstdFramesOptions) {
    super();
    this.#level = options.level;
    this.#concurrency = options.concurrency ?? Math.max(2, availableParallelism() + 1);
    this.#frameBytes = options.frameBytes ?? FRAME_BYTES;
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    settle(callback, this.#take(data));
  }

  override _flush(callback: TransformCallback): void {
    const finish = async (): Promise<void> => {
      // The empty input is one empty frame, so the output is always a zstd stream.
      if (this.#filled > 0 || this.#started === 0) await this.#submit();
      await this.#frames.drainTo(0);
    };
    settle(callback, finish());
  }

  /** Copies `data` into blocks, starting a frame whenever one is full. */
  async #take(data: Buffer): Promise<void> {
    let read = 0;
    while (read < data.length) {
      this.#block ??= this.#spare.pop() ?? Buffer.allocUnsafeSlow(this.#frameBytes);
      const n = Math.min(this.#frameBytes - this.#filled, data.length - read);
      data.copy(this.#block, this.#filled, read, read + n);
      this.#filled += n;
      read += n;
      if (this.#filled === this.#frameBytes) await this.#submit();
    }
  }

  /** Starts compressing the current block as a frame, once fewer than `concurrency` are under way. */
  async #submit(): Promise<void> {
    await this.#frames.drainTo(this.#concurrency - 1);
    this.#started++;
    const block = this.#block ?? Buffer.alloc(0);
    const input = block.subarray(0, this.#filled);
    this.#block = null;
    this.#filled = 0;
    const done = this.#frames.start();
    zstdCompress(
      input,
      {
        // The size in the frame header tells the reader (zstd-frame-reader.ts) it may hold the frame whole.
        pledgedSrcSize: input.length,
        // Room for the whole frame in one output buffer: one pass in the thread pool, no concatenation.
        chunkSize: OUTPUT_CHUNK_BYTES,
        params: { [zlib.ZSTD_c_compressionLevel]: this.#level, [zlib.ZSTD_c_checksumFlag]: 1 },
      },
      (err, output) => {
        if (block.length === this.#frameBytes) this.#spare.push(block);
        done(err, output);
      },
    );
  }
}

export function createZstdFramesCompress(options: ZstdFramesOptions): ZstdFramesCompress {
  return new ZstdFramesCompress(options);
}
