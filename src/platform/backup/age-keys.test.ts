import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  generateIdentity,
  IDENTITY_ENV,
  IDENTITY_FILE_ENV,
  identitiesFromText,
  loadIdentities,
  parseIdentity,
  parseRecipient,
  recipientFingerprint,
} from './age-keys.ts';
import { isBackupError } from './errors.ts';

// The example pair of the age specification (c2sp.org/age): the identity's recipient is derived with X25519.
const SPEC_IDENTITY = 'AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX';
const SPEC_RECIPIENT = 'age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj';

test('an identity yields the recipient the age specification gives for it', () => {
  const identity = parseIdentity(SPEC_IDENTITY);
  assert.equal(identity.recipient.text, SPEC_RECIPIENT);
  assert.deepEqual(parseRecipient(SPEC_RECIPIENT).raw, identity.recipient.raw);
});

test('generated keys have the age-keygen forms and belong together', () => {
  const { identity, recipient } = generateIdentity();
  assert.match(identity, /^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
  assert.match(recipient, /^age1[02-9ac-hj-np-z]{58}$/);
  assert.equal(parseIdentity(identity).recipient.text, recipient);
});

test('malformed keys are refused with an age-key error that never echoes a secret', () => {
  const refused = (fn: () => unknown, pattern: RegExp): void => {
    assert.throws(fn, (err: unknown) => {
      assert.ok(isBackupError(err, 'age-key'));
      assert.match(err.message, pattern);
      assert.ok(!err.message.includes('GFPYYSJZ'), 'no key material in the message');
      return true;
    });
  };
  refused(() => parseRecipient(SPEC_IDENTITY), /identity .* where a recipient .* belongs/);
  refused(() => parseRecipient(SPEC_RECIPIENT.slice(0, -1) + 'q'), /checksum/);
  refused(() => parseRecipient(SPEC_RECIPIENT.toUpperCase()), /X25519 recipient/);
  refused(() => parseRecipient('age1pq1x34nzsvr0rxj'), /recipient/);
  refused(() => parseIdentity(SPEC_IDENTITY.toLowerCase()), /identity/);
  refused(() => parseIdentity(SPEC_IDENTITY.slice(0, -1) + 'Y'), /checksum/);
});

test('identity text follows the age-keygen file format: comments and blank lines ignored', () => {
  const other = generateIdentity();
  const text = `# created: 2026-01-01T00:00:00Z\n# public key: ${SPEC_RECIPIENT}\n${SPEC_IDENTITY}\n\n${other.identity}\r\n`;
  const identities = identitiesFromText(text, 'test');
  assert.deepEqual(
    identities.map((i) => i.recipient.text),
    [SPEC_RECIPIENT, other.recipient],
  );
  assert.throws(() => identitiesFromText('# nothing here\n', 'file x'), /file x holds no age identity/);
  assert.throws(() => identitiesFromText(`${SPEC_IDENTITY}\nnonsense\n`, 'file x'), /file x, line 2: not an age identity/);
});

test('a restore takes its identity from a file, or from the environment', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tf-age-keys-'));
  try {
    const file = join(dir, 'key.txt');
    const other = generateIdentity();
    writeFileSync(file, `${other.identity}\n`, { mode: 0o600 });
    assert.equal(loadIdentities({ file, env: {} })[0]?.recipient.text, other.recipient);
    assert.equal(loadIdentities({ env: { [IDENTITY_ENV]: SPEC_IDENTITY } })[0]?.recipient.text, SPEC_RECIPIENT);
    assert.equal(loadIdentities({ env: { [IDENTITY_FILE_ENV]: file } })[0]?.recipient.text, other.recipient);
    // The explicit file wins over the environment.
    assert.equal(loadIdentities({ file, env: { [IDENTITY_ENV]: SPEC_IDENTITY } })[0]?.recipient.text, other.recipient);
    assert.throws(() => loadIdentities({ env: {} }), /no age identity given/);
    assert.throws(() => loadIdentities({ file: join(dir, 'missing'), env: {} }), /cannot read the age identity file .*missing: ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a recipient fingerprint is short, stable and not the key', () => {
  const fp = recipientFingerprint(SPEC_RECIPIENT);
  assert.match(fp, /^sha256:[0-9a-f]{16}$/);
  assert.equal(recipientFingerprint(` ${SPEC_RECIPIENT}\n`), fp);
  assert.notEqual(recipientFingerprint(generateIdentity().recipient), fp);
});
