/** A worker thread of the seal pool (age-seal-pool.ts): seals the batch it is sent, in place. */
import { parentPort } from 'node:worker_threads';
import { sealBatchInPlace } from './age-payload.ts';
import type { SealReply, SealRequest } from './age-seal-pool.ts';

const port = parentPort;
if (!port) throw new Error('age-seal-worker.ts runs as a worker thread of age-seal-pool.ts');

port.on('message', (request: SealRequest) => {
  let reply: SealReply;
  try {
    sealBatchInPlace(Buffer.from(request.batch), request.key, request);
    reply = { id: request.id };
  } catch (err) {
    reply = { id: request.id, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
});
