/**
 * The age v1 payload (c2sp.org/age, the STREAM construction): 64 KiB chunks, each sealed with
 * ChaCha20-Poly1305 under a 12-byte nonce of an 11-byte big-endian chunk counter and a last-chunk
 * flag. The cipher (age-cipher.ts: Node's OpenSSL through a small native module, or libsodium)
 * works straight on the batch's bytes, with no cipher object or output buffer per chunk, which is
 * what kept Node's own crypto API well below the age CLI's speed.
 *
 * Both directions work on batches of up to 16 chunks laid out so that the cipher runs in place
 * and the batch's memory then is the output, with no copy back:
 * - sealing: chunk i's plaintext at i × (64 KiB + 16); its tag lands in the 16 bytes after it, so
 *   the batch becomes the payload's next bytes;
 * - opening: chunk i's ciphertext at i × 64 KiB and its tag in a tag area after all 16 chunks, so
 *   the plaintexts end up side by side.
 * A batch is shared memory when a worker (age-seal-pool.ts) runs it, plain memory when the
 * stream's own thread does.
 */
import { chunkCipher, TAG_BYTES } from './age-cipher.ts';
import { BackupError } from './errors.ts';

export const CHUNK_BYTES = 64 * 1024;
export { TAG_BYTES };
export const SEALED_CHUNK_BYTES = CHUNK_BYTES + TAG_BYTES;
export const BATCH_CHUNKS = 16;
export const BATCH_BYTES = BATCH_CHUNKS * SEALED_CHUNK_BYTES;
/** Where an opening batch keeps its chunks' tags. */
const TAGS_AT = BATCH_CHUNKS * CHUNK_BYTES;
/** The counter is written in the nonce's last 6 counter bytes: 2^48 chunks of 64 KiB are 16 EiB. */
const MAX_CHUNKS = 2 ** 48;

/** Sealing plaintext into the payload, or opening the payload back into plaintext. */
export type PayloadOp = 'seal' | 'open';

/** A batch's place in the payload; `lengths` are its chunks' input bytes (plaintext when sealing, sealed bytes when opening). */
export interface BatchJob {
  op: PayloadOp;
  /** The counter of the batch's first chunk. */
  first: number;
  lengths: number[];
  /** Whether the batch's last chunk is the payload's final chunk. */
  final: boolean;
}

/** The nonce of chunk `counter`: 11 bytes of big-endian counter and the last-chunk flag. */
function writeNonce(nonce: Buffer, counter: number, last: boolean): Buffer {
  if (counter >= MAX_CHUNKS) throw new BackupError('age-format', 'age payload: chunk counter overflow');
  nonce.writeUIntBE(counter, 5, 6);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/**
 * Runs a batch in place: seals every chunk, or opens them up to the first that does not
 * authenticate. Returns the index of that chunk in the batch, or -1. Runs on a stream's thread or
 * in a worker (age-seal-worker.ts).
 */
export function runBatchInPlace(bytes: Buffer, key: Uint8Array, job: BatchJob): number {
  const cipher = chunkCipher();
  const nonce = Buffer.alloc(12);
  const { op, first, lengths, final } = job;
  for (const [i, length] of lengths.entries()) {
    writeNonce(nonce, first + i, final && i === lengths.length - 1);
    if (op === 'seal') {
      cipher.seal(bytes, i * SEALED_CHUNK_BYTES, length, key, nonce);
      continue;
    }
    if (!cipher.open(bytes, i * CHUNK_BYTES, length - TAG_BYTES, key, nonce, bytes, TAGS_AT + i * TAG_BYTES)) return i;
  }
  return -1;
}

/**
 * Copies `part` (not empty) into `target` at `at`. Buffer#fill with a value exactly as long as the
 * range is one memcpy; TypedArray#set and Buffer#copy into shared memory go through V8's
 * element-wise copy for SharedArrayBuffers, which measured four times slower.
 */
function copyInto(target: Buffer, part: Uint8Array, at: number): void {
  target.fill(part, at, at + part.length);
}

/**
 * A batch being filled from a stream's writes: its memory, laid out for its direction, and the
 * input bytes each chunk holds so far. A chunk is started only when a byte for it arrives, so a
 * full batch (or a full last chunk) is never known to be final until the stream ends.
 */
export class PayloadBatch {
  readonly op: PayloadOp;
  readonly first: number;
  readonly bytes: Buffer;
  readonly lengths: number[] = [0];
  readonly #capacity: number;

  /** `bytes`: BATCH_BYTES of memory (see batchMemory). */
  constructor(op: PayloadOp, first: number, bytes: Buffer) {
    if (bytes.length < BATCH_BYTES) throw new RangeError(`an age batch needs ${BATCH_BYTES} bytes, not ${bytes.length}`);
    this.op = op;
    this.first = first;
    this.bytes = bytes;
    this.#capacity = op === 'seal' ? CHUNK_BYTES : SEALED_CHUNK_BYTES;
  }

  /**
   * Copies input from `data[from..]` into place, chunk by chunk; returns how many bytes it took
   * (fewer than offered once every chunk of the batch is full).
   */
  fill(data: Uint8Array, from: number): number {
    let read = from;
    while (read < data.length) {
      let slot = this.lengths.length - 1;
      let held = this.lengths[slot] as number;
      if (held === this.#capacity) {
        if (this.lengths.length === BATCH_CHUNKS) break;
        this.lengths.push(0);
        slot++;
        held = 0;
      }
      const n = Math.min(this.#capacity - held, data.length - read);
      this.#place(data.subarray(read, read + n), slot, held);
      this.lengths[slot] = held + n;
      read += n;
    }
    return read - from;
  }

  #place(part: Uint8Array, slot: number, at: number): void {
    if (this.op === 'seal') {
      copyInto(this.bytes, part, slot * SEALED_CHUNK_BYTES + at);
      return;
    }
    const body = Math.max(0, Math.min(part.length, CHUNK_BYTES - at));
    if (body > 0) copyInto(this.bytes, part.subarray(0, body), slot * CHUNK_BYTES + at);
    if (body < part.length) copyInto(this.bytes, part.subarray(body), TAGS_AT + slot * TAG_BYTES + at + body - CHUNK_BYTES);
  }

  /**
   * Readies the final batch of an opening: the last chunk, shorter than a whole one, has its tag
   * in its last 16 bytes, which the layout put among the chunk's ciphertext; they move to its tag
   * slot. Returns why the last chunk cannot be opened, if it cannot.
   */
  settleFinalChunk(): 'shorter-than-tag' | 'empty-final' | null {
    const slot = this.lengths.length - 1;
    const length = this.lengths[slot] as number;
    if (length < TAG_BYTES) return 'shorter-than-tag';
    // Only the empty payload may end in an empty chunk.
    if (length === TAG_BYTES && this.first + slot > 0) return 'empty-final';
    if (length === SEALED_CHUNK_BYTES) return null;
    const tag = Buffer.alloc(TAG_BYTES);
    for (let k = 0; k < TAG_BYTES; k++) {
      const at = length - TAG_BYTES + k;
      tag[k] = this.bytes[at < CHUNK_BYTES ? slot * CHUNK_BYTES + at : TAGS_AT + slot * TAG_BYTES + at - CHUNK_BYTES] as number;
    }
    this.bytes.set(tag, TAGS_AT + slot * TAG_BYTES);
    return null;
  }

  /** How many output bytes the batch yields once run: the batch's memory from its start. */
  get outputBytes(): number {
    const last = this.lengths.length - 1;
    const held = this.lengths[last] as number;
    return this.op === 'seal' ? last * SEALED_CHUNK_BYTES + held + TAG_BYTES : last * CHUNK_BYTES + held - TAG_BYTES;
  }
}

/** New memory for a batch: shared when a worker thread will run it. */
export function batchMemory(shared: boolean): Buffer {
  return shared ? Buffer.from(new SharedArrayBuffer(BATCH_BYTES)) : Buffer.allocUnsafeSlow(BATCH_BYTES);
}

/** The error for a chunk of the payload that cannot be opened. */
export function openFailure(chunk: number, last: boolean, reason: 'altered' | 'shorter-than-tag' | 'empty-final'): BackupError {
  if (reason === 'shorter-than-tag') return new BackupError('age-integrity', 'age payload is truncated: a chunk is shorter than its tag');
  if (reason === 'empty-final') return new BackupError('age-integrity', 'age payload ends in an empty final chunk, which the format forbids');
  return new BackupError(
    'age-integrity',
    last
      ? `age payload does not authenticate at chunk ${chunk}: the file is truncated or was altered`
      : `age payload does not authenticate at chunk ${chunk}: the file was altered or its chunks reordered`,
  );
}
