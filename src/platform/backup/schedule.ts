/**
 * Scheduled backups on pg-boss, in the control database (schema `pgboss`): snapshots, tenant
 * exports and prune on the cron expressions of `backup.schedule`, read in its time zone.
 *
 * Several app hosts run this side by side and a job still runs once: the schedule is one row,
 * one host's cron pass turns an occurrence into one job (pg-boss files it under a singleton slot),
 * one worker claims it (SKIP LOCKED), and the queues are `exclusive` (one job queued or running).
 * A worker that dies stops heartbeating and its job is retried elsewhere.
 *
 * A job missed while every host was down runs when one starts: each start compares the catalog
 * with the schedule's latest occurrence and sends a job when that occurrence has no backup, and
 * pg-boss's own catch-up (`missed: 'once'`) covers prune. Handlers are idempotent against the
 * catalog (they skip what already has a backup since the occurrence), so a catch-up and a regular
 * occurrence landing together cost one backup, not two.
 *
 * With a managed cluster, start also installs the continuous WAL archive, and a `wal-health` job runs
 * every minute (physical/wal-health.ts): it alerts on a failing or stale archive and copies new
 * segments to the secondary repositories. While the primary is on another machine, its WAL spool
 * is drained every `backup.remoteWalPullSeconds` (physical/wal-pull.ts: a timer on each host, one
 * host at a time under an advisory lock; pg-boss's cron has minutes, the pull needs seconds).
 */
import { PgBoss, type Job } from 'pg-boss';
import { UserError } from '../../errors.ts';
import { CONTROL_DB } from '../control-plane.ts';
import { clientConfig } from '../postgres/connection.ts';
import type { Platform } from '../platform.ts';
import type { Tenant } from '../tenants/registry.ts';
import { type CatalogEntry } from './catalog.ts';
import { backupsConfigured } from './config.ts';
import { copyMissing } from './copies.ts';
import { exportableTenants, exportTenants } from './export.ts';
import { errorText } from './outcomes.ts';
import { loadRestoreIdentity, type RestoreIdentity } from './physical/identity.ts';
import { sweepAllInterruptedRestores } from './physical/scratch-restore.ts';
import { takeSnapshot } from './physical/snapshot.ts';
import { WalArchiveWatch, type WalHealthReport, type WalWatchOptions } from './physical/wal-health.ts';
import { verifyRestore } from './physical/verify-restore.ts';
import { checkWalContinuity } from './physical/wal-continuity.ts';
import { WalSpoolPuller } from './physical/wal-pull.ts';
import { checkOverdue, type OverdueReport } from './overdue.ts';
import { pruneBackups } from './prune.ts';
import { liveRunningIds } from './run-lock.ts';

export const JOBS_SCHEMA = 'pgboss';
export const BACKUP_QUEUES = { snapshot: 'taskflow-backup-snapshot', export: 'taskflow-backup-export', prune: 'taskflow-backup-prune', drill: 'taskflow-backup-drill' } as const;
const KINDS = ['snapshot', 'export', 'prune', 'drill'] as const;
export type BackupJobKind = keyof typeof BACKUP_QUEUES;
/** The WAL archive's watch (physical/wal-health.ts): every minute, fixed; not one of `backup.schedule`'s kinds. */
export const WAL_HEALTH_QUEUE = 'taskflow-backup-wal-health';
export const WAL_HEALTH_CRON = '* * * * *';
/** Backups and restore proofs that did not happen (overdue.ts): every minute, wherever the jobs run. */
export const OVERDUE_QUEUE = 'taskflow-backup-overdue';

/** Takes a cluster snapshot and returns its catalog row (physical/snapshot.ts by default). */
export type SnapshotRunner = (platform: Platform, signal: AbortSignal) => Promise<CatalogEntry>;

const defaultSnapshot: SnapshotRunner = (platform, signal) => takeSnapshot(platform, { signal });

export interface BackupJobsOptions {
  /** The snapshot engine (null: snapshots are not scheduled). Snapshots need the managed cluster. */
  takeSnapshot?: SnapshotRunner | null;
  /** How often pg-boss looks for due occurrences (30 s by default). */
  cronMonitorIntervalSeconds?: number;
  /** How often idle workers look for jobs (2 s by default). */
  pollingIntervalSeconds?: number;
  /** The WAL archive's watch (null: archiving is neither installed at start nor watched). Managed cluster only. */
  walWatch?: WalWatchOptions | null;
  /**
   * The identity restore drills decrypt with (default: TASKFLOW_BACKUP_IDENTITY or
   * TASKFLOW_BACKUP_IDENTITY_FILE when `backup.schedule.drill` is set; null: this host runs no drills).
   */
  drillIdentity?: RestoreIdentity | null;
}

const QUEUE_OPTIONS = {
  policy: 'exclusive',
  // A live worker heartbeats; one that stops (its host died) has its job retried elsewhere.
  heartbeatSeconds: 60,
  expireInSeconds: 24 * 3600,
  retryLimit: 2,
  retryDelay: 300,
  retryBackoff: true,
} as const;

/** The watch runs every minute anyway: no retries, and a run that hangs expires before long. */
const WAL_QUEUE_OPTIONS = { policy: 'exclusive', heartbeatSeconds: 60, expireInSeconds: 600, retryLimit: 0 } as const;

/** How far back to look for a schedule's latest occurrence, widening for sparse expressions. */
const LOOKBACK_MS = [2 * 60_000, 2 * 3_600_000, 2 * 86_400_000, 40 * 86_400_000, 400 * 86_400_000];
const PREVIEW_COUNT = 1000;

interface JobData {
  reason?: string;
}

export class BackupJobs {
  readonly boss: PgBoss;
  readonly #platform: Platform;
  readonly #takeSnapshot: SnapshotRunner | null;
  readonly #options: BackupJobsOptions;
  /** The identity this host runs restore drills with; null: it runs none. */
  readonly #drillIdentity: RestoreIdentity | null;
  /** The WAL archive's watch; null on an external cluster (archived by whatever runs it). */
  readonly walWatch: WalArchiveWatch | null;
  /** Drains a remote primary's WAL spool; null without the watch. */
  readonly spoolPuller: WalSpoolPuller | null;

  private constructor(platform: Platform, boss: PgBoss, options: BackupJobsOptions) {
    this.#platform = platform;
    this.boss = boss;
    this.#takeSnapshot = platform.cluster ? (options.takeSnapshot === undefined ? defaultSnapshot : options.takeSnapshot) : null;
    this.walWatch = platform.cluster && options.walWatch !== null ? new WalArchiveWatch(platform, options.walWatch ?? {}) : null;
    this.spoolPuller = this.walWatch ? new WalSpoolPuller(platform, platform.config.backup.remoteWalPullSeconds * 1000) : null;
    this.#options = options;
    this.#drillIdentity = platform.cluster ? (options.drillIdentity === undefined ? drillIdentityFromEnv(platform) : options.drillIdentity) : null;
  }

  /** Installs WAL archiving, starts pg-boss, (re)writes the schedules, starts the workers and catches up on missed runs. */
  static async start(platform: Platform, options: BackupJobsOptions = {}): Promise<BackupJobs> {
    const { target } = platform;
    const boss = new PgBoss({
      host: target.host,
      port: target.port,
      user: target.user,
      password: target.password,
      database: CONTROL_DB,
      // TLS as every other connection to the cluster: verify-full against the cluster's CA for a node off loopback.
      ...(target.ssl ? { ssl: clientConfig(target, CONTROL_DB).ssl } : {}),
      schema: JOBS_SCHEMA,
      application_name: 'taskflow-jobs',
      max: 4,
      ...(options.cronMonitorIntervalSeconds ? { cronMonitorIntervalSeconds: options.cronMonitorIntervalSeconds } : {}),
    });
    const log = platform.log.child({ component: 'backup-jobs' });
    boss.on('error', (err: Error) => {
      log.warn({ err: err.message }, 'job queue error');
    });
    const jobs = new BackupJobs(platform, boss, options);
    jobs.checkSchedules();
    // A failure is alerted (backup.failed:wal-install) and retried by the watch; the app still starts.
    await jobs.walWatch?.install();
    await boss.start();
    try {
      await jobs.#install();
      await jobs.catchUp();
    } catch (err) {
      await boss.stop({ graceful: false }).catch(() => undefined);
      throw err;
    }
    jobs.spoolPuller?.start();
    log.info({ schedule: platform.config.backup.schedule, snapshots: jobs.#takeSnapshot !== null, walWatch: jobs.walWatch !== null }, 'backup schedules running');
    return jobs;
  }

  /** The kinds that run on a schedule here: never `off`, and snapshots only of a managed cluster. */
  get scheduled(): BackupJobKind[] {
    const schedule = this.#platform.config.backup.schedule;
    return KINDS.filter((k) => schedule[k] !== 'off' && (k !== 'snapshot' || this.#takeSnapshot !== null) && (k !== 'drill' || this.#platform.cluster !== null));
  }

  /** Refuses cron expressions or a time zone pg-boss cannot read, naming the key. */
  checkSchedules(): void {
    const schedule = this.#platform.config.backup.schedule;
    for (const kind of KINDS) {
      if (schedule[kind] === 'off') continue;
      try {
        this.boss.previewSchedule(schedule[kind], { tz: schedule.timeZone, count: 1, from: new Date() });
      } catch (err) {
        throw new UserError(`invalid configuration:\n  backup.schedule.${kind}: '${schedule[kind]}' is not a usable cron expression in ${schedule.timeZone}: ${errorText(err)}`, 2);
      }
    }
  }

  async #install(): Promise<void> {
    const schedule = this.#platform.config.backup.schedule;
    const polling = { batchSize: 1, pollingIntervalSeconds: this.#options.pollingIntervalSeconds ?? 2 };
    const handlers: Record<BackupJobKind, (job: Job<JobData>) => Promise<unknown>> = {
      snapshot: (job) => this.#runSnapshot(job),
      export: (job) => this.#runExports(job),
      prune: () => this.#runPrune(),
      drill: () => this.#runDrill(),
    };
    for (const kind of KINDS) {
      const queue = BACKUP_QUEUES[kind];
      await this.boss.createQueue(queue, QUEUE_OPTIONS);
      if (!this.scheduled.includes(kind)) {
        await this.boss.unschedule(queue);
        continue;
      }
      await this.boss.schedule(queue, schedule[kind], { reason: 'schedule' }, { tz: schedule.timeZone, missed: 'once' });
      // Drills run only where the identity is; the schedule stays for the hosts that hold it.
      if (kind === 'drill' && !this.#drillIdentity) {
        this.#platform.log.warn('backup.schedule.drill is set, but this host holds no identity (TASKFLOW_BACKUP_IDENTITY_FILE): it runs no restore drills');
        continue;
      }
      await this.boss.work<JobData>(queue, polling, async ([job]) => (job ? handlers[kind](job) : undefined));
    }
    await this.boss.createQueue(OVERDUE_QUEUE, WAL_QUEUE_OPTIONS);
    await this.boss.schedule(OVERDUE_QUEUE, WAL_HEALTH_CRON, { reason: 'schedule' }, { tz: 'UTC' });
    await this.boss.work<JobData>(OVERDUE_QUEUE, polling, async ([job]) => (job ? this.checkOverdue() : undefined));
    await this.boss.createQueue(WAL_HEALTH_QUEUE, WAL_QUEUE_OPTIONS);
    if (!this.walWatch) {
      await this.boss.unschedule(WAL_HEALTH_QUEUE);
      return;
    }
    await this.boss.schedule(WAL_HEALTH_QUEUE, WAL_HEALTH_CRON, { reason: 'schedule' }, { tz: 'UTC' });
    await this.boss.work<JobData>(WAL_HEALTH_QUEUE, polling, async ([job]) => (job ? this.runWalHealth() : undefined));
  }

  /** The wal-health job's handler: one run of the WAL archive's watch (null without one). */
  async runWalHealth(): Promise<WalHealthReport | null> {
    // A restore killed while this server runs leaves an identity copy and a server: gone within a minute.
    await sweepInterruptedRestoresLogged(this.#platform);
    return this.walWatch ? this.walWatch.run() : null;
  }

  /** The overdue job's handler: alerts on scheduled backups and restore proofs that are missing (overdue.ts). */
  async checkOverdue(now: Date = new Date()): Promise<OverdueReport> {
    const scheduled = this.scheduled;
    return checkOverdue(this.#platform, { now, snapshots: scheduled.includes('snapshot'), exports: scheduled.includes('export'), latestOccurrence: (kind, at) => this.latestOccurrence(kind, at) });
  }

  /** The latest occurrence of a schedule at or before `now`, or null when it has none yet. */
  latestOccurrence(kind: BackupJobKind, now: Date = new Date()): Date | null {
    const { timeZone } = this.#platform.config.backup.schedule;
    const cron = this.#platform.config.backup.schedule[kind];
    if (cron === 'off') return null;
    for (const back of LOOKBACK_MS) {
      const occurrences = this.boss.previewSchedule(cron, { tz: timeZone, from: new Date(now.getTime() - back), count: PREVIEW_COUNT });
      const past = occurrences.filter((o) => o.getTime() <= now.getTime());
      const last = past[past.length - 1];
      // Complete only when the preview reached past `now`; otherwise the window held too many.
      if (last && (occurrences.length < PREVIEW_COUNT || past.length < occurrences.length)) return last;
      if (last) return this.#latestByPaging(cron, timeZone, last, now);
    }
    return null;
  }

  #latestByPaging(cron: string, tz: string, from: Date, now: Date): Date {
    let last = from;
    for (;;) {
      const page = this.boss.previewSchedule(cron, { tz, from: last, count: PREVIEW_COUNT }).filter((o) => o.getTime() <= now.getTime());
      const next = page[page.length - 1];
      if (!next) return last;
      last = next;
    }
  }

  /**
   * Tenants without an export started at or after `since` that completed or is still being written
   * by a live process (one whose process died does not count: its occurrence is owed again).
   */
  async tenantsDue(since: Date | null): Promise<Tenant[]> {
    const tenants = await exportableTenants(this.#platform);
    if (since === null) return tenants;
    const live = await liveRunningIds(this.#platform, 'export');
    const res = await this.#platform.control.query<{ tenantId: string }>(
      `SELECT DISTINCT tenant_id::text AS "tenantId" FROM backup_objects
        WHERE kind = 'export' AND (state = 'complete' OR id::text = ANY($2)) AND started_at >= $1 AND tenant_id IS NOT NULL`,
      [since, live],
    );
    const covered = new Set(res.rows.map((r) => r.tenantId));
    return tenants.filter((t) => !covered.has(t.id));
  }

  /** Whether no snapshot started at or after `since` completed or is being taken by a live process. */
  async #snapshotDue(since: Date | null): Promise<boolean> {
    if (since === null) return true;
    const live = await liveRunningIds(this.#platform, 'snapshot');
    const res = await this.#platform.control.query(
      `SELECT 1 FROM backup_objects WHERE kind = 'snapshot' AND (state = 'complete' OR id::text = ANY($2)) AND started_at >= $1 LIMIT 1`,
      [since, live],
    );
    return (res.rowCount ?? 0) === 0;
  }

  /** Sends a job for each schedule whose latest occurrence has no backup; returns the kinds sent. */
  async catchUp(now: Date = new Date()): Promise<BackupJobKind[]> {
    const sent: BackupJobKind[] = [];
    const kinds = this.scheduled;
    if (kinds.includes('snapshot')) {
      const since = this.latestOccurrence('snapshot', now);
      if (since && (await this.#snapshotDue(since)) && (await this.boss.send(BACKUP_QUEUES.snapshot, { reason: 'catch-up' }))) sent.push('snapshot');
    }
    if (kinds.includes('export')) {
      const since = this.latestOccurrence('export', now);
      if (since && (await this.tenantsDue(since)).length > 0 && (await this.boss.send(BACKUP_QUEUES.export, { reason: 'catch-up' }))) sent.push('export');
    }
    if (sent.length > 0) this.#platform.log.info({ kinds: sent }, 'backups missed while down were queued');
    return sent;
  }

  async #runExports(job: Job<JobData>): Promise<unknown> {
    const since = this.latestOccurrence('export');
    const due = await this.tenantsDue(since);
    if (due.length === 0) return { skipped: `every tenant has an export since ${since?.toISOString() ?? 'ever'}` };
    const results = await exportTenants(this.#platform, due, { signal: job.signal });
    // Copies an earlier failure left missing (WAL segments too) are retried here and with prune.
    await copyMissing(this.#platform);
    const failed = results.filter((r) => !r.ok).map((r) => `${r.tenant}: ${r.error ?? 'failed'}`);
    // Failing the job has pg-boss retry it later; the retry skips the tenants that succeeded.
    if (failed.length > 0) throw new Error(`exports failed (${failed.length} of ${results.length}): ${failed.join('; ').slice(0, 1000)}`);
    return { exported: results.map((r) => r.entry?.name) };
  }

  async #runSnapshot(job: Job<JobData>): Promise<unknown> {
    const snapshot = this.#takeSnapshot;
    if (!snapshot) return { skipped: 'no snapshot engine' };
    const since = this.latestOccurrence('snapshot');
    if (!(await this.#snapshotDue(since))) return { skipped: `a snapshot exists since ${since?.toISOString() ?? 'ever'}` };
    if (job.signal.aborted) return { skipped: 'stopping' };
    // A failure is recorded, alerted and thrown by the snapshot itself; pg-boss retries the job.
    const entry = await snapshot(this.#platform, job.signal);
    return { snapshot: entry.name, copies: entry.locations.map((l) => l.repository) };
  }

  /** The restore drill: `backup verify --restore` of the newest snapshot; its evidence is stored with the snapshot. */
  async #runDrill(): Promise<unknown> {
    const identity = this.#drillIdentity;
    if (!identity) return { skipped: 'no identity on this host' };
    const report = await verifyRestore(this.#platform, { identity });
    // A failed proof raised backup.verify-failed with its report; failing the job has pg-boss retry it.
    if (!report.ok) throw new Error(`restore drill of ${report.snapshot.name} failed: ${report.problem ?? 'see backup.verify-failed'}`);
    this.#platform.log.info({ snapshot: report.snapshot.name, seconds: report.timings.total }, 'restore drill passed');
    return { proven: report.snapshot.name };
  }

  async #runPrune(): Promise<unknown> {
    let report;
    try {
      report = await pruneBackups(this.#platform);
    } catch (err) {
      if (err instanceof UserError && err.exitCode === 4) return { skipped: err.message };
      throw err;
    }
    // Copies that failed earlier (a secondary that was down) are retried here, once a day.
    const copies = await copyMissing(this.#platform);
    // And the WAL archive is checked for holes (a lost object), before a restore needs it.
    const wal = this.walWatch ? await checkWalContinuity(this.#platform).catch((err: unknown) => ({ error: errorText(err) })) : null;
    return { deleted: report.deleted.length - report.failed, failed: report.failed, copies, wal };
  }

  /** Stops the workers, giving a running backup a moment to finish before it is cancelled. */
  async stop(timeoutMs = 10_000): Promise<void> {
    await this.spoolPuller?.stop();
    await this.boss.stop({ graceful: true, timeout: timeoutMs });
  }
}

/** The identity from the environment when drills are scheduled; null (logged) when there is none. */
function drillIdentityFromEnv(platform: Platform): RestoreIdentity | null {
  if (platform.config.backup.schedule.drill === 'off') return null;
  try {
    return loadRestoreIdentity({ env: process.env });
  } catch (err) {
    platform.log.warn({ err: errorText(err) }, 'no identity for restore drills on this host');
    return null;
  }
}

/** Cleans up after restores killed mid-way (never fails the caller: a failure is logged, and retried next minute). */
async function sweepInterruptedRestoresLogged(platform: Platform): Promise<void> {
  await sweepAllInterruptedRestores(platform).catch((err: unknown) => {
    platform.log.warn({ err: errorText(err) }, 'could not clean up after interrupted restores');
  });
}

/** Starts the backup jobs when backups are configured; null (and nothing started) otherwise. */
export async function startBackupJobs(platform: Platform, options: BackupJobsOptions = {}): Promise<BackupJobs | null> {
  if (!backupsConfigured(platform.config.backup)) return null;
  await sweepInterruptedRestoresLogged(platform);
  return BackupJobs.start(platform, options);
}
