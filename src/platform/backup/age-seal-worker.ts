/** A worker thread of the payload pool (age-seal-pool.ts): runs the batch it is sent, in place. */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { runBatchInPlace } from './age-payload.ts';
import type { BatchReply, BatchRequest } from './age-seal-pool.ts';

const port = parentPort;
if (!port) throw new Error('age-seal-worker.ts runs as a worker thread of age-seal-pool.ts');

/**
 * A batch's shared memory is freed only once every thread that saw it dropped its handle, and this
 * thread allocates so little that its own garbage collection runs rarely: it held on to hundreds of
 * MiB of batches the stream had long handed on, so the stream's thread kept taking fresh memory
 * from the kernel, a page fault per 4 KiB (a third of the time of such rounds, bench/README.md).
 * A young-generation collection every 16 batches (about 0.25 ms) lets the memory be reused. `gc`
 * is exposed to a context of this thread only; without it, batches are still run, only later freed.
 */
const SCAVENGE_EVERY = 16;
const scavenge = ((): (() => void) | null => {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (options: { type: 'minor'; execution: 'sync' }) => void;
    return () => {
      gc({ type: 'minor', execution: 'sync' });
    };
  } catch {
    return null;
  }
})();
let runs = 0;

port.on('message', (request: BatchRequest) => {
  let reply: BatchReply;
  try {
    const failed = runBatchInPlace(Buffer.from(request.batch), request.key, request);
    reply = { id: request.id, failed };
  } catch (err) {
    reply = { id: request.id, failed: -1, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
  if (scavenge && ++runs % SCAVENGE_EVERY === 0) scavenge();
});
