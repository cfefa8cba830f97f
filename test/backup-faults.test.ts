/**
 * Faults, each made real: the SFTP server down (and dying mid-transfer), keys it refuses, a full
 * repository (a 1 MiB tmpfs, as root), corrupted and truncated objects, and copies to a
 * secondary repository that are verified by reading them back.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { generateIdentity, parseIdentity, parseRecipient } from '../src/platform/backup/age-keys.ts';
import { isBackupError } from '../src/platform/backup/errors.ts';
import { FilesystemRepository } from '../src/platform/backup/fs-repository.ts';
import { encodeManifest, manifestName, readManifest } from '../src/platform/backup/manifest.ts';
import { copyBackupObject, readBackupObject, verifyBackupObject, writeBackupObject } from '../src/platform/backup/pipeline.ts';
import { SftpRepository, type SftpRepositoryOptions } from '../src/platform/backup/sftp-repository.ts';
import { isRoot, mountSmallTmpfs, sshdUnavailable, startSshd, type TestSshd } from './backup-fixtures.ts';
import { tempDir } from './helpers/platform.ts';

const keys = generateIdentity();
const recipients = [parseRecipient(keys.recipient)];
const identities = [parseIdentity(keys.identity)];
const skipSftp = sshdUnavailable() ?? false;
const skipFull = isRoot ? false : 'filling a repository mounts a 1 MiB tmpfs, which needs root';

function discard(): Writable {
  return new Writable({
    write(_chunk: Buffer, _encoding, callback) {
      callback();
    },
  });
}

/** Random (incompressible) bytes, yielded slowly enough that a transfer is still running after `ms`. */
function slowSource(megabytes: number, ms: number): Readable {
  return Readable.from(
    (async function* () {
      for (let i = 0; i < megabytes; i++) {
        yield randomBytes(1024 * 1024);
        await new Promise((resolve) => setTimeout(resolve, ms / megabytes));
      }
    })(),
  );
}

function dotFilesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.startsWith('.'))
    .map((e) => e.name);
}

describe('backup faults', () => {
  let dir: string;
  let primary: FilesystemRepository;
  let sshd: TestSshd | null = null;
  let sftpOptions: SftpRepositoryOptions;
  const sftpRepos: SftpRepository[] = [];
  const sftp = (overrides: Partial<SftpRepositoryOptions> = {}): SftpRepository => {
    const repo = new SftpRepository({ ...sftpOptions, ...overrides });
    sftpRepos.push(repo);
    return repo;
  };

  before(async () => {
    dir = tempDir('faults');
    mkdirSync(join(dir, 'primary'));
    primary = new FilesystemRepository({ name: 'primary', region: 'fra1', jurisdiction: 'DE', path: join(dir, 'primary') });
    if (!skipSftp) {
      sshd = await startSshd();
      mkdirSync(join(sshd.dataDir, 'repo'));
      sftpOptions = {
        name: 'offsite',
        region: 'nbg1',
        jurisdiction: 'DE',
        host: '127.0.0.1',
        port: sshd.port,
        user: sshd.user,
        identityFile: sshd.identityFile,
        knownHostsFile: sshd.knownHostsFile,
        connectTimeoutSeconds: 5,
        path: join(sshd.dataDir, 'repo'),
      };
    }
  });
  after(async () => {
    for (const repo of sftpRepos) await repo.close();
    await sshd?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an SFTP repository whose server is down is unreachable, and works again when it is back', { skip: skipSftp }, async () => {
    const repo = sftp();
    await writeBackupObject({ repository: repo, name: 'wal/000000010000000000000001', kind: 'wal', source: Readable.from([randomBytes(1000)]), recipients });
    await repo.close();
    await sshd!.stop();
    try {
      const unreachable = (err: unknown): boolean => {
        assert.ok(isBackupError(err, 'repository-unreachable'), String(err));
        assert.match(err.message, /repository offsite \(sftp:\/\/.*\): cannot reach the server .*Connection refused/);
        return true;
      };
      await assert.rejects(
        writeBackupObject({ repository: repo, name: 'wal/000000010000000000000002', kind: 'wal', source: Readable.from([randomBytes(1000)]), recipients }),
        unreachable,
      );
      await assert.rejects(repo.list(), unreachable);
      await assert.rejects(verifyBackupObject({ repository: repo, name: 'wal/000000010000000000000001' }), unreachable);
      const health = await repo.probe();
      assert.equal(health.ok, false);
      assert.match(health.message ?? '', /Connection refused/);
    } finally {
      await sshd!.start();
    }
    assert.equal((await repo.probe()).ok, true);
    assert.equal((await verifyBackupObject({ repository: repo, name: 'wal/000000010000000000000001' })).ok, true);
    assert.equal(await repo.stat('wal/000000010000000000000002'), null, 'the failed write left no object');
  });

  test('the server going down mid-transfer fails the write; no object appears', { skip: skipSftp }, async () => {
    const repo = sftp();
    const writing = writeBackupObject({ repository: repo, name: 'snapshots/interrupted', kind: 'snapshot', source: slowSource(8, 4000), recipients });
    await new Promise((resolve) => setTimeout(resolve, 800));
    await sshd!.stop();
    try {
      await assert.rejects(writing, (err: unknown) => {
        assert.ok(isBackupError(err, 'repository-unreachable'), String(err));
        return true;
      });
    } finally {
      await sshd!.start();
    }
    assert.equal(await repo.stat('snapshots/interrupted'), null);
    assert.equal(await repo.stat(manifestName('snapshots/interrupted')), null);
    // A temporary dot-file may remain on the server (nobody could remove it); listings never show it.
    assert.deepEqual(
      (await repo.list('snapshots/')).map((o) => o.name),
      [],
    );
  });

  test('an unknown host key or a refused user key is denied, never a prompt', { skip: skipSftp }, async () => {
    const otherHosts = join(dir, 'other_known_hosts');
    writeFileSync(otherHosts, `[127.0.0.1]:${sshd!.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`, { mode: 0o600 });
    await assert.rejects(sftp({ knownHostsFile: otherHosts }).list(), (err: unknown) => {
      assert.ok(isBackupError(err, 'repository-denied'), String(err));
      assert.match(err.message, /host key/);
      return true;
    });
    const strangerKey = join(dir, 'stranger');
    assert.equal(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', strangerKey]).status, 0);
    await assert.rejects(sftp({ identityFile: strangerKey }).list(), (err: unknown) => {
      assert.ok(isBackupError(err, 'repository-denied'), String(err));
      assert.match(err.message, /authentication failed .*Permission denied/);
      return true;
    });
  });

  test('a full filesystem repository fails the write as repository-full and leaves nothing behind', { skip: skipFull }, async () => {
    const tmpfs = mountSmallTmpfs('1m');
    try {
      const repo = new FilesystemRepository({ name: 'small', region: 'fra1', jurisdiction: 'DE', path: tmpfs.path });
      assert.ok(((await repo.probe()).freeBytes ?? 0) <= 1024 * 1024);
      await assert.rejects(
        writeBackupObject({ repository: repo, name: 'snapshots/too-big', kind: 'snapshot', source: Readable.from([randomBytes(3 * 1024 * 1024)]), recipients }),
        (err: unknown) => {
          assert.ok(isBackupError(err, 'repository-full'), String(err));
          assert.match(err.message, /cannot write snapshots\/too-big in repository small .*: the repository is full \(ENOSPC\)/);
          return true;
        },
      );
      assert.deepEqual(readdirSync(join(tmpfs.path, 'snapshots')), [], 'the temporary file was removed');
      // Once space is there again, the repository works.
      await writeBackupObject({ repository: repo, name: 'snapshots/small', kind: 'snapshot', source: Readable.from([randomBytes(1000)]), recipients });
      assert.equal((await verifyBackupObject({ repository: repo, name: 'snapshots/small' })).ok, true);
    } finally {
      await tmpfs.unmount();
    }
  });

  test('a full SFTP repository fails the write as repository-full and removes its temporary file', { skip: skipFull || skipSftp }, async () => {
    const tmpfs = mountSmallTmpfs('1m');
    try {
      const repo = sftp({ name: 'offsite-small', path: tmpfs.path });
      await assert.rejects(
        writeBackupObject({ repository: repo, name: 'snapshots/too-big', kind: 'snapshot', source: Readable.from([randomBytes(3 * 1024 * 1024)]), recipients }),
        (err: unknown) => {
          assert.ok(isBackupError(err, 'repository-full'), String(err));
          assert.match(err.message, /cannot write snapshots\/too-big in repository offsite-small .*: the repository is full/);
          return true;
        },
      );
      assert.deepEqual(dotFilesUnder(tmpfs.path), []);
      assert.equal(statSync(join(tmpfs.path, 'snapshots')).isDirectory(), true);
      await repo.close();
    } finally {
      await tmpfs.unmount();
    }
  });

  test('a corrupted object is caught by verify and by read, both naming it', async () => {
    const name = 'exports/acme/corrupt';
    await writeBackupObject({ repository: primary, name, kind: 'export', source: Readable.from([randomBytes(300_000)]), recipients });
    const path = join(dir, 'primary', name);
    const bytes = readFileSync(path);
    bytes[Math.floor(bytes.length / 2)] = (bytes[Math.floor(bytes.length / 2)] as number) ^ 0x10;
    writeFileSync(path, bytes);

    const verified = await verifyBackupObject({ repository: primary, name });
    assert.equal(verified.ok, false);
    assert.match(verified.problem ?? '', /SHA-256 of the stored bytes is [0-9a-f]{64}, the manifest says [0-9a-f]{64}/);
    await assert.rejects(readBackupObject({ repository: primary, name, identities, destination: discard() }), (err: unknown) => {
      assert.ok(isBackupError(err, 'checksum-mismatch'), String(err));
      assert.match(err.message, /^object exports\/acme\/corrupt in repository primary: SHA-256 of the stored bytes/);
      return true;
    });
  });

  test('a truncated object is refused before decrypting, and a manifest that lies is caught at the end', async () => {
    const name = 'exports/acme/truncated';
    await writeBackupObject({ repository: primary, name, kind: 'export', source: Readable.from([randomBytes(200_000)]), recipients });
    const path = join(dir, 'primary', name);
    truncateSync(path, statSync(path).size - 10);
    await assert.rejects(readBackupObject({ repository: primary, name, identities, destination: discard() }), /object exports\/acme\/truncated in repository primary: \d+ bytes stored, the manifest says \d+/);
    assert.equal((await verifyBackupObject({ repository: primary, name })).ok, false);

    const intact = 'exports/acme/intact';
    await writeBackupObject({ repository: primary, name: intact, kind: 'export', source: Readable.from([randomBytes(1000)]), recipients });
    const manifest = await readManifest(primary, intact);
    await primary.put(manifestName(intact), Readable.from([encodeManifest({ ...manifest, sha256: '0'.repeat(64) })]));
    await assert.rejects(readBackupObject({ repository: primary, name: intact, identities, destination: discard() }), (err: unknown) => {
      assert.ok(isBackupError(err, 'checksum-mismatch'));
      assert.match(err.message, /object exports\/acme\/intact in repository primary: SHA-256 .* the manifest says 0{64}/);
      return true;
    });
  });

  test('a copy to a secondary repository is verified by reading it back, and restores from there', { skip: skipSftp }, async () => {
    const secondary = sftp();
    const name = 'snapshots/20261123T020000Z.tar';
    const plain = randomBytes(2 * 1024 * 1024);
    const manifest = await writeBackupObject({ repository: primary, name, kind: 'snapshot', source: Readable.from([plain]), recipients });
    const copy = await copyBackupObject({ from: primary, to: secondary, name });
    assert.equal(copy.ok, true);
    assert.equal(copy.repository, 'offsite');
    assert.equal(copy.sha256, manifest.sha256);
    assert.deepEqual(await readManifest(secondary, name), manifest);
    const chunks: Buffer[] = [];
    await readBackupObject({
      repository: secondary,
      name,
      identities,
      destination: new Writable({
        write(chunk: Buffer, _encoding, callback) {
          chunks.push(chunk);
          callback();
        },
      }),
    });
    assert.deepEqual(Buffer.concat(chunks), plain);
  });

  test('a corrupted object is not copied: the secondary keeps nothing', { skip: skipSftp }, async () => {
    const secondary = sftp();
    const name = 'snapshots/rotten.tar';
    await writeBackupObject({ repository: primary, name, kind: 'snapshot', source: Readable.from([randomBytes(500_000)]), recipients });
    const path = join(dir, 'primary', name);
    const bytes = readFileSync(path);
    bytes[1000] = (bytes[1000] as number) ^ 0xff;
    writeFileSync(path, bytes);
    await assert.rejects(copyBackupObject({ from: primary, to: secondary, name }), (err: unknown) => {
      assert.ok(isBackupError(err, 'checksum-mismatch'), String(err));
      assert.match(err.message, /object snapshots\/rotten\.tar in repository primary: SHA-256/);
      return true;
    });
    assert.equal(await secondary.stat(name), null);
    assert.equal(await secondary.stat(manifestName(name)), null);
    assert.deepEqual(
      dotFilesUnder(join(sshd!.dataDir, 'repo')).filter((f) => f.startsWith('.rotten.tar.')),
      [],
      'its temporary file was removed',
    );
  });

  test('a copy to a full secondary fails as repository-full and leaves nothing there', { skip: skipFull || skipSftp }, async () => {
    const tmpfs = mountSmallTmpfs('1m');
    try {
      const name = 'snapshots/large.tar';
      await writeBackupObject({ repository: primary, name, kind: 'snapshot', source: Readable.from([randomBytes(2 * 1024 * 1024)]), recipients });
      const small = new FilesystemRepository({ name: 'small', region: 'fra1', jurisdiction: 'DE', path: tmpfs.path });
      await assert.rejects(copyBackupObject({ from: primary, to: small, name }), (err: unknown) => isBackupError(err, 'repository-full'));
      assert.equal(await small.stat(name), null);
      assert.deepEqual(dotFilesUnder(tmpfs.path), []);
    } finally {
      await tmpfs.unmount();
    }
  });
});
