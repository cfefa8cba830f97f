import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeSendError, maskAddresses, MAX_ERROR_LENGTH, scrubSecrets } from './send-error.ts';

test('addresses lose their local part', () => {
  assert.equal(maskAddresses('550 5.1.1 <ada.lovelace@example.com>: user unknown'), '550 5.1.1 <…@example.com>: user unknown');
  assert.equal(maskAddresses('no address here'), 'no address here');
});

test('a password is removed in every form AUTH sends it', () => {
  const secrets = [{ user: 'mailer', password: 's3cret-pass' }];
  const plain = Buffer.from('\0mailer\0s3cret-pass').toString('base64');
  const login = Buffer.from('s3cret-pass').toString('base64');
  const out = scrubSecrets(`AUTH PLAIN ${plain} / ${login} / s3cret-pass`, secrets);
  assert.equal(out, 'AUTH PLAIN [redacted] / [redacted] / [redacted]');
});

test('connection problems are temporary, with the code in front', () => {
  const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:2525'), { code: 'ESOCKET', command: 'CONN' });
  assert.deepEqual(describeSendError(err), { reason: 'ESOCKET: connect ECONNREFUSED 127.0.0.1:2525', permanent: false });
});

test('a 5xx answer about the message is permanent; a 5xx login failure is not', () => {
  const rcpt = Object.assign(new Error("Can't send mail - all recipients were rejected: 550 <bob@example.com> no such user"), {
    code: 'EENVELOPE',
    responseCode: 550,
    command: 'RCPT TO',
  });
  const described = describeSendError(rcpt);
  assert.equal(described.permanent, true);
  assert.doesNotMatch(described.reason, /bob@/);
  const auth = Object.assign(new Error('Invalid login: 535 Authentication failed'), { code: 'EAUTH', responseCode: 535, command: 'AUTH PLAIN' });
  assert.equal(describeSendError(auth).permanent, false);
  const busy = Object.assign(new Error('451 try again later'), { responseCode: 451, command: 'DATA' });
  assert.equal(describeSendError(busy).permanent, false);
});

test('odd errors still give one short line', () => {
  assert.equal(describeSendError('boom').reason, 'boom');
  assert.equal(describeSendError({}).reason, 'unknown error');
  const long = describeSendError(new Error(`line one\n${'x'.repeat(2000)}`)).reason;
  assert.equal(long.length, MAX_ERROR_LENGTH);
  assert.doesNotMatch(long, /\n/);
});
