/**
 * The age stream tests again with the libsodium cipher, which runs batches in worker threads
 * (age-seal-pool.ts) where the openssl one runs them on libuv's pool: a machine without a C
 * compiler backs up this way. The cipher is chosen on first use, so setting it before the tests
 * load is enough. Then what only worker threads can do: die in the middle of a stream.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { payloadPool } from './age-seal-pool.ts';

process.env.TASKFLOW_AGE_CIPHER = 'libsodium';
const { collect, decrypt, encrypt, identity, recipient } = await import('./age-stream.test.ts');
const { createAgeDecryptStream, createAgeEncryptStream } = await import('./age-stream.ts');

/** Runs `data` through `transform` in 1 MiB writes, stopping every worker once `stopAt` bytes went in. */
async function throughStoppingWorkers(data: Buffer, stopAt: number, transform: NodeJS.ReadWriteStream): Promise<{ out: Buffer } | { err: Error }> {
  const pool = payloadPool();
  assert.ok(pool, 'this machine has more than one core');
  const source = Readable.from(
    (async function* () {
      for (let at = 0; at < data.length; at += 1024 * 1024) {
        yield data.subarray(at, at + 1024 * 1024);
        if (at === stopAt) await pool.close();
      }
    })(),
  );
  return collect(source, transform).then(
    (out) => ({ out }),
    (err: unknown) => ({ err: err as Error }),
  );
}

test('workers stopped in the middle of a decryption fail it or are replaced, never stall or garble it', async () => {
  const plain = randomBytes(24 * 1024 * 1024);
  const outcome = await throughStoppingWorkers(await encrypt(plain), 12 * 1024 * 1024, createAgeDecryptStream([identity]));
  if ('err' in outcome) assert.match(outcome.err.message, /age worker/);
  else assert.deepEqual(outcome.out, plain);
});

test('workers stopped in the middle of a stream fail it or are replaced, never stall or garble it', async () => {
  const plain = randomBytes(24 * 1024 * 1024);
  const outcome = await throughStoppingWorkers(plain, 8 * 1024 * 1024, createAgeEncryptStream([recipient]));
  if ('err' in outcome) assert.match(outcome.err.message, /age worker/);
  else assert.deepEqual(await decrypt(outcome.out), plain);
  // The pool starts fresh workers for the next stream.
  const next = randomBytes(5 * 1024 * 1024);
  assert.deepEqual(await decrypt(await encrypt(next)), next);
});
