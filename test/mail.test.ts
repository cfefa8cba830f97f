/**
 * Outgoing mail end to end: the outbox in a real control database, a real SMTP server
 * (smtp-server) on loopback, the local mailbox and `taskflow mail`.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import pg from 'pg';
import { generate } from 'selfsigned';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import type { Logger } from 'pino';
import { CONTROL_DB } from '../src/platform/control-plane.ts';
import { createLogger } from '../src/platform/log.ts';
import { startMail } from '../src/platform/mail/index.ts';
import { LocalMailbox, mailboxDir } from '../src/platform/mail/mailbox.ts';
import type { MailMessage } from '../src/platform/mail/message.ts';
import { enqueueMail, MailWorker, pruneOutbox, type MailWorkerOptions } from '../src/platform/mail/outbox.ts';
import { createTransport, type SmtpConfig } from '../src/platform/mail/transport.ts';
import { clientConfig } from '../src/platform/postgres/connection.ts';
import { runCli } from './helpers/cli.ts';
import { startTestPlatform, type TestPlatform } from './helpers/platform.ts';

const SMTP_USER = 'mailer';
const SMTP_PASSWORD = 'correct-horse-battery-staple';
const FROM = 'TaskFlow <no-reply@taskflow.test>';

interface ReceivedMail {
  from: string | null;
  to: string[];
  raw: string;
  user: string | undefined;
  secure: boolean;
}

interface TestSmtp {
  port: number;
  received: ReceivedMail[];
  close(): Promise<void>;
}

/** A real SMTP server on 127.0.0.1 that accepts SMTP_USER / SMTP_PASSWORD and keeps every message. */
async function startSmtp(options: SMTPServerOptions = {}, port = 0): Promise<TestSmtp> {
  const received: ReceivedMail[] = [];
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    closeTimeout: 500,
    onAuth(auth, _session, callback) {
      if (auth.username === SMTP_USER && auth.password === SMTP_PASSWORD) callback(null, { user: SMTP_USER });
      else callback(new Error('Invalid username or password'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
          user: typeof session.user === 'string' ? session.user : undefined,
          secure: session.secure,
        });
        callback(null);
      });
    },
    ...options,
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      resolve();
    });
  });
  return {
    port: (server.server.address() as AddressInfo).port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** A text body as sent: quoted-printable soft breaks and escapes undone (ASCII text only). */
function decodedBody(raw: string): string {
  return raw.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_match, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** A top-level header of a raw message (unfolded headers only, as ours are). */
function header(raw: string, name: string): string | undefined {
  const head = raw.slice(0, raw.indexOf('\r\n\r\n'));
  return head
    .split('\r\n')
    .find((line) => line.startsWith(`${name}: `))
    ?.slice(name.length + 2);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A logger whose lines are kept, to check what reaches the log. */
function capturedLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } }), lines };
}

function smtpConfig(port: number, extra: Partial<SmtpConfig> = {}): SmtpConfig {
  return { host: '127.0.0.1', port, secure: false, requireTLS: false, rejectUnauthorized: true, ...extra };
}

function message(n: number | string, extra: Partial<MailMessage> = {}): MailMessage {
  return {
    to: `person-${n}@example.com`,
    subject: `Reset your password (${n})`,
    text: `Follow https://acme.taskflow.test/reset?token=single-use-${n}-${'x'.repeat(60)} within 30 minutes.\n`,
    kind: 'password-reset',
    ...extra,
  };
}

interface OutboxRow {
  status: string;
  attempts: number;
  body_text: string | null;
  body_html: string | null;
  last_error: string | null;
  message_id: string | null;
  next_attempt_at: Date;
  created_at: Date;
}

describe('outgoing mail', () => {
  let tp: TestPlatform;
  const workers: MailWorker[] = [];
  const closers: (() => Promise<void>)[] = [];

  before(async () => {
    tp = await startTestPlatform();
  });
  const stopAll = async (): Promise<void> => {
    for (const w of workers.splice(0)) await w.stop();
    for (const close of closers.splice(0)) await close();
  };
  after(async () => {
    await stopAll();
    await tp.cleanup();
  });
  beforeEach(async () => {
    await stopAll();
    await tp.platform.control.query('DELETE FROM mail_outbox');
  });

  const row = async (id: string): Promise<OutboxRow> => {
    const res = await tp.platform.control.query<OutboxRow>('SELECT * FROM mail_outbox WHERE id = $1', [id]);
    assert.ok(res.rows[0], `outbox row ${id}`);
    return res.rows[0];
  };

  /** A worker on the test platform's control database; stopped before the next test. */
  const worker = (options: Partial<MailWorkerOptions> & Pick<MailWorkerOptions, 'transport'>): MailWorker => {
    const w = new MailWorker({ control: tp.platform.control, target: tp.platform.target, log: tp.platform.log, retryBaseMs: 20, ...options });
    workers.push(w);
    return w;
  };

  test('queued mail is delivered over SMTP with AUTH only when its transaction commits, and its body is then cleared', async () => {
    const smtp = await startSmtp({ disabledCommands: ['STARTTLS'], allowInsecureAuth: true });
    closers.push(() => smtp.close());
    const transport = createTransport({ from: FROM, smtp: smtpConfig(smtp.port, { user: SMTP_USER }) }, tp.dataDir, { env: { TASKFLOW_SMTP_PASSWORD: SMTP_PASSWORD } });
    const { log, lines } = capturedLog();
    // A long poll interval: only the notification can wake the worker in time.
    const w = worker({ transport, log, pollIntervalMs: 600_000 });
    await w.start();
    assert.equal(w.listening, true);

    const client = await tp.platform.control.connect();
    let id: string;
    try {
      await client.query('BEGIN');
      await enqueueMail(client, message('rolled-back'));
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      id = await enqueueMail(client, message(1, { html: '<p>Reset it <a href="https://acme.taskflow.test/reset">here</a></p>' }));
      await client.query('COMMIT');
    } finally {
      client.release();
    }

    const got = await waitFor('delivery', () => smtp.received[0]);
    assert.equal(got.from, 'no-reply@taskflow.test');
    assert.deepEqual(got.to, ['person-1@example.com']);
    assert.equal(got.user, SMTP_USER);
    assert.equal(header(got.raw, 'Subject'), 'Reset your password (1)');
    assert.equal(header(got.raw, 'From'), FROM);
    assert.equal(header(got.raw, 'Auto-Submitted'), 'auto-generated');
    assert.ok(decodedBody(got.raw).includes(message(1).text.trim()), 'the text body arrives whole');
    assert.ok(decodedBody(got.raw).includes('<p>Reset it'), 'and the HTML part');

    const sent = await waitFor('the sent record', async () => {
      const r = await row(id);
      return r.status === 'sent' ? r : undefined;
    });
    assert.equal(sent.body_text, null);
    assert.equal(sent.body_html, null);
    assert.equal(sent.attempts, 1);
    assert.match(sent.message_id ?? '', /^<.+@taskflow\.test>$/);
    const total = await tp.platform.control.query<{ n: number }>('SELECT count(*)::int AS n FROM mail_outbox');
    assert.equal(total.rows[0]?.n, 1, 'the rolled-back message was never queued');
    assert.equal(smtp.received.length, 1);

    // The worker logs once the sent record is committed, so the line may come just after the row says sent.
    const logged = await waitFor('the log line', () => (lines.join('').includes('"msg":"mail sent"') ? lines.join('') : undefined));
    assert.match(logged, /"recipientDomain":"example\.com"/);
    assert.match(logged, /"kind":"password-reset"/);
    for (const secret of [SMTP_PASSWORD, 'person-1@', 'single-use-1', 'Reset it']) assert.ok(!logged.includes(secret), `log holds ${secret}`);
  });

  test('STARTTLS with a self-signed certificate: refused while certificates are checked, delivered when told not to check', async () => {
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
      keySize: 2048,
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }],
    });
    // AUTH is offered only after STARTTLS (allowInsecureAuth is off).
    const smtp = await startSmtp({ key: pems.private, cert: pems.cert });
    closers.push(() => smtp.close());
    const passwordFile = join(tp.dataDir, 'smtp.password');
    writeFileSync(passwordFile, `${SMTP_PASSWORD}\n`, { mode: 0o600 });
    const base = smtpConfig(smtp.port, { user: SMTP_USER, passwordFile, requireTLS: true });

    const strict = createTransport({ from: FROM, smtp: base }, tp.dataDir, { env: {} });
    const refusedId = await enqueueMail(tp.platform.control, message('strict'));
    const strictWorker = worker({ transport: strict, maxAttempts: 2 });
    assert.deepEqual(await strictWorker.runOnce(), { sent: 0, retrying: 1, failed: 0 });
    const refused = await waitFor('giving up', async () => {
      await strictWorker.runOnce();
      const r = await row(refusedId);
      return r.status === 'failed' ? r : undefined;
    });
    assert.match(refused.last_error ?? '', /self[- ]signed certificate/i);
    assert.equal(refused.attempts, 2);
    assert.equal(refused.body_text, null);
    assert.equal(smtp.received.length, 0);

    const lenient = createTransport({ from: FROM, smtp: { ...base, rejectUnauthorized: false } }, tp.dataDir, { env: {} });
    const okId = await enqueueMail(tp.platform.control, message('lenient'));
    assert.deepEqual(await worker({ transport: lenient }).runOnce(), { sent: 1, retrying: 0, failed: 0 });
    assert.equal((await row(okId)).status, 'sent');
    assert.equal(smtp.received.length, 1);
    const [upgraded] = smtp.received;
    assert.ok(upgraded);
    assert.equal(upgraded.secure, true, 'the session was upgraded to TLS');
    assert.equal(upgraded.user, SMTP_USER);

    // requireTLS against a server that offers no STARTTLS: never sent in the clear.
    const plain = await startSmtp({ disabledCommands: ['STARTTLS'], allowInsecureAuth: true });
    closers.push(() => plain.close());
    const noTls = createTransport({ from: FROM, smtp: { ...base, port: plain.port, rejectUnauthorized: false } }, tp.dataDir, { env: {} });
    const clearId = await enqueueMail(tp.platform.control, message('clear'));
    await worker({ transport: noTls, maxAttempts: 1 }).runOnce();
    const clear = await row(clearId);
    assert.equal(clear.status, 'failed');
    assert.match(clear.last_error ?? '', /STARTTLS/i);
    assert.equal(plain.received.length, 0);
  });

  test('an SMTP server that is down: retried with backoff, then failed with a clear error, and the worker carries on', async () => {
    const probe = await startSmtp({ disabledCommands: ['STARTTLS'], authOptional: true });
    const port = probe.port;
    await probe.close();
    const transport = createTransport({ from: FROM, smtp: smtpConfig(port) }, tp.dataDir, { env: {} });
    const { log, lines } = capturedLog();
    const w = worker({ transport, log, maxAttempts: 3, retryBaseMs: 50, pollIntervalMs: 50 });

    const id = await enqueueMail(tp.platform.control, message('down'));
    assert.deepEqual(await w.runOnce(), { sent: 0, retrying: 1, failed: 0 });
    const first = await row(id);
    assert.equal(first.status, 'queued');
    assert.equal(first.attempts, 1);
    assert.match(first.last_error ?? '', /ECONNREFUSED/);
    assert.ok(first.next_attempt_at > first.created_at, 'the next attempt waits');
    assert.notEqual(first.body_text, null, 'the body is kept for the retry');

    await w.start();
    const failed = await waitFor('giving up', async () => {
      const r = await row(id);
      return r.status === 'failed' ? r : undefined;
    });
    assert.equal(failed.attempts, 3);
    assert.match(failed.last_error ?? '', /ECONNREFUSED 127\.0\.0\.1:\d+/);
    assert.equal(failed.body_text, null);
    // Logged once the failed record is committed: the line may come just after the row says failed.
    const logged = await waitFor('the log line', () => (lines.join('').includes('"msg":"mail could not be delivered; gave up"') ? lines.join('') : undefined));
    assert.match(logged, /"msg":"mail delivery failed; will retry"/);

    const outbox = await runCli(['mail', 'outbox', '--json'], { env: { TASKFLOW_DATA_DIR: tp.dataDir } });
    assert.equal(outbox.code, 0, outbox.stderr);
    const summary = JSON.parse(outbox.stdout) as { counts: Record<string, number>; failed: { id: string; error: string; attempts: number }[] };
    assert.deepEqual(summary.counts, { queued: 0, sending: 0, sent: 0, failed: 1 });
    const [failedEntry] = summary.failed;
    assert.ok(failedEntry);
    assert.equal(failedEntry.id, id);
    assert.match(failedEntry.error, /ECONNREFUSED/);
    const table = await runCli(['mail', 'outbox'], { env: { TASKFLOW_DATA_DIR: tp.dataDir } });
    assert.match(table.stdout, /^failed: +1$/m);
    assert.match(table.stdout, /ECONNREFUSED/);

    // The server comes back on the same port: the same worker delivers the next message.
    const smtp = await startSmtp({ disabledCommands: ['STARTTLS'], authOptional: true }, port);
    closers.push(() => smtp.close());
    const nextId = await enqueueMail(tp.platform.control, message('back'));
    await waitFor('delivery after the outage', () => smtp.received[0]);
    await waitFor('the sent record', async () => ((await row(nextId)).status === 'sent' ? true : undefined));
  });

  test('two workers on one outbox never deliver a message twice', async () => {
    const smtp = await startSmtp({
      disabledCommands: ['STARTTLS'],
      authOptional: true,
      // A little latency, so that both workers are busy at once.
      onRcptTo(_address, _session, callback) {
        setTimeout(callback, 5);
      },
    });
    closers.push(() => smtp.close());
    const count = 40;
    for (let i = 0; i < count; i++) await enqueueMail(tp.platform.control, message(i));
    const secondPool = new pg.Pool({ ...clientConfig(tp.platform.target, CONTROL_DB), max: 2 });
    closers.push(() => secondPool.end());
    const config = { from: FROM, smtp: smtpConfig(smtp.port) };
    const a = worker({ transport: createTransport(config, tp.dataDir, { env: {} }) });
    const b = worker({ transport: createTransport(config, tp.dataDir, { env: {} }), control: secondPool });
    const [ra, rb] = await Promise.all([a.runOnce(), b.runOnce()]);
    assert.equal(ra.sent + rb.sent, count);
    assert.ok(ra.sent > 0 && rb.sent > 0, `both workers took part (${ra.sent} + ${rb.sent})`);
    const subjects = smtp.received.map((m) => header(m.raw, 'Subject'));
    assert.equal(subjects.length, count);
    assert.equal(new Set(subjects).size, count, 'no message was delivered twice');
    const rows = await tp.platform.control.query<{ status: string; attempts: number; n: number }>('SELECT status, attempts, count(*)::int AS n FROM mail_outbox GROUP BY 1, 2');
    assert.deepEqual(rows.rows, [{ status: 'sent', attempts: 1, n: count }]);
  });

  test('a message whose worker died is taken over when its claim ends, or failed if that was its last attempt', async () => {
    const smtp = await startSmtp({ disabledCommands: ['STARTTLS'], authOptional: true });
    closers.push(() => smtp.close());
    const orphan = await enqueueMail(tp.platform.control, message('orphan'));
    const lastTry = await enqueueMail(tp.platform.control, message('last-try'));
    const claim = "UPDATE mail_outbox SET status = 'sending', attempts = $2, claimed_by = gen_random_uuid(), claimed_until = now() + $3::interval WHERE id = $1";
    await tp.platform.control.query(claim, [orphan, 1, '1 hour']);
    await tp.platform.control.query(claim, [lastTry, 3, '1 hour']);
    const w = worker({ transport: createTransport({ from: FROM, smtp: smtpConfig(smtp.port) }, tp.dataDir, { env: {} }), maxAttempts: 3 });
    assert.deepEqual(await w.runOnce(), { sent: 0, retrying: 0, failed: 0 }, 'a live claim is left alone');

    await tp.platform.control.query("UPDATE mail_outbox SET claimed_until = now() - interval '1 second'");
    await w.runOnce();
    const taken = await row(orphan);
    assert.equal(taken.status, 'sent');
    assert.equal(taken.attempts, 2);
    const given = await row(lastTry);
    assert.equal(given.status, 'failed');
    assert.match(given.last_error ?? '', /stopped before it finished/);
    assert.equal(given.body_text, null);
    assert.deepEqual(smtp.received.map((m) => m.to), [['person-orphan@example.com']]);

    await tp.platform.control.query("UPDATE mail_outbox SET finished_at = now() - interval '31 days' WHERE id = $1", [orphan]);
    assert.equal(await pruneOutbox(tp.platform.control, 30), 1);
    assert.equal(await pruneOutbox(tp.platform.control, 30), 0);
  });

  test('a malformed message is refused before it is queued', async () => {
    await assert.rejects(enqueueMail(tp.platform.control, message('bad', { to: 'victim@example.com\r\nBcc: all@example.com' })), /invalid mail message: to:/);
    await assert.rejects(enqueueMail(tp.platform.control, message('bad', { subject: 'Hi\nBcc: all@example.com' })), /subject: must be one line/);
    const n = await tp.platform.control.query<{ n: number }>('SELECT count(*)::int AS n FROM mail_outbox');
    assert.equal(n.rows[0]?.n, 0);
  });

  test('with no SMTP configured, mail lands in the local mailbox and taskflow mail list/show shows it', async () => {
    assert.equal(tp.config.mail.smtp, undefined);
    const mail = await startMail(tp.platform, { pollIntervalMs: 100 });
    closers.push(() => mail.close());
    assert.equal(mail.transport.kind, 'mailbox');
    const link = `https://acme.taskflow.test/setup?token=${'t0k3n'.repeat(20)}`;
    const id = await enqueueMail(tp.platform.control, {
      to: 'admin@acme.example',
      subject: 'Set up your TaskFlow account',
      text: `Welcome!\n\nChoose your password here:\n${link}\n`,
      kind: 'setup',
    });
    const [entry] = await waitFor('the mailbox entry', async () => {
      const entries = await new LocalMailbox(mailboxDir(tp.dataDir)).list();
      return entries.length > 0 ? entries : undefined;
    });
    assert.ok(entry);
    await waitFor('the sent record', async () => ((await row(id)).status === 'sent' ? true : undefined));
    assert.equal((await row(id)).body_text, null);

    const env = { TASKFLOW_DATA_DIR: tp.dataDir };
    const list = await runCli(['mail', 'list', '--json'], { env });
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout) as { id: string; to: string; subject: string; kind: string }[];
    assert.deepEqual(
      listed.map((m) => [m.id, m.to, m.subject, m.kind]),
      [[entry.id, 'admin@acme.example', 'Set up your TaskFlow account', 'setup']],
    );
    const table = await runCli(['mail', 'list'], { env });
    assert.match(table.stdout, /^ID\s+DATE\s+TO\s+SUBJECT$/m);
    const line = table.stdout.split('\n').find((l) => l.startsWith(entry.id));
    assert.match(line ?? '', /^\S+\s+\S+\s+admin@acme\.example\s+Set up your TaskFlow account$/);

    const shown = await runCli(['mail', 'show', entry.id], { env });
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^subject: +Set up your TaskFlow account$/m);
    assert.match(shown.stdout, /^to: +admin@acme\.example$/m);
    assert.ok(shown.stdout.includes(`\n${link}\n`), 'the link is printed whole, ready to follow');
    const latest = await runCli(['mail', 'show', 'latest', '--json'], { env });
    const json = JSON.parse(latest.stdout) as { id: string; text: string; emlPath: string };
    assert.equal(json.id, entry.id);
    assert.ok(json.text.includes(link));
    assert.equal(json.emlPath, join(mailboxDir(tp.dataDir), `${entry.id}.eml`));

    const traversal = await runCli(['mail', 'show', '../state'], { env });
    assert.equal(traversal.code, 2);
    assert.match(traversal.stderr, /is not a message id/);
    const missing = await runCli(['mail', 'show', '20200101-000000-00000000'], { env });
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /no message '20200101-000000-00000000'/);
  });
});
