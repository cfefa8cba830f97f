import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isMailboxId, LocalMailbox } from './mailbox.ts';

const root = mkdtempSync(join(tmpdir(), 'tf-mailbox-'));
after(() => {
  rmSync(root, { recursive: true, force: true });
});

const meta = { from: 'TaskFlow <no-reply@localhost>', to: 'ada@example.com', subject: 'Welcome', kind: 'setup', tenantId: null, messageId: '<1@localhost>' };

test('an empty or missing mailbox lists nothing', async () => {
  assert.deepEqual(await new LocalMailbox(join(root, 'never')).list(), []);
  assert.equal(await new LocalMailbox(join(root, 'never')).read('20260101-000000-00000000'), null);
});

test('messages are stored private, listed in order and read back whole', async () => {
  const box = new LocalMailbox(join(root, 'mail'));
  const first = await box.deliver(Buffer.from('Subject: Welcome\r\n\r\nhello\r\n'), meta, { text: 'hello https://x.example/?t=1', html: null });
  const second = await box.deliver(Buffer.from('Subject: Again\r\n\r\nagain\r\n'), { ...meta, subject: 'Again' }, { text: 'again', html: '<p>again</p>' });
  assert.ok(isMailboxId(first.id));
  assert.equal(statSync(box.dir).mode & 0o777, 0o700);
  assert.equal(statSync(join(box.dir, `${first.id}.eml`)).mode & 0o777, 0o600);
  assert.equal(statSync(join(box.dir, `${first.id}.json`)).mode & 0o777, 0o600);
  assert.deepEqual((await box.list()).map((e) => e.subject), ['Welcome', 'Again']);
  const read = await box.read(first.id);
  assert.ok(read);
  assert.equal(read.text, 'hello https://x.example/?t=1');
  assert.equal(read.html, null);
  assert.equal(readFileSync(read.emlPath, 'utf8'), 'Subject: Welcome\r\n\r\nhello\r\n');
  assert.equal((await box.read(second.id))?.html, '<p>again</p>');
});

test('ids cannot name files outside the mailbox, and broken entries are skipped', async () => {
  const box = new LocalMailbox(join(root, 'mail'));
  for (const id of ['../state', '../../etc/passwd', '20260101-000000-0000000g', '']) {
    assert.equal(isMailboxId(id), false, id);
    assert.equal(await box.read(id), null);
  }
  writeFileSync(join(box.dir, '20260101-000000-00000000.json'), '{ half-written');
  assert.equal((await box.list()).length, 2);
});
