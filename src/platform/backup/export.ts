/**
 * Per-tenant logical exports: `pg_dump -Fc` of one tenant database, streamed through the
 * pipeline (zstd → age → SHA-256) to the primary repository as `exports/<slug>/<time>.dump`,
 * recorded in the catalog with the row count of every table, then copied to each secondary.
 *
 * The counts and the dump come from one exported snapshot, so the counts are exactly what the dump
 * holds (a restore can compare them), and `data_at` is that snapshot's moment.
 */
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import pg from 'pg';
import { clientConfig, escapeIdentifier } from '../postgres/connection.ts';
import { listTenants, type Tenant } from '../tenants/registry.ts';
import { completeObject, failObject, getObject, type CatalogEntry } from './catalog.ts';
import { copyToSecondaries, type CopyOutcome } from './copies.ts';
import { manifestName } from './manifest.ts';
import { errorText, keysClearedByWrite, reportFailure, resolveAlerts } from './outcomes.ts';
import { pgDumpVersion, startPgDump } from './pg-dump.ts';
import { writeBackupObject } from './pipeline.ts';
import { beginLockedObject, sweepAbandonedObjects } from './run-lock.ts';
import { clusterIdentifier, compactTimestamp, withBackupTarget, type BackupPlatform, type BackupTarget } from './service.ts';

export interface ExportProgress {
  tenant: string;
  phase: 'dump' | 'copy' | 'done';
  /** Plain bytes dumped so far. */
  bytes: number;
  /** The tables' size on disk: a rough upper bound for the dump, for progress bars. */
  estimatedBytes: number;
  /** The secondary being copied to, in phase `copy`. */
  repository?: string;
}

export interface ExportOptions {
  target?: BackupTarget;
  onProgress?: (progress: ExportProgress) => void;
  signal?: AbortSignal;
}

export interface ExportResult {
  tenant: string;
  ok: boolean;
  entry: CatalogEntry | null;
  copies: CopyOutcome[];
  error?: string;
}

/**
 * The object name of an export: `exports/<slug>/20261123T020000.123Z.dump`, the moment of its data
 * to the millisecond, so a retry right after a failure does not meet the failed one's name.
 */
export function exportObjectName(slug: string, at: Date): string {
  return `exports/${slug}/${compactTimestamp(at, { millis: true })}.dump`;
}

/** Counts bytes passing through and reports them at most every `intervalMs`. */
function byteCounter(report: (bytes: number) => void, intervalMs = 200): Transform {
  let bytes = 0;
  let last = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      bytes += chunk.length;
      const now = Date.now();
      if (now - last >= intervalMs) {
        last = now;
        report(bytes);
      }
      callback(null, chunk);
    },
    flush(callback) {
      report(bytes);
      callback();
    },
  });
}

interface TenantSnapshot {
  client: pg.Client;
  snapshot: string;
  at: Date;
  rowCounts: Record<string, number>;
  estimatedBytes: number;
}

/**
 * Opens a repeatable-read transaction in the tenant database, exports its snapshot for pg_dump and
 * counts every table's rows in it. The transaction stays open until the dump has finished.
 */
async function openTenantSnapshot(platform: BackupPlatform, tenant: Tenant): Promise<TenantSnapshot> {
  const client = new pg.Client({ ...clientConfig(platform.target, tenant.databaseName), application_name: 'taskflow-export' });
  client.on('error', () => {
    /* reported by the query or the dump that needed it */
  });
  await client.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const snap = await client.query<{ snapshot: string; at: Date }>('SELECT pg_export_snapshot() AS snapshot, now() AS at');
    const tables = await client.query<{ schema: string; name: string; bytes: string }>(
      `SELECT n.nspname AS schema, c.relname AS name, pg_table_size(c.oid)::text AS bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
        ORDER BY 1, 2`,
    );
    const rowCounts: Record<string, number> = {};
    let estimatedBytes = 0;
    for (const t of tables.rows) {
      const counted = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ONLY ${escapeIdentifier(t.schema)}.${escapeIdentifier(t.name)}`);
      rowCounts[`${t.schema}.${t.name}`] = Number(counted.rows[0]?.n ?? 0);
      estimatedBytes += Number(t.bytes);
    }
    const row = snap.rows[0];
    if (!row) throw new Error('pg_export_snapshot returned nothing');
    return { client, snapshot: row.snapshot, at: row.at, rowCounts, estimatedBytes };
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
}

/**
 * Exports one tenant. Never throws for a backup failure: the catalog row is marked failed, the
 * repository keeps nothing of it, an alert is raised, and the result says what happened.
 */
export async function exportTenant(platform: BackupPlatform, tenant: Tenant, options: ExportOptions = {}): Promise<ExportResult> {
  return withBackupTarget(platform.config, options.target, async (target) => {
    const { primary } = target;
    const startedAt = new Date();
    const log = platform.log.child({ tenant: tenant.slug, backup: 'export' });
    const failure = async (err: unknown, id: string | null, name: string | null): Promise<ExportResult> => {
      const message = options.signal?.aborted ? `stopped: ${errorText(options.signal.reason)}` : errorText(err);
      if (id) await failObject(platform.control, id, message).catch((e: unknown) => {
        log.error({ err: errorText(e) }, 'could not mark the export failed');
      });
      log.error({ err: message, object: name }, 'tenant export failed');
      // A shutdown is not a backup problem: the job is retried, on another host if there is one.
      if (!options.signal?.aborted) await reportFailure(platform, err, { what: `export of tenant ${tenant.slug}`, kind: 'export', tenantId: tenant.id, repository: primary.name, details: name ? { object: name } : {} });
      return { tenant: tenant.slug, ok: false, entry: id ? await getObject(platform.control, id).catch(() => null) : null, copies: [], error: message };
    };

    let snapshot: TenantSnapshot;
    let version: string;
    let cluster: string;
    try {
      [version, cluster] = await Promise.all([pgDumpVersion(platform.tools), clusterIdentifier(platform)]);
      snapshot = await openTenantSnapshot(platform, tenant);
    } catch (err) {
      return failure(err, null, null);
    }
    const name = exportObjectName(tenant.slug, snapshot.at);
    let running;
    try {
      running = await beginLockedObject(platform, {
        kind: 'export',
        name,
        cluster,
        startedAt,
        tenantId: tenant.id,
        tenantSlug: tenant.slug,
        details: { database: tenant.databaseName, pgDumpVersion: version, format: 'pg_dump -Fc', repository: primary.name },
      });
    } catch (err) {
      await snapshot.client.end().catch(() => undefined);
      const duplicate = (err as { code?: string }).code === '23505';
      return failure(duplicate ? new Error(`an export of tenant ${tenant.slug} at ${snapshot.at.toISOString()} is already recorded (${name})`) : err, null, null);
    }

    try {
      const progress = (bytes: number) => options.onProgress?.({ tenant: tenant.slug, phase: 'dump', bytes, estimatedBytes: snapshot.estimatedBytes });
      const dump = startPgDump({
        tools: platform.tools,
        target: platform.target,
        database: tenant.databaseName,
        secretsDir: platform.dir.secretsDir,
        snapshot: snapshot.snapshot,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      // pipeline, not pipe: a failing pg_dump must fail the stream the backup reads, and a failing
      // write must stop pg_dump.
      const counted = pipeline(dump, byteCounter(progress), () => undefined);
      const manifest = await writeBackupObject({
        repository: primary,
        name,
        kind: 'export',
        source: counted,
        recipients: target.recipients,
        compressionLevel: target.compressionLevel,
        sourceDetails: { tenant: tenant.slug, tenantId: tenant.id, database: tenant.databaseName, format: 'pg_dump -Fc', pgDump: version, cluster, dataAt: snapshot.at.toISOString() },
        now: () => new Date(),
      });
      await snapshot.client.query('COMMIT').catch(() => undefined);
      try {
        await completeObject(platform.control, running.id, {
          manifest,
          repository: primary.name,
          dataAt: snapshot.at,
          details: { rowCounts: snapshot.rowCounts, tables: Object.keys(snapshot.rowCounts).length, sizes: manifest.sizes },
        });
      } catch (err) {
        // The catalog could not take it: remove the object, manifest first, so no unlisted backup looks complete.
        await primary.delete(manifestName(name)).catch(() => undefined);
        await primary.delete(name).catch(() => undefined);
        throw err;
      }
    } catch (err) {
      return await failure(err, running.id, name);
    } finally {
      await snapshot.client.end().catch(() => undefined);
      await running.release();
    }

    const entry = await getObject(platform.control, running.id);
    if (!entry) throw new Error(`export ${name} vanished from the catalog`);
    log.info({ object: name, bytes: entry.storedBytes }, 'tenant export complete');
    await resolveAlerts(platform, keysClearedByWrite({ kind: 'export', tenantId: tenant.id, repository: primary.name }), `export ${name} succeeded`);
    const copies = await copyToSecondaries(platform, entry, {
      target,
      onCopy: (repository) => options.onProgress?.({ tenant: tenant.slug, phase: 'copy', bytes: entry.rawBytes ?? 0, estimatedBytes: snapshot.estimatedBytes, repository }),
    });
    options.onProgress?.({ tenant: tenant.slug, phase: 'done', bytes: entry.rawBytes ?? 0, estimatedBytes: entry.rawBytes ?? 0 });
    return { tenant: tenant.slug, ok: true, entry: (await getObject(platform.control, running.id)) ?? entry, copies };
  });
}

/** Tenants whose data exports cover: active and suspended ones (a suspended tenant still has data). */
export async function exportableTenants(platform: Pick<BackupPlatform, 'control'>): Promise<Tenant[]> {
  return (await listTenants(platform.control)).filter((t) => t.status === 'active' || t.status === 'suspended');
}

export interface ExportBatchOptions extends ExportOptions {
  /** Called before each tenant, with its position. */
  onTenant?: (tenant: Tenant, index: number, total: number) => void;
}

/** Exports tenants one after the other (after sweeping interrupted exports); one failing does not stop the rest. */
export async function exportTenants(platform: BackupPlatform, tenants: Tenant[], options: ExportBatchOptions = {}): Promise<ExportResult[]> {
  return withBackupTarget(platform.config, options.target, async (target) => {
    await sweepAbandonedObjects(platform, target, 'export');
    const results: ExportResult[] = [];
    for (const [index, tenant] of tenants.entries()) {
      if (options.signal?.aborted) break;
      options.onTenant?.(tenant, index, tenants.length);
      results.push(await exportTenant(platform, tenant, { ...options, target }));
    }
    return results;
  });
}
