import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { allChunkCiphers, chunkCipher, TAG_BYTES } from './age-cipher.ts';

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
