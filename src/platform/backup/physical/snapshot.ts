/**
 * Cluster snapshots: `pg_basebackup` of the managed cluster's primary as one tar stream (with the
 * WAL it needs, `-X fetch`, so a snapshot restores on its own, and its backup_manifest), compressed
 * with zstd by pg_basebackup itself, through the rest of the pipeline (age → SHA-256) to the
 * primary repository as `snapshots/<system id>/<time>.tar`, never held in memory or staged on
 * disk. The manifest beside it carries what a restore needs without the catalog (system
 * identifier, timeline, start and stop LSN, stop time, WAL segment size); the catalog also gets
 * per-table row counts at one WAL position just after the backup (row-counts.ts), which
 * `backup verify --restore` reproduces. Then copies go to every secondary repository.
 */
import { availableParallelism } from 'node:os';
import { Transform, pipeline, type TransformCallback } from 'node:stream';
import { UserError } from '../../../errors.ts';
import { CONTROL_DB, maintenanceDb } from '../../control-plane.ts';
import { withAdminClient } from '../../postgres/connection.ts';
import type { Platform } from '../../platform.ts';
import { runTool } from '../../postgres/tools.ts';
import { completeObject, failObject, getObject, type CatalogEntry } from '../catalog.ts';
import { copyToSecondaries } from '../copies.ts';
import { exportableTenants } from '../export.ts';
import { manifestName, type SourceDetails } from '../manifest.ts';
import { errorText, keysClearedByWrite, reportFailure, resolveAlerts } from '../outcomes.ts';
import { writeBackupObject } from '../pipeline.ts';
import { beginLockedObject, sweepAbandonedObjects } from '../run-lock.ts';
import { clusterIdentifier, requireBackups, withBackupTarget, type BackupPlatform, type BackupTarget } from '../service.ts';
import { verboseFacts, type BaseBackupFacts } from './basebackup-facts.ts';
import { countRowsAtOnePosition, type RowCounts } from './row-counts.ts';
import { startToolStream } from './tool-stream.ts';
import { ensureWalArchiving } from './wal-archive.ts';
import { snapshotObjectName } from './wal-names.ts';

export type SnapshotPlatform = BackupPlatform & Pick<Platform, 'cluster' | 'masterKey'>;

export interface SnapshotOptions {
  target?: BackupTarget;
  now?: () => Date;
  /** Plain bytes pg_basebackup reports having sent so far (its --progress, about once a second). */
  onProgress?: (bytes: number) => void;
  /** pg_basebackup --max-rate (`32M`, `500k`): caps the read rate on the primary. */
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
}

async function clusterFacts(platform: SnapshotPlatform): Promise<{ systemIdentifier: string; walSegmentSize: number; pgVersion: string }> {
  const res = await platform.control.query<{ seg: string; version: string }>(
    `SELECT (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS seg, current_setting('server_version') AS version`,
  );
  return { systemIdentifier: await clusterIdentifier(platform), walSegmentSize: Number(res.rows[0]?.seg ?? 16_777_216), pgVersion: res.rows[0]?.version ?? '' };
}

/** Row counts at one position, or why there are none (a snapshot is good without them). */
async function rowCounts(platform: SnapshotPlatform, now: () => Date): Promise<{ counts: RowCounts | null; error?: string }> {
  try {
    const tenants = await exportableTenants(platform);
    return { counts: await countRowsAtOnePosition(platform.target, [CONTROL_DB, ...tenants.map((t) => t.databaseName)], { now }) };
  } catch (err) {
    platform.log.warn({ err: errorText(err) }, 'snapshot taken without row counts');
    return { counts: null, error: errorText(err) };
  }
}

/**
 * Ends the base backups of snapshots whose process died: their pg_basebackup (on whichever host)
 * would otherwise go on reading the cluster until its next write to the dead process's pipe, which,
 * with the archive compressed, can be minutes. Found by the label in the walsender's command.
 */
async function stopAbandonedBasebackups(platform: SnapshotPlatform, abandoned: CatalogEntry[]): Promise<void> {
  if (abandoned.length === 0) return;
  await withAdminClient(platform.target, maintenanceDb(platform.target), async (admin) => {
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
    await stopAbandonedBasebackups(platform, await sweepAbandonedObjects(platform, target, 'snapshot'));
    let running;
    let name = '';
    try {
      await ensureWalArchiving(platform);
      const facts = await clusterFacts(platform);
      const { stdout: tool } = await runTool(platform.tools.path('pg_basebackup'), ['--version'], { runAs: null, timeoutMs: 10_000 });
      name = snapshotObjectName(facts.systemIdentifier, now());
      running = await beginLockedObject(platform, { kind: 'snapshot', name, cluster: facts.systemIdentifier, details: { repository: primary.name, pgBasebackup: tool.trim() } });
      const details = await writeSnapshot(platform, target, { name, facts, options, now });
      const counts = await rowCounts(platform, now);
      // Close the segment holding the counts' position, so the archive has it within seconds.
      await platform.control.query('SELECT pg_switch_wal()').catch(() => undefined);
      const full: SnapshotDetails = { ...details.details, rowCounts: counts.counts, ...(counts.error ? { rowCountsError: counts.error } : {}) };
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

/**
 * pg_basebackup's arguments for a snapshot: one tar archive to stdout, with the WAL it needs, the
 * backup_manifest inside, compressed by pg_basebackup itself (zstd with a worker thread per core:
 * C on every core, where the same work in this process would cost several times the CPU), and the
 * start and end WAL positions reported on stderr.
 */
export function snapshotArgs(options: { level: number; progress: boolean; maxRate?: string | undefined }): string[] {
  const workers = Math.max(1, availableParallelism());
  return [
    '--pgdata', '-', '--format', 'tar', '--wal-method', 'fetch', '--checkpoint', 'fast',
    '--compress', `client-zstd:level=${options.level},workers=${workers}`, '--verbose',
    ...(options.progress ? ['--progress'] : []),
    ...(options.maxRate ? ['--max-rate', options.maxRate] : []),
  ];
}

/** `12345/67890 kB (18%), 0/1 tablespace`: pg_basebackup's progress, in plain bytes. */
function progressBytes(line: string): number | null {
  const match = /^\s*(\d+)\/\d+ kB/.exec(line);
  return match?.[1] ? Number(match[1]) * 1024 : null;
}

/** Streams pg_basebackup's compressed archive through the pipeline; returns the manifest and the facts it reported. */
async function writeSnapshot(
  platform: SnapshotPlatform,
  target: BackupTarget,
  props: { name: string; facts: Awaited<ReturnType<typeof clusterFacts>>; options: SnapshotOptions; now: () => Date },
) {
  const { facts, options } = props;
  const found: { details?: Omit<SnapshotDetails, 'rowCounts'> } = {};
  const reported: string[] = [];
  // Filled in as the stream ends, before the pipeline writes the manifest that carries it.
  const source: SourceDetails = { format: 'pg_basebackup tar (-Ft -X fetch), zstd by pg_basebackup', systemIdentifier: facts.systemIdentifier, walSegmentSize: facts.walSegmentSize, pgVersion: facts.pgVersion };
  const admin = platform.target;
  const basebackup = startToolStream({
    file: platform.tools.path('pg_basebackup'),
    args: [
      '--host', admin.host, '--port', String(admin.port), '--username', admin.user, '--no-password', '--label', `taskflow ${props.name}`,
      ...snapshotArgs({ level: target.compressionLevel, progress: options.onProgress !== undefined, maxRate: options.maxRate }),
    ],
    target: admin,
    secretsDir: platform.dir.secretsDir,
    appName: 'taskflow-snapshot',
    onStderrLine: (line) => {
      const bytes = progressBytes(line);
      if (bytes !== null) options.onProgress?.(bytes);
      else if (reported.length < 100) reported.push(line);
    },
    ...(options.signal ? { signal: options.signal } : {}),
  });
  // The facts come on stderr, complete once the tool exited, which is when its stdout ends.
  const atEnd = new Transform({
    transform: (chunk: Buffer, _encoding, callback: TransformCallback) => { callback(null, chunk); },
    flush: (callback) => {
      try {
        const read = verboseFacts(reported);
        const stopTime = props.now().toISOString();
        found.details = { ...read, repository: target.primary.name, systemIdentifier: facts.systemIdentifier, stopTime, walSegmentSize: facts.walSegmentSize, pgVersion: facts.pgVersion };
        Object.assign(source, { timeline: read.timeline, startLsn: read.startLsn, stopLsn: read.stopLsn, stopTime });
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
  });
  // pipeline, not pipe: a failing pg_basebackup fails what the repository reads, and a failing write stops it.
  const stream = pipeline(basebackup, atEnd, () => undefined);
  const manifest = await writeBackupObject({
    repository: target.primary,
    name: props.name,
    kind: 'snapshot',
    source: stream,
    recipients: target.recipients,
    compressionLevel: target.compressionLevel,
    precompressed: true,
    sourceDetails: source,
    now: props.now,
  });
  if (!found.details) throw new Error('the snapshot stream ended without its facts');
  return { manifest, details: found.details };
}
