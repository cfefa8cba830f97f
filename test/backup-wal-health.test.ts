/**
 * The WAL archive's watch against a real PostgreSQL 15 and real filesystem repositories: the
 * backup jobs install archiving at start (an install that fails is alerted, the jobs still start,
 * and the watch installs it once it can), a failing archive_command and a stale archive are
 * alerted and resolved again, and archived segments reach the secondary repository by the next
 * run of the job, oldest first and a bounded number per run. The job's handler is called directly.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { listAlerts } from '../src/platform/alerts/alerts.ts';
import { getObject } from '../src/platform/backup/catalog.ts';
import { FilesystemRepository } from '../src/platform/backup/fs-repository.ts';
import { readManifest } from '../src/platform/backup/manifest.ts';
import { readBackupObject } from '../src/platform/backup/pipeline.ts';
import { walArchiveStatus } from '../src/platform/backup/physical/wal-archive.ts';
import { installWalArchiving, WAL_INSTALL_KEY, WAL_STALE_KEY, WalArchiveWatch } from '../src/platform/backup/physical/wal-health.ts';
import { timelineHex, walObjectName } from '../src/platform/backup/physical/wal-names.ts';
import { BackupJobs, WAL_HEALTH_CRON, WAL_HEALTH_QUEUE } from '../src/platform/backup/schedule.ts';
import { clusterIdentifier } from '../src/platform/backup/service.ts';
import { poll } from '../src/platform/replication/probe.ts';
import { fsRepository, withBackupConfig } from './backup-export-fixtures.ts';
import { startPhysicalPlatform, switchAndWaitArchived, type PhysicalTestPlatform } from './backup-physical-fixtures.ts';

let tp: PhysicalTestPlatform;
let sysid: string;
let offsiteDir: string;
const NO_SCHEDULES = { schedule: { timeZone: 'UTC', snapshot: 'off', export: 'off', prune: 'off', drill: 'off' } } as const;

before(async () => {
  tp = await startPhysicalPlatform({
    archiveTimeoutSeconds: 60,
    extra: (root) => {
      offsiteDir = join(root, 'offsite');
      mkdirSync(offsiteDir);
      return [fsRepository('offsite', offsiteDir)];
    },
  });
  sysid = await clusterIdentifier(tp.platform);
  await tp.platform.control.query('CREATE TABLE wal_health_probe (n int)');
});

after(async () => {
  await tp.cleanup();
});

async function openKeys(): Promise<string[]> {
  return (await listAlerts(tp.platform.control)).map((a) => a.key);
}

async function archiveCommand(): Promise<string> {
  const res = await tp.platform.control.query<{ cmd: string }>(`SELECT current_setting('archive_command') AS cmd`);
  return res.rows[0]?.cmd ?? '';
}

async function writeWal(): Promise<void> {
  await tp.platform.control.query('INSERT INTO wal_health_probe SELECT generate_series(1, 100)');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('the backup jobs install WAL archiving at start; an install that fails is alerted, the jobs start anyway, and the watch installs it once it can', async () => {
  await tp.platform.control.query(`ALTER SYSTEM SET archive_command = '/bin/true'`);
  await tp.platform.control.query('SELECT pg_reload_conf()');
  await poll(async () => ((await archiveCommand()) === '/bin/true' ? true : undefined), 10_000, 100);
  // The primary repository's share is not mounted: its directory is missing.
  const unmounted = join(tp.repositoryDir, '..', 'unmounted');
  const broken = withBackupConfig(tp.platform, { ...NO_SCHEDULES, repositories: [fsRepository('local', unmounted), fsRepository('offsite', offsiteDir)] });
  const jobs = await BackupJobs.start(broken, { pollingIntervalSeconds: 0.5 });
  try {
    assert.ok(jobs.walWatch, 'a managed cluster is watched');
    assert.deepEqual((await jobs.boss.getSchedules(WAL_HEALTH_QUEUE)).map((s) => s.cron), [WAL_HEALTH_CRON]);
    const alert = (await listAlerts(tp.platform.control)).find((a) => a.key === WAL_INSTALL_KEY);
    assert.equal(alert?.code, 'backup.failed');
    assert.match(alert.summary, /WAL archiving could not be installed: .*unmounted is missing/);
    assert.equal(await archiveCommand(), '/bin/true', 'nothing was half-installed');

    mkdirSync(unmounted);
    const report = await jobs.runWalHealth();
    assert.equal(report?.installed, true);
    assert.match(await archiveCommand(), / archive --settings '.*settings\.json' %p %f$/);
    assert.ok(!(await openKeys()).includes(WAL_INSTALL_KEY), 'the install alert is resolved');
  } finally {
    await jobs.stop();
  }
  // Back to the real primary repository (what start does with the right configuration).
  const good = await BackupJobs.start(withBackupConfig(tp.platform, NO_SCHEDULES), { pollingIntervalSeconds: 0.5 });
  await good.stop();
  assert.match(await archiveCommand(), / archive --settings /);
  const segment = await switchAndWaitArchived(tp.platform);
  assert.ok(existsSync(join(tp.repositoryDir, walObjectName(sysid, segment))), 'segments go to the configured primary again');
  assert.equal(await installWalArchiving(tp.platform).then((s) => s?.changed), false, 'installing again changes nothing');
});

test('a failing archive_command (the repository unwritable) raises backup.failed:wal; the run after it works again resolves it', async () => {
  const segment = await switchAndWaitArchived(tp.platform);
  const timelineDir = join(tp.repositoryDir, 'wal', sysid, timelineHex(1));
  const mode = statSync(timelineDir).mode & 0o7777;
  const watch = new WalArchiveWatch(tp.platform);
  assert.ok(segment);
  chmodSync(timelineDir, 0o500); // the archiver runs as the PostgreSQL OS user, which owns the directory
  try {
    await writeWal();
    await tp.platform.control.query('SELECT pg_switch_wal()');
    assert.ok(await poll(async () => ((await walArchiveStatus(tp.platform)).failing ? true : undefined), 30_000, 200), 'PostgreSQL reports the failure');
    const report = await watch.run();
    assert.equal(report.failing, true);
    assert.equal(report.stale, false, 'a failing archive is reported as failing, not also as stale');
    const alert = (await listAlerts(tp.platform.control)).find((a) => a.key === 'backup.failed:wal');
    assert.equal(alert?.severity, 'critical');
    assert.match(alert.summary, /WAL archiving is failing/);
  } finally {
    chmodSync(timelineDir, mode);
  }
  await writeWal();
  await tp.platform.control.query('SELECT pg_switch_wal()');
  assert.ok(await poll(async () => ((await walArchiveStatus(tp.platform)).failing ? undefined : true), 30_000, 200), 'the archive caught up');
  const healthy = await watch.run();
  assert.equal(healthy.failing, false);
  assert.ok(!(await openKeys()).includes('backup.failed:wal'));
});

test('an archive that stops moving while WAL is written is stale: alerted once it has waited, resolved when a segment is archived', async () => {
  // archive_timeout is 60 s; the watch is told that 1 s is too long, so the test need not wait a minute.
  const watch = new WalArchiveWatch(tp.platform, { staleAfterSeconds: 1 });
  await switchAndWaitArchived(tp.platform);
  await sleep(1500);
  await writeWal();
  const first = await watch.run();
  assert.ok((first.unarchivedBytes ?? 0) > 0 && (first.newestArchivedAgeSeconds ?? 0) >= 1);
  assert.equal(first.stale, false, 'WAL seen waiting for the first time: it may be a first write after a quiet spell');
  assert.ok(!(await openKeys()).includes(WAL_STALE_KEY));
  await sleep(1500);
  const stuck = await watch.run();
  assert.equal(stuck.stale, true);
  const alert = (await listAlerts(tp.platform.control)).find((a) => a.key === WAL_STALE_KEY);
  assert.equal(alert?.code, 'backup.wal-archive-stale');
  assert.match(alert.summary, /the WAL archive is stale: the newest archived segment [0-9A-F]{24} is \d+ s old while WAL is written/);

  await switchAndWaitArchived(tp.platform);
  const moving = await watch.run();
  assert.equal(moving.stale, false);
  assert.ok(!(await openKeys()).includes(WAL_STALE_KEY), 'resolved once a segment was archived');
});

test('archived segments reach the secondary by the next run, oldest first and at most copyLimit per run, and restore from there', async () => {
  const offsite = new FilesystemRepository({ name: 'offsite', region: 'fra1', jurisdiction: 'DE', path: offsiteDir });
  const watch = new WalArchiveWatch(tp.platform, { copyLimit: 1 });
  await new WalArchiveWatch(tp.platform).run(); // the segments of the tests before
  assert.equal((await watch.run()).copies?.objects, 0, 'nothing is left to copy');
  await writeWal();
  const older = walObjectName(sysid, await switchAndWaitArchived(tp.platform));
  await writeWal();
  const newer = walObjectName(sysid, await switchAndWaitArchived(tp.platform));
  assert.ok(!existsSync(join(offsiteDir, older)) && !existsSync(join(offsiteDir, newer)), 'the archiver writes to the primary only');

  const first = await watch.run();
  assert.deepEqual([first.copies?.copied, first.copies?.failed], [1, 0]);
  assert.ok(existsSync(join(offsiteDir, older)) && !existsSync(join(offsiteDir, newer)), 'the older segment first');
  const second = await watch.run();
  assert.equal(second.copies?.copied, 1);
  for (const name of [older, newer]) {
    const entry = await getObject(tp.platform.control, name);
    assert.ok(entry?.locations.find((l) => l.repository === 'offsite')?.verifiedAt, `${name} is recorded in offsite, verified`);
  }
  // The copy decrypts to the very segment PostgreSQL wrote.
  const manifest = await readManifest(offsite, newer);
  const hash = createHash('sha256');
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback();
    },
  });
  await readBackupObject({ repository: offsite, name: newer, identities: tp.identities, destination: sink });
  assert.equal(hash.digest('hex'), manifest.source.rawSha256);
});
