/**
 * The S3 repository driver against a real S3-compatible server (s3rver on a loopback port): the
 * behaviours the filesystem and SFTP repositories are held to, plus what is particular to S3
 * (multipart uploads, paged listings, credentials, a missing bucket).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { isBackupError, type BackupErrorCode } from '../src/platform/backup/errors.ts';
import type { S3Repository } from '../src/platform/backup/s3-repository.ts';
import { S3RVER_KEY, s3rverUnavailable, startS3rver, type TestS3 } from './backup-s3-fixtures.ts';

async function readAll(stream: Readable): Promise<Buffer> {
  return Buffer.concat((await stream.toArray()) as Buffer[]);
}

/** A source that yields `bytes` and then fails, like a dump tool that dies halfway. */
function failingSource(bytes: number): Readable {
  return Readable.from(
    (async function* () {
      for (let sent = 0; sent < bytes; sent += 1024 * 1024) {
        yield randomBytes(Math.min(1024 * 1024, bytes - sent));
        await new Promise((resolve) => setImmediate(resolve));
      }
      throw new Error('the source broke');
    })(),
  );
}

function rejectsWith(code: BackupErrorCode, check?: (err: Error) => void): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(isBackupError(err, code), `expected ${code}, got ${String(err)}`);
    check?.(err);
    return true;
  };
}

describe('s3 repository', { skip: s3rverUnavailable() ?? false }, () => {
  let s3: TestS3;
  let repo: S3Repository;
  const opened: S3Repository[] = [];
  const open = (options: Parameters<TestS3['repository']>[0] = {}): S3Repository => {
    const r = s3.repository(options);
    opened.push(r);
    return r;
  };
  before(async () => {
    s3 = await startS3rver();
    repo = open();
  });
  after(async () => {
    for (const r of opened) await r.close();
    await s3.cleanup();
  });

  test('put, stat, get, list and delete one object, stored under the prefix as the exact bytes', async () => {
    const data = randomBytes(100_000);
    assert.deepEqual(await repo.put('exports/acme/1.dump', Readable.from([data])), { size: data.length });
    const info = await repo.stat('exports/acme/1.dump');
    assert.equal(info?.size, data.length);
    assert.ok(Math.abs(info.modified.getTime() - Date.now()) < 60_000);
    assert.deepEqual(await readAll(await repo.get('exports/acme/1.dump')), data);
    assert.deepEqual(s3.storedBytes('repo/exports/acme/1.dump'), data, 'the key is <prefix>/<name>, the bytes unchanged');
    assert.deepEqual(
      (await repo.list()).map((o) => o.name),
      ['exports/acme/1.dump'],
    );
    assert.equal(await repo.delete('exports/acme/1.dump'), true);
    assert.equal(await repo.delete('exports/acme/1.dump'), false);
    assert.equal(await repo.stat('exports/acme/1.dump'), null);
    await assert.rejects(
      repo.get('exports/acme/1.dump'),
      rejectsWith('object-not-found', (err) => {
        assert.ok(err.message.includes('exports/acme/1.dump') && err.message.includes(`repository ${repo.name}`), err.message);
      }),
    );
  });

  test('an empty object is an object', async () => {
    await repo.put('empty', Readable.from([]));
    assert.equal((await repo.stat('empty'))?.size, 0);
    assert.equal((await readAll(await repo.get('empty'))).length, 0);
    await repo.delete('empty');
  });

  test('list pages through the bucket, filters by prefix, sorts, and shows only what object names can reach', async () => {
    const paged = open({ listPageSize: 2 });
    for (const name of ['wal/b', 'wal/a', 'exports/x/1', 'exports/y/1', 'snapshots/s1']) await repo.put(name, Readable.from([Buffer.from(name)]));
    // Keys written by other tools: outside the prefix, or not reachable by any object name.
    const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY } });
    for (const key of ['other/x', 'repo/wal/.a.tmp-1', 'repo/wal/-dash']) await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'foreign' }));
    client.destroy();
    assert.deepEqual(
      (await paged.list()).map((o) => o.name),
      ['exports/x/1', 'exports/y/1', 'snapshots/s1', 'wal/a', 'wal/b'],
    );
    assert.deepEqual(
      (await paged.list('wal/')).map((o) => [o.name, o.size]),
      [
        ['wal/a', 5],
        ['wal/b', 5],
      ],
    );
    assert.deepEqual(
      (await paged.list('exports/x')).map((o) => o.name),
      ['exports/x/1'],
    );
    assert.deepEqual(await paged.list('nothing/'), []);
    assert.ok(s3.requests().filter((line) => line.includes('continuation-token=')).length >= 2, 'listing went through several pages');
    for (const o of await repo.list()) await repo.delete(o.name);
  });

  test('a replacing put is atomic: a failed upload, single or multipart, leaves the old object and is aborted', async () => {
    await repo.put('control/latest', Readable.from([Buffer.from('version 1')]));
    for (const bytes of [300_000, 12 * 1024 * 1024]) {
      await assert.rejects(repo.put('control/latest', failingSource(bytes)), /the source broke/);
      assert.equal((await readAll(await repo.get('control/latest'))).toString(), 'version 1', `after failing at ${bytes} bytes`);
      await assert.rejects(repo.put('control/new', failingSource(bytes)), /the source broke/);
      assert.equal(await repo.stat('control/new'), null);
    }
    // The multipart uploads (12 MiB in 5 MiB parts) were aborted. s3rver does not implement
    // AbortMultipartUpload (it answers 405), so what can be checked is that the driver asked.
    const aborts = s3.requests().filter((line) => /^DELETE \/taskflow-test\/repo\/control\/(latest|new)\?uploadId=\w+&x-id=AbortMultipartUpload 405$/.test(line));
    assert.equal(aborts.length, 2, s3.requests().slice(-20).join('\n'));
    await repo.put('control/latest', Readable.from([Buffer.from('version 2')]));
    assert.equal((await readAll(await repo.get('control/latest'))).toString(), 'version 2');
    await repo.delete('control/latest');
  });

  test('names that could leave the prefix are refused before anything is sent', async () => {
    const sent = s3.requests().length;
    for (const name of ['../escaped', 'a/../../escaped', '/etc/escaped', '.hidden', 'a//b']) {
      await assert.rejects(repo.put(name, Readable.from([Buffer.from('x')])), rejectsWith('object-name'), name);
      await assert.rejects(repo.get(name), rejectsWith('object-name'), name);
      await assert.rejects(repo.delete(name), rejectsWith('object-name'), name);
    }
    await assert.rejects(repo.list('../'), rejectsWith('object-name'));
    assert.equal(s3.requests().length, sent);
  });

  test('a large object streams in as a multipart upload and out intact', async () => {
    const block = randomBytes(1024 * 1024);
    const hash = createHash('sha256');
    for (let i = 0; i < 24; i++) hash.update(block);
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < 24; i++) yield block;
      })(),
    );
    assert.equal((await repo.put('snapshots/big', source)).size, 24 * 1024 * 1024);
    assert.ok(s3.requests().some((line) => /^PUT \/taskflow-test\/repo\/snapshots\/big\?.*partNumber=5\b.* 200$/.test(line)), 'uploaded in 5 MiB parts');
    const back = createHash('sha256');
    let size = 0;
    for await (const chunk of await repo.get('snapshots/big')) {
      back.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    assert.equal(size, 24 * 1024 * 1024);
    assert.equal(back.digest('hex'), hash.digest('hex'));
    await repo.delete('snapshots/big');
  });

  test('the probe reports health; a missing bucket makes the repository unreachable', async () => {
    assert.deepEqual(await repo.probe(), { ok: true });
    const missing = open({ bucket: 'no-such-bucket' });
    const health = await missing.probe();
    assert.equal(health.ok, false);
    assert.match(health.message ?? '', /bucket no-such-bucket does not exist/);
    await assert.rejects(missing.put('x', Readable.from([Buffer.from('x')])), rejectsWith('repository-unreachable'));
    await assert.rejects(missing.list(), rejectsWith('repository-unreachable'));
    await assert.rejects(missing.stat('x'), rejectsWith('repository-unreachable'));
  });

  test('credentials: an unknown key is denied; a credentials file others can read, or none at all, is refused', async () => {
    const dir = join(s3.dataDir, '..');
    const stranger = join(dir, 'stranger');
    writeFileSync(stranger, 'aws_access_key_id = NOBODY\naws_secret_access_key = not-a-secret\n', { mode: 0o600 });
    const denied = open({ credentialsFile: stranger });
    await assert.rejects(denied.put('x', Readable.from([Buffer.from('x')])), rejectsWith('repository-denied'));
    await assert.rejects(denied.list(), rejectsWith('repository-denied'));
    assert.equal((await denied.probe()).ok, false);

    chmodSync(stranger, 0o644);
    await assert.rejects(
      open({ credentialsFile: stranger }).list(),
      rejectsWith('repository-denied', (err) => {
        assert.match(err.message, /may be read by others \(mode 644\); chmod 600 it/);
        assert.ok(!err.message.includes('not-a-secret'), 'the secret is never in a message');
      }),
    );
    await assert.rejects(
      open({ credentialsFile: undefined, env: {} }).list(),
      rejectsWith('repository-denied', (err) => {
        assert.match(err.message, /AWS_ACCESS_KEY_ID/);
      }),
    );
    const fromEnv = open({ credentialsFile: undefined, env: { AWS_ACCESS_KEY_ID: S3RVER_KEY, AWS_SECRET_ACCESS_KEY: S3RVER_KEY } });
    assert.deepEqual(await fromEnv.list('nothing/'), []);
  });

  test('an unreachable service fails every operation as repository-unreachable, and the driver recovers', async () => {
    await repo.put('wal/000000010000000000000001', Readable.from([Buffer.from('segment')]));
    await s3.stop();
    try {
      const unreachable = rejectsWith('repository-unreachable', (err) => {
        assert.ok(err.message.includes(s3.endpoint), err.message);
      });
      await assert.rejects(repo.put('wal/000000010000000000000002', Readable.from([Buffer.from('segment')])), unreachable);
      await assert.rejects(repo.get('wal/000000010000000000000001'), unreachable);
      await assert.rejects(repo.stat('wal/000000010000000000000001'), unreachable);
      await assert.rejects(repo.list(), unreachable);
      await assert.rejects(repo.delete('wal/000000010000000000000001'), unreachable);
      const health = await repo.probe();
      assert.equal(health.ok, false);
      assert.match(health.message ?? '', /does not answer \(ECONNREFUSED\)/);
    } finally {
      await s3.start();
    }
    assert.equal((await readAll(await repo.get('wal/000000010000000000000001'))).toString(), 'segment');
    await repo.delete('wal/000000010000000000000001');
  });

  test('a connection lost while reading fails the stream as repository-unreachable', async () => {
    await repo.put('snapshots/cut', Readable.from([randomBytes(32 * 1024 * 1024)]));
    const reading = await repo.get('snapshots/cut');
    let received = 0;
    try {
      await assert.rejects(
        (async () => {
          for await (const chunk of reading) {
            if (received === 0) await s3.stop();
            received += (chunk as Buffer).length;
          }
        })(),
        rejectsWith('repository-unreachable', (err) => {
          assert.match(err.message, /cannot read snapshots\/cut in repository bucket/);
        }),
      );
      assert.ok(received < 32 * 1024 * 1024, `${received} bytes arrived before the cut`);
    } finally {
      await s3.start();
    }
    await repo.delete('snapshots/cut');
  });
});
