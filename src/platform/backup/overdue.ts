/**
 * Backups that did not happen. A failure raises `backup.failed`, but a scheduler that is down, a
 * tenant whose exports never run or a snapshot nobody ever restored raise nothing by themselves;
 * the `overdue` job (schedule.ts, every minute) compares the catalog with the schedule instead.
 *
 * Alerts, by key:
 *   backup.overdue:snapshot            no complete snapshot started since the latest scheduled
 *                                      occurrence, and that occurrence is more than
 *                                      `backup.overdueGraceMinutes` ago
 *   backup.overdue:export:<tenant id>  likewise for one exportable tenant's exports (a tenant
 *                                      created after the occurrence is not due yet)
 *   backup.unproven                    the newest restore proof of a snapshot is older than
 *                                      `backup.proofMaxAgeDays`, or none was ever proven while a
 *                                      complete snapshot older than that exists
 *
 * Each is resolved by the first run that finds the backup or proof there.
 */
import { listAlerts } from '../alerts/alerts.ts';
import { exportableTenants } from './export.ts';
import { resolveAlerts } from './outcomes.ts';
import type { BackupPlatform } from './service.ts';

export const SNAPSHOT_OVERDUE_KEY = 'backup.overdue:snapshot';
export const UNPROVEN_KEY = 'backup.unproven';

/** The key of the overdue alert of one tenant's exports. */
export function exportOverdueKey(tenantId: string): string {
  return `backup.overdue:export:${tenantId}`;
}

const DAY_MS = 86_400_000;

export interface OverdueCheckProps {
  /** The moment judged (tests pass one; the job passes the clock). */
  now?: Date;
  /** Whether snapshots, and exports, run on a schedule here (BackupJobs.scheduled). */
  snapshots: boolean;
  exports: boolean;
  /** The latest occurrence of a schedule at or before `now` (BackupJobs.latestOccurrence). */
  latestOccurrence: (kind: 'snapshot' | 'export', now: Date) => Date | null;
}

export interface OverdueReport {
  snapshotOverdue: boolean;
  /** Ids of the tenants whose export is overdue. */
  exportsOverdue: string[];
  unproven: boolean;
}

/** One run of the check: raises what is overdue, resolves what is not. Never throws on an alert. */
export async function checkOverdue(platform: BackupPlatform, props: OverdueCheckProps): Promise<OverdueReport> {
  const now = props.now ?? new Date();
  const graceMs = platform.config.backup.overdueGraceMinutes * 60_000;
  return {
    snapshotOverdue: props.snapshots ? await checkSnapshot(platform, props.latestOccurrence('snapshot', now), now, graceMs) : await resolved(platform, [SNAPSHOT_OVERDUE_KEY], 'snapshots are not scheduled'),
    exportsOverdue: await checkExports(platform, props.exports ? props.latestOccurrence('export', now) : null, now, graceMs),
    unproven: await checkProof(platform, now),
  };
}

async function resolved(platform: BackupPlatform, keys: string[], resolution: string): Promise<false> {
  await resolveAlerts(platform, keys, resolution);
  return false;
}

/** Past the occurrence by more than the grace period (so a backup still running on time is not alerted). */
function pastGrace(occurrence: Date | null, now: Date, graceMs: number): occurrence is Date {
  return occurrence !== null && now.getTime() - occurrence.getTime() > graceMs;
}

async function checkSnapshot(platform: BackupPlatform, occurrence: Date | null, now: Date, graceMs: number): Promise<boolean> {
  const res = await platform.control.query<{ newest: Date | null; running: Date | null }>(
    `SELECT max(started_at) FILTER (WHERE state = 'complete') AS newest, max(started_at) FILTER (WHERE state = 'running') AS running
       FROM backup_objects WHERE kind = 'snapshot' AND started_at <= $1`,
    [now],
  );
  const newest = res.rows[0]?.newest ?? null;
  if (!pastGrace(occurrence, now, graceMs) || (newest !== null && newest >= occurrence)) {
    return resolved(platform, [SNAPSHOT_OVERDUE_KEY], newest ? `a snapshot started at ${newest.toISOString()} is complete` : 'no snapshot is due yet');
  }
  const running = res.rows[0]?.running ?? null;
  await platform.alerts.raise({
    code: 'backup.overdue',
    key: SNAPSHOT_OVERDUE_KEY,
    severity: 'critical',
    summary:
      `no snapshot since the one scheduled at ${occurrence.toISOString()}: the newest complete snapshot ${newest ? `started at ${newest.toISOString()}` : 'does not exist (none was ever taken)'}` +
      (running && running >= occurrence ? `; one has been running since ${running.toISOString()}` : "; is taskflow start running? ('taskflow backup run snapshot' takes one now)"),
    details: { occurrence: occurrence.toISOString(), newestComplete: newest?.toISOString() ?? null, running: running?.toISOString() ?? null, graceMinutes: graceMs / 60_000 },
  });
  return true;
}

/** Per exportable tenant; open alerts of tenants no longer exportable (deleted, archived) are resolved too. */
async function checkExports(platform: BackupPlatform, occurrence: Date | null, now: Date, graceMs: number): Promise<string[]> {
  const tenants = await exportableTenants(platform);
  const res = await platform.control.query<{ tenantId: string; newest: Date }>(
    `SELECT tenant_id::text AS "tenantId", max(started_at) AS newest FROM backup_objects
      WHERE kind = 'export' AND state = 'complete' AND tenant_id IS NOT NULL AND started_at <= $1 GROUP BY tenant_id`,
    [now],
  );
  const newest = new Map(res.rows.map((r) => [r.tenantId, r.newest]));
  const overdue: string[] = [];
  const fine: string[] = [];
  for (const tenant of tenants) {
    const last = newest.get(tenant.id) ?? null;
    // A tenant created after the occurrence had no export due at it.
    if (!pastGrace(occurrence, now, graceMs) || tenant.createdAt > occurrence || (last !== null && last >= occurrence)) {
      fine.push(exportOverdueKey(tenant.id));
      continue;
    }
    overdue.push(tenant.id);
    await platform.alerts.raise({
      code: 'backup.overdue',
      key: exportOverdueKey(tenant.id),
      severity: 'critical',
      tenantId: tenant.id,
      summary:
        `no export of tenant ${tenant.slug} since the one scheduled at ${occurrence.toISOString()}: its newest complete export ${last ? `started at ${last.toISOString()}` : 'does not exist (it was never exported)'}` +
        `; is taskflow start running? ('taskflow backup run export --tenant ${tenant.slug}' takes one now)`,
      details: { tenant: tenant.slug, occurrence: occurrence.toISOString(), newestComplete: last?.toISOString() ?? null, graceMinutes: graceMs / 60_000 },
    });
  }
  const exportable = new Set(tenants.map((t) => exportOverdueKey(t.id)));
  const gone = (await listAlerts(platform.control, { code: 'backup.overdue', limit: 10_000 })).map((a) => a.key).filter((k) => k.startsWith('backup.overdue:export:') && !exportable.has(k));
  await resolveAlerts(platform, fine, occurrence ? `an export since ${occurrence.toISOString()} is complete, or none is due yet` : 'exports are not scheduled');
  await resolveAlerts(platform, gone, 'the tenant is no longer exported (deleted or archived)');
  return overdue;
}

async function checkProof(platform: BackupPlatform, now: Date): Promise<boolean> {
  const maxAgeDays = platform.config.backup.proofMaxAgeDays;
  if (maxAgeDays === 0) return resolved(platform, [UNPROVEN_KEY], 'backup.proofMaxAgeDays is 0 (the check is off)');
  const limit = new Date(now.getTime() - maxAgeDays * DAY_MS);
  const res = await platform.control.query<{ proven: Date | null; oldest: Date | null }>(
    `SELECT max(proven_at) FILTER (WHERE proven_at <= $1) AS proven, min(started_at) FILTER (WHERE state = 'complete') AS oldest
       FROM backup_objects WHERE kind = 'snapshot'`,
    [now],
  );
  const proven = res.rows[0]?.proven ?? null;
  const oldest = res.rows[0]?.oldest ?? null;
  const stale = proven ? proven < limit : oldest !== null && oldest < limit;
  if (!stale) return resolved(platform, [UNPROVEN_KEY], proven ? `a snapshot was proven by a restore at ${proven.toISOString()}` : `no snapshot is older than ${maxAgeDays} days yet`);
  await platform.alerts.raise({
    code: 'backup.unproven',
    key: UNPROVEN_KEY,
    severity: 'warning',
    summary:
      `${proven ? `no snapshot was proven restorable since ${proven.toISOString()}` : `no snapshot was ever proven restorable (the oldest complete one started at ${oldest?.toISOString() ?? '?'})`}, more than ${maxAgeDays} days ago` +
      `; run 'taskflow backup verify --restore' on a host holding the age identity, or schedule it there (backup.schedule.drill)`,
    details: { lastProof: proven?.toISOString() ?? null, proofMaxAgeDays: maxAgeDays },
  });
  return true;
}
