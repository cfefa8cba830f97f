/**
 * Streaming age v1 encryption and decryption (c2sp.org/age) on Node's native crypto. The
 * payload's 64 KiB chunks (age-payload.ts) are cut into batches of 32 (age-chunker.ts) and
 * sealed or opened on this thread or, once an object is larger than a batch and the workers
 * are up, in a worker pool (age-worker-pool.ts), several batches at a time, their results
 * emitted in order. Memory stays bounded: a few batches per stream, whatever the object's size.
 *
 * Decryption emits a batch only after every chunk in it authenticated, and fails the stream when
 * the end is not a valid final chunk, so truncated, reordered, extended or altered input always
 * ends in an error. As with any streaming decryption, a consumer must treat its output as
 * complete only when the stream finished without error (restores write to scratch space and
 * commit after).
 */
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { Chunker } from './age-chunker.ts';
import { checkHeaderStart, encodeHeader, headerEnd, hkdf, parseHeader, unwrapFileKey, verifyHeaderMac } from './age-header.ts';
import type { AgeIdentity, AgeRecipient } from './age-keys.ts';
import {
  BATCH_CHUNKS,
  CHUNK_BYTES,
  inPlace,
  openBatch,
  openFailureError,
  resultBytes,
  SEALED_CHUNK_BYTES,
  sealBatch,
  TAG_BYTES,
  type ChunkBatch,
  type OpenFailure,
} from './age-payload.ts';
import { sharedAgePool, type BatchOp } from './age-worker-pool.ts';
import { BackupError } from './errors.ts';

export { BATCH_CHUNKS, CHUNK_BYTES } from './age-payload.ts';

const NONCE_BYTES = 16;

export interface AgeStreamOptions {
  /**
   * Where chunks are sealed or opened. `auto` (the default): on this thread until the object is
   * larger than one batch, then in the worker pool as soon as a worker is up, when the machine
   * has more than one core. `always`: every batch in the pool. `off`: on this thread.
   */
  workers?: 'auto' | 'always' | 'off';
}

interface QueuedBatch {
  done: boolean;
  outcome?: Buffer | OpenFailure;
  error?: Error;
}

/** What both directions share: chunking, batches run in order with bounded concurrency, results pushed. */
abstract class AgePayloadTransform extends Transform {
  readonly #op: BatchOp;
  readonly #chunker: Chunker;
  readonly #workers: 'auto' | 'always' | 'off';
  #rawKey: Buffer | null = null;
  #key: KeyObject | null = null;
  readonly #queue: QueuedBatch[] = [];
  #failure: Error | null = null;
  /** Wakes a writer waiting for a batch to finish. */
  #wake: (() => void) | null = null;

  protected constructor(op: BatchOp, options: AgeStreamOptions) {
    super();
    this.#op = op;
    // Sealed in place, a batch grows by a tag per chunk.
    this.#chunker = op === 'seal' ? new Chunker(CHUNK_BYTES, BATCH_CHUNKS, TAG_BYTES) : new Chunker(SEALED_CHUNK_BYTES, BATCH_CHUNKS);
    this.#workers = options.workers ?? (availableParallelism() > 1 ? 'auto' : 'off');
  }

  protected setPayloadKey(key: Buffer): void {
    this.#rawKey = key;
    this.#key = createSecretKey(key);
  }

  /** Takes payload bytes (after the header); resolves once there is room for more. */
  protected async writePayload(data: Uint8Array): Promise<void> {
    for (const batch of this.#chunker.write(data)) await this.#submit(batch);
  }

  /** Runs the final batch and waits for all of them. */
  protected async endPayload(): Promise<void> {
    const batch = this.#chunker.end();
    if (this.#op === 'open' && batch.bytes.length === 0) throw new BackupError('age-integrity', 'age payload is truncated: it ends without a final chunk');
    await this.#submit(batch);
    await this.#drainTo(0);
    this.#rawKey?.fill(0);
  }

  async #submit(batch: ChunkBatch): Promise<void> {
    await this.#drainTo(Infinity);
    const key = this.#key;
    const rawKey = this.#rawKey;
    if (!key || !rawKey) throw new Error('age payload before its key');
    const entry: QueuedBatch = { done: false };
    this.#queue.push(entry);
    const pool = sharedAgePool();
    // Objects of one batch never start the workers; larger ones use them once they are up.
    if (this.#workers === 'always' || (this.#workers === 'auto' && !(batch.first === 0 && batch.final))) pool.start();
    const inPool = this.#workers === 'always' || (this.#workers === 'auto' && pool.ready);
    if (inPool) {
      const { result } = await pool.dispatch(this.#op, rawKey, batch);
      // Copied into the pool's shared memory: the batch's buffer can take the next one.
      this.#chunker.reuse(batch.bytes);
      result.then(
        (outcome) => {
          entry.outcome = outcome;
          this.#settle(entry);
        },
        (err: unknown) => {
          entry.error = err as Error;
          this.#settle(entry);
        },
      );
    } else {
      try {
        // In the batch's own buffer, which then goes on as output.
        const out = inPlace(batch, resultBytes(this.#op, batch));
        entry.outcome = this.#op === 'seal' ? sealBatch(key, batch, out) : openBatch(key, batch, out);
      } catch (err) {
        entry.error = err as Error;
      }
      this.#settle(entry);
    }
    // Room for two batches per worker: each has one to work on and the next one waiting.
    await this.#drainTo(inPool ? 2 * pool.size : 0);
  }

  /** Pushes the results at the head of the queue that are done, in order, and stops at a failure. */
  #settle(entry: QueuedBatch): void {
    entry.done = true;
    while (this.#queue[0]?.done && this.#failure === null) {
      const head = this.#queue.shift() as QueuedBatch;
      const outcome = head.outcome;
      if (head.error || !outcome) this.#failure = head.error ?? new Error('age batch without an outcome');
      else if (!(outcome instanceof Uint8Array)) this.#failure = openFailureError(outcome);
      else if (outcome.length > 0 && !this.destroyed) this.push(outcome);
    }
    if (this.#failure) this.#queue.length = 0;
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** Waits until at most `pending` batches are under way; throws the first failure. */
  async #drainTo(pending: number): Promise<void> {
    for (;;) {
      const failure = this.#failure;
      if (failure) throw failure;
      if (this.#queue.length <= pending) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }
}

function payloadKey(fileKey: Buffer, nonce: Buffer): Buffer {
  return hkdf(fileKey, nonce, 'payload');
}

/** Encrypts a byte stream to one or more X25519 recipients, writing the age v1 binary format. */
export class AgeEncryptStream extends AgePayloadTransform {
  #header: Buffer | null;

  constructor(recipients: AgeRecipient[], options: AgeStreamOptions = {}) {
    super('seal', options);
    if (recipients.length === 0) throw new BackupError('age-key', 'age encryption needs at least one recipient');
    const fileKey = randomBytes(16);
    const streamNonce = randomBytes(NONCE_BYTES);
    this.#header = Buffer.concat([encodeHeader(fileKey, recipients), streamNonce]);
    this.setPayloadKey(payloadKey(fileKey, streamNonce));
    fileKey.fill(0);
  }

  #start(): void {
    if (this.#header) this.push(this.#header);
    this.#header = null;
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#start();
    this.writePayload(data).then(() => {
      callback();
    }, callback);
  }

  override _flush(callback: TransformCallback): void {
    this.#start();
    this.endPayload().then(() => {
      callback();
    }, callback);
  }
}

/** Decrypts the age v1 binary format with X25519 identities. */
export class AgeDecryptStream extends AgePayloadTransform {
  readonly #identities: AgeIdentity[];
  #headerBytes: Buffer | null = Buffer.alloc(0);
  #fileKey: Buffer | null = null;
  #payloadStart = 0;
  #complete = false;

  constructor(identities: AgeIdentity[], options: AgeStreamOptions = {}) {
    super('open', options);
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
    this.setPayloadKey(payloadKey(this.#fileKey, pending.subarray(this.#payloadStart, nonceEnd)));
    this.#fileKey.fill(0);
    this.#headerBytes = null;
    return pending.subarray(nonceEnd);
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let payload: Buffer | null = data;
    try {
      if (this.#headerBytes !== null) payload = this.#readHeader(data);
    } catch (err) {
      callback(err as Error);
      return;
    }
    if (payload === null) {
      callback();
      return;
    }
    this.writePayload(payload).then(() => {
      callback();
    }, callback);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#headerBytes !== null) {
      const empty = this.#headerBytes.length === 0;
      callback(new BackupError(empty ? 'age-format' : 'age-integrity', empty ? 'not an age file: the input is empty' : 'age file is truncated inside its header'));
      return;
    }
    this.endPayload().then(() => {
      this.#complete = true;
      callback();
    }, callback);
  }

  /** Whether the final chunk authenticated (true only after a successful end). */
  get complete(): boolean {
    return this.#complete;
  }
}

/** A Transform that encrypts to the recipients (age v1, binary). */
export function createAgeEncryptStream(recipients: AgeRecipient[], options: AgeStreamOptions = {}): AgeEncryptStream {
  return new AgeEncryptStream(recipients, options);
}

/** A Transform that decrypts age v1 (binary) with the identities; errors unless the whole file authenticates. */
export function createAgeDecryptStream(identities: AgeIdentity[], options: AgeStreamOptions = {}): AgeDecryptStream {
  return new AgeDecryptStream(identities, options);
}
