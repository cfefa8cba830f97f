/**
 * Streaming age v1 encryption and decryption (c2sp.org/age): the header (age-header.ts) with
 * Node's X25519 and HKDF, the payload (age-payload.ts) with ChaCha20-Poly1305 (age-cipher.ts), as the
 * bytes pass, in batches of 16 chunks run on every core, the output always in order: with the
 * `openssl` cipher on libuv's thread pool (native/age-aead.c), with `libsodium` the first few on
 * the stream's thread and the rest in worker threads (age-seal-pool.ts). Memory stays bounded
 * whatever the object's size: the batch being filled and a few under way, 1 MiB each.
 *
 * Decryption emits a chunk only after it authenticated, and fails the stream when the end is not a
 * valid final chunk, so truncated, reordered, extended or altered input always ends in an error.
 * As with any streaming decryption, a consumer must treat its output as complete only when the
 * stream finished without error (restores write to scratch space and commit after).
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { checkHeaderStart, encodeHeader, headerEnd, hkdf, parseHeader, unwrapFileKey, verifyHeaderMac } from './age-header.ts';
import type { AgeIdentity, AgeRecipient } from './age-keys.ts';
import { chunkCipher, type BatchRunner } from './age-cipher.ts';
import { BATCH_CHUNKS, batchMemory, openFailure, PayloadBatch, runBatchInPlace, type BatchJob, type PayloadOp } from './age-payload.ts';
import { payloadPool } from './age-seal-pool.ts';
import { BackupError } from './errors.ts';
import { OrderedResults, settle } from './ordered-results.ts';
import { batchHandled } from './young-gc.ts';

export { CHUNK_BYTES } from './age-payload.ts';

const NONCE_BYTES = 16;

function payloadKey(fileKey: Buffer, nonce: Buffer): Buffer {
  return hkdf(fileKey, nonce, 'payload');
}

/** Batches under way per worker: one being worked on, one waiting. */
const BATCHES_PER_WORKER = 2;
/**
 * Batches run on the stream's thread before the pool is used: starting workers costs more than
 * sealing a few MiB (a WAL segment, compressed, usually stays below it, so `taskflow wal` and the
 * restore of a segment start none).
 */
const INLINE_BATCHES = 8;
/**
 * Batches under way on libuv's thread pool (the `openssl` cipher's runner): one per core and one
 * more, leaving a thread of the pool (4 unless UV_THREADPOOL_SIZE says otherwise) for the file
 * reads and writes around the stream.
 */
const RUNNER_BATCHES = Math.max(1, Math.min(availableParallelism() + 1, threadPoolSize() - 1));

/** libuv's thread pool size as libuv reads it: UV_THREADPOOL_SIZE when it is a positive number, else 4. */
function threadPoolSize(): number {
  const given = Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? '', 10);
  return Number.isFinite(given) && given > 0 ? given : 4;
}

/**
 * One direction of the payload, batch by batch. A batch is run only once a byte after it has
 * arrived (or the stream ended), so the last chunk, which the format flags, is always in the batch
 * run at the end. Owns `key` and zeroes it at the end.
 */
class BatchedPayload {
  readonly #op: PayloadOp;
  readonly #key: Buffer;
  readonly #pool = payloadPool();
  /** The cipher's own batch runner, when it has one (chosen with the first batch). */
  #runner: BatchRunner | null | undefined;
  readonly #results: OrderedResults<Buffer>;
  #batch: PayloadBatch | null = null;
  /** The counter of the next batch's first chunk. */
  #next = 0;

  constructor(op: PayloadOp, key: Buffer, emit: (out: Buffer) => void) {
    this.#op = op;
    this.#key = key;
    this.#results = new OrderedResults(emit);
  }

  /** Takes the next input bytes (copied, so `data` may be reused once this resolves). */
  async write(data: Uint8Array): Promise<void> {
    let read = 0;
    while (read < data.length) {
      this.#batch ??= this.#newBatch();
      read += this.#batch.fill(data, read);
      if (read < data.length) await this.#dispatch(false);
    }
  }

  /** Runs the final batch and waits for every output to be handed on. */
  async end(): Promise<void> {
    this.#batch ??= this.#newBatch();
    await this.#dispatch(true);
    await this.#results.drainTo(0);
    this.#key.fill(0);
  }

  /**
   * The next batch. Shared memory when the runner or the pool will run it: V8 counts plain
   * ArrayBuffers as external memory and ran a full collection every 25–40 MiB of them (a third of
   * the CPU time of encrypting); shared memory is freed by the young-generation collections that
   * batchHandled runs.
   */
  #newBatch(): PayloadBatch {
    this.#runner ??= chunkCipher().batches ?? null;
    if (this.#runner) batchHandled();
    return new PayloadBatch(this.#op, this.#next, batchMemory(this.#runner !== null || this.#poolFor(this.#next) !== null));
  }

  #poolFor(first: number): ReturnType<typeof payloadPool> {
    return first < INLINE_BATCHES * BATCH_CHUNKS ? null : this.#pool;
  }

  /** Runs the current batch (here or in the pool) and queues its output in order. */
  async #dispatch(final: boolean): Promise<void> {
    const batch = this.#batch as PayloadBatch;
    this.#batch = null;
    const job: BatchJob = { op: this.#op, first: batch.first, lengths: batch.lengths, final };
    this.#next += job.lengths.length;
    const runner = this.#runner ?? null;
    const pool = runner ? null : this.#poolFor(job.first);
    await this.#results.drainTo(runner ? RUNNER_BATCHES - 1 : pool ? BATCHES_PER_WORKER * pool.size - 1 : 0);
    const done = this.#results.start();
    const unopenable = this.#op === 'open' && final ? batch.settleFinalChunk() : null;
    if (unopenable) {
      done(openFailure(job.first + job.lengths.length - 1, true, unopenable));
      return;
    }
    const finish = (failed: number): void => {
      if (failed < 0) done(null, batch.bytes.subarray(0, batch.outputBytes));
      else done(openFailure(job.first + failed, final && failed === job.lengths.length - 1, 'altered'));
    };
    if (runner) {
      runner.run(batch.bytes, this.#key, job.first, job.lengths, final, job.op === 'seal').then(finish, (err: unknown) => {
        done(err as Error);
      });
      return;
    }
    if (pool) {
      pool.run(job, this.#key, batch.bytes.buffer as SharedArrayBuffer).then(finish, (err: unknown) => {
        done(err as Error);
      });
      return;
    }
    try {
      finish(runBatchInPlace(batch.bytes, this.#key, job));
    } catch (err) {
      done(err as Error);
    }
  }
}

/**
 * A Transform whose output is pushed when batches finish, outside `_transform`. Node's Transform
 * holds back further input only when its readable side filled up during a `_transform` call, so
 * pushes that land between calls went unnoticed: with a stalled consumer and batches finishing
 * between writes, a decryption took 300 MiB into its readable buffer. Each write here therefore
 * waits, before it calls back, until the readable side has room again (the consumer read).
 */
class BatchedTransform extends Transform {
  #wake: (() => void) | null = null;

  /** Resolves once the readable side is below its high-water mark (or the stream is destroyed). */
  protected async room(): Promise<void> {
    while (!this.destroyed && this.readableLength >= this.readableHighWaterMark) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  override _read(size: number): void {
    this.#wakeUp();
    super._read(size);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#wakeUp();
    super._destroy(error, callback);
  }
}

/** Encrypts a byte stream to one or more X25519 recipients, writing the age v1 binary format. */
export class AgeEncryptStream extends BatchedTransform {
  #header: Buffer | null;
  readonly #payload: BatchedPayload;

  constructor(recipients: AgeRecipient[]) {
    super();
    if (recipients.length === 0) throw new BackupError('age-key', 'age encryption needs at least one recipient');
    const fileKey = randomBytes(16);
    const streamNonce = randomBytes(NONCE_BYTES);
    this.#header = Buffer.concat([encodeHeader(fileKey, recipients), streamNonce]);
    this.#payload = new BatchedPayload('seal', payloadKey(fileKey, streamNonce), (out) => {
      if (!this.destroyed) this.push(out);
    });
    fileKey.fill(0);
  }

  #start(): void {
    if (this.#header) this.push(this.#header);
    this.#header = null;
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#start();
    settle(callback, this.#payload.write(data).then(() => this.room()));
  }

  override _flush(callback: TransformCallback): void {
    this.#start();
    settle(callback, this.#payload.end());
  }
}

/** Decrypts the age v1 binary format with X25519 identities. */
export class AgeDecryptStream extends BatchedTransform {
  readonly #identities: AgeIdentity[];
  #headerBytes: Buffer | null = Buffer.alloc(0);
  #fileKey: Buffer | null = null;
  #payloadStart = 0;
  #payload: BatchedPayload | null = null;
  #complete = false;

  constructor(identities: AgeIdentity[]) {
    super();
    if (identities.length === 0) throw new BackupError('age-key', 'age decryption needs at least one identity');
    this.#identities = identities;
  }

  /** Collects the header, opens it, then the stream nonce; returns the data after them once the key is known. */
  #readHeader(data: Buffer): Buffer | null {
    const pending = Buffer.concat([this.#headerBytes ?? Buffer.alloc(0), data]);
    this.#headerBytes = pending;
    if (this.#fileKey === null) {
      checkHeaderStart(pending);
      const end = headerEnd(pending);
      if (end < 0) return null;
      const header = parseHeader(pending.subarray(0, end));
      const fileKey = unwrapFileKey(header, this.#identities);
      verifyHeaderMac(header, fileKey);
      this.#fileKey = fileKey;
      this.#payloadStart = end;
    }
    const nonceEnd = this.#payloadStart + NONCE_BYTES;
    if (pending.length < nonceEnd) return null;
    const key = payloadKey(this.#fileKey, pending.subarray(this.#payloadStart, nonceEnd));
    this.#payload = new BatchedPayload('open', key, (out) => {
      if (!this.destroyed) this.push(out);
    });
    this.#fileKey.fill(0);
    this.#headerBytes = null;
    return pending.subarray(nonceEnd);
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let payload: Buffer | null;
    try {
      payload = this.#payload ? data : this.#readHeader(data);
    } catch (err) {
      callback(err as Error);
      return;
    }
    if (payload && this.#payload) settle(callback, this.#payload.write(payload).then(() => this.room()));
    else callback();
  }

  override _flush(callback: TransformCallback): void {
    const payload = this.#payload;
    if (!payload) {
      const empty = this.#headerBytes?.length === 0;
      callback(new BackupError(empty ? 'age-format' : 'age-integrity', empty ? 'not an age file: the input is empty' : 'age file is truncated inside its header'));
      return;
    }
    settle(
      callback,
      payload.end().then(() => {
        this.#complete = true;
      }),
    );
  }

  /** Whether the final chunk authenticated (true only after a successful end). */
  get complete(): boolean {
    return this.#complete;
  }
}

/** A Transform that encrypts to the recipients (age v1, binary). */
export function createAgeEncryptStream(recipients: AgeRecipient[]): AgeEncryptStream {
  return new AgeEncryptStream(recipients);
}

/** A Transform that decrypts age v1 (binary) with the identities; errors unless the whole file authenticates. */
export function createAgeDecryptStream(identities: AgeIdentity[]): AgeDecryptStream {
  return new AgeDecryptStream(identities);
}
