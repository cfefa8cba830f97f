import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bech32Decode, bech32Encode } from './bech32.ts';

test('BIP 173 valid vectors decode and re-encode', () => {
  for (const vector of [
    'A12UEL5L',
    'a12uel5l',
    'abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw',
    'split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w',
  ]) {
    assert.doesNotThrow(() => bech32Decode(vector), vector);
  }
  const bytes = Buffer.from('00ff10a5', 'hex');
  const encoded = bech32Encode('age', bytes);
  assert.deepEqual(bech32Decode(encoded), { hrp: 'age', bytes });
  assert.deepEqual(bech32Decode(encoded.toUpperCase()).bytes, bytes);
});

test('BIP 173 invalid vectors are refused', () => {
  for (const vector of [
    'pzry9x0s0muk', // no separator
    '1pzry9x0s0muk', // empty prefix
    'x1b4n0q5v', // 'b' is not in the alphabet
    'li1dgmt3', // checksum too short
    'A1G7SGD8', // checksum computed over the upper-case prefix
    'a12Uel5l', // mixed case
    'a12uel5m', // wrong checksum
  ]) {
    assert.throws(() => bech32Decode(vector), Error, vector);
  }
});

test('a long payload (no BIP 173 length limit, as age needs)', () => {
  const bytes = Buffer.alloc(200, 7);
  assert.deepEqual(bech32Decode(bech32Encode('age-secret-key-', bytes)).bytes, bytes);
});
