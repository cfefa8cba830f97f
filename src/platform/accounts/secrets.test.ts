import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deriveKey, hashRecoveryCode, hashSecretToken, newRecoveryCodes, newSecretToken, openSecret, sealSecret, SECRET_TOKEN } from './secrets.ts';
import { currentTotp, matchTotp, newTotpSecret, totpEnrolment } from './totp.ts';

test('tokens carry 256 random bits and are stored only as their SHA-256', () => {
  const { token, hash } = newSecretToken();
  assert.match(token, SECRET_TOKEN);
  assert.equal(Buffer.from(token, 'base64url').length, 32);
  assert.deepEqual(hash, hashSecretToken(token));
  assert.notEqual(newSecretToken().token, token);
});

test('sealed secrets open only with the same key and context', () => {
  const key = deriveKey('m'.repeat(43), 'totp-secrets');
  const sealed = sealSecret(key, Buffer.from('the secret'), 'totp:user-1');
  assert.equal(openSecret(key, sealed, 'totp:user-1').toString(), 'the secret');
  assert.throws(() => openSecret(key, sealed, 'totp:user-2'), 'bound to its row');
  assert.throws(() => openSecret(deriveKey('n'.repeat(43), 'totp-secrets'), sealed, 'totp:user-1'));
  assert.notDeepEqual(deriveKey('m'.repeat(43), 'csrf-tokens'), key, 'one key per purpose');
});

test('recovery codes: ten, unique, compared without case, spaces or dashes', () => {
  const codes = newRecoveryCodes();
  assert.equal(new Set(codes).size, 10);
  for (const code of codes) assert.match(code, /^[a-z2-9]{5}-[a-z2-9]{5}$/);
  const first = codes[0] ?? '';
  assert.deepEqual(hashRecoveryCode(first.toUpperCase().replace('-', ' ')), hashRecoveryCode(first));
});

test('TOTP: the current code and its neighbours match, with their time step; others do not', () => {
  const secret = newTotpSecret();
  const now = Date.UTC(2026, 10, 23, 12, 0, 15);
  const step = Math.floor(now / 30_000);
  assert.equal(matchTotp(secret, currentTotp(secret, now), now), step);
  assert.equal(matchTotp(secret, currentTotp(secret, now - 30_000), now), step - 1, 'one step of drift is allowed');
  assert.equal(matchTotp(secret, currentTotp(secret, now - 90_000), now), null);
  assert.equal(matchTotp(secret, 'abcdef', now), null);
  assert.equal(matchTotp(newTotpSecret(), currentTotp(secret, now), now), null);
  const { uri, secret: base32 } = totpEnrolment(secret, 'ann@acme.example', 'TaskFlow Acme');
  assert.match(uri, /^otpauth:\/\/totp\/TaskFlow%20Acme:ann%40acme\.example\?/);
  assert.match(base32, /^[A-Z2-7]+=*$/);
});
