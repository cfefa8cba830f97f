/**
 * The live side of a tenant restore: whether the tenant is in use, and the swap itself. The
 * restored copy is loaded into an "incoming" database beside the live one; the swap renames the
 * live database aside (`<db>_r<YYYYMMDDHHMMSS>`, connections refused, kept until pruned) and the
 * incoming one to the tenant's name, in one transaction: every observer sees the old database or
 * the new one under the tenant's name, never neither. Nothing else in the cluster is touched.
 */
import type pg from 'pg';
import { AppError } from '../../../errors.ts';
import { maintenanceDb } from '../../control-plane.ts';
import { escapeIdentifier, escapeLiteral, withAdminClient, type ConnectionTarget } from '../../postgres/connection.ts';
import type { Tenant } from '../../tenants/registry.ts';

/** The comment that marks a tenant's database (as tenant creation writes it). */
export const tenantTag = (tenantId: string) => `taskflow:tenant:${tenantId}`;
/** The comment of a database being loaded by restore job `jobId`; a sweep drops it if the job died. */
export const incomingTag = (jobId: string) => `taskflow:restore-incoming:${jobId}`;
/** The comment of a database set aside by a restore. */
export const asideTag = (tenantId: string, at: Date) => `taskflow:restored-aside:${tenantId}:${at.toISOString()}`;
const ASIDE_PREFIX = 'taskflow:restored-aside:';

const RECENT_SESSION_MINUTES = 5;

export interface TenantUse {
  /** Client connections to the tenant's database, from any program (not autovacuum). */
  connections: number;
  applications: string[];
  /** Signed-in sessions seen in the last minutes (not counted while the tenant is suspended). */
  recentSessions: number;
  /** When the most recently seen of those sessions was last seen (ISO), or null. */
  lastSessionSeenAt: string | null;
}

/** Who uses the tenant's database right now. */
export async function tenantUse(target: ConnectionTarget, tenant: Tenant): Promise<TenantUse> {
  const connections = await withAdminClient(target, maintenanceDb(target), async (admin) =>
    (await admin.query<{ app: string }>(`SELECT coalesce(nullif(application_name, ''), usename::text, '?') AS app FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'`, [tenant.databaseName])).rows,
  );
  let sessions = { recentSessions: 0, lastSessionSeenAt: null as string | null };
  if (tenant.status === 'active') {
    sessions = await withAdminClient(target, tenant.databaseName, async (db) => {
      const exists = await db.query<{ ok: boolean }>(`SELECT to_regclass('app.sessions') IS NOT NULL AS ok`);
      if (!exists.rows[0]?.ok) return sessions;
      const res = await db.query<{ n: string; last: Date | null }>(
        `SELECT count(*)::text AS n, max(last_seen_at) AS last FROM app.sessions WHERE ended_at IS NULL AND expires_at > now() AND last_seen_at > now() - make_interval(mins => $1)`,
        [RECENT_SESSION_MINUTES],
      );
      const row = res.rows[0];
      return { recentSessions: Number(row?.n ?? 0), lastSessionSeenAt: row?.last ? row.last.toISOString() : null };
    });
  }
  return { connections: connections.length, applications: [...new Set(connections.map((c) => c.app))].sort(), ...sessions };
}

/** Refuses (409-class) when the tenant is in use, saying by what and how to proceed. */
export function assertNotInUse(tenant: Tenant, use: TenantUse): void {
  if (use.connections === 0 && use.recentSessions === 0) return;
  const parts: string[] = [];
  if (use.connections > 0) parts.push(`${use.connections} connection(s) to ${tenant.databaseName} (${use.applications.join(', ')})`);
  if (use.recentSessions > 0) {
    const seen = use.lastSessionSeenAt ? `, last seen at ${use.lastSessionSeenAt}` : '';
    parts.push(`${use.recentSessions} session(s) seen in the last ${RECENT_SESSION_MINUTES} minutes${seen}`);
  }
  throw new AppError(
    'conflict',
    `tenant '${tenant.slug}' is in use: ${parts.join('; ')}. Suspend it first ('taskflow tenant suspend ${tenant.slug}'; its users then see a maintenance answer), or pass --force to disconnect them`,
  );
}

/** Ends every connection to `database` except our own; returns how many. */
async function disconnect(admin: pg.ClientBase, database: string): Promise<number> {
  const res = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [database]);
  return res.rowCount ?? 0;
}

/** `<db>_r<YYYYMMDDHHMMSS>`, within PostgreSQL's 63 bytes. */
export function asideName(database: string, at: Date): string {
  const stamp = at.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `${database.slice(0, 63 - 16)}_r${stamp}`;
}

/** A name for the database a restore loads into: `<db>_in<6 hex>`. */
export function incomingName(database: string, suffix: string): string {
  return `${database.slice(0, 63 - 9)}_in${suffix.slice(0, 6)}`;
}

/**
 * Renames the live database aside and the incoming one into its place, in one transaction,
 * disconnecting whoever is connected (the caller checked use first, or was told to force).
 * Retries while a connection slips in between; the live database is never left without its name.
 */
export async function swapIn(target: ConnectionTarget, props: { tenant: Tenant; incoming: string; at: Date }): Promise<string> {
  const { tenant } = props;
  const aside = asideName(tenant.databaseName, props.at);
  const live = escapeIdentifier(tenant.databaseName);
  await withAdminClient(target, maintenanceDb(target), async (admin) => {
    for (let attempt = 1; ; attempt++) {
      await disconnect(admin, tenant.databaseName);
      await disconnect(admin, props.incoming);
      try {
        await admin.query('BEGIN');
        await admin.query(`ALTER DATABASE ${live} RENAME TO ${escapeIdentifier(aside)}`);
        await admin.query(`ALTER DATABASE ${escapeIdentifier(props.incoming)} RENAME TO ${live}`);
        await admin.query(`ALTER DATABASE ${escapeIdentifier(aside)} WITH ALLOW_CONNECTIONS false`);
        await admin.query(`COMMENT ON DATABASE ${escapeIdentifier(aside)} IS ${escapeLiteral(asideTag(tenant.id, props.at))}`);
        await admin.query(`COMMENT ON DATABASE ${live} IS ${escapeLiteral(tenantTag(tenant.id))}`);
        await admin.query('COMMIT');
        return;
      } catch (err) {
        await admin.query('ROLLBACK').catch(() => undefined);
        // 55006: someone connected between the disconnect and the rename; try again.
        if ((err as { code?: string }).code !== '55006' || attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });
  return aside;
}

/** Puts the incoming database in place of a new tenant's empty one (restore --as), then drops that one. */
export async function installForNewTenant(target: ConnectionTarget, props: { tenant: Tenant; incoming: string }): Promise<void> {
  const { tenant } = props;
  const discard = `${tenant.databaseName.slice(0, 63 - 8)}_discard`;
  await withAdminClient(target, maintenanceDb(target), async (admin) => {
    await disconnect(admin, tenant.databaseName);
    await admin.query('BEGIN');
    await admin.query(`ALTER DATABASE ${escapeIdentifier(tenant.databaseName)} RENAME TO ${escapeIdentifier(discard)}`);
    await admin.query(`ALTER DATABASE ${escapeIdentifier(props.incoming)} RENAME TO ${escapeIdentifier(tenant.databaseName)}`);
    await admin.query(`COMMENT ON DATABASE ${escapeIdentifier(tenant.databaseName)} IS ${escapeLiteral(tenantTag(tenant.id))}`);
    await admin.query('COMMIT');
    await admin.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(discard)} WITH (FORCE)`);
  });
}

/** Drops an incoming database left by restore job `jobId`, only if it carries that job's mark. */
export async function dropIncoming(target: ConnectionTarget, database: string, jobId: string): Promise<boolean> {
  return withAdminClient(target, maintenanceDb(target), async (admin) => {
    const res = await admin.query(`SELECT 1 FROM pg_database WHERE datname = $1 AND shobj_description(oid, 'pg_database') = $2`, [database, incomingTag(jobId)]);
    if (res.rowCount === 0) return false;
    await admin.query(`DROP DATABASE ${escapeIdentifier(database)} WITH (FORCE)`);
    return true;
  });
}

export interface AsideDatabase {
  database: string;
  tenantId: string;
  setAsideAt: string;
  bytes: number;
}

/** Databases restores set aside, oldest first. */
export async function listAside(target: ConnectionTarget): Promise<AsideDatabase[]> {
  return withAdminClient(target, maintenanceDb(target), async (admin) => {
    const res = await admin.query<{ datname: string; comment: string; bytes: string }>(
      `SELECT datname, shobj_description(oid, 'pg_database') AS comment, pg_database_size(oid)::text AS bytes
         FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE $1 ORDER BY datname`,
      [`${ASIDE_PREFIX}%`],
    );
    return res.rows
      .map((r) => {
        const [tenantId = '', ...rest] = r.comment.slice(ASIDE_PREFIX.length).split(':');
        return { database: r.datname, tenantId, setAsideAt: rest.join(':'), bytes: Number(r.bytes) };
      })
      .sort((a, b) => a.setAsideAt.localeCompare(b.setAsideAt));
  });
}

/** Drops one set-aside database (only one a restore set aside). */
export async function dropAside(target: ConnectionTarget, database: string): Promise<void> {
  const aside = (await listAside(target)).find((a) => a.database === database);
  if (!aside) throw new AppError('not-found', `${database} is not a database a restore set aside ('taskflow restore aside' lists them)`);
  await withAdminClient(target, maintenanceDb(target), async (admin) => {
    await admin.query(`DROP DATABASE ${escapeIdentifier(database)} WITH (FORCE)`);
  });
}
