/**
 * Tenant exports against a real cluster, real pg_dump and real repositories (a directory, and
 * SFTP through Debian's sshd): what an export holds and records, and the faults: a primary that
 * is unreachable (SFTP to a closed port) or full (a 1 MiB tmpfs), a secondary that is down, and
 * the exporting process killed with SIGKILL halfway.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { listAlerts } from '../src/platform/alerts/alerts.ts';
import { getObject, listObjects } from '../src/platform/backup/catalog.ts';
import { copyMissing } from '../src/platform/backup/copies.ts';
import { exportTenants } from '../src/platform/backup/export.ts';
import { FilesystemRepository } from '../src/platform/backup/fs-repository.ts';
import { readManifest } from '../src/platform/backup/manifest.ts';
import { readBackupObject, verifyBackupObject } from '../src/platform/backup/pipeline.ts';
import { freePort } from '../src/platform/postgres/local-cluster.ts';
import { createTenant } from '../src/platform/tenants/provision.ts';
import type { Tenant } from '../src/platform/tenants/registry.ts';
import { isRoot, mountSmallTmpfs, sshdUnavailable, startSshd, type TestSshd } from './backup-fixtures.ts';
import { filesUnder, fillTenant, fsRepository, sftpRepository, startBackupPlatform, tableCounts, withBackupConfig, type BackupTestPlatform } from './backup-export-fixtures.ts';
import { TASKFLOW_BIN } from './helpers/cli.ts';
import { tempDir } from './helpers/platform.ts';

const skipSftp = sshdUnavailable() ?? false;
const skipFull = isRoot ? false : 'filling a repository mounts a tmpfs, which needs root';

async function openAlertKeys(tp: BackupTestPlatform): Promise<string[]> {
  return (await listAlerts(tp.platform.control)).map((a) => a.key);
}

/** The pid of a direct child of `parent` whose command line has all of `words`, from /proc. */
function childRunning(parent: number, words: string[]): number | null {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== parent) continue;
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (words.every((w) => args.some((a) => a.endsWith(w)))) return Number(entry);
    } catch {
      /* exited meanwhile */
    }
  }
  return null;
}

async function waitFor<T>(what: string, probe: () => Promise<T | null> | T | null, timeoutMs = 30_000, everyMs = 5): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

describe('tenant exports', () => {
  let root: string;
  let tp: BackupTestPlatform;
  let sshd: TestSshd | null = null;
  let acme: Tenant;
  let globex: Tenant;
  let acmeCounts: Record<string, number>;

  before(async () => {
    root = tempDir('export');
    mkdirSync(join(root, 'local'));
    const repositories = [fsRepository('local', join(root, 'local'))];
    if (!skipSftp) {
      sshd = await startSshd();
      mkdirSync(join(sshd.dataDir, 'offsite'));
      repositories.push(sftpRepository('offsite', sshd, join(sshd.dataDir, 'offsite'), sshd.port));
    }
    tp = await startBackupPlatform(repositories);
    acme = (await createTenant({ platform: tp.platform, slug: 'acme', actor: 'test' })).tenant;
    globex = (await createTenant({ platform: tp.platform, slug: 'globex', actor: 'test' })).tenant;
    // About 4 MB of hex: roughly 2 MB once compressed, more than the 1 MiB repository takes.
    await fillTenant(tp.platform, acme, { tasks: 40, descriptionChars: 100_000 });
    acmeCounts = await tableCounts(tp.platform, acme);
  });
  after(async () => {
    await tp.cleanup();
    await sshd?.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  test('an export is pg_dump -Fc of the tenant database, encrypted, catalogued with its row counts, and copied', async () => {
    const before = new Date();
    const [result] = await exportTenants(tp.platform, [acme]);
    assert.ok(result?.ok, result?.error);
    const entry = result.entry!;
    assert.match(entry.name, /^exports\/acme\/\d{8}T\d{6}\.\d{3}Z\.dump$/);
    assert.equal(entry.kind, 'export');
    assert.equal(entry.state, 'complete');
    assert.equal(entry.tenantId, acme.id);
    assert.equal(entry.tenantSlug, 'acme');
    assert.ok(Date.parse(entry.dataAt!) >= before.getTime() - 1000 && Date.parse(entry.dataAt!) <= Date.now());
    assert.deepEqual(entry.details.rowCounts, acmeCounts, 'the counts recorded are the tenant tables’ real counts');
    assert.equal(acmeCounts['app.tasks'], 40);
    assert.match(String(entry.details.pgDumpVersion), /^pg_dump \(PostgreSQL\) 1[5-9]/);
    assert.ok((entry.storedBytes ?? 0) < (entry.rawBytes ?? 0) * 0.7, 'compressed before it was stored');

    const expected = skipSftp ? ['local'] : ['local', 'offsite'];
    assert.deepEqual(entry.locations.map((l) => l.repository), expected);
    if (!skipSftp) assert.ok(entry.locations.find((l) => l.repository === 'offsite')?.verifiedAt, 'the copy was read back and verified');

    // Opened by hand with the identity, it is a custom-format archive pg_restore reads.
    const local = new FilesystemRepository({ name: 'local', region: 'fra1', jurisdiction: 'DE', path: join(root, 'local') });
    const manifest = await readManifest(local, entry.name);
    assert.equal(manifest.source.tenant, 'acme');
    assert.equal(manifest.sha256, entry.sha256);
    const dumpFile = join(root, 'acme.dump');
    await readBackupObject({ repository: local, name: entry.name, identities: tp.identities, destination: createWriteStream(dumpFile) });
    const listing = spawnSync(tp.platform.tools.path('pg_restore'), ['--list', dumpFile], { encoding: 'utf8' });
    assert.equal(listing.status, 0, listing.stderr);
    assert.match(listing.stdout, /TABLE DATA app tasks/);
    assert.match(listing.stdout, /Format: CUSTOM/);
    if (!skipSftp) {
      const offsite = (await import('../src/platform/backup/config.ts')).openRepository(tp.platform.config.backup.repositories[1]!);
      assert.equal((await verifyBackupObject({ repository: offsite, name: entry.name })).ok, true);
      await offsite.close();
    }
  });

  test('an unreachable primary (SFTP to a closed port): the row is failed, nothing is left, an alert is raised and later resolved', { skip: skipSftp }, async () => {
    const closedPort = await freePort();
    const offsite = sftpRepository('offsite', sshd!, join(sshd!.dataDir, 'offsite'), closedPort);
    const down = withBackupConfig(tp.platform, { repositories: [offsite], primary: 'offsite' });
    const [failed] = await exportTenants(down, [globex]);
    assert.equal(failed?.ok, false);
    assert.match(failed.error ?? '', /Connection refused/);
    assert.equal(failed.entry?.state, 'failed');
    assert.match(failed.entry.error ?? '', /unreachable|cannot reach/);
    assert.deepEqual(failed.entry.locations, []);
    assert.ok((await openAlertKeys(tp)).includes('backup.repository-unreachable:offsite'));
    assert.ok(!filesUnder(join(sshd!.dataDir, 'offsite')).some((f) => f.startsWith('exports/globex')), 'nothing of it in the repository');

    const up = withBackupConfig(tp.platform, { repositories: [sftpRepository('offsite', sshd!, join(sshd!.dataDir, 'offsite'), sshd!.port)], primary: 'offsite' });
    const [ok] = await exportTenants(up, [globex]);
    assert.ok(ok?.ok, ok?.error);
    assert.ok(!(await openAlertKeys(tp)).includes('backup.repository-unreachable:offsite'), 'the success resolved it');
    const resolved = (await listAlerts(tp.platform.control, { all: true })).find((a) => a.key === 'backup.repository-unreachable:offsite');
    assert.match(resolved?.resolution ?? '', /succeeded/);
  });

  test('a full primary (1 MiB tmpfs): the row is failed, no file is left, the data is untouched; space back, it works', { skip: skipFull }, async () => {
    const tmpfs = mountSmallTmpfs('1m');
    try {
      const small = withBackupConfig(tp.platform, { repositories: [fsRepository('small', tmpfs.path)], primary: 'small' });
      const [failed] = await exportTenants(small, [acme]);
      assert.equal(failed?.ok, false);
      assert.equal(failed.entry?.state, 'failed');
      assert.match(failed.error ?? '', /full|space/i);
      assert.deepEqual(filesUnder(tmpfs.path), [], 'no object, manifest or temporary file is left');
      assert.ok((await openAlertKeys(tp)).includes('backup.repository-full:small'));
      assert.deepEqual(await tableCounts(tp.platform, acme), acmeCounts, 'the live data is untouched');
      const catalog = await listObjects(tp.platform.control, { kind: 'export', tenantId: acme.id });
      assert.ok(catalog.every((e) => e.state !== 'running'), 'no row is left running');

      assert.equal(spawnSync('mount', ['-o', 'remount,size=64m', tmpfs.path]).status, 0);
      const [ok] = await exportTenants(small, [acme]);
      assert.ok(ok?.ok, ok?.error);
      assert.ok(!(await openAlertKeys(tp)).includes('backup.repository-full:small'));
    } finally {
      await tmpfs.unmount();
    }
  });

  test('a secondary that is down: the export stands, backup.copy-failed is raised, and the copy is made later', { skip: skipSftp }, async () => {
    await sshd!.stop();
    let name: string;
    try {
      const results = await exportTenants(tp.platform, [globex, globex]);
      for (const result of results) {
        assert.ok(result.ok, result.error);
        assert.deepEqual(result.copies.map((c) => [c.repository, c.ok]), [['offsite', false]]);
        assert.deepEqual(result.entry?.locations.map((l) => l.repository), ['local']);
      }
      name = results[0]!.entry!.name;
      assert.ok((await openAlertKeys(tp)).includes('backup.copy-failed:offsite'));
      // Still down: the copy pass tries the server once, not once per missing object.
      const pass = await copyMissing(tp.platform, { settleMinutes: 0 });
      assert.deepEqual([pass.copied, pass.failed, pass.skippedRepositories], [0, 1, ['offsite']]);
      assert.ok(pass.objects >= 2);
    } finally {
      await sshd!.start();
    }
    const retried = await copyMissing(tp.platform, { settleMinutes: 0 });
    assert.ok(retried.copied >= 2 && retried.failed === 0, JSON.stringify(retried));
    const entry = await getObject(tp.platform.control, name);
    assert.ok(entry?.locations.find((l) => l.repository === 'offsite')?.verifiedAt);
    assert.ok(!(await openAlertKeys(tp)).includes('backup.copy-failed:offsite'));
  });

  test('SIGKILL halfway through an export: the next run marks it failed and no manifest of it is left', async () => {
    const local = withBackupConfig(tp.platform, { repositories: [fsRepository('local', join(root, 'local'))], primary: 'local' });
    tp.writeConfigFile({ ...tp.backup, repositories: [fsRepository('local', join(root, 'local'))], primary: 'local' });
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TASKFLOW_')) env[k] = v;
    const cli = spawn(process.execPath, [TASKFLOW_BIN, 'backup', 'run', 'export', '--tenant', 'acme', '--data-dir', tp.dataDir], { env, stdio: 'ignore' });
    let dumpPid: number | null = null;
    let running;
    try {
      // Freeze the dump as soon as it runs, so the kill lands while the export is under way.
      dumpPid = await waitFor('pg_dump to start', () => childRunning(cli.pid!, ['pg_dump', '--format=custom']), 30_000, 2);
      process.kill(dumpPid, 'SIGSTOP');
      running = await waitFor('the running row', async () => (await listObjects(tp.platform.control, { kind: 'export', tenantId: acme.id, state: 'running' }))[0] ?? null);
    } finally {
      const exited = new Promise((resolve) => cli.once('exit', resolve));
      cli.kill('SIGKILL');
      await exited;
      if (dumpPid !== null) process.kill(dumpPid, 'SIGKILL');
    }
    assert.equal((await getObject(tp.platform.control, running.id))?.state, 'running', 'nobody was left to record the failure');

    const [next] = await exportTenants(local, [acme]);
    assert.ok(next?.ok, next?.error);
    const interrupted = await getObject(tp.platform.control, running.id);
    assert.equal(interrupted?.state, 'failed');
    assert.match(interrupted.error ?? '', /interrupted/);
    const files = filesUnder(join(root, 'local'));
    assert.ok(!files.some((f) => f.startsWith(running.name)), `nothing named ${running.name} is left: ${files.join(', ')}`);
    assert.ok(files.includes(`${next.entry!.name}.manifest.json`));
    const alert = (await listAlerts(tp.platform.control, { all: true, code: 'backup.interrupted' })).find((a) => a.key === `backup.interrupted:export:${acme.id}`);
    assert.ok(alert, 'the interruption was reported');
    assert.ok(alert.resolvedAt, 'and resolved by the export that followed');
    assert.deepEqual(await tableCounts(tp.platform, acme), acmeCounts);
  });
});
