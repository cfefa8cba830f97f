import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scramVerifier, scramVerifierMatches } from './scram.ts';

test('a verifier matches the password it was made from, and no other', () => {
  const verifier = scramVerifier('correct horse battery staple');
  assert.equal(scramVerifierMatches(verifier, 'correct horse battery staple'), true);
  assert.equal(scramVerifierMatches(verifier, 'Correct horse battery staple'), false);
  assert.equal(scramVerifierMatches('md5abcdef', 'x'), false);
});
