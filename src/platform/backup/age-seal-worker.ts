/** A worker thread of the payload pool (age-seal-pool.ts): runs the batch it is sent, in place. */
import { parentPort } from 'node:worker_threads';
import { runBatchInPlace } from './age-payload.ts';
import type { BatchReply, BatchRequest } from './age-seal-pool.ts';
import { batchHandled } from './young-gc.ts';

const port = parentPort;
if (!port) throw new Error('age-seal-worker.ts runs as a worker thread of age-seal-pool.ts');

port.on('message', (request: BatchRequest) => {
  let reply: BatchReply;
  try {
    const failed = runBatchInPlace(Buffer.from(request.batch), request.key, request);
    reply = { id: request.id, failed };
  } catch (err) {
    reply = { id: request.id, failed: -1, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
  batchHandled();
});
