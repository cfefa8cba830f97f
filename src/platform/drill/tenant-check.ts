/**
 * Whether each tenant came through a site loss: the row count of every table of its database
 * before and after, and how long after the loss its own login role could query its database again
 * on the new primary.
 */
import pg from 'pg';
import { clientConfig, escapeIdentifier, type ConnectionTarget } from '../postgres/connection.ts';
import type { ReplicationContext } from '../replication/context.ts';
import { tenantDbPassword } from '../tenants/credentials.ts';
import type { Tenant } from '../tenants/registry.ts';
import { recordedPrimaryTarget, sleep } from './phases.ts';
import { preciseNow } from './writers.ts';

const POLL_MS = 200;

export interface TenantRecovery {
  slug: string;
  database: string;
  /** Seconds from the loss of the site to the first query its login role ran on the new primary. */
  recoverySeconds: number | null;
  error: string | null;
  rowsBefore: number;
  rowsAfter: number | null;
  /** Rows missing afterwards, summed over the tables that lost any. */
  rowsLost: number | null;
  /** Tables whose count changed: `schema.table` with before and after. */
  changedTables: { table: string; before: number; after: number | null }[];
}

/** The exact row count of every table of a tenant's database, as the administrator, keyed `schema.table`. */
export async function countRows(target: ConnectionTarget, database: string): Promise<Record<string, number>> {
  const client = new pg.Client({ ...clientConfig(target, database), connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const tables = await client.query<{ schema: string; name: string }>(
      `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
        ORDER BY 1, 2`,
    );
    const counts: Record<string, number> = {};
    for (const t of tables.rows) {
      const res = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${escapeIdentifier(t.schema)}.${escapeIdentifier(t.name)}`);
      counts[`${t.schema}.${t.name}`] = Number(res.rows[0]?.n ?? 0);
    }
    return counts;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Polls, from the loss on, until the tenant's own login role can query its database on the node
 * recorded as primary; resolves with the moment it could (epoch ms), or null at `deadline`.
 */
export async function awaitTenant(ctx: ReplicationContext, tenant: Tenant, deadline: number): Promise<{ at: number | null; error: string | null }> {
  const as = { user: tenant.loginRole, password: tenantDbPassword(ctx.masterKey, tenant.id, tenant.credentialVersion) };
  let error: string | null = null;
  while (preciseNow() < deadline) {
    const client = new pg.Client({ ...clientConfig(recordedPrimaryTarget(ctx).target, tenant.databaseName, as), connectionTimeoutMillis: 2000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      // A standby would answer too: the tenant is back when its database takes writes again.
      const res = await client.query<{ ro: boolean }>('SELECT pg_is_in_recovery() AS ro');
      if (res.rows[0]?.ro === false) return { at: preciseNow(), error: null };
      error = 'read-only';
    } catch (err) {
      error = (err as { code?: string; message?: string }).code ?? (err as Error).message;
    } finally {
      await client.end().catch(() => undefined);
    }
    await sleep(POLL_MS);
  }
  return { at: null, error };
}

/** Compares the counts before and after for one tenant. */
export function tenantRecovery(tenant: Tenant, lostAt: number, reached: { at: number | null; error: string | null }, before: Record<string, number>, after: Record<string, number> | null): TenantRecovery {
  const tables = [...new Set([...Object.keys(before), ...Object.keys(after ?? {})])].sort();
  const changedTables = tables
    .map((table) => ({ table, before: before[table] ?? 0, after: after ? (after[table] ?? 0) : null }))
    .filter((t) => t.after !== t.before);
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  return {
    slug: tenant.slug,
    database: tenant.databaseName,
    recoverySeconds: reached.at === null ? null : Math.round(reached.at - lostAt) / 1000,
    error: reached.at === null ? reached.error : null,
    rowsBefore: sum(Object.values(before)),
    rowsAfter: after ? sum(Object.values(after)) : null,
    rowsLost: after ? sum(changedTables.map((t) => Math.max(0, t.before - (t.after ?? 0)))) : null,
    changedTables,
  };
}
