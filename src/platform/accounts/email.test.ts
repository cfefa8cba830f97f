import assert from 'node:assert/strict';
import { test } from 'node:test';
import { localPart, normaliseEmail } from './email.ts';

test('addresses are trimmed and compared in lower case', () => {
  assert.deepEqual(normaliseEmail('  Alice.Smith+tasks@Example.COM '), { ok: true, email: 'alice.smith+tasks@example.com' });
  assert.equal(localPart('alice@example.com'), 'alice');
});

for (const [input, why] of [
  ['alice', 'no @'],
  ['@example.com', 'no local part'],
  ['alice@', 'no domain'],
  ['alice@localhost', 'a single-label domain'],
  ['alice@example.123', 'a numeric top-level label'],
  ['al..ice@example.com', 'an empty atom'],
  ['.alice@example.com', 'a leading dot'],
  ['alice@-example.com', 'a label starting with a hyphen'],
  ['alice smith@example.com', 'a space'],
  ['alice@exa mple.com', 'a space in the domain'],
  ['"alice"@example.com', 'a quoted local part'],
  ['alice@example.com\r\nBcc: eve@evil.example', 'a header injection'],
  ['аlice@example.com', 'a Cyrillic а looking like a Latin a'],
  ['alice@exаmple.com', 'a Cyrillic а in the domain'],
  ['alice@ｅxample.com', 'a full-width e'],
  [`${'a'.repeat(65)}@example.com`, 'a local part over 64 characters'],
  [`alice@${'a'.repeat(250)}.com`, 'over 254 characters'],
] as const) {
  test(`refuses ${why}: ${JSON.stringify(input)}`, () => {
    const result = normaliseEmail(input);
    assert.equal(result.ok, false);
  });
}

test('an internationalised domain is accepted in its xn-- form', () => {
  assert.deepEqual(normaliseEmail('anna@xn--mller-kva.example'), { ok: true, email: 'anna@xn--mller-kva.example' });
});
