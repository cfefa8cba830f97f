/**
 * A small pool of worker threads that seal and open batches of age chunks in parallel. Node's
 * ChaCha20-Poly1305, one chunk at a time, does not reach the age CLI's speed on one core; with a
 * worker per core (up to four) the batches of one object are sealed side by side, and the
 * streams using the pool (age-stream.ts) keep their output in order.
 *
 * Bytes cross between threads through shared memory, never as ordinary buffers: a batch is copied
 * into one of the pool's slots (a SharedArrayBuffer made once), and its result comes back in a
 * SharedArrayBuffer the worker made. Ordinary buffers handed to the stream's thread would count
 * against its heap's external memory and set off a full garbage collection every few dozen MiB,
 * which in a server's large heap costs more than the sealing itself. The slots also bound the
 * memory of all streams together.
 *
 * The pool is shared by the process and started on first demand. Idle workers do not keep the
 * process alive; a worker that dies fails the batches it held and is replaced on the next one.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { BATCH_CHUNKS, SEALED_CHUNK_BYTES, type ChunkBatch, type OpenFailure } from './age-payload.ts';

export type BatchOp = 'seal' | 'open';

/** What a worker gets at start: the slots. */
export interface WorkerSetup {
  slots: SharedArrayBuffer;
  slotBytes: number;
}

export interface WorkerRequest {
  id: number;
  op: BatchOp;
  /** The 32-byte payload key. */
  key: Uint8Array;
  first: number;
  final: boolean;
  /** The slot holding the batch's bytes, and how many there are. */
  slot: number;
  length: number;
}

export interface WorkerReply {
  id: number;
  /** The result, in shared memory of its own. */
  output?: SharedArrayBuffer;
  failure?: OpenFailure;
  error?: string;
}

/** Sealed or opened bytes, or why the batch did not open. */
export type BatchResult = Buffer | OpenFailure;

interface Pending {
  resolve: (result: BatchResult) => void;
  reject: (err: Error) => void;
}

interface PoolWorker {
  worker: Worker;
  ready: boolean;
  pending: Map<number, Pending>;
}

const WORKER_URL = new URL('./age-worker.ts', import.meta.url);
/** The largest batch: BATCH_CHUNKS sealed chunks. */
const SLOT_BYTES = BATCH_CHUNKS * SEALED_CHUNK_BYTES;

export class AgeWorkerPool {
  /** How many workers the pool runs. */
  readonly size: number;
  readonly #workers: PoolWorker[] = [];
  /** Two slots per worker (one worked on, one waiting) and two being filled. */
  readonly #slotCount: number;
  #slots: SharedArrayBuffer | null = null;
  readonly #freeSlots: number[] = [];
  readonly #slotWaiters: ((slot: number) => void)[] = [];
  #nextId = 1;

  constructor(size: number) {
    this.size = size;
    this.#slotCount = 2 * size + 2;
  }

  /** Starts missing workers; they load in the background (see `ready`). */
  start(): void {
    if (!this.#slots) {
      this.#slots = new SharedArrayBuffer(this.#slotCount * SLOT_BYTES);
      for (let i = this.#slotCount - 1; i >= 0; i--) this.#freeSlots.push(i);
    }
    while (this.#workers.length < this.size) this.#workers.push(this.#spawn(this.#slots));
  }

  /** Whether a worker has loaded and can take batches without a wait. */
  get ready(): boolean {
    return this.#workers.some((w) => w.ready);
  }

  /**
   * Copies a batch into a slot (waiting for a free one) and hands it to the least busy worker.
   * Resolves once the batch's bytes are copied, so the caller may reuse them; `result` settles
   * with the sealed or opened bytes.
   */
  async dispatch(op: BatchOp, key: Buffer, batch: ChunkBatch): Promise<{ result: Promise<BatchResult> }> {
    this.start();
    const slots = this.#slots as SharedArrayBuffer;
    const slot = await this.#acquireSlot();
    // Again: workers that died while this waited for a slot are replaced.
    this.start();
    new Uint8Array(slots, slot * SLOT_BYTES, batch.bytes.length).set(batch.bytes);
    const target = this.#workers.reduce((best, w) => (w.ready && (!best.ready || w.pending.size < best.pending.size) ? w : best));
    const id = this.#nextId++;
    const request: WorkerRequest = { id, op, key, first: batch.first, final: batch.final, slot, length: batch.bytes.length };
    const result = new Promise<BatchResult>((resolve, reject) => {
      target.pending.set(id, { resolve, reject });
      target.worker.ref();
      target.worker.postMessage(request);
    }).finally(() => {
      this.#releaseSlot(slot);
    });
    return { result };
  }

  /** Stops the workers; batches they hold fail. The pool starts new ones when used again. */
  async close(): Promise<void> {
    const workers = this.#workers.splice(0);
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }

  #acquireSlot(): Promise<number> {
    const slot = this.#freeSlots.pop();
    if (slot !== undefined) return Promise.resolve(slot);
    return new Promise((resolve) => this.#slotWaiters.push(resolve));
  }

  #releaseSlot(slot: number): void {
    const waiter = this.#slotWaiters.shift();
    if (waiter) waiter(slot);
    else this.#freeSlots.push(slot);
  }

  #spawn(slots: SharedArrayBuffer): PoolWorker {
    const setup: WorkerSetup = { slots, slotBytes: SLOT_BYTES };
    const worker = new Worker(WORKER_URL, { name: 'taskflow-age', workerData: setup });
    const entry: PoolWorker = { worker, ready: false, pending: new Map() };
    worker.on('message', (message: WorkerReply | { ready: true }) => {
      if ('ready' in message) {
        entry.ready = true;
        return;
      }
      const pending = entry.pending.get(message.id);
      entry.pending.delete(message.id);
      if (entry.pending.size === 0) worker.unref();
      if (!pending) return;
      if (message.error !== undefined) pending.reject(new Error(`age worker: ${message.error}`));
      else if (message.failure) pending.resolve(message.failure);
      else if (message.output) pending.resolve(Buffer.from(message.output));
    });
    const fail = (err: Error): void => {
      const index = this.#workers.indexOf(entry);
      if (index >= 0) this.#workers.splice(index, 1);
      for (const pending of entry.pending.values()) pending.reject(err);
      entry.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      fail(new Error(`age worker exited (code ${code})`));
    });
    // After the listeners: adding a 'message' listener refs the worker again.
    worker.unref();
    return entry;
  }
}

let shared: AgeWorkerPool | null = null;

/** The process's pool: a worker per core, at most four. */
export function sharedAgePool(): AgeWorkerPool {
  shared ??= new AgeWorkerPool(Math.max(1, Math.min(4, availableParallelism())));
  return shared;
}
