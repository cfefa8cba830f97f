/**
 * The WAL archive watched by the schedule (the `wal-health` job, every minute): archiving is
 * installed when `taskflow start` starts the backup jobs (and again by the job while it is not),
 * the archive's alerts are raised and resolved, and new segments are copied to every secondary
 * repository, so the off-site archive trails the primary repository by about a minute.
 *
 * Alerts, by key:
 *   backup.failed:wal-install    installing archive_command failed (resolved once it succeeds)
 *   backup.failed:wal            the last archive attempt failed (checkWalArchive raises it)
 *   backup.wal-archive-lagging   completed segments wait (checkWalArchive)
 *   backup.wal-archive-stale     WAL is written but nothing was archived for longer than
 *                                archive_timeout plus a margin, while no attempt fails: the
 *                                archiver hangs, archive_mode is off, or archiving is not installed
 */
import { copyMissing, type CopyMissingReport } from '../copies.ts';
import { errorText, failedKey, resolveAlerts } from '../outcomes.ts';
import type { BackupPlatform } from '../service.ts';
import { checkWalArchive, ensureWalArchiving, walArchiveStatus, type ArchivingPlatform, type WalArchiveStatus, type WalArchivingState } from './wal-archive.ts';
import { parseWalFileName, segmentNumberOf } from './wal-names.ts';

export const WAL_INSTALL_KEY = failedKey('wal-install');
export const WAL_STALE_KEY = 'backup.wal-archive-stale';

/** Advisory lock (two-key form) that keeps app hosts from installing at the same moment (concurrent GRANTs fail). */
const INSTALL_LOCK = [7_317_301, 1];

export type WalWatchPlatform = ArchivingPlatform & BackupPlatform;

export interface WalWatchOptions {
  /** Seconds beyond archive_timeout before an archive that does not move is stale (60). */
  staleMarginSeconds?: number;
  /** Overrides archive_timeout + margin (tests). */
  staleAfterSeconds?: number;
  /** Segments copied to the secondaries per run at most (20). */
  copyLimit?: number;
  /** No copy starts later than this after the run began (40 s), so a run ends before the next one is due. */
  copyBudgetMs?: number;
}

export interface WalHealthReport {
  installed: boolean;
  failing: boolean;
  waitingSegments: number;
  stale: boolean;
  /** Bytes of WAL written after the end of the newest archived segment (null: nothing archived yet). */
  unarchivedBytes: number | null;
  /** Seconds since the newest segment was archived (null: nothing archived yet). */
  newestArchivedAgeSeconds: number | null;
  /** The pass copying WAL to the secondaries (null: there is none). */
  copies: CopyMissingReport | null;
}

/** Where the archive reaches: the newest archived segment, how long ago, and how much WAL follows it. */
interface ArchiveReach {
  file: string;
  ageSeconds: number;
  unarchivedBytes: bigint;
}

/** A PostgreSQL LSN (`16/B374D848`) as a byte position. */
function lsnBytes(lsn: string): bigint {
  const [high = '0', low = '0'] = lsn.split('/');
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}

/**
 * The newest archived segment from pg_stat_archiver, or from the catalog when the statistics
 * hold none (they are reset by a crash); null when neither knows of one.
 */
async function archiveReach(platform: Pick<BackupPlatform, 'control'>): Promise<ArchiveReach | null> {
  const res = await platform.control.query<{ file: string | null; age: number | null; lsn: string; segmentSize: string }>(
    `SELECT COALESCE(a.last_archived_wal, c.file) AS file,
            extract(epoch FROM now() - COALESCE(a.last_archived_time, c.finished_at))::float8 AS age,
            pg_current_wal_lsn()::text AS lsn,
            (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS "segmentSize"
       FROM pg_stat_archiver a
       LEFT JOIN LATERAL (
         SELECT regexp_replace(o.name, '^.*/', '') AS file, o.finished_at FROM backup_objects o
          WHERE a.last_archived_wal IS NULL AND o.kind = 'wal' AND o.state = 'complete'
            AND o.cluster = (SELECT system_identifier::text FROM pg_control_system()) AND o.name NOT LIKE '%/history/%'
          ORDER BY o.name DESC LIMIT 1) c ON true`,
  );
  const row = res.rows[0];
  const parsed = row?.file ? parseWalFileName(row.file) : null;
  if (!row || row.age === null || !parsed || parsed.kind === 'history') return null;
  const segmentSize = Number(row.segmentSize);
  const end = (segmentNumberOf(parsed, segmentSize) + 1n) * BigInt(segmentSize);
  return { file: parsed.file, ageSeconds: row.age, unarchivedBytes: lsnBytes(row.lsn) - end };
}

/**
 * Installs (or refreshes) WAL archiving, one host at a time. Never throws: a failure raises
 * `backup.failed` (key `backup.failed:wal-install`) and returns null; a success resolves it.
 */
export async function installWalArchiving(platform: WalWatchPlatform): Promise<WalArchivingState | null> {
  try {
    const lock = await platform.control.connect();
    let state: WalArchivingState;
    try {
      // The lock lives as long as this transaction; a host stuck holding it costs 30 s, not a hang.
      await lock.query(`BEGIN; SET LOCAL lock_timeout = '30s'`);
      await lock.query('SELECT pg_advisory_xact_lock($1, $2)', INSTALL_LOCK);
      state = await ensureWalArchiving(platform);
    } finally {
      const broken = await lock.query('ROLLBACK').then(() => false, () => true);
      lock.release(broken);
    }
    if (!state.installed) throw new Error(state.reason ?? 'not installed');
    await resolveAlerts(platform, [WAL_INSTALL_KEY], 'WAL archiving installed');
    return state;
  } catch (err) {
    await platform.alerts.raise({
      code: 'backup.failed',
      key: WAL_INSTALL_KEY,
      severity: 'critical',
      summary: `WAL archiving could not be installed: ${errorText(err)}; until it is, nothing written after the last snapshot can be restored`.slice(0, 500),
      details: { primary: platform.config.backup.primary ?? platform.config.backup.repositories[0]?.name ?? null },
    });
    return null;
  }
}

/** The watch of one app host: what it saw last run (to tell a stuck archive from a quiet one). */
export class WalArchiveWatch {
  readonly #platform: WalWatchPlatform;
  readonly #options: WalWatchOptions;
  #installPending = false;
  /** The newest archived segment when WAL was first seen waiting behind it, and when. */
  #waiting: { file: string; since: number } | null = null;

  constructor(platform: WalWatchPlatform, options: WalWatchOptions = {}) {
    this.#platform = platform;
    this.#options = options;
  }

  /** Installs archiving (at start); a failure is alerted and retried by every run until it succeeds. */
  async install(): Promise<boolean> {
    const ok = (await installWalArchiving(this.#platform)) !== null;
    this.#installPending = !ok;
    return ok;
  }

  /** One run of the job: install if needed, check and alert, copy new segments to the secondaries. */
  async run(): Promise<WalHealthReport> {
    const platform = this.#platform;
    if (this.#installPending || !(await walArchiveStatus(platform)).installed) await this.install();
    const status = await checkWalArchive(platform);
    if (!status.failing) await resolveAlerts(platform, [failedKey('wal')], 'WAL archiving works again');
    const reach = await archiveReach(platform);
    const stale = await this.#checkStale(status, reach);
    return {
      installed: status.installed,
      failing: status.failing,
      waitingSegments: status.waitingSegments,
      stale,
      unarchivedBytes: reach ? Number(reach.unarchivedBytes) : null,
      newestArchivedAgeSeconds: reach ? Math.round(reach.ageSeconds) : null,
      copies: await this.#copyToSecondaries(),
    };
  }

  /**
   * Stale: WAL follows the newest archived segment, that segment is older than archive_timeout
   * plus the margin, and this host has seen WAL wait behind that same segment for as long (so a
   * first write after a quiet hour is not taken for a stuck archive). A failing archive is
   * `backup.failed:wal`'s alert, not this one.
   */
  async #checkStale(status: WalArchiveStatus, reach: ArchiveReach | null): Promise<boolean> {
    const platform = this.#platform;
    if (!reach || reach.unarchivedBytes <= 0n) {
      this.#waiting = null;
      if (reach) await resolveAlerts(platform, [WAL_STALE_KEY], 'no WAL waits to be archived');
      return false;
    }
    if (this.#waiting?.file !== reach.file) this.#waiting = { file: reach.file, since: Date.now() };
    const limit = this.#options.staleAfterSeconds ?? status.timeoutSeconds + (this.#options.staleMarginSeconds ?? 60);
    if (reach.ageSeconds <= limit) {
      await resolveAlerts(platform, [WAL_STALE_KEY], `${reach.file} was archived ${Math.round(reach.ageSeconds)} s ago`);
      return false;
    }
    const waitedSeconds = (Date.now() - this.#waiting.since) / 1000;
    if (status.failing || waitedSeconds < limit) return false;
    const why = !status.installed
      ? "archive_command is not TaskFlow's (taskflow wal status --install)"
      : status.archiveMode === 'off'
        ? 'archive_mode is off (PostgreSQL must restart)'
        : 'the archiver makes no progress and reports no failure (a hung archive_command?)';
    await platform.alerts.raise({
      code: 'backup.wal-archive-stale',
      key: WAL_STALE_KEY,
      severity: 'critical',
      summary: `the WAL archive is stale: the newest archived segment ${reach.file} is ${Math.round(reach.ageSeconds)} s old while WAL is written; ${why}`,
      details: { newestArchived: reach.file, ageSeconds: Math.round(reach.ageSeconds), unarchivedBytes: Number(reach.unarchivedBytes), archiveTimeoutSeconds: status.timeoutSeconds, installed: status.installed, archiveMode: status.archiveMode },
    });
    return true;
  }

  /** Copies archived segments missing on a secondary, oldest first, within the run's limits. */
  async #copyToSecondaries(): Promise<CopyMissingReport | null> {
    if (this.#platform.config.backup.repositories.length < 2) return null;
    return copyMissing(this.#platform, {
      kinds: ['wal'],
      settleMinutes: 0,
      oldestFirst: true,
      limit: this.#options.copyLimit ?? 20,
      deadline: Date.now() + (this.#options.copyBudgetMs ?? 40_000),
    });
  }
}
