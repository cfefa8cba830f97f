/**
 * Snapshot and WAL archive faults made real against a real PostgreSQL 15: a snapshot to a
 * filesystem repository that fills up half way (a tmpfs, as root) and to one whose directory is
 * missing (an unmounted share), and the WAL archiver on a repository that is full. Each fault is
 * named to the operator, alerted, leaves nothing in the repository and the live cluster untouched,
 * and the next run after the fault is cleared succeeds and resolves the alert.
 */
import assert from 'node:assert/strict';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { listAlerts } from '../src/platform/alerts/alerts.ts';
import { getObject, listObjects, type CatalogEntry } from '../src/platform/backup/catalog.ts';
import { isBackupError } from '../src/platform/backup/errors.ts';
import { ensureWalArchiving, walArchiveStatus } from '../src/platform/backup/physical/wal-archive.ts';
import { walObjectName } from '../src/platform/backup/physical/wal-names.ts';
import { takeSnapshot } from '../src/platform/backup/physical/snapshot.ts';
import { clusterIdentifier } from '../src/platform/backup/service.ts';
import { poll } from '../src/platform/replication/probe.ts';
import type { Tenant } from '../src/platform/tenants/registry.ts';
import { isRoot, mountSmallTmpfs } from './backup-fixtures.ts';
import { filesUnder, fsRepository, withBackupConfig } from './backup-export-fixtures.ts';
import { addTask, startPhysicalPlatform, switchAndWaitArchived, taskTitles, tenantWithTasks, withDb, type PhysicalTestPlatform } from './backup-physical-fixtures.ts';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/platform.ts';

const skipFull = isRoot ? false : 'filling a repository mounts a tmpfs, which needs root';
/** What is left free on the full repository: less than a snapshot of this tiny cluster (asserted below). */
const LEFT_FREE = 1024 * 1024;
const FILLER = 'filler.bin';

let tp: PhysicalTestPlatform;
let acme: Tenant;
let sysid: string;

before(async () => {
  tp = await startPhysicalPlatform();
  acme = await tenantWithTasks(tp.platform, 'acme', 5, 'Acme');
  sysid = await clusterIdentifier(tp.platform);
});

after(async () => {
  await tp.cleanup();
});

/** Writes a filler file until only `leave` bytes are free on the filesystem of `dir` (0: until ENOSPC). */
function fill(dir: string, leave: number): void {
  const fd = openSync(join(dir, FILLER), 'a');
  const chunk = Buffer.alloc(64 * 1024, 0xa5);
  try {
    for (;;) {
      const st = statfsSync(dir);
      const room = st.bavail * st.bsize - leave;
      if (room <= 0) return;
      try {
        writeSync(fd, chunk, 0, Math.min(chunk.length, room));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return;
        throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** A tmpfs repository the PostgreSQL OS user may reach (the archiver makes its own wal/ there). */
function mountRepository(size: string): ReturnType<typeof mountSmallTmpfs> {
  const tmpfs = mountSmallTmpfs(size);
  chmodSync(tmpfs.path, 0o711);
  return tmpfs;
}

async function openAlert(key: string) {
  return (await listAlerts(tp.platform.control)).find((a) => a.key === key);
}

/** The snapshot rows started after `since` (the attempt under test). */
async function snapshotsSince(since: string[]): Promise<CatalogEntry[]> {
  return (await listObjects(tp.platform.control, { kind: 'snapshot' })).filter((e) => !since.includes(e.id));
}

async function snapshotIds(): Promise<string[]> {
  return (await listObjects(tp.platform.control, { kind: 'snapshot' })).map((e) => e.id);
}

/** The live cluster still takes a write and reads it back: one more task than `before`. */
async function assertLiveUntouched(before: string[]): Promise<void> {
  assert.deepEqual(await taskTitles(tp.platform, acme.databaseName), before, 'the live data is as it was');
  await withDb(tp.platform, acme.databaseName, (client) => addTask(client, `after ${before.length}`));
  assert.deepEqual(await taskTitles(tp.platform, acme.databaseName), [...before, `after ${before.length}`], 'a write and a read still work');
}

/** Points the WAL archive back at the platform's own repository (the fault tests moved it). */
async function restoreArchiving(): Promise<void> {
  await ensureWalArchiving(tp.platform);
}

test('a snapshot to a repository that fills up half way fails as repository-full, leaves nothing, and works once space is back', { skip: skipFull }, async () => {
  const tmpfs = mountRepository('64m');
  try {
    const small = withBackupConfig(tp.platform, { repositories: [fsRepository('small', tmpfs.path)], primary: 'small' });
    // Installs the archive there first (a snapshot does too), so its wal/ directory is in place before the fill.
    await ensureWalArchiving(small);
    fill(tmpfs.path, LEFT_FREE);
    const earlier = await snapshotIds();
    const live = await taskTitles(tp.platform, acme.databaseName);

    await assert.rejects(takeSnapshot(small), (err: unknown) => {
      assert.ok(isBackupError(err, 'repository-full'), String(err));
      assert.match(err.message, /^cannot write snapshots\/\d+\/\S+\.tar in repository small \(\S+\): the repository is full \(ENOSPC\)$/);
      assert.ok(err.message.includes(`snapshots/${sysid}/`) && err.message.includes(`(${tmpfs.path})`), err.message);
      return true;
    });
    const [failed, ...more] = await snapshotsSince(earlier);
    assert.equal(more.length, 0, 'one attempt, one row');
    assert.ok(failed, 'the attempt is in the catalog');
    assert.equal(failed.state, 'failed', 'never left running, never complete');
    assert.match(failed.error ?? '', /repository is full/);
    const alert = await openAlert('backup.repository-full:small');
    assert.equal(alert?.code, 'backup.repository-full');
    // One alert per repository: its summary names the last write that failed, the snapshot's or the
    // archiver's (the snapshot's checkpoint switches WAL, and archiving that file fails too).
    assert.match(alert.summary, /^(snapshot of the cluster|archiving WAL file [0-9A-F]{24}) failed: .*repository is full/);
    assert.deepEqual(
      filesUnder(tmpfs.path).filter((f) => f !== FILLER && !f.startsWith('wal/')),
      [],
      'no object, manifest or temporary file of it is left',
    );
    await assertLiveUntouched(live);

    rmSync(join(tmpfs.path, FILLER));
    const entry = await takeSnapshot(small);
    assert.equal(entry.state, 'complete');
    assert.ok((entry.storedBytes ?? 0) > LEFT_FREE, `the snapshot (${entry.storedBytes} bytes) is larger than the space that was left`);
    assert.ok(existsSync(join(tmpfs.path, entry.name)));
    assert.equal(await openAlert('backup.repository-full:small'), undefined, 'the success resolved the alert');
    const resolved = (await listAlerts(tp.platform.control, { all: true })).find((a) => a.key === 'backup.repository-full:small');
    assert.match(resolved?.resolution ?? '', /snapshot .* succeeded|WAL file \w+ archived/);
    assert.equal((await getObject(tp.platform.control, failed.id))?.state, 'failed', 'the failed attempt stays failed');
  } finally {
    await restoreArchiving();
    await tmpfs.unmount();
  }
});

test('a snapshot to a repository whose directory is missing (share not mounted) fails as repository-unreachable, writes nothing, and works once it is back', async () => {
  const root = tempDir('unmounted');
  const share = join(root, 'share');
  try {
    const away = withBackupConfig(tp.platform, { repositories: [fsRepository('share', share)], primary: 'share' });
    const earlier = await snapshotIds();
    const live = await taskTitles(tp.platform, acme.databaseName);

    // Through the CLI, as an operator runs it.
    tp.writeConfigFile({ ...tp.backup, repositories: [fsRepository('share', share)], primary: 'share' });
    const run = await runCli(['backup', 'run', 'snapshot'], { env: { TASKFLOW_DATA_DIR: tp.dataDir }, timeoutMs: 120_000 });
    assert.notEqual(run.code, 0, run.stdout);
    assert.ok(run.stderr.includes(`repository share: its directory ${share} is missing (is the share mounted?)`), run.stderr);
    const [failed, ...more] = await snapshotsSince(earlier);
    assert.equal(more.length, 0, 'one attempt, one row');
    assert.ok(failed, 'the attempt is in the catalog');
    assert.equal(failed.state, 'failed', 'never left running, never complete');
    assert.match(failed.error ?? '', /share: its directory .* is missing/);
    const alert = await openAlert('backup.repository-unreachable:share');
    assert.equal(alert?.code, 'backup.repository-unreachable');
    assert.match(alert.summary, /snapshot of the cluster failed: .*is missing/);
    assert.equal(alert.details.error, 'repository-unreachable');
    assert.ok(!existsSync(share), 'nothing was written where the share is mounted');
    await assertLiveUntouched(live);

    mkdirSync(share, { mode: 0o711 });
    chmodSync(share, 0o711);
    const entry = await takeSnapshot(away);
    assert.equal(entry.state, 'complete');
    assert.ok(existsSync(join(share, entry.name)));
    assert.equal(await openAlert('backup.repository-unreachable:share'), undefined, 'the success resolved the alert');
  } finally {
    tp.writeConfigFile();
    await restoreArchiving();
    rmSync(root, { recursive: true, force: true });
  }
});

test('the WAL archiver on a full repository: PostgreSQL keeps the segment, repository-full is raised, and it arrives once space is freed', { skip: skipFull }, async () => {
  const tmpfs = mountRepository('8m');
  const pgWal = join(tp.platform.cluster!.pgData, 'pg_wal');
  try {
    const small = withBackupConfig(tp.platform, { repositories: [fsRepository('walrepo', tmpfs.path)], primary: 'walrepo' });
    await ensureWalArchiving(small);
    // Segments the earlier tests closed are archived first, so the one closed below is the one that waits.
    await switchAndWaitArchived(tp.platform, 60_000);
    fill(tmpfs.path, 0);
    const before = await walArchiveStatus(tp.platform);
    await tp.platform.control.query(`CREATE TABLE IF NOT EXISTS wal_full_probe (n int); INSERT INTO wal_full_probe SELECT generate_series(1, 1000)`);
    const file = (await tp.platform.control.query<{ file: string }>(`SELECT pg_walfile_name(pg_switch_wal()) AS file`)).rows[0]!.file;
    const failing = await poll(async () => {
      const s = await walArchiveStatus(tp.platform);
      return s.lastFailedWal === file && s.failedCount > before.failedCount ? s : undefined;
    }, 30_000, 200);
    assert.ok(failing, 'pg_stat_archiver counts the failure of that segment');
    assert.ok(failing.lastArchivedWal === null || failing.lastArchivedWal < file, 'it is not reported archived');
    assert.ok(existsSync(join(pgWal, file)), 'PostgreSQL keeps the segment in pg_wal');
    assert.ok(existsSync(join(pgWal, 'archive_status', `${file}.ready`)), 'and still wants it archived');
    const alert = await openAlert('backup.repository-full:walrepo');
    assert.equal(alert?.code, 'backup.repository-full');
    assert.ok(alert.summary.startsWith(`archiving WAL file ${file} failed: `), alert.summary);
    assert.match(alert.summary, /in repository walrepo \(\S+\): the repository is full \(ENOSPC\)$/);
    const name = walObjectName(sysid, file);
    assert.deepEqual(filesUnder(tmpfs.path).filter((f) => f.includes(file)), [], 'no object, manifest or temporary file of it is left');
    const row = await getObject(tp.platform.control, name);
    assert.notEqual(row?.state, 'complete');
    assert.notEqual(row?.state, 'running');

    rmSync(join(tmpfs.path, FILLER));
    // A newly closed segment wakes the archiver at once (it otherwise waits up to a minute to retry).
    await tp.platform.control.query(`INSERT INTO wal_full_probe VALUES (1); SELECT pg_switch_wal()`);
    const arrived = await poll(async () => ((await getObject(tp.platform.control, name))?.state === 'complete' ? true : undefined), 60_000, 200);
    assert.ok(arrived, 'the kept segment was archived once space was freed');
    assert.ok(existsSync(join(tmpfs.path, name)) && existsSync(join(tmpfs.path, `${name}.manifest.json`)), 'the segment and its manifest are in the repository');
    assert.equal(await openAlert('backup.repository-full:walrepo'), undefined, 'the success resolved the alert');
  } finally {
    await restoreArchiving();
    await tmpfs.unmount();
  }
});
