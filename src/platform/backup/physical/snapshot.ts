/**
 * Cluster snapshots: a base backup of the managed cluster's primary, wherever it is (a remote node
 * too: see snapshotSource), as one tar stream (with the WAL it needs, so a snapshot restores on its
 * own, and its backup_manifest), taken over a replication connection and compressed with zstd by
 * the server itself (basebackup-protocol.ts), through the rest of the pipeline (age → SHA-256) to the primary repository as
 * `snapshots/<system id>/<time>.tar`, never held in memory or staged on disk. The manifest beside
 * it carries what a restore needs without the catalog (system identifier, timeline, start and stop
 * LSN, stop time, WAL segment size); the catalog also gets per-table row counts at one WAL
 * position just after the backup (row-counts.ts), which `backup verify --restore` reproduces.
 * Then copies go to every secondary repository.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import pg from 'pg';
import { UserError } from '../../../errors.ts';
import { CONTROL_DB, maintenanceDb } from '../../control-plane.ts';
import { clientConfig, databaseUnreachable, isConnectionError, withAdminClient, type ConnectionTarget } from '../../postgres/connection.ts';
import type { Platform } from '../../platform.ts';
import { REPLICATION_ROLE, replicationFiles, replicationPassword } from '../../replication/access.ts';
import type { PrimaryNode } from '../../replication/primary-locator.ts';
import { hasTopology, readTopology } from '../../replication/topology.ts';
import { completeObject, failObject, getObject, type CatalogEntry } from '../catalog.ts';
import { copyToSecondaries } from '../copies.ts';
import { exportableTenants } from '../export.ts';
import { manifestName, type SourceDetails } from '../manifest.ts';
import { errorText, keysClearedByWrite, reportFailure, resolveAlerts } from '../outcomes.ts';
import { writeBackupObject } from '../pipeline.ts';
import { beginLockedObject, sweepAbandonedObjects } from '../run-lock.ts';
import { clusterIdentifier, requireBackups, withBackupTarget, type BackupPlatform, type BackupTarget } from '../service.ts';
import { startBaseBackup, type BaseBackupFacts } from './basebackup-protocol.ts';
import { countRowsAtOnePosition, rowCountSample, type RowCounts } from './row-counts.ts';
import { ensureWalArchiving } from './wal-archive.ts';
import { snapshotObjectName } from './wal-names.ts';

/** What a snapshot object holds, in its manifest's `source.format`. */
export const SNAPSHOT_FORMAT = 'base backup tar with WAL (server-side zstd), then a tar of its backup_manifest in one zstd frame (tar --ignore-zeros reads both)';

/** The server's zstd workers for a snapshot: one per core of this machine (the usual case: TaskFlow beside its cluster). */
export function snapshotWorkers(): number {
  return Math.max(1, availableParallelism());
}

export type SnapshotPlatform = BackupPlatform & Pick<Platform, 'cluster' | 'masterKey' | 'primary'>;

export interface SnapshotOptions {
  target?: BackupTarget;
  now?: () => Date;
  /** Plain bytes the server reports having sent so far (before compression). */
  onProgress?: (bytes: number) => void;
  /** Caps the read rate on the primary, as pg_basebackup's --max-rate (`32M`, `500k`). */
  maxRate?: string;
  signal?: AbortSignal;
}

/** The facts of a snapshot in its catalog `details` (and, the scalar ones, in its manifest `source`). */
export interface SnapshotDetails extends BaseBackupFacts {
  repository: string;
  systemIdentifier: string;
  stopTime: string;
  walSegmentSize: number;
  pgVersion: string;
  rowCounts: RowCounts | null;
  rowCountsError?: string;
  /** The node the snapshot was taken from (the primary then), and where. */
  node?: { name: string; host: string; port: number; remote: boolean };
  /** Why the WAL archive may not cover this snapshot's primary (a remote one); the snapshot restores on its own. */
  walArchiveError?: string;
}

/** The node a snapshot is taken from, fixed for the whole snapshot: its base backup and its row counts come from it. */
interface SnapshotSource {
  node: PrimaryNode;
  remote: boolean;
  /** The administrator's connection to that node (checks, row counts, the WAL switch). */
  admin: ConnectionTarget;
  /** How BASE_BACKUP connects to it. */
  replication: ConnectionTarget;
  clientCertificate?: { cert: string; key: string };
  refusedHint?: string;
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read ${what} ${path} to take a snapshot of the remote primary: ${(err as Error).message}`);
  }
}

/**
 * The primary of the moment, pinned (a failover meanwhile makes the snapshot fail instead of
 * mixing nodes), checked to accept writes, and how to reach it.
 *
 * A primary on another machine is backed up as the replication role, not as the administrator:
 * BASE_BACKUP needs only REPLICATION, which is all that role has (no superuser; pg_hba rejects
 * it for any database), and the pg_hba lines it already has there (loopback and
 * postgres.allowedNetworks.replication, TLS with password *and* client certificate) admit this
 * machine whenever a standby here streams from that primary. The alternative, a pg_hba line for
 * the administrator's replication connections from this host, would let a superuser's password
 * alone (no certificate) open replication from the network, and would have to be written into the
 * pg_hba of every remote node (a copy taken by its base backup). Verify-full against the
 * cluster's CA, as every TaskFlow connection off this machine. A primary here keeps the
 * administrator over loopback, as before.
 */
async function snapshotSource(platform: SnapshotPlatform): Promise<SnapshotSource> {
  // Looked up now, not the locator's last answer: a switchover by another process may just have moved it.
  const node = (await platform.primary.refresh('snapshot')).primary;
  if (!node) throw new UserError(`there is no primary to take a snapshot of: ${platform.primary.state.reason ?? 'unknown'}`, 4);
  const admin: ConnectionTarget = { ...platform.target, host: node.host, port: node.port };
  const topology = platform.cluster && hasTopology(platform.dir) ? readTopology(platform.dir, platform.cluster.port) : null;
  const remote = topology?.nodes[node.name]?.remote !== undefined;
  if (await inRecovery(admin, node, remote)) {
    throw new UserError(`${node.name} at ${node.host}:${node.port} is in recovery, not the primary (a failover or switchover under way?); take the snapshot again once 'taskflow cluster status' shows a primary`, 4);
  }
  if (!topology || !remote) return { node, remote: false, admin, replication: admin };
  const files = replicationFiles(platform);
  return {
    node,
    remote: true,
    admin,
    replication: { ...admin, user: REPLICATION_ROLE, password: replicationPassword(platform.masterKey, topology.credentialVersion), ssl: true, ca: files.caCert },
    clientCertificate: { cert: readPem(files.clientCert, "the replication role's certificate"), key: readPem(files.clientKey, "the replication role's key") },
    refusedHint: `add this machine's address to postgres.allowedNetworks.replication (docs/high-availability.md, "A standby on another machine")`,
  };
}

/** Whether the node is in recovery; a remote node that does not answer is said so, with what to do. */
async function inRecovery(admin: ConnectionTarget, node: PrimaryNode, remote: boolean): Promise<boolean> {
  const client = new pg.Client(clientConfig(admin, maintenanceDb(admin)));
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    if (!remote || !isConnectionError(err)) throw databaseUnreachable(admin, err);
    throw new UserError(
      `the primary ${node.name} runs on another machine and does not answer at ${node.host}:${node.port} (${errorText(err)}); start it there ('taskflow cluster start ${node.name}'), or fail over to another node ('taskflow cluster failover --to NODE')`,
      4,
    );
  }
  try {
    return (await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r === true;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Installs (refreshes) the WAL archive. For a primary on another machine a failure is only
 * recorded: the snapshot holds the WAL it needs, so it is consistent and restorable on its own.
 */
async function archiveWal(platform: SnapshotPlatform, source: SnapshotSource): Promise<string | undefined> {
  if (!source.remote) {
    await ensureWalArchiving(platform);
    return undefined;
  }
  try {
    const state = await ensureWalArchiving(platform);
    return state.installed ? undefined : state.reason;
  } catch (err) {
    platform.log.warn({ node: source.node.name, err: errorText(err) }, 'WAL archiving of the remote primary not installed; the snapshot restores on its own');
    return errorText(err);
  }
}

async function clusterFacts(platform: SnapshotPlatform): Promise<{ systemIdentifier: string; walSegmentSize: number; pgVersion: string }> {
  const res = await platform.control.query<{ seg: string; version: string }>(
    `SELECT (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS seg, current_setting('server_version') AS version`,
  );
  return { systemIdentifier: await clusterIdentifier(platform), walSegmentSize: Number(res.rows[0]?.seg ?? 16_777_216), pgVersion: res.rows[0]?.version ?? '' };
}

/** Row counts at one position on the snapshot's node, or why there are none (a snapshot is good without them). */
async function rowCounts(platform: SnapshotPlatform, source: SnapshotSource, now: () => Date): Promise<{ counts: RowCounts | null; error?: string }> {
  try {
    const tenants = await exportableTenants(platform);
    const counted = rowCountSample(tenants.map((t) => t.databaseName), platform.config.backup.rowCountTenants, now());
    return { counts: await countRowsAtOnePosition(source.admin, [CONTROL_DB, ...counted], { now }) };
  } catch (err) {
    platform.log.warn({ err: errorText(err) }, 'snapshot taken without row counts');
    return { counts: null, error: errorText(err) };
  }
}

/**
 * Ends the base backups of snapshots whose process died: a walsender whose client vanished without
 * closing its socket (a host gone) would otherwise go on reading the cluster until its next write
 * times out. Found by the label in the walsender's command.
 */
async function stopAbandonedBasebackups(source: SnapshotSource, abandoned: CatalogEntry[]): Promise<void> {
  if (abandoned.length === 0) return;
  await withAdminClient(source.admin, maintenanceDb(source.admin), async (admin) => {
    for (const entry of abandoned) {
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'walsender' AND strpos(query, $1) > 0`, [`LABEL 'taskflow ${entry.name}'`]);
    }
  });
}

/**
 * Takes a snapshot of the managed cluster, records it, copies it to the secondaries and returns
 * its catalog entry. A failure marks the catalog row failed, leaves nothing in the repository,
 * raises an alert and throws.
 */
export async function takeSnapshot(platform: SnapshotPlatform, options: SnapshotOptions = {}): Promise<CatalogEntry> {
  requireBackups(platform.config);
  if (!platform.cluster) {
    throw new UserError('snapshots are of the cluster TaskFlow manages; an external cluster (databaseUrl) is snapshotted by whatever runs it (pgBackRest, CloudNativePG)', 2);
  }
  const now = options.now ?? (() => new Date());
  return withBackupTarget(platform.config, options.target, async (target) => {
    const { primary } = target;
    let running;
    let name = '';
    try {
      // The primary first: one that cannot be reached is named (host and port) before anything else fails on it.
      const source = await snapshotSource(platform);
      await stopAbandonedBasebackups(source, await sweepAbandonedObjects(platform, target, 'snapshot'));
      const facts = await clusterFacts(platform);
      name = snapshotObjectName(facts.systemIdentifier, now());
      running = await beginLockedObject(platform, { kind: 'snapshot', name, cluster: facts.systemIdentifier, details: { repository: primary.name, server: facts.pgVersion } });
      // After the row exists, so a repository that fails here already (a share not mounted) leaves the attempt in the catalog as failed.
      const walArchiveError = await archiveWal(platform, source);
      const details = await writeSnapshot(platform, target, { name, facts, source, options, now });
      const counts = await rowCounts(platform, source, now);
      // Close the segment holding the counts' position, so the archive has it within seconds.
      await withAdminClient(source.admin, maintenanceDb(source.admin), (c) => c.query('SELECT pg_switch_wal()')).catch(() => undefined);
      const full: SnapshotDetails = {
        ...details.details,
        rowCounts: counts.counts,
        ...(counts.error ? { rowCountsError: counts.error } : {}),
        node: { name: source.node.name, host: source.node.host, port: source.node.port, remote: source.remote },
        ...(walArchiveError ? { walArchiveError } : {}),
      };
      try {
        await completeObject(platform.control, running.id, {
          manifest: details.manifest,
          repository: primary.name,
          dataAt: new Date(full.stopTime),
          timeline: full.timeline,
          details: { ...full, sizes: details.manifest.sizes },
        });
      } catch (err) {
        await primary.delete(manifestName(name)).catch(() => undefined);
        await primary.delete(name).catch(() => undefined);
        throw err;
      }
    } catch (err) {
      const message = options.signal?.aborted ? `stopped: ${errorText(options.signal.reason)}` : errorText(err);
      if (running) await failObject(platform.control, running.id, message).catch(() => undefined);
      platform.log.error({ object: name, err: message }, 'snapshot failed');
      if (!options.signal?.aborted) await reportFailure(platform, err, { what: 'snapshot of the cluster', kind: 'snapshot', repository: primary.name, details: name ? { object: name } : {} });
      throw err;
    } finally {
      await running?.release();
    }
    const entry = await getObject(platform.control, running.id);
    if (!entry) throw new Error(`snapshot ${name} vanished from the catalog`);
    platform.log.info({ object: name, bytes: entry.storedBytes }, 'snapshot complete');
    await resolveAlerts(platform, keysClearedByWrite({ kind: 'snapshot', repository: primary.name }), `snapshot ${name} succeeded`);
    await copyToSecondaries(platform, entry, { target });
    return (await getObject(platform.control, running.id)) ?? entry;
  });
}

/** Streams a base backup, compressed by the server, through the pipeline; returns the manifest and the backup's facts. */
async function writeSnapshot(
  platform: SnapshotPlatform,
  target: BackupTarget,
  props: { name: string; facts: Awaited<ReturnType<typeof clusterFacts>>; source: SnapshotSource; options: SnapshotOptions; now: () => Date },
) {
  const { facts, options, source: from } = props;
  const found: { details?: Omit<SnapshotDetails, 'rowCounts'> } = {};
  // Filled in as the stream ends, before the pipeline writes the manifest that carries it.
  const source: SourceDetails = { format: SNAPSHOT_FORMAT, systemIdentifier: facts.systemIdentifier, walSegmentSize: facts.walSegmentSize, pgVersion: facts.pgVersion };
  const stream = startBaseBackup(from.replication, {
    label: `taskflow ${props.name}`,
    clientCertificate: from.clientCertificate,
    refusedHint: from.refusedHint,
    compressionLevel: target.snapshotCompressionLevel,
    workers: snapshotWorkers(),
    maxRate: options.maxRate,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    onFacts: (read) => {
      const stopTime = props.now().toISOString();
      found.details = { ...read, repository: target.primary.name, systemIdentifier: facts.systemIdentifier, stopTime, walSegmentSize: facts.walSegmentSize, pgVersion: facts.pgVersion };
      Object.assign(source, { timeline: read.timeline, startLsn: read.startLsn, stopLsn: read.stopLsn, stopTime });
    },
    signal: options.signal,
  });
  const manifest = await writeBackupObject({
    repository: target.primary,
    name: props.name,
    kind: 'snapshot',
    source: stream,
    recipients: target.recipients,
    compressionLevel: target.snapshotCompressionLevel,
    precompressed: true,
    sourceDetails: source,
    now: props.now,
  });
  if (!found.details) throw new Error('the snapshot stream ended without its facts');
  return { manifest, details: found.details };
}
