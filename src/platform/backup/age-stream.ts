/**
 * Streaming age v1 encryption and decryption (c2sp.org/age) on Node's native crypto: the
 * payload is cut into 64 KiB chunks, each sealed with ChaCha20-Poly1305 under a nonce of an
 * 11-byte counter and a last-chunk flag (the STREAM construction). Memory use is one chunk,
 * whatever the size of the file.
 *
 * Decryption emits each chunk only after it authenticated, and fails the stream when the end is
 * not a valid final chunk, so truncated, reordered, extended or altered input always ends in an
 * error. As with any streaming decryption, a consumer must treat its output as complete only
 * when the stream finished without error (restores write to scratch space and commit after).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { checkHeaderStart, encodeHeader, headerEnd, hkdf, parseHeader, unwrapFileKey, verifyHeaderMac } from './age-header.ts';
import type { AgeIdentity, AgeRecipient } from './age-keys.ts';
import { BackupError } from './errors.ts';

export const CHUNK_BYTES = 64 * 1024;
const TAG_BYTES = 16;
const SEALED_CHUNK_BYTES = CHUNK_BYTES + TAG_BYTES;
const NONCE_BYTES = 16;

/** The 12-byte STREAM nonce: big-endian chunk counter in the first 11 bytes, last-chunk flag in the 12th. */
class ChunkNonce {
  readonly bytes = Buffer.alloc(12);
  /** How many chunks this nonce has numbered so far. */
  count = 0;

  next(last: boolean): Buffer {
    this.bytes[11] = last ? 1 : 0;
    return this.bytes;
  }

  advance(): void {
    this.count++;
    for (let i = 10; i >= 0; i--) {
      const value = ((this.bytes[i] as number) + 1) & 0xff;
      this.bytes[i] = value;
      if (value !== 0) return;
    }
    throw new BackupError('age-format', 'age payload: chunk counter overflow');
  }
}

function payloadKey(fileKey: Buffer, nonce: Buffer): Buffer {
  return hkdf(fileKey, nonce, 'payload');
}

/** Encrypts a byte stream to one or more X25519 recipients, writing the age v1 binary format. */
export class AgeEncryptStream extends Transform {
  readonly #header: Buffer;
  readonly #key: Buffer;
  readonly #nonce = new ChunkNonce();
  readonly #chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  #filled = 0;
  #started = false;

  constructor(recipients: AgeRecipient[]) {
    super();
    if (recipients.length === 0) throw new BackupError('age-key', 'age encryption needs at least one recipient');
    const fileKey = randomBytes(16);
    const streamNonce = randomBytes(NONCE_BYTES);
    this.#header = Buffer.concat([encodeHeader(fileKey, recipients), streamNonce]);
    this.#key = payloadKey(fileKey, streamNonce);
    fileKey.fill(0);
  }

  /** Seals one chunk and pushes ciphertext and tag (as two buffers: no copy to join them). */
  #seal(plain: Buffer, last: boolean): void {
    const cipher = createCipheriv('chacha20-poly1305', this.#key, this.#nonce.next(last), { authTagLength: TAG_BYTES });
    const sealed = cipher.update(plain);
    cipher.final();
    this.#nonce.advance();
    if (sealed.length > 0) this.push(sealed);
    this.push(cipher.getAuthTag());
  }

  #start(): void {
    if (this.#started) return;
    this.#started = true;
    this.push(this.#header);
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#start();
      let offset = 0;
      while (offset < data.length) {
        // A full chunk is sealed as non-final only once more data has arrived behind it.
        if (this.#filled === CHUNK_BYTES) {
          this.#seal(this.#chunk, false);
          this.#filled = 0;
        }
        // Whole chunks with more input behind them are sealed straight from the input, uncopied.
        if (this.#filled === 0 && data.length - offset > CHUNK_BYTES) {
          this.#seal(data.subarray(offset, offset + CHUNK_BYTES), false);
          offset += CHUNK_BYTES;
          continue;
        }
        const copied = data.copy(this.#chunk, this.#filled, offset, Math.min(data.length, offset + CHUNK_BYTES - this.#filled));
        this.#filled += copied;
        offset += copied;
      }
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.#start();
      // The final chunk: the rest (at most one chunk), or empty when the whole payload is.
      this.#seal(this.#chunk.subarray(0, this.#filled), true);
      this.#key.fill(0);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }
}

/** Decrypts the age v1 binary format with X25519 identities. */
export class AgeDecryptStream extends Transform {
  readonly #identities: AgeIdentity[];
  #headerBytes: Buffer | null = Buffer.alloc(0);
  #fileKey: Buffer | null = null;
  #payloadStart = 0;
  #key: Buffer | null = null;
  readonly #nonce = new ChunkNonce();
  readonly #chunk = Buffer.allocUnsafe(SEALED_CHUNK_BYTES);
  #filled = 0;
  #sawFinal = false;

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
    this.#key = payloadKey(this.#fileKey, pending.subarray(this.#payloadStart, nonceEnd));
    this.#fileKey.fill(0);
    this.#headerBytes = null;
    return pending.subarray(nonceEnd);
  }

  /** Opens one sealed chunk (ciphertext and tag) and returns its plaintext, only if it authenticates. */
  #open(sealed: Buffer, last: boolean): Buffer {
    if (sealed.length < TAG_BYTES) throw new BackupError('age-integrity', 'age payload is truncated: a chunk is shorter than its tag');
    const decipher = createDecipheriv('chacha20-poly1305', this.#key as Buffer, this.#nonce.next(last), { authTagLength: TAG_BYTES });
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
      decipher.final();
    } catch {
      throw new BackupError(
        'age-integrity',
        last
          ? `age payload does not authenticate at chunk ${this.#nonce.count}: the file is truncated or was altered`
          : `age payload does not authenticate at chunk ${this.#nonce.count}: the file was altered or its chunks reordered`,
      );
    }
    if (last && plain.length === 0 && this.#nonce.count > 0) {
      throw new BackupError('age-integrity', 'age payload ends in an empty final chunk, which the format forbids');
    }
    this.#nonce.advance();
    return plain;
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      let rest: Buffer | null = data;
      if (this.#headerBytes !== null) rest = this.#readHeader(data);
      if (rest === null) {
        callback();
        return;
      }
      let offset = 0;
      while (offset < rest.length) {
        if (this.#filled === SEALED_CHUNK_BYTES) {
          // More data follows this full chunk, so it cannot be the final one.
          this.push(this.#open(this.#chunk, false));
          this.#filled = 0;
        }
        if (this.#filled === 0 && rest.length - offset > SEALED_CHUNK_BYTES) {
          this.push(this.#open(rest.subarray(offset, offset + SEALED_CHUNK_BYTES), false));
          offset += SEALED_CHUNK_BYTES;
          continue;
        }
        const copied = rest.copy(this.#chunk, this.#filled, offset, Math.min(rest.length, offset + SEALED_CHUNK_BYTES - this.#filled));
        this.#filled += copied;
        offset += copied;
      }
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (this.#headerBytes !== null) {
        throw new BackupError(
          this.#headerBytes.length === 0 ? 'age-format' : 'age-integrity',
          this.#headerBytes.length === 0 ? 'not an age file: the input is empty' : 'age file is truncated inside its header',
        );
      }
      if (this.#filled === 0) throw new BackupError('age-integrity', 'age payload is truncated: it ends without a final chunk');
      const plain = this.#open(this.#chunk.subarray(0, this.#filled), true);
      this.#sawFinal = true;
      this.#key?.fill(0);
      callback(null, plain);
    } catch (err) {
      callback(err as Error);
    }
  }

  /** Whether the final chunk authenticated (true only after a successful end). */
  get complete(): boolean {
    return this.#sawFinal;
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
