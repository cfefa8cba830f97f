import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashApiToken, newApiToken, scramVerifier, tenantDbPassword } from './credentials.ts';

test('tenant passwords are stable per tenant and version, and differ otherwise', () => {
  const key = 'k'.repeat(43);
  const a = tenantDbPassword(key, 'id-1', 1);
  assert.equal(a, tenantDbPassword(key, 'id-1', 1));
  assert.notEqual(a, tenantDbPassword(key, 'id-1', 2));
  assert.notEqual(a, tenantDbPassword(key, 'id-2', 1));
  assert.notEqual(a, tenantDbPassword('other'.repeat(9), 'id-1', 1));
  assert.ok(a.length >= 43);
});

test('SCRAM verifiers have PostgreSQL\'s format and a fresh salt each time', () => {
  const v = scramVerifier('secret');
  assert.match(v, /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/);
  assert.notEqual(v, scramVerifier('secret'));
  assert.doesNotMatch(v, /secret/);
});

test('API tokens carry 32 random bytes and are stored only as their hash', () => {
  const { token, hash } = newApiToken();
  assert.match(token, /^tf_[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(hash, hashApiToken(token));
  assert.notEqual(newApiToken().token, token);
});
