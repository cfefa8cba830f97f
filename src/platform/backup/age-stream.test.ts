import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { bytesPulledWhileStalled } from '../../../test/helpers/streams.ts';
import { chunkCipher } from './age-cipher.ts';
import { generateIdentity, parseIdentity, parseRecipient, type AgeIdentity, type AgeRecipient } from './age-keys.ts';
import { CHUNK_BYTES, createAgeDecryptStream, createAgeEncryptStream } from './age-stream.ts';
import { isBackupError, type BackupErrorCode } from './errors.ts';

const keys = generateIdentity();
export const recipient = parseRecipient(keys.recipient);
export const identity = parseIdentity(keys.identity);
const SEALED = CHUNK_BYTES + 16;

/** Feeds `data` in pieces of varying size, to exercise every buffering path. */
function pieces(data: Buffer): Readable {
  const parts: Buffer[] = [];
  const sizes = [1, 7, 4096, 65_535, 65_536, 65_537, 100_000];
  for (let offset = 0, i = 0; offset < data.length; i++) {
    const size = sizes[i % sizes.length] as number;
    parts.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return Readable.from(parts);
}

export async function collect(source: Readable, transform: NodeJS.ReadWriteStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(
    source,
    transform,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(chunks);
}

export function encrypt(plain: Buffer, recipients: AgeRecipient[] = [recipient]): Promise<Buffer> {
  return collect(pieces(plain), createAgeEncryptStream(recipients));
}

export function decrypt(sealed: Buffer, identities: AgeIdentity[] = [identity]): Promise<Buffer> {
  return collect(pieces(sealed), createAgeDecryptStream(identities));
}

async function refused(sealed: Buffer, code: BackupErrorCode, pattern?: RegExp | string): Promise<void> {
  await assert.rejects(decrypt(sealed, [identity]), (err: unknown) => {
    assert.ok(isBackupError(err, code), `expected ${code}, got ${String(err)}`);
    if (typeof pattern === 'string') assert.ok(err.message.includes(pattern), err.message);
    else if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

/** Where the payload starts: after the header and the 16-byte stream nonce. */
function payloadStart(sealed: Buffer): number {
  return sealed.indexOf('\n--- ') + sealed.subarray(sealed.indexOf('\n--- ') + 1).indexOf('\n') + 2 + 16;
}

/** A run of chunks larger than any single write of the tests' pieces. */
const BATCH = 32;
/** Sizes around the chunk and batch boundaries, the last one past the batches sealed on the stream's thread (into the pool). */
const SIZES = [0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES + 12_345, BATCH * CHUNK_BYTES, BATCH * CHUNK_BYTES + 1, (2 * BATCH + 8) * CHUNK_BYTES + 7, 130 * CHUNK_BYTES + 99];

test('round trip at every chunk boundary, the empty payload included', async () => {
    for (const size of SIZES) {
      const plain = randomBytes(size);
      const sealed = await encrypt(plain);
      const chunks = Math.max(1, Math.ceil(size / CHUNK_BYTES));
      assert.equal(sealed.length - payloadStart(sealed), size + 16 * chunks, `size ${size}: one tag per 64 KiB chunk`);
      assert.deepEqual(await decrypt(sealed), plain, `size ${size}`);
    }
});

test('every file gets a fresh file key and nonce', async () => {
  const plain = Buffer.from('same input');
  assert.notDeepEqual(await encrypt(plain), await encrypt(plain));
});

test('several recipients: each identity opens the file alone', async () => {
  const other = generateIdentity();
  const sealed = await encrypt(Buffer.from('to both'), [recipient, parseRecipient(other.recipient)]);
  assert.equal((await decrypt(sealed, [identity])).toString(), 'to both');
  assert.equal((await decrypt(sealed, [parseIdentity(other.identity)])).toString(), 'to both');
});

test('a wrong identity fails clearly, naming whom it tried', async () => {
  const sealed = await encrypt(Buffer.from('secret'));
  const stranger = parseIdentity(generateIdentity().identity);
  await assert.rejects(decrypt(sealed, [stranger]), (err: unknown) => {
    assert.ok(isBackupError(err, 'age-no-identity'));
    assert.ok(err.message.includes(stranger.recipient.text));
    return true;
  });
});

test('truncation anywhere fails, also exactly at a chunk boundary', async () => {
  const sealed = await encrypt(randomBytes(3 * CHUNK_BYTES + 10));
  const start = payloadStart(sealed);
  for (const cut of [start - 20, start, start + 5, start + SEALED, start + 2 * SEALED, start + 3 * SEALED, sealed.length - 1]) {
    await assert.rejects(decrypt(sealed.subarray(0, cut)), (err: unknown) => isBackupError(err, 'age-integrity'), `cut at ${cut}`);
  }
  // A multiple of 64 KiB cut after a full chunk: that chunk was sealed as non-final.
  const exact = await encrypt(randomBytes(2 * CHUNK_BYTES));
  await refused(exact.subarray(0, payloadStart(exact) + SEALED), 'age-integrity', /truncated/);
});

test('reordered, duplicated or appended chunks fail, far into the payload', async () => {
    const n = BATCH + 4;
    const sealed = await encrypt(randomBytes(n * CHUNK_BYTES + 10));
    const start = payloadStart(sealed);
    const head = sealed.subarray(0, start);
    const chunk = (i: number): Buffer => sealed.subarray(start + i * SEALED, start + (i + 1) * SEALED);
    const chunks = (from: number, to: number): Buffer => sealed.subarray(start + from * SEALED, start + to * SEALED);
    const last = sealed.subarray(start + n * SEALED);
    await refused(Buffer.concat([head, chunk(1), chunk(0), chunks(2, n), last]), 'age-integrity', /chunk 0: the file was altered or its chunks reordered/);
    // Swapped across the boundary of the first two batches.
    const swapped = Buffer.concat([head, chunks(0, BATCH - 1), chunk(BATCH), chunk(BATCH - 1), chunks(BATCH + 1, n), last]);
    await refused(swapped, 'age-integrity', `chunk ${BATCH - 1}: the file was altered or its chunks reordered`);
    await refused(Buffer.concat([head, chunk(0), chunks(0, n), last]), 'age-integrity');
    await refused(Buffer.concat([head, chunks(0, n), last, Buffer.from('x')]), 'age-integrity');
    await refused(Buffer.concat([sealed, sealed.subarray(start)]), 'age-integrity');
    // Cut exactly after a whole batch of full chunks: the last of them was sealed as non-final.
    await refused(sealed.subarray(0, start + BATCH * SEALED), 'age-integrity', `chunk ${BATCH - 1}: the file is truncated or was altered`);
});

test('a flipped bit in header or payload fails', async () => {
  const sealed = await encrypt(randomBytes(CHUNK_BYTES + 100));
  const start = payloadStart(sealed);
  for (const at of [start, start + 1000, start + SEALED - 1, start + SEALED + 3, sealed.length - 1, start - 1]) {
    const bad = Buffer.from(sealed);
    bad[at] = (bad[at] as number) ^ 0x01;
    await refused(bad, 'age-integrity');
  }
  // The header MAC covers the stanzas: an altered argument is caught even when the key still opens.
  const text = sealed.toString('latin1');
  const altered = Buffer.from(text.replace('age-encryption.org/v1\n', 'age-encryption.org/v1\n-> extra arg\n\n'), 'latin1');
  await refused(altered, 'age-integrity', /header MAC/);
});

test('inputs that are not age files are refused as such', async () => {
  await refused(Buffer.alloc(0), 'age-format', /empty/);
  await refused(Buffer.from('hello world, this is plain text\n--- and a line\n'.repeat(2)), 'age-format', /not an age-encrypted file/);
  await refused(Buffer.from('-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n--- x\n'), 'age-format', /armored/);
  await refused(Buffer.from('age-encryption.org/v2\n-> X25519 a\n\n--- x\n'), 'age-format', /unsupported age version/);
  await refused(Buffer.from(`age-encryption.org/v1\n${'a'.repeat(70_000)}`), 'age-format', /no header end/);
});

test('header parsing is strict about base64 and stanza shape', async () => {
  const sealed = (await encrypt(Buffer.from('x'))).toString('latin1');
  const share = /-> X25519 (\S+)\n/.exec(sealed)?.[1] ?? '';
  await refused(Buffer.from(sealed.replace(share, `${share}=`), 'latin1'), 'age-format', /base64/);
  await refused(Buffer.from(sealed.replace(share, `${share} extra`), 'latin1'), 'age-format', /exactly two arguments/);
  await refused(Buffer.from(sealed.replace(share, share.slice(0, 20)), 'latin1'), 'age-format', /32 bytes/);
});

test('memory stays bounded: a consumer that stops reading stops the producer after a few batches', async () => {
  const produced = await bytesPulledWhileStalled(createAgeEncryptStream([recipient]));
  // The batch being filled, two batches per worker under way, one waiting to be read, the streams' buffers.
  assert.ok(produced <= 8 * 1024 * 1024, `${produced / 1024 / 1024} MiB pulled from the source`);
});

/** Chunks enough for batches opened and sealed in the pool: past the 8 × 16 run on the stream's thread. */
const POOLED = 200;

test('round trip past the batches run on the stream thread, with the last chunk split around its tag', async () => {
  for (const size of [128 * CHUNK_BYTES, 128 * CHUNK_BYTES + 1, POOLED * CHUNK_BYTES - 5, POOLED * CHUNK_BYTES]) {
    const plain = randomBytes(size);
    assert.deepEqual(await decrypt(await encrypt(plain)), plain, `size ${size}`);
  }
});

test('chunks opened in the pool: altered, reordered or cut chunks are named', async () => {
  const sealed = await encrypt(randomBytes(POOLED * CHUNK_BYTES + 5));
  const start = payloadStart(sealed);
  const altered = Buffer.from(sealed);
  altered[start + 150 * SEALED + 7] = (altered[start + 150 * SEALED + 7] as number) ^ 0x01;
  await refused(altered, 'age-integrity', 'chunk 150: the file was altered or its chunks reordered');
  const chunk = (i: number): Buffer => sealed.subarray(start + i * SEALED, start + (i + 1) * SEALED);
  const reordered = Buffer.concat([sealed.subarray(0, start + 170 * SEALED), chunk(171), chunk(170), sealed.subarray(start + 172 * SEALED)]);
  await refused(reordered, 'age-integrity', 'chunk 170: the file was altered or its chunks reordered');
  // Cut after a whole batch in the pool: its last chunk was sealed as non-final.
  await refused(sealed.subarray(0, start + 192 * SEALED), 'age-integrity', 'chunk 191: the file is truncated or was altered');
  await refused(sealed.subarray(0, start + POOLED * SEALED + 10), 'age-integrity', /shorter than its tag/);
});

test('memory stays bounded while decrypting: a consumer that stops reading stops the producer', async () => {
  const encryption = createAgeEncryptStream([recipient]);
  const decryption = createAgeDecryptStream([identity]);
  encryption.pipe(decryption);
  // The helper pipes into, reads from and destroys its stream: a Duplex is all it needs.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
  const roundTrip = Duplex.from({ writable: encryption, readable: decryption }) as Transform;
  // Destroying the pair at the end aborts it; that is the end of the test, not a failure.
  roundTrip.on('error', () => undefined);
  const produced = await bytesPulledWhileStalled(roundTrip);
  // Each of the two streams: the write it is taking, the batch being filled, the batches under way
  // (three on libuv's pool, or two per worker) and what it handed on unread; 12 MiB measured.
  assert.ok(produced <= 16 * 1024 * 1024, `${produced / 1024 / 1024} MiB pulled from the source`);
});

/**
 * Writes `data` in 1 MiB pieces to `stream`, whose output nobody reads, leaving time between
 * pieces for batches to finish; returns how many bytes the stream took (its write callbacks). A
 * piece it does not take within 50 ms counts as refused, and the next is offered anyway.
 */
async function takenWhileStalledSlowly(stream: Transform, data: Buffer): Promise<number> {
  stream.on('error', () => undefined);
  let taken = 0;
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  for (let at = 0; at < data.length; at += 1024 * 1024) {
    const piece = data.subarray(at, at + 1024 * 1024);
    await Promise.race([new Promise<void>((resolve) => {
      stream.write(piece, () => {
        resolve();
      });
    }).then(() => (taken += piece.length)), pause(50)]);
    await pause(5);
  }
  stream.destroy();
  return taken;
}

test('a stalled consumer stops the producer also when batches finish between writes', async () => {
  // Node's Transform holds back input only when its output filled up during a _transform call;
  // batches finishing between writes went unnoticed, and a decryption took 300 MiB.
  const plain = randomBytes(24 * 1024 * 1024);
  const sealed = await encrypt(plain);
  const byEncryption = await takenWhileStalledSlowly(createAgeEncryptStream([recipient]), plain);
  const byDecryption = await takenWhileStalledSlowly(createAgeDecryptStream([identity]), sealed);
  // The batch being filled, those under way and one handed on unread, 1 MiB each.
  assert.ok(byEncryption <= 8 * 1024 * 1024, `the encryption took ${byEncryption / 1024 / 1024} MiB`);
  assert.ok(byDecryption <= 8 * 1024 * 1024, `the decryption took ${byDecryption / 1024 / 1024} MiB`);
});

/** Whether this process's cipher runs batches on libuv's pool (openssl) rather than in worker threads (libsodium). */
const runsOnLibuv = chunkCipher().batches !== undefined;

test(`${chunkCipher().name}: ${runsOnLibuv ? 'no object starts a worker thread' : 'objects up to 8 MiB are encrypted and decrypted without starting a worker thread (taskflow wal)'}`, () => {
  // A fresh process with this one's cipher: the pool is shared by the process, and other tests here start it.
  const script = `
    import { generateIdentity, parseIdentity, parseRecipient } from '${import.meta.dirname}/age-keys.ts';
    import { payloadPool } from '${import.meta.dirname}/age-seal-pool.ts';
    import { createAgeDecryptStream, createAgeEncryptStream } from '${import.meta.dirname}/age-stream.ts';
    const keys = generateIdentity();
    const through = async (stream, data) => { const out = []; stream.on('data', (c) => out.push(c)); stream.end(data); await new Promise((ok, fail) => { stream.on('end', ok); stream.on('error', fail); }); return Buffer.concat(out); };
    const plain = Buffer.alloc(Number(process.argv[2]), 7);
    const opened = await through(createAgeDecryptStream([parseIdentity(keys.identity)]), await through(createAgeEncryptStream([parseRecipient(keys.recipient)]), plain));
    console.log(opened.equals(plain), payloadPool()?.running);
  `;
  const dir = mkdtempSync(join(tmpdir(), 'taskflow-age-'));
  try {
    writeFileSync(join(dir, 'round-trip.mjs'), script);
    const run = (bytes: number): string => {
      const child = spawnSync(process.execPath, [join(dir, 'round-trip.mjs'), String(bytes)], { encoding: 'utf8', env: { ...process.env, TASKFLOW_AGE_CIPHER: chunkCipher().name } });
      assert.equal(child.status, 0, child.stderr);
      return child.stdout.trim();
    };
    assert.equal(run(8 * 1024 * 1024), 'true 0');
    if (runsOnLibuv) assert.equal(run(40 * 1024 * 1024 + 1), 'true 0');
    else assert.match(run(8 * 1024 * 1024 + 1), /^true [1-9]/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
