import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_SLUG_LENGTH, slugProblem, tenantObjectNames } from './slug.ts';

test('accepts DNS labels', () => {
  for (const slug of ['acme', 'a1', '9lives', 'acme-corp', 'x'.repeat(MAX_SLUG_LENGTH)]) assert.equal(slugProblem(slug), null, slug);
});

test('refuses with a reason', () => {
  const cases: [string, RegExp][] = [
    ['', /empty/],
    ['Acme', /lower case/],
    ['acme_corp', /DNS label/],
    ['-acme', /DNS label/],
    ['acme-', /DNS label/],
    ['xn--nxasmq6b', /'--'/],
    ['www', /reserved/],
    ['api', /reserved/],
    ['x'.repeat(MAX_SLUG_LENGTH + 1), /at most 40/],
    ['acme.example', /DNS label/],
    ['acmé', /DNS label/],
    ['ac me', /DNS label/],
  ];
  for (const [slug, reason] of cases) assert.match(slugProblem(slug) ?? 'accepted', reason, slug);
});

test('object names fit PostgreSQL identifiers and never collide across slugs', () => {
  const longest = tenantObjectNames('x'.repeat(MAX_SLUG_LENGTH));
  assert.ok(longest.ownerRole.length <= 63);
  assert.deepEqual(tenantObjectNames('acme-corp'), { database: 'tenant_acme_corp', ownerRole: 'tenant_acme_corp_owner', loginRole: 'tenant_acme_corp_app' });
});
