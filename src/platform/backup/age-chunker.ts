/**
 * Cuts a byte stream into batches of whole chunks, for sealing (64 KiB plaintext chunks) and
 * opening (64 KiB + tag) alike. The payload's final chunk is sealed differently, and a stream
 * does not say it has ended until it has, so a full batch is handed out only once a byte beyond
 * it has arrived: the final chunk is always in the batch end() returns.
 */
import type { ChunkBatch } from './age-payload.ts';

export class Chunker {
  readonly #chunkBytes: number;
  readonly #batchBytes: number;
  readonly #capacity: number;
  #batch: Buffer | null = null;
  /** A batch buffer given back (its bytes were copied elsewhere), to fill again. */
  #spare: Buffer | null = null;
  #filled = 0;
  /** How many chunks went out in earlier batches. */
  #chunks = 0;

  /** `slackPerChunk`: room left behind each batch per chunk, for results larger than the input (tags). */
  constructor(chunkBytes: number, chunksPerBatch: number, slackPerChunk = 0) {
    this.#chunkBytes = chunkBytes;
    this.#batchBytes = chunkBytes * chunksPerBatch;
    this.#capacity = this.#batchBytes + slackPerChunk * chunksPerBatch;
  }

  /** Takes the next bytes of the stream; returns the batches they completed (none of them final). */
  write(data: Uint8Array): ChunkBatch[] {
    const out: ChunkBatch[] = [];
    for (let offset = 0; offset < data.length; ) {
      if (this.#filled === this.#batchBytes) out.push(this.#take(false));
      this.#batch ??= this.#newBuffer();
      const n = Math.min(data.length - offset, this.#batchBytes - this.#filled);
      this.#batch.set(data.subarray(offset, offset + n), this.#filled);
      this.#filled += n;
      offset += n;
    }
    return out;
  }

  /** The rest of the stream as the final batch: what is held back, possibly nothing. */
  end(): ChunkBatch {
    return this.#take(true);
  }

  /** Takes back the buffer of a batch whose bytes are no longer needed. */
  reuse(bytes: Uint8Array): void {
    if (bytes.byteOffset === 0 && bytes.buffer instanceof ArrayBuffer && bytes.buffer.byteLength === this.#capacity) this.#spare = Buffer.from(bytes.buffer);
  }

  /** A buffer of the batch's size plus slack, of its own (a batch worked on in place goes on as output). */
  #newBuffer(): Buffer {
    const spare = this.#spare;
    this.#spare = null;
    return spare ?? Buffer.allocUnsafeSlow(this.#capacity);
  }

  #take(final: boolean): ChunkBatch {
    const bytes = (this.#batch ?? this.#newBuffer()).subarray(0, this.#filled);
    const batch = { first: this.#chunks, bytes, final };
    this.#chunks += Math.ceil(this.#filled / this.#chunkBytes);
    this.#batch = null;
    this.#filled = 0;
    return batch;
  }
}
