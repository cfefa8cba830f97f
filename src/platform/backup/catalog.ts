/**
 * The backup catalog in the control database (`backup_objects`, `backup_locations`): one row per
 * object, written before the first byte moves (`running`) and completed only after the object and
 * its manifest are durable, so a crash mid-backup leaves a `running` row that `failInterrupted`
 * turns into `failed`, never a listed backup that does not exist.
 */
import type pg from 'pg';
import type { BackupManifest } from './manifest.ts';

type Queryable = Pick<pg.Pool, 'query'>;

export type BackupKind = 'snapshot' | 'wal' | 'export';
export type BackupState = 'running' | 'complete' | 'failed';

export interface CatalogLocation {
  repository: string;
  storedAt: string;
  verifiedAt: string | null;
}

export interface CatalogEntry {
  id: string;
  kind: BackupKind;
  name: string;
  cluster: string;
  timeline: number | null;
  tenantId: string | null;
  tenantSlug: string | null;
  state: BackupState;
  startedAt: string;
  finishedAt: string | null;
  dataAt: string | null;
  rawBytes: number | null;
  storedBytes: number | null;
  sha256: string | null;
  details: Record<string, unknown>;
  error: string | null;
  provenAt: string | null;
  proof: Record<string, unknown> | null;
  locations: CatalogLocation[];
}

const ISO = (column: string, alias: string): string => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "${alias}"`;

const SELECT = `SELECT o.id::text, o.kind, o.name, o.cluster, o.timeline, o.tenant_id AS "tenantId", o.tenant_slug AS "tenantSlug", o.state,
    ${ISO('o.started_at', 'startedAt')}, ${ISO('o.finished_at', 'finishedAt')}, ${ISO('o.data_at', 'dataAt')},
    o.raw_bytes::float8 AS "rawBytes", o.stored_bytes::float8 AS "storedBytes", o.sha256, o.details, o.error,
    ${ISO('o.proven_at', 'provenAt')}, o.proof,
    COALESCE((SELECT json_agg(json_build_object('repository', l.repository,
        'storedAt', to_char(l.stored_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'verifiedAt', to_char(l.verified_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')) ORDER BY l.repository)
      FROM backup_locations l WHERE l.object_id = o.id), '[]'::json) AS locations
  FROM backup_objects o`;

export interface BeginProps {
  kind: BackupKind;
  name: string;
  cluster: string;
  timeline?: number | null;
  tenantId?: string | null;
  tenantSlug?: string | null;
  details?: Record<string, unknown>;
  startedAt?: Date;
}

/** Records that an object is being written; returns its catalog id. */
export async function beginObject(db: Queryable, props: BeginProps): Promise<string> {
  const res = await db.query<{ id: string }>(
    `INSERT INTO backup_objects (kind, name, cluster, timeline, tenant_id, tenant_slug, state, started_at, details)
     VALUES ($1, $2, $3, $4, $5, $6, 'running', $7, $8) RETURNING id::text`,
    [props.kind, props.name, props.cluster, props.timeline ?? null, props.tenantId ?? null, props.tenantSlug ?? null, props.startedAt ?? new Date(), JSON.stringify(props.details ?? {})],
  );
  const row = res.rows[0];
  if (!row) throw new Error('INSERT … RETURNING returned no row');
  return row.id;
}

/**
 * Marks an object complete once it and its manifest are durable in `repository` (the primary).
 * `details` are merged into what beginObject recorded.
 */
export async function completeObject(
  db: Queryable,
  id: string,
  props: { manifest: BackupManifest; repository: string; dataAt?: Date | null; timeline?: number | null; details?: Record<string, unknown>; finishedAt?: Date },
): Promise<void> {
  const finishedAt = props.finishedAt ?? new Date();
  await db.query(
    `WITH done AS (
       UPDATE backup_objects SET state = 'complete', finished_at = $2, data_at = $3, raw_bytes = $4, stored_bytes = $5, sha256 = $6,
              details = details || $7::jsonb, timeline = COALESCE($8, timeline), error = NULL
        WHERE id = $1 RETURNING id)
     INSERT INTO backup_locations (object_id, repository, stored_at, verified_at)
     SELECT id, $9, $2, NULL FROM done
     ON CONFLICT (object_id, repository) DO UPDATE SET stored_at = EXCLUDED.stored_at`,
    [id, finishedAt, props.dataAt ?? null, props.manifest.sizes.raw, props.manifest.sizes.stored, props.manifest.sha256, JSON.stringify(props.details ?? {}), props.timeline ?? null, props.repository],
  );
}

/** Marks an object failed, with why; the repository holds nothing of it (the pipeline cleans up). */
export async function failObject(db: Queryable, id: string, error: string): Promise<void> {
  await db.query(`UPDATE backup_objects SET state = 'failed', finished_at = now(), error = $2 WHERE id = $1 AND state = 'running'`, [id, error.slice(0, 2000)]);
}

/**
 * Turns `running` rows left by a process that died into `failed`. `olderThan` guards rows of a
 * backup still running elsewhere (several app hosts share the catalog). Returns the rows changed.
 */
export async function failInterrupted(db: Queryable, olderThan: Date, reason = 'interrupted: the process writing it stopped before it finished'): Promise<CatalogEntry[]> {
  const res = await db.query<{ id: string }>(
    `UPDATE backup_objects SET state = 'failed', finished_at = now(), error = $2 WHERE state = 'running' AND started_at < $1 RETURNING id::text`,
    [olderThan, reason],
  );
  const entries = await Promise.all(res.rows.map((r) => getObject(db, r.id)));
  return entries.filter((e): e is CatalogEntry => e !== null);
}

/** Records a verified copy (or a re-verification) of a complete object in another repository. */
export async function recordLocation(db: Queryable, id: string, repository: string, verifiedAt: Date | null = new Date()): Promise<void> {
  await db.query(
    `INSERT INTO backup_locations (object_id, repository, stored_at, verified_at) VALUES ($1, $2, now(), $3)
     ON CONFLICT (object_id, repository) DO UPDATE SET verified_at = COALESCE(EXCLUDED.verified_at, backup_locations.verified_at)`,
    [id, repository, verifiedAt],
  );
}

/** Forgets a copy (deleted by retention, or found missing). */
export async function removeLocation(db: Queryable, id: string, repository: string): Promise<void> {
  await db.query(`DELETE FROM backup_locations WHERE object_id = $1 AND repository = $2`, [id, repository]);
}

/** Records a successful restore of the object, with its evidence. */
export async function recordProof(db: Queryable, id: string, proof: Record<string, unknown>, at: Date = new Date()): Promise<void> {
  await db.query(`UPDATE backup_objects SET proven_at = $2, proof = $3 WHERE id = $1`, [id, at, JSON.stringify(proof)]);
}

/** Removes an object's row (after retention deleted every copy). */
export async function deleteObject(db: Queryable, id: string): Promise<void> {
  await db.query(`DELETE FROM backup_objects WHERE id = $1`, [id]);
}

export async function getObject(db: Queryable, idOrName: string): Promise<CatalogEntry | null> {
  const byId = /^[0-9]{1,18}$/.test(idOrName);
  const res = await db.query<CatalogEntry>(`${SELECT} WHERE ${byId ? 'o.id = $1::bigint' : 'o.name = $1'}`, [idOrName]);
  return res.rows[0] ?? null;
}

export interface ListFilter {
  kind?: BackupKind;
  cluster?: string;
  tenantId?: string;
  state?: BackupState;
  /** Objects started at or before / after. */
  before?: Date;
  after?: Date;
  limit?: number;
  /** Oldest first (default newest first). */
  ascending?: boolean;
}

export async function listObjects(db: Queryable, filter: ListFilter = {}): Promise<CatalogEntry[]> {
  const res = await db.query<CatalogEntry>(
    `${SELECT}
      WHERE ($1::text IS NULL OR o.kind = $1) AND ($2::text IS NULL OR o.cluster = $2) AND ($3::uuid IS NULL OR o.tenant_id = $3)
        AND ($4::text IS NULL OR o.state = $4) AND ($5::timestamptz IS NULL OR o.started_at <= $5) AND ($6::timestamptz IS NULL OR o.started_at >= $6)
      ORDER BY o.started_at ${filter.ascending ? 'ASC' : 'DESC'}, o.id ${filter.ascending ? 'ASC' : 'DESC'}
      LIMIT $7`,
    [filter.kind ?? null, filter.cluster ?? null, filter.tenantId ?? null, filter.state ?? null, filter.before ?? null, filter.after ?? null, filter.limit ?? 1000],
  );
  return res.rows;
}
