/**
 * SQL migrations for one database: numbered files, applied in one transaction under an advisory lock,
 * recorded in `taskflow.schema_migrations`. Returns a result instead of throwing, so a runner over many
 * databases can report each one.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { escapeIdentifier } from './connection.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export type MigrateResult =
  | { ok: true; from: number; to: number; applied: number[] }
  | { ok: false; from: number; failedAt: number | null; error: string };

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** Loads `NNNN_name.sql` files in version order; refuses gaps and duplicates. */
export function loadMigrations(dir: string): Migration[] {
  const migrations = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .map((file) => {
      const match = FILE.exec(file);
      if (!match?.[1] || !match[2]) throw new Error(`migration file ${file} in ${dir} is not named NNNN_name.sql`);
      const sql = readFileSync(join(dir, file), 'utf8');
      return { version: Number(match[1]), name: match[2], sql, checksum: createHash('sha256').update(sql).digest('hex') };
    })
    .sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migrations in ${dir} must be numbered 0001, 0002, … without gaps (found ${m.version} at position ${i + 1})`);
  });
  return migrations;
}

export function latestVersion(migrations: Migration[]): number {
  return migrations.at(-1)?.version ?? 0;
}

const LEDGER = `
  CREATE SCHEMA IF NOT EXISTS taskflow;
  REVOKE ALL ON SCHEMA taskflow FROM PUBLIC;
  CREATE TABLE IF NOT EXISTS taskflow.schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  );`;

/** Advisory lock key shared by every migrator on one database. */
const LOCK_KEY = 7_317_001;

/** The version a database is at (0 when it has no ledger yet). */
export async function currentVersion(client: pg.ClientBase): Promise<number> {
  const exists = await client.query<{ exists: boolean }>(
    "SELECT to_regclass('taskflow.schema_migrations') IS NOT NULL AS exists",
  );
  if (!exists.rows[0]?.exists) return 0;
  const res = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM taskflow.schema_migrations');
  return res.rows[0]?.v ?? 0;
}

export interface MigrateOptions {
  /** Role that owns what the migrations create (SET ROLE for their duration). */
  ownerRole?: string;
  /** Stop at this version instead of the latest. */
  target?: number;
  /** Report what would run, change nothing. */
  dryRun?: boolean;
}

/**
 * Applies pending migrations in a single transaction: all of them or none, so a failure leaves the
 * database exactly as it was. Verifies checksums of those already applied.
 */
export async function migrate(client: pg.ClientBase, migrations: Migration[], options: MigrateOptions = {}): Promise<MigrateResult> {
  const target = options.target ?? latestVersion(migrations);
  let from = 0;
  let failedAt: number | null = null;
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
    await client.query(LEDGER);
    const applied = await client.query<{ version: number; checksum: string }>(
      'SELECT version, checksum FROM taskflow.schema_migrations ORDER BY version',
    );
    from = applied.rows.at(-1)?.version ?? 0;
    for (const row of applied.rows) {
      const known = migrations.find((m) => m.version === row.version);
      if (!known) throw new Error(`database is at version ${row.version}, newer than this TaskFlow knows (${latestVersion(migrations)})`);
      if (known.checksum !== row.checksum) throw new Error(`migration ${row.version} (${known.name}) was changed after it was applied`);
    }
    const pending = migrations.filter((m) => m.version > from && m.version <= target);
    if (options.dryRun) {
      await client.query('ROLLBACK');
      return { ok: true, from, to: pending.at(-1)?.version ?? from, applied: pending.map((m) => m.version) };
    }
    for (const m of pending) {
      failedAt = m.version;
      if (options.ownerRole) await client.query(`SET LOCAL ROLE ${escapeIdentifier(options.ownerRole)}`);
      await client.query(m.sql);
      if (options.ownerRole) await client.query('RESET ROLE');
      await client.query('INSERT INTO taskflow.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
        m.version,
        m.name,
        m.checksum,
      ]);
    }
    failedAt = null;
    await client.query('COMMIT');
    return { ok: true, from, to: pending.at(-1)?.version ?? from, applied: pending.map((m) => m.version) };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    return { ok: false, from, failedAt, error: (err as Error).message };
  }
}
