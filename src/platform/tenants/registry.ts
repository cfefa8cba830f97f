/** Reading tenant records from the control database. */
import type pg from 'pg';

export type TenantStatus = 'provisioning' | 'active' | 'suspended' | 'deleting';

export interface Tenant {
  id: string;
  slug: string;
  name: string;
  status: TenantStatus;
  statusReason: string | null;
  databaseName: string;
  ownerRole: string;
  loginRole: string;
  credentialVersion: number;
  schemaVersion: number;
  createdAt: Date;
  updatedAt: Date;
  /** Slugs that still resolve to this tenant after renames, with their expiry. */
  aliases: { slug: string; expiresAt: Date }[];
}

/** NOTIFY channel on which every tenant change is announced (payload: tenant id). */
export const TENANT_CHANGED_CHANNEL = 'taskflow_tenant_changed';

interface TenantRow {
  id: string;
  slug: string;
  name: string;
  status: TenantStatus;
  status_reason: string | null;
  database_name: string;
  owner_role: string;
  login_role: string;
  credential_version: number;
  schema_version: number;
  created_at: Date;
  updated_at: Date;
  aliases: { slug: string; expires_at: string }[] | null;
}

const SELECT = `
  SELECT t.*, (
    SELECT json_agg(json_build_object('slug', a.slug, 'expires_at', a.expires_at) ORDER BY a.expires_at)
    FROM tenant_slug_aliases a WHERE a.tenant_id = t.id AND a.expires_at > now()
  ) AS aliases
  FROM tenants t`;

function fromRow(row: TenantRow): Tenant {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    status: row.status,
    statusReason: row.status_reason,
    databaseName: row.database_name,
    ownerRole: row.owner_role,
    loginRole: row.login_role,
    credentialVersion: row.credential_version,
    schemaVersion: row.schema_version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    aliases: (row.aliases ?? []).map((a) => ({ slug: a.slug, expiresAt: new Date(a.expires_at) })),
  };
}

type Queryable = Pick<pg.Pool, 'query'> | pg.ClientBase;

/** The tenant a slug names now, or that it named before a rename whose grace period is still running. */
export async function findTenantBySlug(db: Queryable, slug: string): Promise<Tenant | null> {
  const res = await db.query<TenantRow>(
    `${SELECT} WHERE t.slug = $1
     UNION ALL
     ${SELECT} JOIN tenant_slug_aliases al ON al.tenant_id = t.id WHERE al.slug = $1 AND al.expires_at > now()
     LIMIT 1`,
    [slug],
  );
  return res.rows[0] ? fromRow(res.rows[0]) : null;
}

export async function findTenantById(db: Queryable, id: string): Promise<Tenant | null> {
  const res = await db.query<TenantRow>(`${SELECT} WHERE t.id = $1`, [id]);
  return res.rows[0] ? fromRow(res.rows[0]) : null;
}

export async function listTenants(db: Queryable): Promise<Tenant[]> {
  const res = await db.query<TenantRow>(`${SELECT} ORDER BY t.slug`);
  return res.rows.map(fromRow);
}

/** Announces a change so every process drops its cached copy of the tenant. */
export async function announceTenantChange(db: Queryable, tenantId: string): Promise<void> {
  await db.query('SELECT pg_notify($1, $2)', [TENANT_CHANGED_CHANNEL, tenantId]);
}

export async function recordTenantEvent(
  db: Queryable,
  event: { tenantId: string | null; slug: string; event: string; actor: string; detail?: Record<string, unknown> },
): Promise<void> {
  await db.query('INSERT INTO tenant_events (tenant_id, slug, event, actor, detail) VALUES ($1, $2, $3, $4, $5)', [
    event.tenantId,
    event.slug,
    event.event,
    event.actor,
    JSON.stringify(event.detail ?? {}),
  ]);
}
