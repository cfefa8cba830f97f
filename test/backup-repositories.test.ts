/**
 * One contract, two drivers: the filesystem repository on a temporary directory, and the SFTP
 * repository against a real sshd (key pair, known_hosts, SFTP-only account) on a loopback port.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { isBackupError } from '../src/platform/backup/errors.ts';
import { FilesystemRepository } from '../src/platform/backup/fs-repository.ts';
import type { Repository } from '../src/platform/backup/repository.ts';
import { SftpRepository } from '../src/platform/backup/sftp-repository.ts';
import { sshdUnavailable, startSshd, type TestSshd } from './backup-fixtures.ts';
import { tempDir } from './helpers/platform.ts';

interface Subject {
  repo: Repository;
  /** The repository's root as a local directory, to look behind the driver's back. */
  root: string;
  /** The same driver pointed at a root that does not exist. */
  withoutRoot: Repository;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A source that yields some bytes and then fails, like a dump tool that dies halfway. */
function failingSource(bytes: number): Readable {
  return Readable.from(
    (async function* () {
      yield randomBytes(bytes);
      await new Promise((resolve) => setImmediate(resolve));
      throw new Error('the source broke');
    })(),
  );
}

/** A large object produced lazily, with its SHA-256 known in advance. */
function lazyObject(megabytes: number): { stream: Readable; sha256: string; size: number } {
  const block = randomBytes(1024 * 1024);
  const hash = createHash('sha256');
  for (let i = 0; i < megabytes; i++) hash.update(block);
  return {
    stream: Readable.from(
      (function* () {
        for (let i = 0; i < megabytes; i++) yield block;
      })(),
    ),
    sha256: hash.digest('hex'),
    size: megabytes * 1024 * 1024,
  };
}

/** Every file under `dir`, dot-files included, relative. */
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}

function repositoryContract(kind: string, setUp: () => Promise<Subject>, tearDown: () => Promise<void>, skip: string | false): void {
  describe(`${kind} repository`, { skip }, () => {
    let s: Subject;
    before(async () => {
      s = await setUp();
    });
    after(tearDown);

    test('put, stat, get, list and delete one object', async () => {
      const data = randomBytes(100_000);
      assert.deepEqual(await s.repo.put('exports/acme/1.dump', Readable.from([data])), { size: data.length });
      const info = await s.repo.stat('exports/acme/1.dump');
      assert.equal(info?.size, data.length);
      assert.ok(Math.abs(info.modified.getTime() - Date.now()) < 60_000);
      assert.deepEqual(await readAll(await s.repo.get('exports/acme/1.dump')), data);
      assert.deepEqual(
        (await s.repo.list()).map((o) => o.name),
        ['exports/acme/1.dump'],
      );
      assert.equal(await s.repo.delete('exports/acme/1.dump'), true);
      assert.equal(await s.repo.delete('exports/acme/1.dump'), false);
      assert.equal(await s.repo.stat('exports/acme/1.dump'), null);
      await assert.rejects(s.repo.get('exports/acme/1.dump'), (err: unknown) => {
        assert.ok(isBackupError(err, 'object-not-found'));
        assert.ok(err.message.includes(`exports/acme/1.dump`) && err.message.includes(`repository ${s.repo.name}`), err.message);
        return true;
      });
    });

    test('an empty object is an object', async () => {
      await s.repo.put('empty', Readable.from([]));
      assert.equal((await s.repo.stat('empty'))?.size, 0);
      assert.equal((await readAll(await s.repo.get('empty'))).length, 0);
      await s.repo.delete('empty');
    });

    test('list filters by prefix, sorts by name and never shows temporary or hidden files', async () => {
      for (const name of ['wal/b', 'wal/a', 'exports/x/1', 'exports/y/1', 'snapshots/s1']) await s.repo.put(name, Readable.from([Buffer.from(name)]));
      writeFileSync(join(s.root, 'wal', '.a.tmp-123456'), 'half written');
      assert.deepEqual(
        (await s.repo.list()).map((o) => o.name),
        ['exports/x/1', 'exports/y/1', 'snapshots/s1', 'wal/a', 'wal/b'],
      );
      assert.deepEqual(
        (await s.repo.list('wal/')).map((o) => [o.name, o.size]),
        [
          ['wal/a', 5],
          ['wal/b', 5],
        ],
      );
      assert.deepEqual(
        (await s.repo.list('exports/x')).map((o) => o.name),
        ['exports/x/1'],
      );
      assert.deepEqual(await s.repo.list('nothing/'), []);
      rmSync(join(s.root, 'wal', '.a.tmp-123456'));
      for (const o of await s.repo.list()) await s.repo.delete(o.name);
    });

    test('a replacing put is atomic: a failed write leaves the old object and no temporary file', async () => {
      await s.repo.put('control/latest', Readable.from([Buffer.from('version 1')]));
      await assert.rejects(s.repo.put('control/latest', failingSource(300_000)), /the source broke/);
      assert.equal((await readAll(await s.repo.get('control/latest'))).toString(), 'version 1');
      await assert.rejects(s.repo.put('control/new', failingSource(300_000)), /the source broke/);
      assert.equal(await s.repo.stat('control/new'), null);
      // Past the filesystem driver's write-behind flush (8 MiB): the failure waits for it, then cleans up.
      await assert.rejects(s.repo.put('control/new', failingSource(20 * 1024 * 1024)), /the source broke/);
      assert.equal(await s.repo.stat('control/new'), null);
      assert.deepEqual(filesUnder(s.root), ['control/latest'], 'no temporary file left behind');
      await s.repo.put('control/latest', Readable.from([Buffer.from('version 2')]));
      assert.equal((await readAll(await s.repo.get('control/latest'))).toString(), 'version 2');
      await s.repo.delete('control/latest');
    });

    test('names that would leave the repository are refused before anything is written', async () => {
      const outside = join(s.root, '..', 'escaped');
      for (const name of ['../escaped', 'a/../../escaped', '/etc/escaped', '.hidden', 'a//b']) {
        await assert.rejects(s.repo.put(name, Readable.from([Buffer.from('x')])), (err: unknown) => isBackupError(err, 'object-name'), name);
        await assert.rejects(s.repo.get(name), (err: unknown) => isBackupError(err, 'object-name'), name);
        await assert.rejects(s.repo.delete(name), (err: unknown) => isBackupError(err, 'object-name'), name);
      }
      assert.equal(existsSync(outside), false);
      await assert.rejects(s.repo.list('../'), (err: unknown) => isBackupError(err, 'object-name'));
    });

    test('a large object streams in and out intact', async () => {
      const object = lazyObject(24);
      assert.equal((await s.repo.put('snapshots/big', object.stream)).size, object.size);
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of await s.repo.get('snapshots/big')) {
        hash.update(chunk as Buffer);
        size += (chunk as Buffer).length;
      }
      assert.equal(size, object.size);
      assert.equal(hash.digest('hex'), object.sha256);
      await s.repo.delete('snapshots/big');
    });

    test('the probe reports health and free space; a missing root makes the repository unreachable', async () => {
      const health = await s.repo.probe();
      assert.equal(health.ok, true, health.message);
      assert.ok((health.freeBytes ?? 0) > 0 && (health.totalBytes ?? 0) >= (health.freeBytes ?? 0));
      const missing = await s.withoutRoot.probe();
      assert.equal(missing.ok, false);
      assert.match(missing.message ?? '', /does not exist|missing/);
      await assert.rejects(s.withoutRoot.put('x', Readable.from([Buffer.from('x')])), (err: unknown) => isBackupError(err, 'repository-unreachable'));
      await assert.rejects(s.withoutRoot.list(), (err: unknown) => isBackupError(err, 'repository-unreachable'));
    });

    test('a written file is the exact bytes, readable by other tools', async () => {
      await s.repo.put('plain/hello.txt', Readable.from([Buffer.from('hello')]));
      assert.equal(readFileSync(join(s.root, 'plain', 'hello.txt'), 'utf8'), 'hello');
      await s.repo.delete('plain/hello.txt');
    });
  });
}

const placement = { region: 'test-region', jurisdiction: 'DE' };

let fsDir = '';
repositoryContract(
  'filesystem',
  () => {
    fsDir = tempDir('fs-repo');
    const root = join(fsDir, 'repo');
    mkdirSync(root);
    return Promise.resolve({
      root,
      repo: new FilesystemRepository({ name: 'local', ...placement, path: root }),
      withoutRoot: new FilesystemRepository({ name: 'unmounted', ...placement, path: join(fsDir, 'not-mounted') }),
    });
  },
  () => {
    rmSync(fsDir, { recursive: true, force: true });
    return Promise.resolve();
  },
  false,
);

let sshd: TestSshd | null = null;
let sftpRepos: Repository[] = [];
repositoryContract(
  'sftp',
  async () => {
    sshd = await startSshd();
    const root = join(sshd.dataDir, 'repo');
    mkdirSync(root);
    const target = {
      ...placement,
      host: '127.0.0.1',
      port: sshd.port,
      user: sshd.user,
      identityFile: sshd.identityFile,
      knownHostsFile: sshd.knownHostsFile,
      connectTimeoutSeconds: 5,
    };
    sftpRepos = [
      new SftpRepository({ name: 'offsite', ...target, path: root }),
      new SftpRepository({ name: 'offsite-missing', ...target, path: join(sshd.dataDir, 'not-there') }),
    ];
    return { root, repo: sftpRepos[0]!, withoutRoot: sftpRepos[1]! };
  },
  async () => {
    for (const repo of sftpRepos) await repo.close();
    await sshd?.cleanup();
  },
  sshdUnavailable() ?? false,
);
