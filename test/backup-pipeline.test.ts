/**
 * The pipeline end to end on real repositories: zstd → age → SHA-256 → repository and back, with
 * the stored objects opened by the standard tools (age -d | zstd -d) to prove the formats.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { generateIdentity, parseIdentity, parseRecipient, recipientFingerprint } from '../src/platform/backup/age-keys.ts';
import { isBackupError } from '../src/platform/backup/errors.ts';
import { FilesystemRepository } from '../src/platform/backup/fs-repository.ts';
import { manifestName } from '../src/platform/backup/manifest.ts';
import { readBackupObject, verifyBackupObject, writeBackupObject } from '../src/platform/backup/pipeline.ts';
import type { Repository } from '../src/platform/backup/repository.ts';
import { SftpRepository } from '../src/platform/backup/sftp-repository.ts';
import { ageUnavailable, sshdUnavailable, startSshd, type TestSshd } from './backup-fixtures.ts';
import { tempDir } from './helpers/platform.ts';

const keys = generateIdentity();
const recipients = [parseRecipient(keys.recipient)];
const identities = [parseIdentity(keys.identity)];

/** Text-like data that compresses, in pieces, as a dump tool would write it. */
function dumpLike(megabytes: number): { stream: Readable; sha256: string; size: number } {
  const pieces: Buffer[] = [];
  for (let i = 0; i < megabytes * 16; i++) {
    const rows = Array.from({ length: 800 }, (_, r) => `${i * 800 + r}\ttask ${r % 97}\t${randomBytes(8).toString('hex')}\n`).join('');
    pieces.push(Buffer.from(rows).subarray(0, 64 * 1024));
  }
  const hash = createHash('sha256');
  for (const p of pieces) hash.update(p);
  return { stream: Readable.from(pieces), sha256: hash.digest('hex'), size: pieces.reduce((n, p) => n + p.length, 0) };
}

/** A destination that hashes what it receives. */
function hashingSink(): { sink: Writable; digest: () => { sha256: string; size: number } } {
  const hash = createHash('sha256');
  let size = 0;
  return {
    sink: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        size += chunk.length;
        callback();
      },
    }),
    digest: () => ({ sha256: hash.digest('hex'), size }),
  };
}

function failingSource(): Readable {
  return Readable.from(
    (async function* () {
      yield randomBytes(200_000);
      await new Promise((resolve) => setImmediate(resolve));
      throw new Error('pg_dump exited with status 1');
    })(),
  );
}

function pipelineSuite(kind: string, setUp: () => Promise<{ repo: Repository; root: string }>, tearDown: () => Promise<void>, skip: string | false): void {
  describe(`pipeline on a ${kind} repository`, { skip }, () => {
    let repo: Repository;
    let root: string;
    before(async () => {
      ({ repo, root } = await setUp());
    });
    after(tearDown);

    test('writes the object, then a manifest with sizes, checksum, recipients and source', async () => {
      const input = dumpLike(2);
      const manifest = await writeBackupObject({
        repository: repo,
        name: 'exports/acme/20261123T020000Z.dump',
        kind: 'export',
        source: input.stream,
        recipients,
        sourceDetails: { tenant: 'acme', database: 'tenant_acme', format: 'pg_dump -Fc' },
        now: () => new Date('2026-11-23T02:00:00Z'),
      });
      const stored = readFileSync(join(root, 'exports/acme/20261123T020000Z.dump'));
      assert.equal(manifest.sizes.raw, input.size);
      assert.equal(manifest.sizes.stored, stored.length);
      assert.ok(manifest.sizes.compressed < input.size / 2, 'zstd compressed it');
      assert.ok(manifest.sizes.stored > manifest.sizes.compressed, 'age adds its header and tags');
      assert.equal(manifest.sha256, createHash('sha256').update(stored).digest('hex'));
      assert.equal(manifest.created, '2026-11-23T02:00:00.000Z');
      assert.deepEqual(manifest.encryption.recipients, [recipientFingerprint(keys.recipient)]);
      assert.deepEqual(manifest.source, { tenant: 'acme', database: 'tenant_acme', format: 'pg_dump -Fc' });
      assert.deepEqual(JSON.parse(readFileSync(join(root, manifestName('exports/acme/20261123T020000Z.dump')), 'utf8')), manifest);
      assert.ok(stored.subarray(0, 22).toString() === 'age-encryption.org/v1\n', 'stored bytes are age, not plain');

      const out = hashingSink();
      await readBackupObject({ repository: repo, name: 'exports/acme/20261123T020000Z.dump', identities, destination: out.sink });
      assert.deepEqual(out.digest(), { sha256: input.sha256, size: input.size });
      const verified = await verifyBackupObject({ repository: repo, name: 'exports/acme/20261123T020000Z.dump' });
      assert.equal(verified.ok, true);
      assert.equal(verified.sha256, manifest.sha256);
    });

    test('the stored object opens with the standard tools: age -d | zstd -d', { skip: ageUnavailable() ?? (spawnSync('zstd', ['--version']).status === 0 ? false : 'zstd is not installed') }, async () => {
      const plain = Buffer.from('COPY tasks (id, title) FROM stdin;\n1\tfirst\n\\.\n'.repeat(1000));
      await writeBackupObject({ repository: repo, name: 'exports/acme/standard', kind: 'export', source: Readable.from([plain]), recipients });
      const dir = tempDir('age-key');
      try {
        writeFileSync(join(dir, 'key.txt'), `${keys.identity}\n`, { mode: 0o600 });
        const out = spawnSync('bash', ['-o', 'pipefail', '-c', 'age -d -i "$1" "$2" | zstd -d -q -c', 'decode', join(dir, 'key.txt'), join(root, 'exports/acme/standard')], {
          maxBuffer: 16 * 1024 * 1024,
        });
        assert.equal(out.status, 0, out.stderr.toString());
        assert.deepEqual(out.stdout, plain);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test('a source that fails leaves neither object nor manifest, and the source error is what is reported', async () => {
      await assert.rejects(
        writeBackupObject({ repository: repo, name: 'exports/acme/broken', kind: 'export', source: failingSource(), recipients }),
        /pg_dump exited with status 1/,
      );
      assert.equal(await repo.stat('exports/acme/broken'), null);
      assert.equal(await repo.stat(manifestName('exports/acme/broken')), null);
    });

    test('reading with the wrong identity fails clearly and names the object', async () => {
      await writeBackupObject({ repository: repo, name: 'exports/acme/secret', kind: 'export', source: Readable.from([Buffer.from('x')]), recipients });
      const stranger = [parseIdentity(generateIdentity().identity)];
      await assert.rejects(readBackupObject({ repository: repo, name: 'exports/acme/secret', identities: stranger, destination: hashingSink().sink }), (err: unknown) => {
        assert.ok(isBackupError(err, 'age-no-identity'));
        assert.ok(err.message.includes(`object exports/acme/secret in repository ${repo.name}`), err.message);
        return true;
      });
    });

    test('an object without its manifest is not a backup', async () => {
      await writeBackupObject({ repository: repo, name: 'exports/acme/orphan', kind: 'export', source: Readable.from([Buffer.from('x')]), recipients });
      await repo.delete(manifestName('exports/acme/orphan'));
      await assert.rejects(readBackupObject({ repository: repo, name: 'exports/acme/orphan', identities, destination: hashingSink().sink }), /has no manifest .*interrupted/);
      await assert.rejects(verifyBackupObject({ repository: repo, name: 'exports/acme/orphan' }), (err: unknown) => isBackupError(err, 'object-not-found'));
    });

    test('a name, kind or level that could not make a valid manifest is refused before anything is written', async () => {
      await assert.rejects(
        writeBackupObject({ repository: repo, name: 'x.manifest.json', kind: 'export', source: Readable.from([]), recipients }),
        (err: unknown) => isBackupError(err, 'object-name'),
      );
      await assert.rejects(
        writeBackupObject({ repository: repo, name: 'x', kind: 'Export!', source: Readable.from([]), recipients }),
        (err: unknown) => isBackupError(err, 'manifest-invalid'),
      );
      await assert.rejects(
        writeBackupObject({ repository: repo, name: 'x', kind: 'export', compressionLevel: 40, source: Readable.from([]), recipients }),
        /zstd level 40/,
      );
      assert.equal(await repo.stat('x'), null);
    });
  });
}

let fsRoot = '';
pipelineSuite(
  'filesystem',
  () => {
    fsRoot = tempDir('pipeline-fs');
    return Promise.resolve({ root: fsRoot, repo: new FilesystemRepository({ name: 'local', region: 'fra1', jurisdiction: 'DE', path: fsRoot }) });
  },
  () => {
    rmSync(fsRoot, { recursive: true, force: true });
    return Promise.resolve();
  },
  false,
);

let sshd: TestSshd | null = null;
let sftpRepo: Repository | null = null;
pipelineSuite(
  'sftp',
  async () => {
    sshd = await startSshd();
    const root = join(sshd.dataDir, 'repo');
    mkdirSync(root);
    sftpRepo = new SftpRepository({
      name: 'offsite',
      region: 'nbg1',
      jurisdiction: 'DE',
      host: '127.0.0.1',
      port: sshd.port,
      user: sshd.user,
      identityFile: sshd.identityFile,
      knownHostsFile: sshd.knownHostsFile,
      connectTimeoutSeconds: 5,
      path: root,
    });
    return { root, repo: sftpRepo };
  },
  async () => {
    await sftpRepo?.close();
    await sshd?.cleanup();
  },
  sshdUnavailable() ?? false,
);
