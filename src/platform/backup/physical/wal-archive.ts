/**
 * The continuous WAL archive of the managed cluster: installing `taskflow wal archive` as
 * PostgreSQL's archive_command (ALTER SYSTEM and a reload; archive_mode is on from initdb), with
 * archive_timeout from `backup.walArchiveTimeoutSeconds`, so at most that many seconds of committed
 * data are ever only on the primary's disk (P7); and the archive's status from pg_stat_archiver,
 * raising `backup.failed` (key `backup.failed:wal`) while it fails and `backup.wal-archive-lagging`
 * while completed segments wait.
 *
 * The archiver runs as the PostgreSQL OS user with a login role of its own that may only touch the
 * backup catalog and alerts: `taskflow_wal_archiver`, its password derived from the master key and
 * kept in a 0600 file of that user (`<data dir>/postgres/wal-archive/`), never on a command line.
 * The primary repository's secrets (an SFTP key, S3 access keys) are copied there the same way on
 * every install, so rotated credentials reach the archiver with the next snapshot or
 * `wal status --install`, and never appear in postgresql.auto.conf or the archive_command.
 */
import { chownSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Platform } from '../../platform.ts';
import { deriveKey } from '../../accounts/secrets.ts';
import { CONTROL_DB, maintenanceDb } from '../../control-plane.ts';
import { escapeIdentifier, escapeLiteral, withAdminClient } from '../../postgres/connection.ts';
import { RemoteCluster } from '../../replication/remote-cluster.ts';
import { scramVerifier } from '../../tenants/credentials.ts';
import { backupsConfigured, type RepositoryConfig } from '../config.ts';
import { BackupError } from '../errors.ts';
import { failedKey } from '../outcomes.ts';
import { ARCHIVE_SETTINGS_FORMAT, makeOwnedDir, removeUnusedSecretCopies, repositoryForOsUser, walShellCommand, writeOwnedFile, type ArchiveSettings } from './wal-settings.ts';
import { DEFAULT_WAL_SEGMENT_SIZE, parseWalFileName, segmentNumberOf } from './wal-names.ts';
import { configureRemoteArchiving, isSpoolArchiveCommand, remoteArchiveNodes, remoteArchiveSettings, remoteArchiveTimeoutSeconds, spoolArchiveCommand, walSpoolDir, type RemoteArchiveNode } from './wal-spool.ts';

export const ARCHIVER_ROLE = 'taskflow_wal_archiver';
const WAL_LAGGING_KEY = 'backup.wal-archive-lagging';

export type ArchivingPlatform = Pick<Platform, 'config' | 'dir' | 'target' | 'cluster' | 'masterKey' | 'log'>;

export interface WalArchivingState {
  installed: boolean;
  /** Why it is not installed. */
  reason?: string;
  archiveCommand?: string;
  timeoutSeconds?: number;
  /** Whether this call changed PostgreSQL's settings (and reloaded them). */
  changed: boolean;
}

/** `<data dir>/postgres/wal-archive`: the archiver's settings, password and repository secrets (SFTP key, S3 credentials), owned by the PostgreSQL OS user. */
export function walArchiveDir(platform: Pick<Platform, 'dir'>): string {
  return join(platform.dir.root, 'postgres', 'wal-archive');
}

function archiverPassword(masterKey: string): string {
  return deriveKey(masterKey, 'wal-archiver-login:1').toString('base64url');
}

/**
 * The primary repository as the archiver sees it (see repositoryForOsUser); a filesystem
 * repository also gets a `wal/` directory the PostgreSQL OS user may write to.
 */
function archiverRepository(platform: ArchivingPlatform, repository: RepositoryConfig, dir: string): RepositoryConfig {
  const runAs = platform.cluster?.runAs ?? null;
  if (repository.kind === 'filesystem' && runAs) {
    if (!existsSync(repository.path)) {
      throw new BackupError('repository-unreachable', `repository ${repository.name}: its directory ${repository.path} is missing (is the share mounted?)`);
    }
    const walDir = join(repository.path, 'wal');
    mkdirSync(walDir, { recursive: true, mode: 0o750 });
    chownSync(walDir, runAs.uid, runAs.gid);
  }
  const forArchiver = repositoryForOsUser(repository, dir, runAs, { unattended: true });
  removeUnusedSecretCopies(dir, forArchiver);
  return forArchiver;
}

/** Creates or refreshes the archiver's login role and its grants (catalog and alerts only). */
async function ensureArchiverRole(platform: ArchivingPlatform, password: string): Promise<void> {
  const role = escapeIdentifier(ARCHIVER_ROLE);
  await withAdminClient(platform.target, maintenanceDb(platform.target), async (admin) => {
    const exists = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [ARCHIVER_ROLE]);
    const verifier = escapeLiteral(scramVerifier(password));
    if (exists.rowCount === 0) {
      await admin.query(`CREATE ROLE ${role} LOGIN NOINHERIT CONNECTION LIMIT 10 PASSWORD ${verifier}`).catch((err: unknown) => {
        if ((err as { code?: string }).code !== '42710') throw err; // created meanwhile by another process
      });
    } else await admin.query(`ALTER ROLE ${role} LOGIN NOINHERIT CONNECTION LIMIT 10 PASSWORD ${verifier}`);
    await admin.query(`ALTER ROLE ${role} SET statement_timeout = '60s'`);
    await admin.query(`GRANT CONNECT ON DATABASE ${escapeIdentifier(CONTROL_DB)} TO ${role}`);
  });
  await withAdminClient(platform.target, CONTROL_DB, async (admin) => {
    await admin.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
    await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON backup_objects TO ${role}`);
    await admin.query(`GRANT SELECT, INSERT, UPDATE ON backup_locations, alerts TO ${role}`);
  });
}

/**
 * Installs the WAL archive when backups are configured: settings and password for the archiver,
 * its role, then archive_command and archive_timeout (changed only when they differ). Does nothing
 * on an external cluster, which is archived by whatever runs it.
 */
export async function ensureWalArchiving(platform: ArchivingPlatform): Promise<WalArchivingState> {
  if (!backupsConfigured(platform.config.backup)) return { installed: false, reason: 'backups are not configured', changed: false };
  const cluster = platform.cluster;
  if (!cluster) return { installed: false, reason: 'an external cluster (databaseUrl) is archived by whatever runs it (pgBackRest, CloudNativePG…)', changed: false };
  const backup = platform.config.backup;
  const primaryName = backup.primary ?? backup.repositories[0]?.name;
  const primary = backup.repositories.find((r) => r.name === primaryName);
  if (!primary) return { installed: false, reason: 'backup.primary names no repository', changed: false };
  const dir = walArchiveDir(platform);
  makeOwnedDir(dir, cluster.runAs);
  const password = archiverPassword(platform.masterKey);
  const passwordFile = join(dir, 'catalog.password');
  writeOwnedFile(passwordFile, `${password}\n`, cluster.runAs);
  const settings: ArchiveSettings = {
    format: ARCHIVE_SETTINGS_FORMAT,
    repository: archiverRepository(platform, primary, dir),
    recipients: backup.recipients,
    compressionLevel: backup.compressionLevel,
    // The archiver runs beside a node on this machine: a platform opened on a remote primary has it on loopback.
    catalog: { host: cluster.listenAddress === '*' || cluster instanceof RemoteCluster ? '127.0.0.1' : cluster.listenAddress, database: CONTROL_DB, user: ARCHIVER_ROLE, passwordFile },
  };
  const settingsFile = join(dir, 'settings.json');
  writeOwnedFile(settingsFile, JSON.stringify(settings, null, 2) + '\n', cluster.runAs);
  await ensureArchiverRole(platform, password);

  // A primary on another machine spools its WAL for this host to pull (wal-spool.ts); the remote
  // standbys get the same command now, so it is already right when one is promoted.
  const remote = remoteArchiveNodes(platform);
  const remotePrimary = remote.find((n) => n.primary);
  await configureRemoteStandbys(platform, remote.filter((n) => !n.primary));
  const archiveCommand = remotePrimary ? spoolArchiveCommand(walSpoolDir(remotePrimary.remote)) : walShellCommand('archive', settingsFile, ['%p', '%f']);
  const timeoutSeconds = remotePrimary ? remoteArchiveTimeoutSeconds(backup) : backup.walArchiveTimeoutSeconds;
  const changed = await withAdminClient(platform.target, maintenanceDb(platform.target), async (admin) => {
    const current = await admin.query<{ name: string; setting: string }>(`SELECT name, setting FROM pg_settings WHERE name IN ('archive_mode', 'archive_command', 'archive_timeout')`);
    const value = (name: string) => current.rows.find((r) => r.name === name)?.setting;
    if (value('archive_mode') === 'off') {
      platform.log.warn('archive_mode is off: WAL archiving starts only after PostgreSQL restarts');
    }
    let change = false;
    if (value('archive_command') !== archiveCommand) {
      await admin.query(`ALTER SYSTEM SET archive_command = ${escapeLiteral(archiveCommand)}`);
      change = true;
    }
    if (value('archive_timeout') !== String(timeoutSeconds)) {
      await admin.query(`ALTER SYSTEM SET archive_timeout = ${timeoutSeconds}`);
      change = true;
    }
    if (change) {
      await admin.query('SELECT pg_reload_conf()');
      // The reload is a signal every process handles on its own: wait (briefly) until it took, so
      // what runs next (a status check, a snapshot) sees the new command.
      for (let tries = 0; tries < 50; tries++) {
        const now = await admin.query<{ setting: string }>(`SELECT setting FROM pg_settings WHERE name = 'archive_command'`);
        if (now.rows[0]?.setting === archiveCommand) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    return change;
  });
  if (changed) platform.log.info({ timeoutSeconds }, 'WAL archiving installed');
  return { installed: true, archiveCommand, timeoutSeconds, changed };
}

/**
 * The spool archive settings on each remote standby, over SSH. A node that cannot be reached now is
 * logged and left: should it become the primary first, the wal-health watch installs the command
 * there (its archiver meanwhile fails on the local command and keeps its WAL).
 */
async function configureRemoteStandbys(platform: ArchivingPlatform, nodes: RemoteArchiveNode[]): Promise<void> {
  for (const node of nodes) {
    try {
      await configureRemoteArchiving(node.remote, remoteArchiveSettings(platform.config, node.remote));
    } catch (err) {
      platform.log.warn({ node: node.name, err: (err as Error).message }, 'the WAL spool archive_command could not be set on a remote standby');
    }
  }
}

export interface WalArchiveStatus {
  /** Whether archive_command is TaskFlow's (`taskflow wal archive`, or a remote node's spool command). */
  installed: boolean;
  archiveCommand: string;
  archiveMode: string;
  timeoutSeconds: number;
  archivedCount: number;
  lastArchivedWal: string | null;
  lastArchivedAt: string | null;
  failedCount: number;
  lastFailedWal: string | null;
  lastFailedAt: string | null;
  /** The segment being written now, and where the WAL is. */
  currentWal: string;
  currentLsn: string;
  /** Completed segments not archived yet. */
  waitingSegments: number;
  /** Seconds since the last successful archive while segments wait; 0 when none wait. */
  lagSeconds: number;
  /** The last attempt failed (a failure after the last success). */
  failing: boolean;
}

/** The archive as PostgreSQL sees it (pg_stat_archiver and the current WAL position). */
export async function walArchiveStatus(platform: Pick<Platform, 'control'>): Promise<WalArchiveStatus> {
  const res = await platform.control.query<{
    archive_mode: string; archive_command: string; archive_timeout: string; archived_count: string; last_archived_wal: string | null; last_archived_time: Date | null;
    failed_count: string; last_failed_wal: string | null; last_failed_time: Date | null; current_wal: string; current_lsn: string; now: Date;
  }>(
    `SELECT current_setting('archive_mode') AS archive_mode, current_setting('archive_command') AS archive_command, (SELECT setting FROM pg_settings WHERE name = 'archive_timeout') AS archive_timeout,
            a.archived_count::text, a.last_archived_wal, a.last_archived_time, a.failed_count::text, a.last_failed_wal, a.last_failed_time,
            pg_walfile_name(pg_current_wal_lsn()) AS current_wal, pg_current_wal_lsn()::text AS current_lsn, now() AS now
       FROM pg_stat_archiver a`,
  );
  const r = res.rows[0];
  if (!r) throw new Error('pg_stat_archiver returned no row');
  const current = parseWalFileName(r.current_wal);
  const last = r.last_archived_wal ? parseWalFileName(r.last_archived_wal) : null;
  const currentSegno = current ? segmentNumberOf(current, DEFAULT_WAL_SEGMENT_SIZE) : 0n;
  const lastSegno = last && last.kind === 'segment' ? segmentNumberOf(last, DEFAULT_WAL_SEGMENT_SIZE) : null;
  const waiting = lastSegno === null ? 0 : Math.max(0, Number(currentSegno - lastSegno - 1n));
  const lagSeconds = waiting > 0 && r.last_archived_time ? Math.max(0, Math.round((r.now.getTime() - r.last_archived_time.getTime()) / 1000)) : 0;
  const failing = r.last_failed_time !== null && (r.last_archived_time === null || r.last_failed_time > r.last_archived_time);
  return {
    installed: r.archive_command.includes(' archive --settings ') || isSpoolArchiveCommand(r.archive_command),
    archiveCommand: r.archive_command,
    archiveMode: r.archive_mode,
    timeoutSeconds: Number.parseInt(r.archive_timeout, 10),
    archivedCount: Number(r.archived_count),
    lastArchivedWal: r.last_archived_wal,
    lastArchivedAt: r.last_archived_time?.toISOString() ?? null,
    failedCount: Number(r.failed_count),
    lastFailedWal: r.last_failed_wal,
    lastFailedAt: r.last_failed_time?.toISOString() ?? null,
    currentWal: r.current_wal,
    currentLsn: r.current_lsn,
    waitingSegments: waiting,
    lagSeconds,
    failing,
  };
}

/**
 * Reads the archive's status and raises or resolves its alerts: `backup.failed:wal` while the last
 * attempt failed, `backup.wal-archive-lagging` while completed segments have waited longer than
 * twice archive_timeout (or a minute, whichever is more). For the scheduler and `wal status`.
 */
export async function checkWalArchive(platform: Pick<Platform, 'control' | 'alerts'>): Promise<WalArchiveStatus> {
  const status = await walArchiveStatus(platform);
  if (status.failing) {
    await platform.alerts.raise({
      code: 'backup.failed',
      key: failedKey('wal'),
      severity: 'critical',
      summary: `WAL archiving is failing: ${status.lastFailedWal ?? '?'} could not be archived (${status.failedCount} failures so far); see the PostgreSQL log`,
      details: { lastFailedWal: status.lastFailedWal, lastFailedAt: status.lastFailedAt, lastArchivedWal: status.lastArchivedWal },
    });
  }
  const limit = Math.max(60, 2 * status.timeoutSeconds);
  if (status.waitingSegments > 0 && status.lagSeconds > limit) {
    await platform.alerts.raise({
      code: 'backup.wal-archive-lagging',
      key: WAL_LAGGING_KEY,
      severity: 'critical',
      summary: `${status.waitingSegments} WAL segment(s) wait to be archived; the last was archived ${status.lagSeconds} s ago: committed data since then exists only on the primary`,
      details: { waitingSegments: status.waitingSegments, lastArchivedWal: status.lastArchivedWal, lastArchivedAt: status.lastArchivedAt },
    });
  } else if (status.waitingSegments === 0) {
    await platform.alerts.resolve(WAL_LAGGING_KEY, 'no completed WAL segment waits to be archived').catch(() => false);
  }
  return status;
}
