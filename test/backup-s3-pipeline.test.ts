/**
 * The backup pipeline on an S3 repository (s3rver on a loopback port): zstd → age → SHA-256 →
 * bucket and back, the stored object opened with the standard tools, a verified copy from a
 * filesystem repository, and the `s3` kind in the configuration.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';
import { generateIdentity, parseIdentity, parseRecipient } from '../src/platform/backup/age-keys.ts';
import { openRepositories } from '../src/platform/backup/config.ts';
import { isBackupError } from '../src/platform/backup/errors.ts';
import { FilesystemRepository } from '../src/platform/backup/fs-repository.ts';
import { manifestName, readManifest } from '../src/platform/backup/manifest.ts';
import { copyBackupObject, readBackupObject, verifyBackupObject, writeBackupObject } from '../src/platform/backup/pipeline.ts';
import { S3Repository } from '../src/platform/backup/s3-repository.ts';
import { ageUnavailable } from './backup-fixtures.ts';
import { s3rverUnavailable, startS3rver, type TestS3 } from './backup-s3-fixtures.ts';
import { tempDir } from './helpers/platform.ts';

const keys = generateIdentity();
const recipients = [parseRecipient(keys.recipient)];
const identities = [parseIdentity(keys.identity)];

/** A destination that keeps what it receives. */
function collector(): { sink: Writable; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  return {
    sink: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    }),
    bytes: () => Buffer.concat(chunks),
  };
}

describe('backup pipeline on an s3 repository', { skip: s3rverUnavailable() ?? false }, () => {
  let s3: TestS3;
  let bucket: S3Repository;
  let dir: string;
  let local: FilesystemRepository;
  before(async () => {
    s3 = await startS3rver();
    bucket = s3.repository({ name: 'offsite', prefix: 'taskflow/prod' });
    dir = tempDir('s3-pipeline');
    mkdirSync(join(dir, 'local'));
    local = new FilesystemRepository({ name: 'local', region: 'fra1', jurisdiction: 'DE', path: join(dir, 'local') });
  });
  after(async () => {
    await bucket.close();
    await s3.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test('round trip: the object and its manifest land in the bucket and read back to the same bytes', async () => {
    // Text-like (compressible) and large enough for a multipart upload of the stored bytes.
    const noise = randomBytes(8 * 400_000).toString('hex');
    const plain = Buffer.from(Array.from({ length: 400_000 }, (_, i) => `${i}\ttask ${i % 97}\t${noise.slice(16 * i, 16 * i + 16)}\n`).join(''));
    const name = 'exports/acme/20261123T020000Z.dump';
    const manifest = await writeBackupObject({ repository: bucket, name, kind: 'export', source: Readable.from([plain]), recipients });
    const stored = s3.storedBytes(`taskflow/prod/${name}`);
    assert.ok(stored, 'stored under the prefix');
    assert.ok(stored.length > 5 * 1024 * 1024, `${stored.length} bytes: more than one 5 MiB part`);
    assert.equal(manifest.sizes.stored, stored.length);
    assert.equal(manifest.sha256, createHash('sha256').update(stored).digest('hex'));
    assert.deepEqual(await readManifest(bucket, name), manifest);
    const out = collector();
    await readBackupObject({ repository: bucket, name, identities, destination: out.sink });
    assert.ok(out.bytes().equals(plain));
    assert.equal((await verifyBackupObject({ repository: bucket, name })).ok, true);
  });

  test('the stored object opens with the standard tools: age -d | zstd -d', { skip: ageUnavailable() ?? (spawnSync('zstd', ['--version']).status === 0 ? false : 'zstd is not installed') }, async () => {
    const plain = Buffer.from('COPY tasks (id, title) FROM stdin;\n1\tfirst\n\\.\n'.repeat(1000));
    await writeBackupObject({ repository: bucket, name: 'exports/acme/standard', kind: 'export', source: Readable.from([plain]), recipients });
    writeFileSync(join(dir, 'key.txt'), `${keys.identity}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'object'), s3.storedBytes('taskflow/prod/exports/acme/standard') ?? Buffer.alloc(0));
    const out = spawnSync('bash', ['-o', 'pipefail', '-c', 'age -d -i "$1" "$2" | zstd -d -q -c', 'decode', join(dir, 'key.txt'), join(dir, 'object')], { maxBuffer: 16 * 1024 * 1024 });
    assert.equal(out.status, 0, out.stderr.toString());
    assert.deepEqual(out.stdout, plain);
  });

  test('a source that fails leaves neither object nor manifest in the bucket', async () => {
    const source = Readable.from(
      (async function* () {
        for (let i = 0; i < 8; i++) {
          yield randomBytes(1024 * 1024);
          await new Promise((resolve) => setImmediate(resolve));
        }
        throw new Error('pg_dump exited with status 1');
      })(),
    );
    await assert.rejects(writeBackupObject({ repository: bucket, name: 'exports/acme/broken', kind: 'export', source, recipients }), /pg_dump exited with status 1/);
    assert.equal(await bucket.stat('exports/acme/broken'), null);
    assert.equal(await bucket.stat(manifestName('exports/acme/broken')), null);
  });

  test('a verified copy from a filesystem repository to the bucket', async () => {
    const name = 'snapshots/20261123T020000Z.tar';
    const plain = randomBytes(7 * 1024 * 1024);
    const manifest = await writeBackupObject({ repository: local, name, kind: 'snapshot', source: Readable.from([plain]), recipients });
    const copy = await copyBackupObject({ from: local, to: bucket, name });
    assert.equal(copy.ok, true);
    assert.equal(copy.repository, 'offsite');
    assert.equal(copy.sha256, manifest.sha256);
    assert.deepEqual(await readManifest(bucket, name), manifest);
    assert.ok(s3.storedBytes(`taskflow/prod/${name}`)?.equals(readFileSync(join(dir, 'local', name))), 'the same stored bytes');
    const out = collector();
    await readBackupObject({ repository: bucket, name, identities, destination: out.sink });
    assert.ok(out.bytes().equals(plain));
  });

  test('a corrupted object is not copied to the bucket', async () => {
    const name = 'snapshots/rotten.tar';
    await writeBackupObject({ repository: local, name, kind: 'snapshot', source: Readable.from([randomBytes(500_000)]), recipients });
    const path = join(dir, 'local', name);
    const bytes = readFileSync(path);
    bytes[1000] = (bytes[1000] as number) ^ 0xff;
    writeFileSync(path, bytes);
    await assert.rejects(copyBackupObject({ from: local, to: bucket, name }), (err: unknown) => {
      assert.ok(isBackupError(err, 'checksum-mismatch'), String(err));
      return true;
    });
    assert.equal(await bucket.stat(name), null);
    assert.equal(await bucket.stat(manifestName(name)), null);
  });
});

describe('s3 repositories in the configuration', () => {
  const keysText = generateIdentity();
  const s3 = { name: 'offsite', kind: 's3', region: 'fsn1', jurisdiction: 'DE', bucket: 'taskflow-backups', path: '/taskflow/prod/', endpoint: 'https://fsn1.your-objectstorage.com' };
  let dir: string;
  before(() => {
    dir = tempDir('s3-config');
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function load(backup: Record<string, unknown>): ReturnType<typeof loadConfig> {
    const file = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify({ backup: { allowedJurisdictions: ['DE'], recipients: [keysText.recipient], ...backup } }));
    return loadConfig({ env: {}, configFile: file });
  }

  function refused(backup: Record<string, unknown>, pattern: RegExp): void {
    assert.throws(
      () => load(backup),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.match(err.message, pattern);
        return true;
      },
    );
  }

  test('an s3 repository opens as the S3 driver, its path the key prefix', () => {
    const { primary } = openRepositories(load({ repositories: [s3] }).backup);
    assert.ok(primary instanceof S3Repository);
    assert.equal(primary.kind, 's3');
    assert.equal(primary.location, 'https://fsn1.your-objectstorage.com/taskflow-backups/taskflow/prod/');
    const aws = openRepositories(load({ repositories: [{ ...s3, endpoint: undefined, region: 'eu-central-1', path: '/' }] }).backup).primary;
    assert.equal(aws?.location, 's3://taskflow-backups/');
  });

  test('the jurisdiction rule holds for s3 repositories too', () => {
    refused({ repositories: [{ ...s3, jurisdiction: 'US' }] }, /backup\.repositories\.0\.jurisdiction: repository 'offsite' is in US, outside backup\.allowedJurisdictions \(DE\)/);
  });

  test('wrong or missing keys are refused, naming the key', () => {
    refused({ repositories: [{ ...s3, bucket: undefined }] }, /backup\.repositories\.0\.bucket: required for an s3 repository/);
    refused({ repositories: [{ ...s3, host: 'backup.example.de' }] }, /backup\.repositories\.0\.host: only sftp repositories take it/);
    refused(
      { repositories: [{ name: 'local', kind: 'filesystem', region: 'fra1', jurisdiction: 'DE', path: '/srv/backup', bucket: 'x-y-z', partSizeMiB: 8 }] },
      /backup\.repositories\.0\.bucket: only s3 repositories take it[\s\S]*backup\.repositories\.0\.partSizeMiB: only s3 repositories take it/,
    );
    refused({ repositories: [{ ...s3, path: 'taskflow/../etc' }] }, /backup\.repositories\.0\.path: the key prefix of an s3 repository .* contains \. or \.\. segments/);
    refused({ repositories: [{ ...s3, endpoint: 'https://key:secret@fsn1.your-objectstorage.com' }] }, /backup\.repositories\.0\.endpoint/);
    refused({ repositories: [{ ...s3, accessKeyId: 'AKIA…' }] }, /accessKeyId/);
  });
});
