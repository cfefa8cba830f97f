/**
 * Streaming age v1 encryption and decryption (c2sp.org/age): the header (age-header.ts) with
 * Node's X25519 and HKDF, the payload (age-payload.ts) with libsodium's ChaCha20-Poly1305, as the
 * bytes pass; encryption of larger objects on every core (age-seal-pool.ts). Memory stays bounded
 * whatever the object's size: a few batches of 1 MiB when encrypting, one chunk when decrypting.
 *
 * Decryption emits a chunk only after it authenticated, and fails the stream when the end is not a
 * valid final chunk, so truncated, reordered, extended or altered input always ends in an error.
 * As with any streaming decryption, a consumer must treat its output as complete only when the
 * stream finished without error (restores write to scratch space and commit after).
 */
import { randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { checkHeaderStart, encodeHeader, headerEnd, hkdf, parseHeader, unwrapFileKey, verifyHeaderMac } from './age-header.ts';
import type { AgeIdentity, AgeRecipient } from './age-keys.ts';
import { CHUNK_BYTES, PayloadOpener, SEALED_CHUNK_BYTES, sealBatchInPlace, TAG_BYTES } from './age-payload.ts';
import { BATCH_BYTES, BATCH_CHUNKS, sealPool } from './age-seal-pool.ts';
import { BackupError } from './errors.ts';
import { OrderedResults } from './ordered-results.ts';

export { CHUNK_BYTES } from './age-payload.ts';

const NONCE_BYTES = 16;

function payloadKey(fileKey: Buffer, nonce: Buffer): Buffer {
  return hkdf(fileKey, nonce, 'payload');
}

/** Runs a payload step that pushes its output, or fails the stream with its error. */
function step(callback: TransformCallback, run: () => void): void {
  try {
    run();
  } catch (err) {
    callback(err as Error);
    return;
  }
  callback();
}

/** Batches under way per worker: one being sealed, one waiting. */
const BATCHES_PER_WORKER = 2;
/**
 * Batches sealed on this thread before the pool is used: starting workers costs more than sealing
 * a few MiB (a WAL segment, compressed, usually stays below it, so `taskflow wal` starts none).
 */
const INLINE_BATCHES = 8;

/**
 * Encrypts a byte stream to one or more X25519 recipients, writing the age v1 binary format. The
 * plaintext is laid out in batches of chunks (age-seal-pool.ts) and sealed in place: the first
 * few on this thread, the rest in the seal pool, several batches at a time, the output always in
 * order. A batch is dispatched only once a byte after it has arrived, so the
 * last chunk, which the format flags, is always in the batch sealed at the end.
 */
export class AgeEncryptStream extends Transform {
  #header: Buffer | null;
  readonly #key: Buffer;
  readonly #pool = sealPool();
  readonly #sealed = new OrderedResults<Buffer>((out) => {
    if (!this.destroyed) this.push(out);
  });
  #batch: Buffer | null = null;
  #lengths: number[] = [];
  /** The counter of the current batch's first chunk. */
  #first = 0;

  constructor(recipients: AgeRecipient[]) {
    super();
    if (recipients.length === 0) throw new BackupError('age-key', 'age encryption needs at least one recipient');
    const fileKey = randomBytes(16);
    const streamNonce = randomBytes(NONCE_BYTES);
    this.#header = Buffer.concat([encodeHeader(fileKey, recipients), streamNonce]);
    this.#key = payloadKey(fileKey, streamNonce);
    fileKey.fill(0);
  }

  #start(): void {
    if (this.#header) this.push(this.#header);
    this.#header = null;
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#start();
    this.#take(data).then(() => {
      callback();
    }, callback);
  }

  override _flush(callback: TransformCallback): void {
    this.#start();
    const finish = async (): Promise<void> => {
      this.#batch ??= this.#newBatch();
      await this.#dispatch(true);
      await this.#sealed.drainTo(0);
      this.#key.fill(0);
    };
    finish().then(() => {
      callback();
    }, callback);
  }

  #newBatch(): Buffer {
    this.#lengths = [0];
    // Shared memory only when a worker will seal it; either way it goes on as the output.
    return this.#pool ? Buffer.from(new SharedArrayBuffer(BATCH_BYTES)) : Buffer.allocUnsafe(BATCH_BYTES);
  }

  /** Copies `data` into the batch, chunk by chunk, dispatching full batches once more follows. */
  async #take(data: Buffer): Promise<void> {
    let read = 0;
    while (read < data.length) {
      this.#batch ??= this.#newBatch();
      const last = this.#lengths.length - 1;
      if (this.#lengths[last] === CHUNK_BYTES) {
        if (this.#lengths.length === BATCH_CHUNKS) {
          await this.#dispatch(false);
          continue;
        }
        this.#lengths.push(0);
        continue;
      }
      const filled = this.#lengths[last] as number;
      const n = Math.min(CHUNK_BYTES - filled, data.length - read);
      data.copy(this.#batch, last * SEALED_CHUNK_BYTES + filled, read, read + n);
      this.#lengths[last] = filled + n;
      read += n;
    }
  }

  /** Seals the current batch (here or in the pool) and queues its output in order. */
  async #dispatch(final: boolean): Promise<void> {
    const bytes = this.#batch as Buffer;
    const lengths = this.#lengths;
    const first = this.#first;
    this.#batch = null;
    this.#first += lengths.length;
    const pool = first < INLINE_BATCHES * BATCH_CHUNKS ? null : this.#pool;
    await this.#sealed.drainTo(pool ? BATCHES_PER_WORKER * pool.size - 1 : 0);
    const done = this.#sealed.start();
    const out = bytes.subarray(0, (lengths.length - 1) * SEALED_CHUNK_BYTES + (lengths.at(-1) ?? 0) + TAG_BYTES);
    if (pool) {
      pool.seal({ key: this.#key, batch: bytes.buffer as SharedArrayBuffer, first, lengths, final }).then(
        () => {
          done(null, out);
        },
        (err: unknown) => {
          done(err as Error);
        },
      );
      return;
    }
    try {
      sealBatchInPlace(bytes, this.#key, { first, lengths, final });
      done(null, out);
    } catch (err) {
      done(err as Error);
    }
  }
}

/** Decrypts the age v1 binary format with X25519 identities. */
export class AgeDecryptStream extends Transform {
  readonly #identities: AgeIdentity[];
  #headerBytes: Buffer | null = Buffer.alloc(0);
  #fileKey: Buffer | null = null;
  #payloadStart = 0;
  #payload: PayloadOpener | null = null;
  #complete = false;
  readonly #emit = (out: Buffer): void => {
    this.push(out);
  };

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
    this.#payload = new PayloadOpener(key);
    key.fill(0);
    this.#fileKey.fill(0);
    this.#headerBytes = null;
    return pending.subarray(nonceEnd);
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    step(callback, () => {
      const payload = this.#payload ? data : this.#readHeader(data);
      if (payload && this.#payload) this.#payload.write(payload, this.#emit);
    });
  }

  override _flush(callback: TransformCallback): void {
    const payload = this.#payload;
    if (!payload) {
      const empty = this.#headerBytes?.length === 0;
      callback(new BackupError(empty ? 'age-format' : 'age-integrity', empty ? 'not an age file: the input is empty' : 'age file is truncated inside its header'));
      return;
    }
    step(callback, () => {
      payload.end(this.#emit);
      this.#complete = true;
    });
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
