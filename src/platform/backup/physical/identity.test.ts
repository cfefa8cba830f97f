import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateIdentity, IDENTITY_ENV } from '../age-keys.ts';
import { loadRestoreIdentity } from './identity.ts';

test('the identity text given to restore_command is the key as age-keygen writes it', () => {
  const a = generateIdentity();
  const b = generateIdentity();
  const loaded = loadRestoreIdentity({ env: { [IDENTITY_ENV]: `# two keys\n${a.identity}\n\n${b.identity}\n` } });
  assert.equal(loaded.text, `${a.identity}\n${b.identity}\n`);
  assert.deepEqual(loaded.identities.map((i) => i.recipient.text), [a.recipient, b.recipient]);
});

test('no identity: the message says where one is looked for', () => {
  assert.throws(() => loadRestoreIdentity({ env: {} }), /TASKFLOW_BACKUP_IDENTITY/);
});
