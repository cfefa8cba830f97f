/** A pass-through stream that counts bytes and, optionally, hashes them with SHA-256 on the way. */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export class StreamMeter extends Transform {
  bytes = 0;
  readonly #hash: Hash | null;
  readonly #atEnd: ((meter: StreamMeter) => void) | undefined;
  #digest: string | null = null;

  /** `atEnd` runs once all bytes passed and may throw to fail the stream before it ends. */
  constructor(options: { hash?: boolean; atEnd?: (meter: StreamMeter) => void } = {}) {
    super();
    this.#hash = options.hash ? createHash('sha256') : null;
    this.#atEnd = options.atEnd;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.#hash?.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.#atEnd?.(this);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  /** The SHA-256 (hex) of everything that passed; only once the input ended, and only with `hash`. */
  sha256(): string {
    if (!this.#hash) throw new Error('this meter does not hash');
    this.#digest ??= this.#hash.digest('hex');
    return this.#digest;
  }
}
