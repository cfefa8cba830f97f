/**
 * The age v1 payload (c2sp.org/age, the STREAM construction): 64 KiB chunks, each sealed with
 * ChaCha20-Poly1305 under a 12-byte nonce of an 11-byte big-endian chunk counter and a last-chunk
 * flag. The cipher is libsodium's (sodium-native): it works straight on the caller's bytes, with
 * no cipher object per chunk, which is what kept Node's own ChaCha20-Poly1305 well below the age
 * CLI's speed. Sealing works on batches laid out in place (sealBatchInPlace); opening holds one
 * whole chunk back until it is known whether it is the last, and emits a chunk's plaintext only
 * after it authenticated.
 */
import sodiumNative from 'sodium-native';
import { BackupError } from './errors.ts';

export const CHUNK_BYTES = 64 * 1024;
export const TAG_BYTES = 16;
export const SEALED_CHUNK_BYTES = CHUNK_BYTES + TAG_BYTES;
/** The counter is written in the nonce's last 6 counter bytes: 2^48 chunks of 64 KiB are 16 EiB. */
const MAX_CHUNKS = 2 ** 48;

/** The two libsodium calls used (@types/sodium-native lists only the XChaCha variants). */
interface Aead {
  crypto_aead_chacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: null, nsec: null, npub: Uint8Array, k: Uint8Array): number;
  crypto_aead_chacha20poly1305_ietf_decrypt(m: Uint8Array, nsec: null, c: Uint8Array, ad: null, npub: Uint8Array, k: Uint8Array): number;
}
const sodium = sodiumNative as unknown as Aead;

/** The nonce of chunk `counter`: 11 bytes of big-endian counter and the last-chunk flag. */
function writeNonce(nonce: Buffer, counter: number, last: boolean): Buffer {
  if (counter >= MAX_CHUNKS) throw new BackupError('age-format', 'age payload: chunk counter overflow');
  nonce.writeUIntBE(counter, 5, 6);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/**
 * Seals a batch of chunks where they lie: chunk i's plaintext (`lengths[i]` bytes, all 64 KiB but
 * possibly the last) at i × (64 KiB + 16) in `bytes`, its tag then written in the 16 bytes after
 * it, so the batch becomes the payload's next bytes with no copy. Runs on a stream's thread or in
 * a worker (age-seal-worker.ts).
 */
export function sealBatchInPlace(bytes: Buffer, key: Uint8Array, batch: { first: number; lengths: number[]; final: boolean }): void {
  const nonce = Buffer.alloc(12);
  const { first, lengths, final } = batch;
  for (const [i, length] of lengths.entries()) {
    const at = i * SEALED_CHUNK_BYTES;
    // libsodium allows the ciphertext to start where the plaintext does.
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(bytes.subarray(at, at + length + TAG_BYTES), bytes.subarray(at, at + length), null, null, writeNonce(nonce, first + i, final && i === lengths.length - 1), key);
  }
}

/** One direction of the payload: chunks in, chunks out, the counter and the held-back chunk. */
abstract class PayloadCipher {
  readonly #key: Buffer;
  readonly #nonce = Buffer.alloc(12);
  readonly #inBytes: number;
  readonly #outBytes: number;
  /** The bytes of the chunk not yet known to be last (at most one whole input chunk). */
  readonly #held: Buffer;
  #heldBytes = 0;
  #counter = 0;
  #ended = false;

  protected constructor(key: Buffer, inBytes: number, outBytes: number) {
    if (key.length !== 32) throw new Error('the age payload key is 32 bytes');
    this.#key = Buffer.from(key);
    this.#inBytes = inBytes;
    this.#outBytes = outBytes;
    this.#held = Buffer.alloc(inBytes);
  }

  /** Seals or opens one chunk into `out` (exactly its output size); false if it did not authenticate. */
  protected abstract apply(out: Buffer, input: Uint8Array, nonce: Buffer, key: Buffer): boolean;
  /** The error for a chunk that did not authenticate. */
  protected abstract failure(chunk: number, last: boolean, reason: 'altered' | 'shorter-than-tag' | 'empty-final'): Error;

  #nonceFor(last: boolean): Buffer {
    return writeNonce(this.#nonce, this.#counter, last);
  }

  /**
   * Seals or opens one chunk into a buffer of its own. Chunk-sized buffers (under glibc's mmap
   * threshold) come from memory malloc reuses; a buffer per write of a MiB or more would be fresh
   * pages from the kernel each time, which costs more than the cipher.
   */
  #one(input: Uint8Array, last: boolean): Buffer {
    const size = input.length - this.#inBytes + this.#outBytes;
    if (size < 0) throw this.failure(this.#counter, last, 'shorter-than-tag');
    const out = Buffer.allocUnsafe(size);
    if (!this.apply(out, input, this.#nonceFor(last), this.#key)) throw this.failure(this.#counter, last, 'altered');
    // Only the empty payload may end in an empty chunk.
    if (last && size === 0 && this.#counter > 0) throw this.failure(this.#counter, last, 'empty-final');
    this.#counter++;
    return out;
  }

  /**
   * Takes the next bytes of the payload and hands `emit` the output of every chunk now known not
   * to be the last, in order. Whole chunks are worked on where they lie in `data`, so only the
   * held-back chunk is ever copied; `data` may be reused as soon as this returns.
   */
  write(data: Uint8Array, emit: (out: Buffer) => void): void {
    if (this.#ended) throw new Error('age payload written after its end');
    const inBytes = this.#inBytes;
    let read = 0;
    if (this.#heldBytes > 0) {
      read = Math.min(inBytes - this.#heldBytes, data.length);
      this.#held.set(data.subarray(0, read), this.#heldBytes);
      this.#heldBytes += read;
      if (this.#heldBytes < inBytes || read === data.length) return;
      emit(this.#one(this.#held, false));
      this.#heldBytes = 0;
    }
    // A chunk is known not to be last only if at least one byte follows it.
    while (data.length - read > inBytes) {
      emit(this.#one(data.subarray(read, read + inBytes), false));
      read += inBytes;
    }
    this.#held.set(data.subarray(read), 0);
    this.#heldBytes = data.length - read;
  }

  /** Ends the payload: the held chunk is the last (the empty payload is one empty chunk). */
  end(emit: (out: Buffer) => void): void {
    if (this.#ended) throw new Error('age payload ended twice');
    this.#ended = true;
    const out = this.#one(this.#held.subarray(0, this.#heldBytes), true);
    this.#key.fill(0);
    if (out.length > 0) emit(out);
  }
}

/** Opens age payload chunks, failing at the first one that does not authenticate. */
export class PayloadOpener extends PayloadCipher {
  constructor(key: Buffer) {
    super(key, SEALED_CHUNK_BYTES, CHUNK_BYTES);
  }

  protected apply(out: Buffer, input: Uint8Array, nonce: Buffer, key: Buffer): boolean {
    try {
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(out, null, input, null, nonce, key);
      return true;
    } catch {
      return false;
    }
  }

  protected failure(chunk: number, last: boolean, reason: 'altered' | 'shorter-than-tag' | 'empty-final'): Error {
    if (reason === 'shorter-than-tag') return new BackupError('age-integrity', 'age payload is truncated: a chunk is shorter than its tag');
    if (reason === 'empty-final') return new BackupError('age-integrity', 'age payload ends in an empty final chunk, which the format forbids');
    return new BackupError(
      'age-integrity',
      last
        ? `age payload does not authenticate at chunk ${chunk}: the file is truncated or was altered`
        : `age payload does not authenticate at chunk ${chunk}: the file was altered or its chunks reordered`,
    );
  }
}
