/**
 * The WAL archive's daily check for holes, against a real cluster archiving into a filesystem
 * repository: a segment lost from the repository raises `backup.wal-missing` naming it and how far
 * the archive reaches before it; put back, the next check resolves the alert.
 */
import assert from 'node:assert/strict';
import { mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { listAlerts } from '../src/platform/alerts/alerts.ts';
import { MANIFEST_SUFFIX } from '../src/platform/backup/manifest.ts';
import { takeSnapshot } from '../src/platform/backup/physical/snapshot.ts';
import { checkWalContinuity } from '../src/platform/backup/physical/wal-continuity.ts';
import { parseWalFileName, segmentFileName, segmentNumberOf, walObjectName } from '../src/platform/backup/physical/wal-names.ts';
import { BACKUP_QUEUES, BackupJobs } from '../src/platform/backup/schedule.ts';
import { clusterIdentifier } from '../src/platform/backup/service.ts';
import { poll } from '../src/platform/replication/probe.ts';
import { withBackupConfig } from './backup-export-fixtures.ts';
import { startPhysicalPlatform, switchAndWaitArchived, type PhysicalTestPlatform } from './backup-physical-fixtures.ts';

const SEGMENT = 16 * 1024 * 1024;
let tp: PhysicalTestPlatform;
const files: string[] = [];

before(async () => {
  tp = await startPhysicalPlatform();
  await takeSnapshot(tp.platform);
  for (let i = 0; i < 3; i++) {
    await tp.platform.control.query('CREATE TABLE IF NOT EXISTS continuity (n int); INSERT INTO continuity VALUES (1)');
    files.push(await switchAndWaitArchived(tp.platform));
  }
});
after(async () => {
  await tp.cleanup();
});

/** The segment just before `file` on its timeline. */
function previous(file: string): string {
  const parsed = parseWalFileName(file);
  assert.ok(parsed);
  return segmentFileName(parsed.timeline, segmentNumberOf(parsed, SEGMENT) - 1n, SEGMENT);
}

test('a segment lost from the repository raises backup.wal-missing naming it and how far the archive reaches; put back, it resolves', async () => {
  const whole = await checkWalContinuity(tp.platform);
  assert.deepEqual(whole.holes, []);
  assert.ok(whole.from && whole.through, 'checked from the snapshot to the newest segment');
  assert.deepEqual(await listAlerts(tp.platform.control, { code: 'backup.wal-missing' }), []);

  const lost = files[1] ?? '';
  const object = join(tp.repositoryDir, walObjectName(await clusterIdentifier(tp.platform), lost));
  const aside = join(tp.repositoryDir, '..', 'aside');
  mkdirSync(aside, { recursive: true });
  for (const suffix of ['', MANIFEST_SUFFIX]) renameSync(`${object}${suffix}`, join(aside, `lost${suffix}`));

  // Found by the daily prune job, as scheduled backups run it.
  const jobs = await BackupJobs.start(withBackupConfig(tp.platform, { schedule: { timeZone: 'UTC', snapshot: 'off', export: 'off', prune: '30 4 * * *', drill: 'off' } }), { takeSnapshot: null, pollingIntervalSeconds: 0.5 });
  try {
    const id = await jobs.boss.send(BACKUP_QUEUES.prune, { reason: 'test' });
    assert.ok(id);
    const output = await poll(async () => {
      const job = await tp.platform.control.query<{ state: string; output: { wal?: { holes?: unknown[] } } }>('SELECT state, output FROM pgboss.job WHERE id = $1', [id]);
      return job.rows[0]?.state === 'completed' ? job.rows[0].output : undefined;
    }, 60_000, 200);
    assert.equal(output?.wal?.holes?.length, 1, JSON.stringify(output));
  } finally {
    await jobs.stop();
  }
  const holed = await checkWalContinuity(tp.platform);
  const [hole] = holed.holes;
  assert.equal(holed.holes.length, 1, JSON.stringify(holed.holes));
  assert.equal(hole?.first, lost);
  assert.equal(hole.missing, 1);
  assert.equal(hole.before?.file, previous(lost));
  const [alert] = await listAlerts(tp.platform.control, { code: 'backup.wal-missing' });
  assert.equal(alert?.severity, 'critical');
  assert.ok(alert.summary.startsWith(`WAL segment ${lost} is missing from repository local: it reaches ${hole.before.walEndAt} (${previous(lost)}) before it`), alert.summary);

  for (const suffix of ['', MANIFEST_SUFFIX]) {
    mkdirSync(dirname(object), { recursive: true });
    renameSync(join(aside, `lost${suffix}`), `${object}${suffix}`);
  }
  assert.deepEqual((await checkWalContinuity(tp.platform)).holes, []);
  assert.deepEqual(await listAlerts(tp.platform.control, { code: 'backup.wal-missing' }), [], 'resolved once the segment is back');
});
