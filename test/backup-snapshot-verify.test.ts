/**
 * Proving snapshots: `backup verify --restore` restores snapshot + WAL into a scratch cluster,
 * runs pg_verifybackup and amcheck, and reproduces the row counts recorded at backup time exactly,
 * even with a tenant writing throughout the snapshot; a difference fails it with an alert and
 * no proof. And plain `backup verify`: every stored copy against its checksum.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { listAlerts } from '../src/platform/alerts/alerts.ts';
import { getObject, listObjects } from '../src/platform/backup/catalog.ts';
import { loadRestoreIdentity } from '../src/platform/backup/physical/identity.ts';
import { scratchRoot } from '../src/platform/backup/physical/scratch-cluster.ts';
import { takeSnapshot } from '../src/platform/backup/physical/snapshot.ts';
import { BACKUP_QUEUES, BackupJobs } from '../src/platform/backup/schedule.ts';
import { poll } from '../src/platform/replication/probe.ts';
import { verifyObjects } from '../src/platform/backup/physical/verify-objects.ts';
import { renderVerifyReport, verifyRestore } from '../src/platform/backup/physical/verify-restore.ts';
import type { Tenant } from '../src/platform/tenants/registry.ts';
import { withBackupConfig } from './backup-export-fixtures.ts';
import { addTask, startPhysicalPlatform, switchAndWaitArchived, tenantWithTasks, withDb, type PhysicalTestPlatform } from './backup-physical-fixtures.ts';
import { existsSync, readdirSync } from 'node:fs';

let tp: PhysicalTestPlatform;
let acme: Tenant;
let snapshotId = '';

before(async () => {
  tp = await startPhysicalPlatform();
  acme = await tenantWithTasks(tp.platform, 'acme', 10, 'Acme');
  await tenantWithTasks(tp.platform, 'globex', 3, 'Globex');
});

after(async () => {
  await tp.cleanup();
});

test('verify --restore: pg_verifybackup, amcheck and the exact row counts of a snapshot taken under writes', async () => {
  // A tenant writes all through the snapshot: the recorded counts must still be reproducible exactly.
  let writing = true;
  let written = 0;
  const writer = withDb(tp.platform, acme.databaseName, async (client) => {
    while (writing) {
      await addTask(client, `Busy ${written}`);
      written++;
    }
  });
  const entry = await takeSnapshot(tp.platform);
  writing = false;
  await writer;
  snapshotId = entry.id;
  assert.ok(written > 0, 'the tenant wrote during the snapshot');

  const report = await verifyRestore(tp.platform, { identity: loadRestoreIdentity({ file: tp.identityFile }) });
  assert.equal(report.ok, true, report.problem ?? '');
  assert.equal(report.snapshot.id, entry.id);
  const { pgVerifybackup, amcheck, rowCounts } = report;
  assert.ok(pgVerifybackup && amcheck && rowCounts);
  assert.ok(pgVerifybackup.ok);
  assert.match(pgVerifybackup.output, /backup successfully verified/);
  assert.ok(amcheck.indexes > 100, 'every index of every database, catalogs included');
  assert.ok(amcheck.databases >= 4, 'postgres, the control database, the template and the tenants');
  assert.ok(rowCounts.compared);
  assert.ok(rowCounts.tables > 20);
  assert.deepEqual(rowCounts.mismatches, []);
  const proven = await getObject(tp.platform.control, entry.id);
  assert.ok(proven?.provenAt, 'the evidence is stored with the snapshot');
  assert.equal(proven.proof?.kind, 'verify-restore');
  assert.equal(proven.proof.ok, true);
  assert.match(renderVerifyReport(report), /^# Restore verification of snapshots\/.*: PASSED/);
  assert.deepEqual(existsSync(scratchRoot(tp.platform.dir)) ? readdirSync(scratchRoot(tp.platform.dir)) : [], [], 'the scratch cluster is gone');
});

test('the scheduled restore drill (backup.schedule.drill) proves the newest snapshot, on a host that holds the identity only', async () => {
  const platform = withBackupConfig(tp.platform, { schedule: { timeZone: 'UTC', snapshot: 'off', export: 'off', prune: 'off', drill: '0 5 * * 0' } });
  const options = { walWatch: null, takeSnapshot: null, pollingIntervalSeconds: 0.5 };
  // A host without the identity keeps the schedule for the others but works no drill.
  const without = await BackupJobs.start(platform, { ...options, drillIdentity: null });
  const schedules = async () => (await tp.platform.control.query<{ cron: string }>('SELECT cron FROM pgboss.schedule WHERE name = $1', [BACKUP_QUEUES.drill])).rows.map((r) => r.cron);
  try {
    assert.deepEqual(await schedules(), ['0 5 * * 0']);
  } finally {
    await without.stop();
  }
  const jobs = await BackupJobs.start(platform, { ...options, drillIdentity: loadRestoreIdentity({ file: tp.identityFile }) });
  try {
    const sent = Date.now();
    await jobs.boss.send(BACKUP_QUEUES.drill, { reason: 'test' });
    const proven = await poll(async () => {
      const entry = await getObject(tp.platform.control, snapshotId);
      return entry?.provenAt && Date.parse(entry.provenAt) >= sent ? entry : undefined;
    }, 120_000, 500);
    assert.ok(proven, 'the drill stored new evidence with the newest snapshot');
    assert.equal(proven.proof?.ok, true);
    assert.equal(proven.proof.kind, 'verify-restore');
  } finally {
    await jobs.stop();
  }
  const off = await BackupJobs.start(withBackupConfig(tp.platform, { schedule: { timeZone: 'UTC', snapshot: 'off', export: 'off', prune: 'off', drill: 'off' } }), options);
  await off.stop();
  assert.deepEqual(await schedules(), [], 'turned off, the schedule is removed');
});

test('a restore that does not reproduce the recorded counts fails the proof and raises backup.verify-failed', async () => {
  const before = await getObject(tp.platform.control, snapshotId);
  // What the catalog recorded no longer matches what the backup holds.
  await tp.platform.control.query(
    `UPDATE backup_objects SET details = jsonb_set(details, '{rowCounts,databases,${acme.databaseName},app.tasks}', to_jsonb((details #>> '{rowCounts,databases,${acme.databaseName},app.tasks}')::int + 1)) WHERE id = $1`,
    [snapshotId],
  );
  const report = await verifyRestore(tp.platform, { snapshot: snapshotId, identity: loadRestoreIdentity({ file: tp.identityFile }) });
  assert.equal(report.ok, false);
  const mismatches = report.rowCounts?.mismatches ?? [];
  assert.equal(mismatches.length, 1);
  assert.equal(mismatches[0]?.table, 'app.tasks');
  assert.equal(mismatches[0].recorded, (mismatches[0].restored ?? 0) + 1);
  assert.match(renderVerifyReport(report), /FAILED/);
  const [alert] = await listAlerts(tp.platform.control, { code: 'backup.verify-failed' });
  assert.match(alert?.summary ?? '', /did not verify: 1 table\(s\) restored with other row counts/);
  assert.equal((await getObject(tp.platform.control, snapshotId))?.provenAt, before?.provenAt, 'no new proof');
});

test('plain verify checks every stored copy against its checksum and renews verified_at; a corrupted copy raises backup.corrupted', async () => {
  await switchAndWaitArchived(tp.platform);
  const good = await verifyObjects(tp.platform);
  assert.ok(good.length >= 2 && good.every((c) => c.ok), JSON.stringify(good.filter((c) => !c.ok)));
  const [wal] = await listObjects(tp.platform.control, { kind: 'wal', state: 'complete', limit: 1 });
  assert.ok(wal?.locations[0]?.verifiedAt, 'verified_at is set');
  const path = join(tp.repositoryDir, wal.name);
  const bytes = readFileSync(path);
  bytes[200] = (bytes[200] ?? 0) ^ 0x01;
  writeFileSync(path, bytes);
  const checks = await verifyObjects(tp.platform);
  const bad = checks.filter((c) => !c.ok);
  assert.deepEqual(bad.map((c) => c.name), [wal.name]);
  assert.match(bad[0]?.problem ?? '', /SHA-256/);
  const alerts = await listAlerts(tp.platform.control, { code: 'backup.corrupted' });
  assert.equal(alerts[0]?.key, 'backup.corrupted:local');
});
