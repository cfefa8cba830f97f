/**
 * Scheduled backups on pg-boss against a real control database: two app hosts (two pg-boss
 * instances on one database) run each occurrence once; an occurrence that passed while nothing
 * ran is made up for at start; and `taskflow start` runs the schedules only when backups are
 * configured.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UserError } from '../src/errors.ts';
import { listAlerts } from '../src/platform/alerts/alerts.ts';
import { beginObject, failObject, getObject, listObjects, type CatalogEntry } from '../src/platform/backup/catalog.ts';
import { exportTenants } from '../src/platform/backup/export.ts';
import { beginLockedObject } from '../src/platform/backup/run-lock.ts';
import { BACKUP_QUEUES, BackupJobs, startBackupJobs } from '../src/platform/backup/schedule.ts';
import { createTenant } from '../src/platform/tenants/provision.ts';
import type { Tenant } from '../src/platform/tenants/registry.ts';
import { fsRepository, startBackupPlatform, withBackupConfig, type BackupTestPlatform } from './backup-export-fixtures.ts';
import { runCli, TASKFLOW_BIN } from './helpers/cli.ts';
import { tempDir } from './helpers/platform.ts';

async function completeExports(tp: BackupTestPlatform): Promise<CatalogEntry[]> {
  return listObjects(tp.platform.control, { kind: 'export', state: 'complete' });
}

async function until<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Jobs of a queue that are not settled yet. */
async function unsettled(tp: BackupTestPlatform, queue: string): Promise<number> {
  const res = await tp.platform.control.query<{ n: string }>(`SELECT count(*)::text AS n FROM pgboss.job WHERE name = $1 AND state IN ('created', 'retry', 'active')`, [queue]);
  return Number(res.rows[0]?.n);
}

describe('backup schedules', () => {
  let root: string;
  let tp: BackupTestPlatform;
  let tenants: Tenant[];

  before(async () => {
    root = tempDir('schedule');
    mkdirSync(join(root, 'local'));
    tp = await startBackupPlatform([fsRepository('local', join(root, 'local'))]);
    tenants = [];
    for (const slug of ['alpha', 'beta']) tenants.push((await createTenant({ platform: tp.platform, slug, actor: 'test' })).tenant);
  });
  after(async () => {
    await tp.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  test('without repositories nothing is scheduled', async () => {
    assert.equal(await startBackupJobs(withBackupConfig(tp.platform, { repositories: [] })), null);
    const schema = await tp.platform.control.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'pgboss'`);
    assert.equal(schema.rowCount, 0, 'no job schema was created');
  });

  test('an expression pg-boss cannot read is refused at start, naming the key (exit 2)', async () => {
    const bad = withBackupConfig(tp.platform, { schedule: { timeZone: 'UTC', snapshot: 'off', export: '61 * * * *', prune: 'off', drill: 'off' } });
    await assert.rejects(BackupJobs.start(bad), (err: unknown) => {
      assert.ok(err instanceof UserError && err.exitCode === 2);
      assert.match(err.message, /backup\.schedule\.export: '61 \* \* \* \*' is not a usable cron expression in UTC/);
      return true;
    });
  });

  test('an export due while nothing ran is made up for when the jobs start, once', async () => {
    // History: alpha's last export is from before the latest 6-hourly occurrence; beta never had one.
    const [old] = await exportTenants(tp.platform, [tenants[0]!]);
    assert.ok(old?.ok);
    await tp.platform.control.query(`UPDATE backup_objects SET started_at = now() - interval '7 hours', data_at = now() - interval '7 hours' WHERE id = $1`, [old.entry!.id]);
    const platform = withBackupConfig(tp.platform, { schedule: { timeZone: 'Europe/Berlin', snapshot: 'off', export: '0 */6 * * *', prune: 'off', drill: 'off' } });

    const jobs = await BackupJobs.start(platform, { pollingIntervalSeconds: 0.5 });
    try {
      const occurrence = jobs.latestOccurrence('export')!;
      assert.ok(Date.now() - occurrence.getTime() < 6 * 3_600_000 && occurrence.getUTCMinutes() === 0);
      const made = await until('the missed exports', async () => {
        const fresh = (await completeExports(tp)).filter((e) => Date.parse(e.startedAt) >= occurrence.getTime());
        return fresh.length >= 2 ? fresh : null;
      });
      assert.deepEqual(made.map((e) => e.tenantSlug).sort(), ['alpha', 'beta']);
      await until('the job to settle', async () => ((await unsettled(tp, BACKUP_QUEUES.export)) === 0 ? true : null));
    } finally {
      await jobs.stop();
    }

    // Started again: the occurrence is covered now, so nothing more is sent or exported.
    const count = (await completeExports(tp)).length;
    const again = await BackupJobs.start(platform, { pollingIntervalSeconds: 0.5 });
    try {
      assert.deepEqual(await again.catchUp(), []);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      assert.equal((await completeExports(tp)).length, count);
    } finally {
      await again.stop();
    }
  });

  test('two app hosts on one database run each occurrence once', async () => {
    const platform = withBackupConfig(tp.platform, { schedule: { timeZone: 'UTC', snapshot: 'off', export: '* * * * *', prune: 'off', drill: 'off' } });
    const options = { pollingIntervalSeconds: 0.5, cronMonitorIntervalSeconds: 1 };
    const startedAt = Date.now();
    const hosts = await Promise.all([BackupJobs.start(platform, options), BackupJobs.start(platform, options)]);
    try {
      const firstMinute = Math.floor(startedAt / 60_000) * 60_000;
      await until('an export per tenant in this minute', async () => {
        const mine = (await completeExports(tp)).filter((e) => Date.parse(e.startedAt) >= firstMinute);
        return new Set(mine.map((e) => e.tenantSlug)).size === tenants.length ? true : null;
      });
      // Both hosts keep running cron passes and polling for a while; nothing more may happen.
      await new Promise((resolve) => setTimeout(resolve, 5000));
      await until('the jobs to settle', async () => ((await unsettled(tp, BACKUP_QUEUES.export)) === 0 ? true : null));
    } finally {
      await Promise.all(hosts.map((h) => h.stop()));
    }
    // Every occurrence (minute) that fell into the run has exactly one export per tenant.
    const byMinute = new Map<string, number>();
    for (const e of await listObjects(tp.platform.control, { kind: 'export', after: new Date(Math.floor(startedAt / 60_000) * 60_000) })) {
      const key = `${e.tenantSlug} ${Math.floor(Date.parse(e.startedAt) / 60_000)}`;
      byMinute.set(key, (byMinute.get(key) ?? 0) + 1);
    }
    assert.ok(byMinute.size >= tenants.length);
    const fired = await tp.platform.control.query(`SELECT 1 FROM pgboss.job WHERE name = $1 AND state = 'completed' AND data->>'reason' = 'schedule' AND created_on >= $2`, [
      BACKUP_QUEUES.export,
      new Date(startedAt - 1000),
    ]);
    assert.ok((fired.rowCount ?? 0) >= 1, 'the cron schedule itself fired');
    assert.deepEqual([...new Set(byMinute.values())], [1], `one export per tenant and occurrence: ${JSON.stringify([...byMinute])}`);
  });

  test('an occurrence whose export process died is owed again and made up at start; one still being written is not', async () => {
    const platform = withBackupConfig(tp.platform, { schedule: { timeZone: 'UTC', snapshot: 'off', export: '0 */6 * * *', prune: 'off', drill: 'off' } });
    // The exports so far date from before the latest occurrence; since it, alpha's export process
    // died half way (a running row nobody holds) and beta's is still being written (a live writer).
    await tp.platform.control.query(`UPDATE backup_objects SET started_at = started_at - interval '7 hours' WHERE kind = 'export'`);
    const [alpha, beta] = tenants as [Tenant, Tenant];
    const dead = await beginObject(tp.platform.control, { kind: 'export', name: `exports/alpha/dead-${Date.now()}.dump`, cluster: 'test', tenantId: alpha.id, tenantSlug: alpha.slug });
    const live = await beginLockedObject(tp.platform, { kind: 'export', name: `exports/beta/live-${Date.now()}.dump`, cluster: 'test', tenantId: beta.id, tenantSlug: beta.slug });
    const jobs = await BackupJobs.start(platform, { pollingIntervalSeconds: 0.5 });
    try {
      const occurrence = jobs.latestOccurrence('export')!;
      const made = await until("alpha's export, made again", async () => {
        const fresh = (await completeExports(tp)).filter((e) => Date.parse(e.startedAt) >= occurrence.getTime());
        return fresh.length > 0 ? fresh : null;
      });
      assert.deepEqual(made.map((e) => e.tenantSlug), ['alpha']);
      await until('the job to settle', async () => ((await unsettled(tp, BACKUP_QUEUES.export)) === 0 ? true : null));
      assert.deepEqual((await jobs.tenantsDue(occurrence)).map((t) => t.slug), [], "beta's live export covers it");
      assert.equal((await getObject(tp.platform.control, dead))?.state, 'failed', 'the dead run is marked failed');
      // Raised when the export ran again, and resolved by its success.
      const [interrupted] = await listAlerts(tp.platform.control, { all: true, code: 'backup.interrupted' });
      assert.match(interrupted?.summary ?? '', /exports\/alpha\/dead-/);
      assert.equal((await getObject(tp.platform.control, live.id))?.state, 'running', 'a live writer is left alone');
    } finally {
      await jobs.stop();
      await failObject(tp.platform.control, live.id, 'test over');
      await live.release();
    }
  });

});

describe('taskflow start with backups configured', () => {
  test('runs the schedules in the server process: the snapshot and export owed at the first start run at once', async () => {
    const root = tempDir('schedule-start');
    const dataDir = join(root, 'data');
    mkdirSync(join(root, 'repo'));
    mkdirSync(dataDir, { mode: 0o700 });
    const { generateIdentity } = await import('../src/platform/backup/age-keys.ts');
    const backup = { allowedJurisdictions: ['DE'], recipients: [generateIdentity().recipient], repositories: [fsRepository('local', join(root, 'repo'))] };
    writeFileSync(join(dataDir, 'config.json'), JSON.stringify({ backup }));
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TASKFLOW_')) env[k] = v;
    const child = spawn(process.execPath, [TASKFLOW_BIN, 'start', '--demo', '--tls', 'off', '--port', '0', '--data-dir', dataDir, '--log-level', 'info'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let logs = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout.on('data', (d: Buffer) => {
      logs += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await until('the server to start', () => Promise.resolve(stderr.includes('Press Ctrl-C') ? true : null), 120_000);
      assert.match(logs, /backup schedules running/);
      // Nothing was ever backed up: the snapshot and the export the schedules owe are taken at once.
      const listed = await until('the snapshot and the demo export', async () => {
        const res = await runCli(['backup', 'list', '--state', 'complete', '--json'], { env: { TASKFLOW_DATA_DIR: dataDir } });
        assert.equal(res.code, 0, res.stderr);
        const rows = (JSON.parse(res.stdout) as CatalogEntry[]).filter((e) => e.kind !== 'wal');
        return rows.length >= 2 ? rows : null;
      }, 90_000);
      assert.deepEqual(listed.map((e) => `${e.kind} ${e.tenantSlug ?? ''}`).sort(), ['export demo', 'snapshot ']);
    } finally {
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr.slice(-2000));
      rmSync(root, { recursive: true, force: true });
    }
  });
});
