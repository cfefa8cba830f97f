/**
 * A worker thread of the age pool (age-worker-pool.ts): seals or opens the batch in the slot it
 * is told of into shared memory of its own, and sends that back.
 */
import { createSecretKey } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { openBatch, resultBytes, sealBatch } from './age-payload.ts';
import type { WorkerReply, WorkerRequest, WorkerSetup } from './age-worker-pool.ts';

const port = parentPort;
if (!port) throw new Error('age-worker.ts runs as a worker thread of age-worker-pool.ts');
const { slots, slotBytes } = workerData as WorkerSetup;

port.on('message', (request: WorkerRequest) => {
  const { id, op, first, final } = request;
  let reply: WorkerReply;
  try {
    const key = createSecretKey(request.key);
    const batch = { first, final, bytes: new Uint8Array(slots, request.slot * slotBytes, request.length) };
    const output = new SharedArrayBuffer(resultBytes(op, batch));
    const outcome = op === 'seal' ? sealBatch(key, batch, Buffer.from(output)) : openBatch(key, batch, Buffer.from(output));
    reply = outcome instanceof Uint8Array ? { id, output } : { id, failure: outcome };
  } catch (err) {
    reply = { id, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
});
port.postMessage({ ready: true });
