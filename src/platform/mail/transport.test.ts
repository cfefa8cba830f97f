import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ConfigError } from '../../config.ts';
import { LocalMailbox, mailboxDir } from './mailbox.ts';
import { createTransport, smtpPassword, type SmtpConfig } from './transport.ts';

const root = mkdtempSync(join(tmpdir(), 'tf-transport-'));
after(() => {
  rmSync(root, { recursive: true, force: true });
});

const smtp: SmtpConfig = { host: 'smtp.example.com', port: 587, secure: false, requireTLS: false, rejectUnauthorized: true };

test('the SMTP password comes from the environment first, then the password file', () => {
  const file = join(root, 'smtp.password');
  writeFileSync(file, 'from-file\n', { mode: 0o600 });
  const withUser = { ...smtp, user: 'mailer', passwordFile: file };
  assert.equal(smtpPassword(withUser, { TASKFLOW_SMTP_PASSWORD: 'from-env' }), 'from-env');
  assert.equal(smtpPassword(withUser, {}), 'from-file');
  assert.equal(smtpPassword(smtp, {}), undefined);
});

test('a user without a password, or a password without a user, is a configuration error', () => {
  assert.throws(() => smtpPassword({ ...smtp, user: 'mailer' }, {}), (err: unknown) => err instanceof ConfigError && /TASKFLOW_SMTP_PASSWORD/.test(err.message));
  assert.throws(() => smtpPassword(smtp, { TASKFLOW_SMTP_PASSWORD: 'x' }), /mail\.smtp\.user is not/);
  assert.throws(() => smtpPassword({ ...smtp, user: 'mailer', passwordFile: join(root, 'missing') }, {}), /mail\.smtp\.passwordFile: cannot read .*ENOENT/);
  const empty = join(root, 'empty');
  writeFileSync(empty, '\n');
  assert.throws(() => smtpPassword({ ...smtp, user: 'mailer', passwordFile: empty }, {}), /is empty/);
});

test('the SMTP transport describes itself without the password', () => {
  const transport = createTransport({ from: 'TaskFlow <no-reply@example.com>', smtp: { ...smtp, user: 'mailer' } }, root, { env: { TASKFLOW_SMTP_PASSWORD: 'hunter2-hunter2' } });
  assert.equal(transport.kind, 'smtp');
  assert.equal(transport.description, 'smtp://smtp.example.com:587, as mailer');
  assert.doesNotMatch(transport.description, /hunter2/);
  assert.equal(transport.describeError(new Error('server said hunter2-hunter2')).reason, 'server said [redacted]');
  transport.close();
});

test('without SMTP, a message becomes an .eml in the local mailbox, with its text intact', async () => {
  const dataDir = join(root, 'data');
  const transport = createTransport({ from: 'TaskFlow <no-reply@localhost>' }, dataDir);
  assert.equal(transport.kind, 'mailbox');
  const link = `https://acme.localhost:8080/setup?token=${'a'.repeat(80)}`;
  const sent = await transport.send({ to: 'ada@example.com', subject: 'Set up TaskFlow', text: `Open ${link}\n`, kind: 'setup' });
  const [entry] = await new LocalMailbox(mailboxDir(dataDir)).list();
  assert.ok(entry);
  assert.equal(sent.response, `mailbox:${entry.id}`);
  assert.equal(entry.messageId, sent.messageId);
  const message = await new LocalMailbox(mailboxDir(dataDir)).read(entry.id);
  assert.ok(message);
  assert.ok(message.text.includes(link));
  const eml = readFileSync(message.emlPath, 'utf8');
  assert.match(eml, /^From: TaskFlow <no-reply@localhost>\r$/m);
  assert.match(eml, /^To: ada@example\.com\r$/m);
  assert.match(eml, /^Subject: Set up TaskFlow\r$/m);
  assert.match(eml, /^Auto-Submitted: auto-generated\r$/m);
  transport.close();
});
