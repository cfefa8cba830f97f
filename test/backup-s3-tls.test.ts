/**
 * An S3 repository behind HTTPS with a certificate from a private CA (s3rver behind a TLS proxy):
 * trusted through the repository's caFile, refused without it, and usable by the WAL archiver,
 * which runs as the PostgreSQL OS user without TaskFlow's environment (its copy of the CA).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { after, before, describe, test } from 'node:test';
import { openRepository, type RepositoryConfig } from '../src/platform/backup/config.ts';
import { isBackupError } from '../src/platform/backup/errors.ts';
import { removeUnusedSecretCopies, repositoryForOsUser } from '../src/platform/backup/physical/wal-settings.ts';
import { makeAuthority, makeSelfSigned } from '../src/platform/tls/certificates.ts';
import { s3rverUnavailable, startS3rver, type TestS3 } from './backup-s3-fixtures.ts';
import { tempDir } from './helpers/platform.ts';

describe('s3 repository with a private CA', { skip: s3rverUnavailable() ?? false }, () => {
  let s3: TestS3;
  let dir: string;
  let caFile: string;
  const closing: { close(): Promise<void> }[] = [];

  before(async () => {
    const authority = await makeAuthority('TaskFlow test S3 CA');
    const leaf = await makeSelfSigned(['127.0.0.1'], authority);
    s3 = await startS3rver('taskflow-tls', { tls: leaf });
    dir = tempDir('s3-tls');
    caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, authority.cert);
  });
  after(async () => {
    for (const r of closing) await r.close();
    await s3.cleanup();
  });

  const config = (extra: Partial<RepositoryConfig> = {}): RepositoryConfig => ({
    name: 'tls',
    kind: 's3',
    region: 'us-east-1',
    jurisdiction: 'DE',
    path: 'repo',
    bucket: 'taskflow-tls',
    endpoint: s3.endpoint,
    credentialsFile: s3.credentialsFile,
    connectTimeoutSeconds: 2,
    ...extra,
  });
  const opened = (c: RepositoryConfig) => {
    const repository = openRepository(c);
    closing.push(repository);
    return repository;
  };

  test('with its caFile the https endpoint is trusted; without it the certificate is refused, naming the repository', async () => {
    assert.match(s3.endpoint, /^https:/);
    const trusted = opened(config({ caFile }));
    await trusted.put('wal/one', Readable.from([Buffer.from('segment bytes')]));
    assert.equal(await text(await trusted.get('wal/one')), 'segment bytes');
    assert.deepEqual((await trusted.list('wal/')).map((o) => o.name), ['wal/one']);

    await assert.rejects(opened(config()).stat('wal/one'), (err: unknown) => {
      assert.ok(isBackupError(err), String(err));
      assert.match(err.message, /repository tls .*certificate/i);
      return true;
    });
    const notPem = join(dir, 'not-a-cert.pem');
    writeFileSync(notPem, 'hello');
    await assert.rejects(opened(config({ caFile: notPem })).stat('wal/one'), /caFile .*not-a-cert\.pem holds no PEM certificate/);
  });

  test("the WAL archiver's copy of the repository carries its own copy of the CA, and a later install without caFile removes it", async () => {
    const copies = join(dir, 'archiver');
    mkdirSync(copies, { mode: 0o700 });
    const forArchiver = repositoryForOsUser(config({ caFile }), copies, null, { unattended: true });
    assert.equal(forArchiver.caFile, join(copies, 'tls.s3_ca.pem'));
    assert.equal(statSync(forArchiver.caFile).mode & 0o777, 0o600);
    assert.equal(await text(await opened(forArchiver).get('wal/one')), 'segment bytes');

    const without = repositoryForOsUser(config(), copies, null, { unattended: true });
    removeUnusedSecretCopies(copies, without);
    assert.deepEqual(readdirSync(copies), ['tls.s3_credentials']);
  });
});
