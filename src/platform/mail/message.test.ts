import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertValidMessage, InvalidMailError, isValidAddress, mailMessageProblems, parseSender, recipientDomain, type MailMessage } from './message.ts';

const good: MailMessage = { to: 'ada@example.com', subject: 'Reset your password', text: 'Follow https://acme.example.com/reset?token=abc', kind: 'password-reset' };

test('plain addresses are accepted, single-label domains too', () => {
  for (const address of ['ada@example.com', 'a.b+tag@sub.example.co.uk', "o'brien@example.ie", 'admin@localhost', 'x@xn--bcher-kva.example']) {
    assert.ok(isValidAddress(address), address);
  }
});

test('anything that could smuggle a header or a second recipient is refused', () => {
  for (const address of [
    '',
    'ada',
    '@example.com',
    'ada@',
    'ada@example.com\r\nBcc: eve@evil.test',
    'ada@example.com, eve@evil.test',
    'Ada <ada@example.com>',
    '"ada"@example.com',
    'ada..b@example.com',
    '.ada@example.com',
    'ada@-example.com',
    'ada@example..com',
    'ada@127.0.0.1',
    'ädä@example.com',
    'ada@exämple.com',
    `${'a'.repeat(65)}@example.com`,
    `a@${'b'.repeat(250)}.com`,
  ]) {
    assert.equal(isValidAddress(address), false, JSON.stringify(address));
  }
});

test('logs get the domain only', () => {
  assert.equal(recipientDomain('Ada.Lovelace@Example.COM'), 'example.com');
  assert.equal(recipientDomain('nonsense'), '(none)');
});

test('senders: a name with an address, or a bare address', () => {
  assert.deepEqual(parseSender('TaskFlow <no-reply@localhost>'), { name: 'TaskFlow', address: 'no-reply@localhost' });
  assert.deepEqual(parseSender('"Acme, Inc." <mail@acme.example>'), { name: 'Acme, Inc.', address: 'mail@acme.example' });
  assert.deepEqual(parseSender('mail@acme.example'), { name: '', address: 'mail@acme.example' });
  assert.equal(parseSender('TaskFlow'), null);
  assert.equal(parseSender('TaskFlow <no-reply@localhost>\r\nBcc: x@y.z'), null);
  assert.equal(parseSender('<a@b.c> <d@e.f>'), null);
});

test('a good message has no problems; a bad one lists each', () => {
  assert.deepEqual(mailMessageProblems(good), []);
  assert.doesNotThrow(() => {
    assertValidMessage({ ...good, tenantId: '0f8fad5b-d9cb-469f-a165-70867728950e', html: '<p>hi</p>' });
  });
  const problems = mailMessageProblems({ ...good, to: 'x', subject: 'Hi\r\nBcc: eve@evil.test', text: ' ', tenantId: 'acme', kind: 'spam' as MailMessage['kind'] });
  assert.equal(problems.length, 5);
  assert.match(problems.join('\n'), /^to: /m);
  assert.match(problems.join('\n'), /^subject: must be one line/m);
  assert.match(problems.join('\n'), /^kind: /m);
  assert.throws(() => {
    assertValidMessage({ ...good, subject: 'x'.repeat(201) });
  }, (err: unknown) => err instanceof InvalidMailError && /subject: longer than 200/.test(err.message));
});

test('an invalid message error does not repeat the address', () => {
  assert.throws(() => {
    assertValidMessage({ ...good, to: 'secret-person@@example.com' });
  }, (err: unknown) => err instanceof Error && !err.message.includes('secret-person'));
});
