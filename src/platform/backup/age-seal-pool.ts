/**
 * Worker threads that seal batches of age payload chunks side by side: one thread's
 * ChaCha20-Poly1305 (libsodium) is a little slower than the `age` CLI's, so an object larger than
 * one batch is sealed on every core. A batch is a SharedArrayBuffer holding up to 16 chunks at a
 * stride of 64 KiB + 16: the stream's thread copies the plaintext in, a worker seals each chunk in
 * place (its tag lands in the 16 bytes after it) and the same memory goes on as the output, so
 * no bytes are copied back and nothing but the batch is allocated.
 *
 * The pool is shared by the process, started on first need, and does not keep it alive. A worker
 * that dies fails the batches it held; the next batch starts a new one.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { SEALED_CHUNK_BYTES } from './age-payload.ts';

export const BATCH_CHUNKS = 16;
export const BATCH_BYTES = BATCH_CHUNKS * SEALED_CHUNK_BYTES;

/** A batch for a worker: where its chunks are, their counters, which is last. */
export interface SealRequest {
  id: number;
  key: Uint8Array;
  batch: SharedArrayBuffer;
  /** The counter of the batch's first chunk. */
  first: number;
  /** Plaintext bytes of each chunk (all 64 KiB but possibly the last). */
  lengths: number[];
  /** Whether the batch's last chunk is the payload's final chunk. */
  final: boolean;
}

export interface SealReply {
  id: number;
  error?: string;
}

interface Member {
  worker: Worker;
  pending: Map<number, (error: Error | null) => void>;
}

class SealPool {
  readonly size = Math.min(4, availableParallelism());
  readonly #members: (Member | null)[] = [];
  #next = 0;
  #ids = 0;

  #member(index: number): Member {
    const existing = this.#members[index];
    if (existing) return existing;
    const worker = new Worker(new URL('./age-seal-worker.ts', import.meta.url));
    worker.unref();
    const member: Member = { worker, pending: new Map() };
    const fail = (error: Error) => {
      this.#drop(index, member, error);
    };
    worker.on('message', (reply: SealReply) => {
      const settle = member.pending.get(reply.id);
      member.pending.delete(reply.id);
      if (member.pending.size === 0) worker.unref();
      settle?.(reply.error ? new Error(`age worker: ${reply.error}`) : null);
    });
    worker.on('error', (err: Error) => {
      fail(new Error(`age worker failed: ${err.message}`));
    });
    worker.on('exit', (code: number) => {
      fail(new Error(`age worker exited (code ${code})`));
    });
    this.#members[index] = member;
    return member;
  }

  /** Seals a batch on the next worker; resolves once its chunks are sealed in place. */
  seal(request: Omit<SealRequest, 'id'>): Promise<void> {
    const member = this.#member(this.#next);
    this.#next = (this.#next + 1) % this.size;
    const id = ++this.#ids;
    return new Promise<void>((resolve, reject) => {
      member.pending.set(id, (error) => {
        if (error) reject(error);
        else resolve();
      });
      member.worker.ref();
      member.worker.postMessage({ ...request, id } satisfies SealRequest);
    });
  }

  /** Forgets a worker and fails the batches it held. */
  #drop(index: number, member: Member, error: Error): void {
    if (this.#members[index] === member) this.#members[index] = null;
    for (const settle of member.pending.values()) settle(error);
    member.pending.clear();
  }

  /** Stops every worker (the batches they held fail at once); the next batch starts new ones. */
  async close(): Promise<void> {
    const members = [...this.#members.entries()];
    for (const [index, member] of members) if (member) this.#drop(index, member, new Error('age worker stopped'));
    await Promise.all(members.flatMap(([, member]) => (member ? [member.worker.terminate()] : [])));
  }
}

let shared: SealPool | null = null;

/** The process's pool, or null on a single core (where a thread of its own gains nothing). */
export function sealPool(): SealPool | null {
  if (availableParallelism() < 2) return null;
  shared ??= new SealPool();
  return shared;
}
