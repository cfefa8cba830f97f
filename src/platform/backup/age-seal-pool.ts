/**
 * For the `libsodium` cipher (the `openssl` one runs batches on libuv's thread pool instead,
 * age-cipher.ts): worker threads that seal or open batches of age payload chunks side by side, so the stream's
 * thread only reads and lays out while the cipher (age-cipher.ts) runs elsewhere: an object larger
 * than a few batches is worked on by every core. A batch (age-payload.ts) is a SharedArrayBuffer: the
 * stream's thread lays the input out in it, a worker runs it in place and the same memory goes on
 * as the output, so no bytes are copied back. (Transferring plain ArrayBuffers there and back
 * instead measured slower: every buffer a worker receives counts as its isolate's external memory,
 * and the workers spent a fifth of their time in full garbage collections.)
 *
 * The pool is shared by the process, started on first need, and does not keep it alive. A worker
 * that dies fails the batches it held; the next batch starts a new one.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { BatchJob } from './age-payload.ts';

/** A batch for a worker: its memory, the payload key and where it is in the payload. */
export interface BatchRequest extends BatchJob {
  id: number;
  key: Uint8Array;
  batch: SharedArrayBuffer;
}

export interface BatchReply {
  id: number;
  /** When opening: the index in the batch of the first chunk that did not authenticate, or -1. */
  failed: number;
  error?: string;
}

interface Member {
  worker: Worker;
  pending: Map<number, (error: Error | null, failed?: number) => void>;
}

class PayloadPool {
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
    worker.on('message', (reply: BatchReply) => {
      const settle = member.pending.get(reply.id);
      member.pending.delete(reply.id);
      if (member.pending.size === 0) worker.unref();
      if (reply.error !== undefined) settle?.(new Error(`age worker: ${reply.error}`));
      else settle?.(null, reply.failed);
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

  /**
   * Runs a batch on the next worker; resolves once its chunks are sealed or opened in place, with
   * the index of the first chunk that did not open (-1: none).
   */
  run(job: BatchJob, key: Uint8Array, batch: SharedArrayBuffer): Promise<number> {
    const member = this.#member(this.#next);
    this.#next = (this.#next + 1) % this.size;
    const id = ++this.#ids;
    return new Promise<number>((resolve, reject) => {
      member.pending.set(id, (error, failed) => {
        if (error) reject(error);
        else resolve(failed ?? -1);
      });
      member.worker.ref();
      member.worker.postMessage({ id, op: job.op, first: job.first, lengths: job.lengths, final: job.final, key, batch } satisfies BatchRequest);
    });
  }

  /** How many worker threads are running (started on first need). */
  get running(): number {
    return this.#members.filter((member) => member !== null).length;
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

let shared: PayloadPool | null = null;

/** The process's pool, or null on a single core (where a thread of its own gains nothing). */
export function payloadPool(): PayloadPool | null {
  if (availableParallelism() < 2) return null;
  shared ??= new PayloadPool();
  return shared;
}
