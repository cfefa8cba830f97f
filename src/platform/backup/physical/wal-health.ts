/**
 * The WAL archive watched by the schedule (the `wal-health` job, every minute): archiving is
 * installed when `taskflow start` starts the backup jobs (and again by the job while it is not),
 * the archive's alerts are raised and resolved, and new segments are copied to every secondary
 * repository, so the off-site archive trails the primary repository by about a minute.
 *
 * Alerts, by key:
 *   backup.failed:wal-install    installing archive_command failed (resolved once it succeeds)
 *   backup.failed:wal            the last archive attempt failed (checkWalArchive raises it)
 *   backup.failed:wal-pull       a remote primary's WAL spool could not be pulled (wal-pull.ts)
 *
 * Each run also records in the catalog the segments a node archived while it shut down (its last
 * one, closed as it stops; wal-archiver.ts, storeUnrecorded).
 *   backup.wal-archive-lagging   completed segments wait (checkWalArchive)
 *   backup.wal-archive-stale     WAL is written but nothing was archived for longer than
 *                                archive_timeout plus a margin, while no attempt fails: the
 *                                archiver hangs, archive_mode is off, or archiving is not installed;
 *                                with a primary on another machine, also when its WAL spool is not
 *                                drained (files wait there longer than archive_timeout + the pull
 *                                interval + the margin), or cannot be read over SSH
 *
 * With a remote primary, pg_stat_archiver counts a file as archived once it is in the spool, so
 * where the archive reaches is read from the catalog instead (wal-spool.ts).
 */
import { openRepository } from '../config.ts';
import { copyMissing, type CopyMissingReport } from '../copies.ts';
import { errorText, failedKey, resolveAlerts } from '../outcomes.ts';
import type { BackupPlatform } from '../service.ts';
import { checkWalArchive, ensureWalArchiving, walArchiveDir, walArchiveStatus, type ArchivingPlatform, type WalArchiveStatus, type WalArchivingState } from './wal-archive.ts';
import { recordUnrecorded } from './wal-archiver.ts';
import { parseWalFileName, segmentNumberOf } from './wal-names.ts';
import { isSpoolArchiveCommand, listSpool, remoteArchiveNodes, spoolArchiveCommand, walSpoolDir, type RemoteArchiveNode } from './wal-spool.ts';

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
  /** A primary on another machine: what waits in its WAL spool (null: the primary is on this machine). */
  spool: SpoolBacklog | null;
}

/** What waits in a remote primary's spool for this host to pull. */
export interface SpoolBacklog {
  node: string;
  files: number;
  bytes: number;
  /** Seconds since the oldest waiting file was last written (0: none waits). */
  oldestAgeSeconds: number;
  /** Why the spool could not be read (SSH). */
  error?: string;
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
async function archiveReach(platform: Pick<BackupPlatform, 'control'>, catalogOnly = false): Promise<ArchiveReach | null> {
  const res = await platform.control.query<{ file: string | null; age: number | null; lsn: string; segmentSize: string }>(
    `WITH s AS (SELECT CASE WHEN $1 THEN NULL ELSE last_archived_wal END AS last_archived_wal, CASE WHEN $1 THEN NULL ELSE last_archived_time END AS last_archived_time FROM pg_stat_archiver)
     SELECT COALESCE(a.last_archived_wal, c.file) AS file,
            extract(epoch FROM now() - COALESCE(a.last_archived_time, c.finished_at))::float8 AS age,
            pg_current_wal_lsn()::text AS lsn,
            (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS "segmentSize"
       FROM s a
       LEFT JOIN LATERAL (
         SELECT regexp_replace(o.name, '^.*/', '') AS file, o.finished_at FROM backup_objects o
          WHERE a.last_archived_wal IS NULL AND o.kind = 'wal' AND o.state = 'complete'
            AND o.cluster = (SELECT system_identifier::text FROM pg_control_system()) AND o.name NOT LIKE '%/history/%'
          ORDER BY o.name DESC LIMIT 1) c ON true`,
    [catalogOnly],
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
    const remotePrimary = remoteArchiveNodes(platform).find((n) => n.primary) ?? null;
    if (this.#installPending || !commandFits((await walArchiveStatus(platform)).archiveCommand, remotePrimary)) await this.install();
    await recordUnrecorded({
      control: platform.control,
      archiveDir: walArchiveDir(platform),
      openRepository: (name) => {
        const config = platform.config.backup.repositories.find((r) => r.name === name);
        return config ? openRepository(config) : null;
      },
      log: platform.log,
    });
    const status = await checkWalArchive(platform);
    if (!status.failing) await resolveAlerts(platform, [failedKey('wal')], 'WAL archiving works again');
    const reach = await archiveReach(platform, remotePrimary !== null);
    const spool = remotePrimary ? await spoolBacklog(remotePrimary) : null;
    const stale = (await this.#checkSpool(status, spool)) || (await this.#checkStale(status, reach, spool));
    return {
      installed: status.installed,
      failing: status.failing,
      waitingSegments: status.waitingSegments,
      stale,
      unarchivedBytes: reach ? Number(reach.unarchivedBytes) : null,
      newestArchivedAgeSeconds: reach ? Math.round(reach.ageSeconds) : null,
      copies: await this.#copyToSecondaries(),
      spool,
    };
  }

  /**
   * A remote primary's spool that is not drained: its oldest file waited longer than
   * archive_timeout + the pull interval + the margin. Raises `backup.wal-archive-stale`.
   */
  async #checkSpool(status: WalArchiveStatus, spool: SpoolBacklog | null): Promise<boolean> {
    if (!spool || spool.files === 0) return false;
    const pullSeconds = this.#platform.config.backup.remoteWalPullSeconds;
    const limit = this.#options.staleAfterSeconds ?? status.timeoutSeconds + pullSeconds + (this.#options.staleMarginSeconds ?? 60);
    if (spool.oldestAgeSeconds <= limit) return false;
    await this.#platform.alerts.raise({
      code: 'backup.wal-archive-stale',
      key: WAL_STALE_KEY,
      severity: 'critical',
      summary:
        `the WAL archive is stale: ${spool.files} WAL file(s) (${Math.round(spool.bytes / 1048576)} MiB) wait in the spool of the remote primary ${spool.node}, the oldest written ${spool.oldestAgeSeconds} s ago; ` +
        `nothing drains it (taskflow start pulls it every ${pullSeconds} s; 'taskflow wal pull' once; see the backup.failed:wal-pull alert): committed data since then exists only on that machine`,
      details: { node: spool.node, files: spool.files, bytes: spool.bytes, oldestAgeSeconds: spool.oldestAgeSeconds, pullSeconds },
    });
    return true;
  }

  /**
   * Stale: WAL follows the newest archived segment, that segment is older than archive_timeout
   * plus the margin, and this host has seen WAL wait behind that same segment for as long (so a
   * first write after a quiet hour is not taken for a stuck archive). A failing archive is
   * `backup.failed:wal`'s alert, not this one.
   */
  async #checkStale(status: WalArchiveStatus, reach: ArchiveReach | null, spool: SpoolBacklog | null): Promise<boolean> {
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
    const why = spool?.error
      ? `the WAL spool of the remote primary ${spool.node} cannot be read: ${spool.error}`
      : spool && spool.files > 0
        ? `${spool.files} WAL file(s) wait in the spool of the remote primary ${spool.node}: nothing drains it ('taskflow wal pull')`
        : !status.installed
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

/** Whether archive_command is the one this primary needs: its spool command when it is remote, `taskflow wal archive` here. */
function commandFits(command: string, remotePrimary: RemoteArchiveNode | null): boolean {
  if (remotePrimary) return command === spoolArchiveCommand(walSpoolDir(remotePrimary.remote));
  return command.includes(' archive --settings ') && !isSpoolArchiveCommand(command);
}

/** What waits in a remote primary's spool; an SSH failure is reported in `error`, not thrown. */
async function spoolBacklog(node: RemoteArchiveNode): Promise<SpoolBacklog> {
  try {
    const entries = await listSpool(node.remote);
    const oldest = entries.reduce((min, e) => Math.min(min, e.modifiedAt.getTime()), Date.now());
    return { node: node.name, files: entries.length, bytes: entries.reduce((sum, e) => sum + e.bytes, 0), oldestAgeSeconds: Math.max(0, Math.round((Date.now() - oldest) / 1000)) };
  } catch (err) {
    return { node: node.name, files: 0, bytes: 0, oldestAgeSeconds: 0, error: errorText(err) };
  }
}
