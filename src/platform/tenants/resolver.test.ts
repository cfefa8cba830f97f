import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { normaliseHost } from './resolver.ts';

const BASE = 'taskflow.example';

describe('normaliseHost', () => {
  test('takes the one label in front of the base domain', () => {
    assert.deepEqual(normaliseHost('acme.taskflow.example', BASE), { ok: true, slug: 'acme' });
    assert.deepEqual(normaliseHost('acme-2.taskflow.example', BASE), { ok: true, slug: 'acme-2' });
  });

  test('strips a port', () => {
    assert.deepEqual(normaliseHost('acme.taskflow.example:8080', BASE), { ok: true, slug: 'acme' });
    assert.deepEqual(normaliseHost('acme.taskflow.example:', BASE), { ok: false, reason: 'malformed' });
    assert.deepEqual(normaliseHost('acme.taskflow.example:80a', BASE), { ok: false, reason: 'malformed' });
    assert.deepEqual(normaliseHost('acme.taskflow.example:123456', BASE), { ok: false, reason: 'malformed' });
  });

  test('refuses a port outside 1–65535', () => {
    assert.deepEqual(normaliseHost('acme.taskflow.example:65535', BASE), { ok: true, slug: 'acme' });
    assert.deepEqual(normaliseHost('acme.taskflow.example:1', BASE), { ok: true, slug: 'acme' });
    for (const port of ['99999', '65536', '0', '00000']) {
      assert.deepEqual(normaliseHost(`acme.taskflow.example:${port}`, BASE), { ok: false, reason: 'malformed' }, port);
    }
  });

  test('ignores letter case', () => {
    assert.deepEqual(normaliseHost('ACME.TaskFlow.Example', BASE), { ok: true, slug: 'acme' });
    assert.deepEqual(normaliseHost('acme.taskflow.example', 'TaskFlow.Example'), { ok: true, slug: 'acme' });
  });

  test('strips one trailing dot, not two', () => {
    assert.deepEqual(normaliseHost('acme.taskflow.example.', BASE), { ok: true, slug: 'acme' });
    assert.deepEqual(normaliseHost('acme.taskflow.example.:8443', BASE), { ok: true, slug: 'acme' });
    assert.equal(normaliseHost('acme.taskflow.example..', BASE).ok, false);
  });

  test('refuses extra labels', () => {
    assert.deepEqual(normaliseHost('www.acme.taskflow.example', BASE), { ok: false, reason: 'nested' });
    assert.deepEqual(normaliseHost('.acme.taskflow.example', BASE), { ok: false, reason: 'nested' });
  });

  test('refuses the base domain itself and other domains', () => {
    assert.deepEqual(normaliseHost('taskflow.example', BASE), { ok: false, reason: 'base-domain' });
    assert.deepEqual(normaliseHost('taskflow.example:80', BASE), { ok: false, reason: 'base-domain' });
    assert.deepEqual(normaliseHost('acme.evil.example', BASE), { ok: false, reason: 'other-domain' });
    assert.deepEqual(normaliseHost('acmetaskflow.example', BASE), { ok: false, reason: 'other-domain' });
  });

  test('refuses IP literals, IPv6 included', () => {
    assert.deepEqual(normaliseHost('[::1]:8080', BASE), { ok: false, reason: 'ip-literal' });
    assert.deepEqual(normaliseHost('[::1]', BASE), { ok: false, reason: 'ip-literal' });
    assert.deepEqual(normaliseHost('::1', BASE), { ok: false, reason: 'malformed' });
    assert.deepEqual(normaliseHost('127.0.0.1:8080', BASE), { ok: false, reason: 'other-domain' });
  });

  test('refuses a missing or empty host', () => {
    assert.deepEqual(normaliseHost(undefined, BASE), { ok: false, reason: 'missing' });
    assert.deepEqual(normaliseHost('', BASE), { ok: false, reason: 'missing' });
    assert.deepEqual(normaliseHost(':8080', BASE), { ok: false, reason: 'other-domain' });
  });

  test('refuses labels that cannot be slugs', () => {
    for (const host of ['ac_me.taskflow.example', '-acme.taskflow.example', 'acme-.taskflow.example', 'ac me.taskflow.example', 'acmé.taskflow.example', `${'a'.repeat(41)}.taskflow.example`]) {
      assert.deepEqual(normaliseHost(host, BASE), { ok: false, reason: 'invalid-label' }, host);
    }
  });

  test('works with a single-label base domain such as localhost', () => {
    assert.deepEqual(normaliseHost('acme.localhost:8080', 'localhost'), { ok: true, slug: 'acme' });
    assert.deepEqual(normaliseHost('localhost:8080', 'localhost'), { ok: false, reason: 'base-domain' });
  });
});
