/**
 * Backups that did not happen, against a real control database and catalog: a scheduled snapshot
 * or a tenant's export missing past the grace period raises `backup.overdue`, a snapshot nobody
 * proved by a restore for too long raises `backup.unproven`, and each is resolved by the next run
 * once the backup or proof is there. The check is given the moment it judges, so nothing waits.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { listAlerts, type StoredAlert } from '../src/platform/alerts/alerts.ts';
import { beginObject, completeObject, recordProof, type BackupKind } from '../src/platform/backup/catalog.ts';
import { checkOverdue, exportOverdueKey, SNAPSHOT_OVERDUE_KEY, UNPROVEN_KEY } from '../src/platform/backup/overdue.ts';
import { writeBackupObject } from '../src/platform/backup/pipeline.ts';
import { BackupJobs, OVERDUE_QUEUE } from '../src/platform/backup/schedule.ts';
import { openBackupTarget } from '../src/platform/backup/service.ts';
import type { Platform } from '../src/platform/platform.ts';
import { createTenant } from '../src/platform/tenants/provision.ts';
import type { Tenant } from '../src/platform/tenants/registry.ts';
import { fsRepository, startBackupPlatform, withBackupConfig, type BackupTestPlatform } from './backup-export-fixtures.ts';
import { TASKFLOW_BIN } from './helpers/cli.ts';
import { tempDir } from './helpers/platform.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Snapshots at 02:00 UTC, exports every 6 hours; the grace period is the default 120 minutes. */
const SCHEDULE = { timeZone: 'UTC', snapshot: '0 2 * * *', export: '0 */6 * * *', prune: 'off', drill: 'off' };

describe('overdue backups and unproven snapshots', () => {
  let root: string;
  let tp: BackupTestPlatform;
  let platform: Platform;
  let jobs: BackupJobs;
  let alpha: Tenant;
  let beta: Tenant;
  /** Midnight UTC after tomorrow: every judged moment lies after the tenants were created. */
  const day = new Date(Math.ceil(Date.now() / DAY) * DAY + DAY);
  const at = (hours: number) => new Date(day.getTime() + hours * HOUR);
  let seq = 0;

  /** Writes a real object to the repository and catalogues it as complete, started at `startedAt`. */
  async function seed(kind: BackupKind, startedAt: Date, tenant?: Tenant): Promise<string> {
    const target = openBackupTarget(platform.config);
    try {
      const name = kind === 'snapshot' ? `snapshots/c1/s${++seq}.tar` : `exports/${tenant!.id}/e${++seq}.dump`;
      const manifest = await writeBackupObject({ repository: target.primary, name, kind, source: Readable.from([randomBytes(1024)]), recipients: target.recipients });
      const id = await beginObject(platform.control, { kind, name, cluster: 'c1', timeline: 1, tenantId: tenant?.id ?? null, tenantSlug: tenant?.slug ?? null, startedAt });
      await completeObject(platform.control, id, { manifest, repository: target.primary.name, dataAt: startedAt, finishedAt: new Date(startedAt.getTime() + 60_000) });
      return id;
    } finally {
      await target.close();
    }
  }

  /** The alert with this key, open or resolved (null: never raised). */
  async function alert(key: string): Promise<StoredAlert | null> {
    return (await listAlerts(platform.control, { all: true, limit: 1000 })).find((a) => a.key === key) ?? null;
  }

  async function open(key: string): Promise<StoredAlert | null> {
    const a = await alert(key);
    return a && a.resolvedAt === null ? a : null;
  }

  /** The check as the job runs it, but with snapshots scheduled (the jobs here have no snapshot engine). */
  const check = (now: Date, on: Platform = platform) =>
    checkOverdue(on, { now, snapshots: true, exports: true, latestOccurrence: (kind, moment) => jobs.latestOccurrence(kind, moment) });

  before(async () => {
    root = tempDir('overdue');
    mkdirSync(join(root, 'local'));
    tp = await startBackupPlatform([fsRepository('local', join(root, 'local'))]);
    platform = withBackupConfig(tp.platform, { schedule: SCHEDULE });
    // Started before any tenant exists, so its catch-up finds nothing to export.
    jobs = await BackupJobs.start(platform, { takeSnapshot: null, walWatch: null });
    alpha = (await createTenant({ platform, slug: 'alpha', actor: 'test' })).tenant;
    beta = (await createTenant({ platform, slug: 'beta', actor: 'test' })).tenant;
  });
  after(async () => {
    await jobs.stop(1000).catch(() => undefined);
    await tp.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  test('the overdue check is scheduled every minute wherever the backup jobs run', async () => {
    const res = await platform.control.query<{ cron: string }>(`SELECT cron FROM pgboss.schedule WHERE name = $1`, [OVERDUE_QUEUE]);
    assert.deepEqual(res.rows.map((r) => r.cron), ['* * * * *']);
    // From here on the tests run the check themselves, at moments of their choosing.
    await jobs.stop(1000);
  });

  test('a snapshot missing at its occurrence is alerted only after the grace period, and resolved by a complete one', async () => {
    const occurrence = at(2);
    const early = await check(at(3.98));
    assert.equal(early.snapshotOverdue, false);
    assert.equal(await open(SNAPSHOT_OVERDUE_KEY), null, 'no alert within the 120 minutes of grace');

    const late = await check(at(4.02));
    assert.equal(late.snapshotOverdue, true);
    const raised = await open(SNAPSHOT_OVERDUE_KEY);
    assert.ok(raised, 'backup.overdue:snapshot is open');
    assert.equal(raised.code, 'backup.overdue');
    assert.ok(raised.summary.startsWith(`no snapshot since the one scheduled at ${occurrence.toISOString()}`), raised.summary);
    assert.match(raised.summary, /none was ever taken/);

    // Yesterday's snapshot does not cover today's occurrence.
    const yesterday = at(-22);
    await seed('snapshot', yesterday);
    assert.equal((await check(at(4.1))).snapshotOverdue, true);
    const summary = (await open(SNAPSHOT_OVERDUE_KEY))?.summary ?? '';
    assert.ok(summary.includes(`newest complete snapshot started at ${yesterday.toISOString()}`), summary);

    await seed('snapshot', at(2.05));
    assert.equal((await check(at(4.2))).snapshotOverdue, false);
    const resolved = await alert(SNAPSHOT_OVERDUE_KEY);
    assert.ok(resolved?.resolvedAt, 'resolved once a snapshot since the occurrence is complete');
    assert.match(resolved.resolution ?? '', /is complete/);
  });

  test('snapshots that are not scheduled (an external cluster) are never overdue', async () => {
    assert.equal((await check(at(30))).snapshotOverdue, true, "today's snapshot would be overdue if scheduled");
    assert.ok(await open(SNAPSHOT_OVERDUE_KEY));
    const report = await checkOverdue(platform, { now: at(30), snapshots: false, exports: false, latestOccurrence: (kind, moment) => jobs.latestOccurrence(kind, moment) });
    assert.equal(report.snapshotOverdue, false);
    assert.equal(await open(SNAPSHOT_OVERDUE_KEY), null);
  });

  test('exports are overdue per tenant, and each tenant is resolved by its own export', async () => {
    const occurrence = at(6);
    const early = await jobs.checkOverdue(at(7.9));
    assert.deepEqual(early.exportsOverdue, [], 'no export is overdue within the grace period');
    assert.equal(await open(exportOverdueKey(alpha.id)), null);

    const late = await jobs.checkOverdue(at(8.1));
    assert.deepEqual(late.exportsOverdue.sort(), [alpha.id, beta.id].sort());
    for (const tenant of [alpha, beta]) {
      const raised = await open(exportOverdueKey(tenant.id));
      assert.ok(raised, `backup.overdue:export for ${tenant.slug} is open`);
      assert.equal(raised.tenantId, tenant.id);
      assert.ok(raised.summary.startsWith(`no export of tenant ${tenant.slug} since the one scheduled at ${occurrence.toISOString()}`), raised.summary);
      assert.match(raised.summary, /it was never exported/);
    }

    await seed('export', at(6.1), alpha);
    const after = await jobs.checkOverdue(at(8.2));
    assert.deepEqual(after.exportsOverdue, [beta.id]);
    assert.ok((await alert(exportOverdueKey(alpha.id)))?.resolvedAt, "alpha's alert is resolved by its export");
    assert.ok(await open(exportOverdueKey(beta.id)), "beta's stays open");

    await seed('export', at(6.2), beta);
    assert.deepEqual((await jobs.checkOverdue(at(8.3))).exportsOverdue, []);
    assert.ok((await alert(exportOverdueKey(beta.id)))?.resolvedAt);
  });

  test('snapshots not proven by a restore within backup.proofMaxAgeDays raise backup.unproven until a proof is recorded', async () => {
    // The oldest complete snapshot (yesterday 02:00) is younger than 8 days: nothing to prove yet.
    assert.equal((await check(at(6 * 24))).unproven, false);
    assert.equal(await open(UNPROVEN_KEY), null);

    assert.equal((await check(at(8 * 24))).unproven, true);
    const never = await open(UNPROVEN_KEY);
    assert.ok(never, 'backup.unproven is open');
    assert.match(never.summary, /no snapshot was ever proven restorable.*taskflow backup verify --restore/);

    // A proof older than the limit does not count.
    const snapshot = await seed('snapshot', at(24));
    await recordProof(platform.control, snapshot, { test: true }, at(25));
    assert.equal((await check(at(24 * 10))).unproven, true);
    const summary = (await open(UNPROVEN_KEY))?.summary ?? '';
    assert.ok(summary.startsWith(`no snapshot was proven restorable since ${at(25).toISOString()}`), summary);

    // backup.proofMaxAgeDays 0 turns the check off.
    assert.equal((await check(at(24 * 10), withBackupConfig(platform, { proofMaxAgeDays: 0 }))).unproven, false);
    assert.equal(await open(UNPROVEN_KEY), null);
    assert.equal((await check(at(24 * 10))).unproven, true, 'raised again with the default');

    await recordProof(platform.control, snapshot, { test: true }, at(24 * 9));
    assert.equal((await check(at(24 * 10))).unproven, false);
    assert.ok((await alert(UNPROVEN_KEY))?.resolvedAt, 'resolved by a recent proof');
  });
});

test('taskflow start without a backup configuration warns on stderr that nothing is backed up', async () => {
  const root = tempDir('overdue-start');
  const dataDir = join(root, 'data');
  mkdirSync(dataDir, { mode: 0o700 });
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TASKFLOW_')) env[k] = v;
  const child = spawn(process.execPath, [TASKFLOW_BIN, 'start', '--tls', 'off', '--port', '0', '--data-dir', dataDir], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const running = new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('Press Ctrl-C')) resolve();
    });
    child.once('exit', (code) => {
      reject(new Error(`taskflow start exited (${String(code)}): ${stderr.slice(-2000)}`));
    });
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    await running;
    const warnings = stderr.split('\n').filter((line) => /backups are NOT configured/.test(line));
    assert.equal(warnings.length, 1, stderr);
    assert.match(warnings[0]!, /^WARNING: .*docs\/backups\.md/);
  } finally {
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr.slice(-2000));
    rmSync(root, { recursive: true, force: true });
  }
});
