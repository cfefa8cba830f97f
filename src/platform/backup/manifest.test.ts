import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isBackupError } from './errors.ts';
import { encodeManifest, MANIFEST_FORMAT, manifestName, parseManifest, type BackupManifest } from './manifest.ts';

const manifest: BackupManifest = {
  format: MANIFEST_FORMAT,
  object: 'exports/acme/1.dump',
  kind: 'export',
  created: '2026-11-23T02:00:00.000Z',
  sizes: { raw: 1000, compressed: 300, stored: 520 },
  sha256: 'a'.repeat(64),
  compression: { algorithm: 'zstd', level: 3 },
  encryption: { format: 'age-encryption.org/v1', recipients: ['sha256:0123456789abcdef'] },
  source: { tenant: 'acme', database: 'tenant_acme', pgMajor: 17, lsn: null },
};

test('a manifest round-trips through its JSON form and sits beside its object', () => {
  assert.deepEqual(parseManifest(encodeManifest(manifest), manifest.object, 'test'), manifest);
  assert.equal(manifestName('exports/acme/1.dump'), 'exports/acme/1.dump.manifest.json');
});

test('a manifest that is not JSON, incomplete, or about another object is refused', () => {
  const invalid = (bytes: Buffer, object: string, pattern: RegExp): void => {
    assert.throws(() => parseManifest(bytes, object, 'object x'), (err: unknown) => {
      assert.ok(isBackupError(err, 'manifest-invalid'));
      assert.match(err.message, pattern);
      return true;
    });
  };
  invalid(Buffer.from('{'), manifest.object, /^object x: the manifest is not JSON/);
  invalid(Buffer.from(JSON.stringify({ ...manifest, sha256: 'xyz' })), manifest.object, /\/sha256/);
  invalid(Buffer.from(JSON.stringify({ ...manifest, format: 'other/v9' })), manifest.object, /\/format/);
  invalid(Buffer.from(JSON.stringify({ ...manifest, extra: 1 })), manifest.object, /not valid/);
  invalid(Buffer.from(JSON.stringify({ ...manifest, sizes: { raw: 1, compressed: 1 } })), manifest.object, /sizes/);
  invalid(encodeManifest(manifest), 'exports/acme/2.dump', /describes exports\/acme\/1\.dump, not exports\/acme\/2\.dump/);
});
