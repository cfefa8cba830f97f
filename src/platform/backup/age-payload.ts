/**
 * The age v1 payload (c2sp.org/age, the STREAM construction): 64 KiB chunks, each sealed with
 * ChaCha20-Poly1305 under a 12-byte nonce of an 11-byte big-endian chunk counter and a last-chunk
 * flag. Chunks are independent given their counter, so a run of them (a batch) can be sealed or
 * opened anywhere: here on the stream's thread, or in a worker (age-worker.ts).
 */
import { createCipheriv, createDecipheriv, type KeyObject } from 'node:crypto';
import { BackupError } from './errors.ts';

export const CHUNK_BYTES = 64 * 1024;
export const TAG_BYTES = 16;
export const SEALED_CHUNK_BYTES = CHUNK_BYTES + TAG_BYTES;
/** Chunks per batch (2 MiB): few messages and pushes per object, little memory per stream. */
export const BATCH_CHUNKS = 32;
/** The counter is written in the nonce's last 6 counter bytes: 2^48 chunks of 64 KiB are 16 EiB. */
const MAX_CHUNKS = 2 ** 48;

/** A run of consecutive chunks of one payload: plaintext to seal, or ciphertext to open. */
export interface ChunkBatch {
  /** The counter of its first chunk (how many chunks of the payload precede it). */
  first: number;
  /** Whole chunks back to back; only the payload's final chunk may be shorter. */
  bytes: Uint8Array;
  /** Whether its last chunk is the payload's final chunk. */
  final: boolean;
}

/** Why a batch did not open: which chunk, and how. */
export interface OpenFailure {
  chunk: number;
  last: boolean;
  reason: 'altered' | 'shorter-than-tag' | 'empty-final';
}

/** One nonce buffer, rewritten per chunk: the cipher takes its own copy of the IV when it is made. */
const nonce = Buffer.alloc(12);

function nonceFor(counter: number, last: boolean): Buffer {
  if (counter >= MAX_CHUNKS) throw new BackupError('age-format', 'age payload: chunk counter overflow');
  nonce.writeUIntBE(counter, 5, 6);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** Where each chunk of a batch starts, for chunks of `size` bytes (a final batch may end short or be empty). */
function chunkStarts(batch: ChunkBatch, size: number): number[] {
  const length = batch.bytes.length;
  if (!batch.final && length % size !== 0) throw new Error(`a batch that is not final must hold whole chunks of ${size} bytes`);
  const starts: number[] = [];
  for (let start = 0; start < length; start += size) starts.push(start);
  // The empty payload is one empty final chunk.
  if (starts.length === 0 && batch.final) starts.push(0);
  return starts;
}

/** The bytes a batch's result takes: a tag more per chunk when sealed, a tag less when opened. */
export function resultBytes(op: 'seal' | 'open', batch: ChunkBatch): number {
  if (op === 'seal') return batch.bytes.length + chunkStarts(batch, CHUNK_BYTES).length * TAG_BYTES;
  return Math.max(0, batch.bytes.length - chunkStarts(batch, SEALED_CHUNK_BYTES).length * TAG_BYTES);
}

/** The whole buffer behind a batch's bytes from their start, `needed` long: to work on it in place. */
export function inPlace(batch: ChunkBatch, needed: number): Buffer {
  const { buffer, byteOffset } = batch.bytes;
  if (buffer.byteLength - byteOffset < needed) throw new Error(`a batch needs ${needed} bytes of room to be worked on in place`);
  return Buffer.from(buffer, byteOffset, needed);
}

/**
 * Seals a batch of plaintext chunks into `out` (resultBytes long): ciphertext and tag of chunk i
 * where chunk i started plus 16 bytes per chunk before it. `out` may be the batch's own buffer
 * (inPlace): working from the last chunk back, no chunk is overwritten before it was read.
 */
export function sealBatch(key: KeyObject, batch: ChunkBatch, out: Buffer): Buffer {
  const starts = chunkStarts(batch, CHUNK_BYTES);
  for (let i = starts.length - 1; i >= 0; i--) {
    const start = starts[i] as number;
    const cipher = createCipheriv('chacha20-poly1305', key, nonceFor(batch.first + i, batch.final && i === starts.length - 1), { authTagLength: TAG_BYTES });
    const sealed = cipher.update(batch.bytes.subarray(start, start + CHUNK_BYTES));
    cipher.final();
    const at = start + i * TAG_BYTES;
    out.set(sealed, at);
    out.set(cipher.getAuthTag(), at + sealed.length);
  }
  return out;
}

/**
 * Opens a batch of sealed chunks into `out` (resultBytes long; it may be the batch's own buffer,
 * worked front to back), returning the plaintext only if every chunk authenticates (so nothing
 * unauthenticated is ever emitted), or which chunk failed and why.
 */
export function openBatch(key: KeyObject, batch: ChunkBatch, out: Buffer): Buffer | OpenFailure {
  const starts = chunkStarts(batch, SEALED_CHUNK_BYTES);
  let at = 0;
  for (const [i, start] of starts.entries()) {
    const chunk = batch.first + i;
    const last = batch.final && i === starts.length - 1;
    const sealed = batch.bytes.subarray(start, start + SEALED_CHUNK_BYTES);
    if (sealed.length < TAG_BYTES) return { chunk, last, reason: 'shorter-than-tag' };
    const decipher = createDecipheriv('chacha20-poly1305', key, nonceFor(chunk, last), { authTagLength: TAG_BYTES });
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
      decipher.final();
    } catch {
      return { chunk, last, reason: 'altered' };
    }
    if (last && plain.length === 0 && chunk > 0) return { chunk, last, reason: 'empty-final' };
    out.set(plain, at);
    at += plain.length;
  }
  return out;
}

/** The error for a batch that did not open, worded for what most likely happened. */
export function openFailureError(failure: OpenFailure): BackupError {
  if (failure.reason === 'shorter-than-tag') return new BackupError('age-integrity', 'age payload is truncated: a chunk is shorter than its tag');
  if (failure.reason === 'empty-final') return new BackupError('age-integrity', 'age payload ends in an empty final chunk, which the format forbids');
  return new BackupError(
    'age-integrity',
    failure.last
      ? `age payload does not authenticate at chunk ${failure.chunk}: the file is truncated or was altered`
      : `age payload does not authenticate at chunk ${failure.chunk}: the file was altered or its chunks reordered`,
  );
}
