import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { allChunkCiphers, chunkCipher, TAG_BYTES } from './age-cipher.ts';
import { BATCH_BYTES, CHUNK_BYTES, SEALED_CHUNK_BYTES } from './age-payload.ts';

const hasCompiler = spawnSync('cc', ['--version']).status === 0;

/** Node's own ChaCha20-Poly1305, the reference both implementations are held to. */
function reference(plain: Buffer, key: Buffer, nonce: Buffer): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_BYTES });
  return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
}

test('where a C compiler is, bootstrap built the OpenSSL cipher and it is the one used', { skip: process.env.TASKFLOW_AGE_CIPHER ? 'TASKFLOW_AGE_CIPHER chooses' : hasCompiler ? false : 'no C compiler: native/build/age-aead.node cannot be built' }, () => {
  assert.deepEqual(allChunkCiphers().map((c) => c.name), ['openssl', 'libsodium']);
  assert.equal(chunkCipher().name, 'openssl');
});

for (const cipher of allChunkCiphers()) {
  test(`${cipher.name}: seals in place exactly as Node's ChaCha20-Poly1305, at any offset and length`, () => {
    const key = randomBytes(32);
    for (const length of [0, 1, 15, 16, 17, 65_535, 65_536]) {
      const nonce = randomBytes(12);
      const plain = randomBytes(length);
      const bytes = Buffer.alloc(length + TAG_BYTES + 10, 0xee);
      plain.copy(bytes, 7);
      cipher.seal(bytes, 7, length, key, nonce);
      assert.deepEqual(bytes.subarray(7, 7 + length + TAG_BYTES), reference(plain, key, nonce), `length ${length}`);
      assert.equal(bytes[6], 0xee, 'nothing before the range is touched');
      assert.equal(bytes[7 + length + TAG_BYTES], 0xee, 'nothing after the tag is touched');
    }
  });

  test(`${cipher.name}: opens in place what authenticates, and refuses a flipped bit, another nonce or another key`, () => {
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    const plain = randomBytes(65_536);
    const sealed = reference(plain, key, nonce);
    const open = (bytes: Buffer, k = key, n = nonce) => cipher.open(bytes, 0, plain.length, k, n, bytes, plain.length);

    const good = Buffer.from(sealed);
    assert.equal(open(good), true);
    assert.deepEqual(good.subarray(0, plain.length), plain);

    const flipped = Buffer.from(sealed);
    flipped[1000]! ^= 1;
    assert.equal(open(flipped), false);
    assert.notDeepEqual(flipped.subarray(0, plain.length), plain, 'no plaintext of a chunk that does not authenticate');
    const badTag = Buffer.from(sealed);
    badTag[plain.length + 3]! ^= 0x80;
    assert.equal(open(badTag), false);
    assert.equal(open(Buffer.from(sealed), key, randomBytes(12)), false);
    assert.equal(open(Buffer.from(sealed), randomBytes(32)), false);
  });
}

test('openssl: arguments outside the buffer, or a key or nonce of the wrong size, are refused before any byte is touched', { skip: hasCompiler ? false : 'no C compiler: native/build/age-aead.node cannot be built' }, () => {
  const cipher = allChunkCiphers().find((c) => c.name === 'openssl');
  assert.ok(cipher, 'bootstrap builds native/build/age-aead.node where a C compiler is');
  const bytes = Buffer.alloc(64);
  const key = Buffer.alloc(32);
  const nonce = Buffer.alloc(12);
  assert.throws(() => { cipher.seal(bytes, 40, 10, key, nonce); }, RangeError, 'the tag would not fit');
  assert.throws(() => { cipher.seal(bytes, -1, 10, key, nonce); }, TypeError);
  assert.throws(() => { cipher.seal(bytes, 0, 10, Buffer.alloc(31), nonce); }, RangeError);
  assert.throws(() => { cipher.seal(bytes, 0, 10, key, Buffer.alloc(8)); }, RangeError);
  assert.throws(() => cipher.open(bytes, 0, 10, key, nonce, bytes, 60), RangeError, 'the tag lies outside its buffer');
  assert.throws(() => { (cipher.seal as (...args: unknown[]) => void)('text', 0, 1, key, nonce); }, TypeError);
  assert.deepEqual(bytes, Buffer.alloc(64));
});

/** The age payload nonce of chunk `counter` (age-payload.ts): 11 bytes of big-endian counter, then the last-chunk flag. */
function chunkNonce(counter: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUIntBE(counter, 5, 6);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

test('openssl: a batch run on the thread pool seals and opens every chunk as the payload format says', { skip: hasCompiler ? false : 'no C compiler: native/build/age-aead.node cannot be built' }, async () => {
  const runner = allChunkCiphers().find((c) => c.name === 'openssl')?.batches;
  assert.ok(runner, 'the openssl cipher runs batches');
  const key = randomBytes(32);
  // Counters across 2^32 and past 2^40, so every byte of the counter is laid out as the format says.
  const first = 2 ** 40 + 2 ** 32 - 2;
  const lengths = [CHUNK_BYTES, CHUNK_BYTES, CHUNK_BYTES, 12_345];
  const plains = lengths.map((length) => randomBytes(length));
  const batch = Buffer.from(new SharedArrayBuffer(BATCH_BYTES));
  batch.fill(0xee);
  plains.forEach((plain, i) => plain.copy(batch, i * SEALED_CHUNK_BYTES));
  assert.equal(await runner.run(batch, key, first, lengths, true, true), -1);
  plains.forEach((plain, i) => {
    const sealed = batch.subarray(i * SEALED_CHUNK_BYTES, i * SEALED_CHUNK_BYTES + plain.length + TAG_BYTES);
    assert.deepEqual(sealed, reference(plain, key, chunkNonce(first + i, i === plains.length - 1)), `chunk ${i}`);
  });
  assert.equal(batch[3 * SEALED_CHUNK_BYTES + 12_345 + TAG_BYTES], 0xee, 'nothing after the last tag is touched');

  // Opening: ciphertexts side by side, tags after all 16 chunks; a flipped bit stops at its chunk.
  const opening = Buffer.from(new SharedArrayBuffer(BATCH_BYTES));
  const layOut = () => {
    plains.forEach((plain, i) => {
      batch.copy(opening, i * CHUNK_BYTES, i * SEALED_CHUNK_BYTES, i * SEALED_CHUNK_BYTES + plain.length);
      batch.copy(opening, 16 * CHUNK_BYTES + i * TAG_BYTES, i * SEALED_CHUNK_BYTES + plain.length, i * SEALED_CHUNK_BYTES + plain.length + TAG_BYTES);
    });
  };
  const sealedLengths = lengths.map((length) => length + TAG_BYTES);
  layOut();
  assert.equal(await runner.run(opening, key, first, sealedLengths, true, false), -1);
  plains.forEach((plain, i) => {
    assert.deepEqual(opening.subarray(i * CHUNK_BYTES, i * CHUNK_BYTES + plain.length), plain, `chunk ${i}`);
  });
  layOut();
  opening[2 * CHUNK_BYTES + 99]! ^= 0x04;
  assert.equal(await runner.run(opening, key, first, sealedLengths, true, false), 2, 'the altered chunk is named');
  assert.deepEqual(opening.subarray(CHUNK_BYTES, 2 * CHUNK_BYTES), plains[1], 'the chunks before it are opened');
  assert.deepEqual(opening.subarray(2 * CHUNK_BYTES, 3 * CHUNK_BYTES), Buffer.alloc(CHUNK_BYTES), 'no plaintext of the altered chunk is left');
  layOut();
  assert.equal(await runner.run(opening, key, first, sealedLengths, false, false), 3, 'a final chunk is not taken for a middle one');
  layOut();
  assert.equal(await runner.run(opening, key, first + 1, sealedLengths, true, false), 0, 'nor a chunk for another counter');
});

test('openssl: a batch whose chunks would lie outside its memory, or with a bad key or counter, is refused before it is queued', { skip: hasCompiler ? false : 'no C compiler: native/build/age-aead.node cannot be built' }, () => {
  const runner = allChunkCiphers().find((c) => c.name === 'openssl')?.batches;
  assert.ok(runner, 'the openssl cipher runs batches');
  const key = Buffer.alloc(32);
  const batch = Buffer.alloc(BATCH_BYTES);
  const refused = (args: [Buffer, Buffer, number, number[], boolean, boolean], error: typeof RangeError | typeof TypeError, why: string) => {
    assert.throws(() => runner.run(...args), error, why);
  };
  refused([batch, key, 0, [], false, true], RangeError, 'no chunks');
  refused([batch, key, 0, Array<number>(17).fill(CHUNK_BYTES), false, true], RangeError, 'more than 16 chunks');
  refused([batch, key, 0, [CHUNK_BYTES + 1], false, true], RangeError, 'a plaintext chunk longer than 64 KiB');
  refused([batch, key, 0, [TAG_BYTES - 1], true, false], RangeError, 'a sealed chunk shorter than its tag');
  refused([batch, key, 0, [SEALED_CHUNK_BYTES + 1], true, false], RangeError, 'a sealed chunk longer than 64 KiB and its tag');
  refused([batch.subarray(0, SEALED_CHUNK_BYTES), key, 0, [CHUNK_BYTES, 1], false, true], RangeError, 'a chunk past the end of the memory');
  refused([batch.subarray(0, 2 * CHUNK_BYTES), key, 0, [SEALED_CHUNK_BYTES], false, false], RangeError, 'a tag slot past the end of the memory');
  refused([batch, Buffer.alloc(16), 0, [1], true, true], RangeError, 'a 16-byte key');
  refused([batch, key, -1, [1], true, true], RangeError, 'a negative counter');
  refused([batch, key, 1.5, [1], true, true], RangeError, 'a fractional counter');
  refused([batch, key, 2 ** 48 - 1, [1, 1], false, true], RangeError, 'counters past 2^48');
  refused([batch, key, 0, [1.5], true, true], RangeError, 'a fractional length');
  assert.throws(() => (runner.run as (...args: unknown[]) => unknown)(batch, key, 0, 'x', true, true), TypeError);
  assert.deepEqual(batch, Buffer.alloc(BATCH_BYTES), 'no byte was touched');
});
