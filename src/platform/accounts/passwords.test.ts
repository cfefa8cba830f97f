import assert from 'node:assert/strict';
import { test } from 'node:test';
import { burnVerification, checkPasswordPolicy, hashPassword, needsRehash, OWASP_MINIMUM, PASSWORD_MAX_LENGTH, verifyPassword } from './passwords.ts';

test('hashes are argon2id at the OWASP minimum or above, salted, and verify', async () => {
  const a = await hashPassword('correct horse battery staple');
  const b = await hashPassword('correct horse battery staple');
  assert.match(a, /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/);
  const [, m, t] = /m=(\d+),t=(\d+)/.exec(a) ?? [];
  assert.ok(Number(m) >= OWASP_MINIMUM.memoryKiB && Number(t) >= OWASP_MINIMUM.iterations);
  assert.notEqual(a, b, 'a new salt every time');
  assert.equal(await verifyPassword(a, 'correct horse battery staple'), true);
  assert.equal(await verifyPassword(a, 'correct horse battery stapl'), false);
});

test('a damaged hash is a mismatch, not an exception', async () => {
  assert.equal(await verifyPassword('$argon2id$v=19$m=19456,t=2,p=1$broken', 'anything at all'), false);
  assert.equal(await verifyPassword('', 'anything at all'), false);
});

test('composed and decomposed forms of the same text are the same password (NFKC)', async () => {
  const hash = await hashPassword('caf\u00e9 au lait tous les jours');
  assert.equal(await verifyPassword(hash, 'cafe\u0301 au lait tous les jours'), true);
});

test('needsRehash: other parameters or another algorithm', () => {
  assert.equal(needsRehash('$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA'), false);
  assert.equal(needsRehash('$argon2id$v=19$m=19456,t=3,p=1$c2FsdA$aGFzaA'), true);
  assert.equal(needsRehash('$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA'), true);
  assert.equal(needsRehash('$2b$12$abcdefghijklmnopqrstuv'), true);
});

test('the policy: length in code points, common passwords and their variations, repetition, personal data', () => {
  assert.equal(checkPasswordPolicy('short one'), 'too-short');
  assert.equal(checkPasswordPolicy('🔒🔒🔒🔒🔒🔒🔒🔒🔒🔒🔒'), 'too-short', '11 emoji are 11 characters, not 22');
  assert.equal(checkPasswordPolicy('x'.repeat(PASSWORD_MAX_LENGTH + 1)), 'too-long');
  assert.equal(checkPasswordPolicy('password1234'), 'common');
  assert.equal(checkPasswordPolicy('Password1234!'), 'common');
  assert.equal(checkPasswordPolicy('qwertyqwerty'), 'common', 'a doubled common word');
  assert.equal(checkPasswordPolicy('abababababab'), 'repetitive');
  assert.equal(checkPasswordPolicy('welcome to globex 2026', ['globex']), 'contains-personal-data');
  assert.equal(checkPasswordPolicy('correct horse battery staple'), null);
  assert.equal(checkPasswordPolicy(`${'a long passphrase '.repeat(7)}ends`), null, 'long passphrases are welcome');
});

test('an unknown account costs a real verification', async () => {
  const started = performance.now();
  await burnVerification('whatever was typed');
  assert.ok(performance.now() - started > 0);
});
