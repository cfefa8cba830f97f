/**
 * Creating and deleting tenants. A create either finishes or leaves nothing behind: every step that
 * made something is undone in reverse order, and a create cut off by a crash is cleaned up by the next
 * attempt (the slug's advisory lock tells a dead creator from a live one). Once the transaction that
 * makes the tenant active has committed, nothing is undone: what fails after it is logged.
 */
import type pg from 'pg';
import { AppError, UserError } from '../../errors.ts';
import { LOCKS, TEMPLATE_DB, TEMPLATE_OWNER, maintenanceDb } from '../control-plane.ts';
import { escapeIdentifier, escapeLiteral, withAdminClient } from '../postgres/connection.ts';
import { currentVersion } from '../postgres/migrator.ts';
import type { Platform } from '../platform.ts';
import { newApiToken, scramVerifier, tenantDbPassword } from './credentials.ts';
import { announceTenantChange, findTenantById, recordTenantEvent, type Tenant } from './registry.ts';
import { slugProblem, tenantObjectNames } from './slug.ts';

export type PlatformCore = Pick<Platform, 'target' | 'control' | 'masterKey' | 'log' | 'config'>;

/** Per-tenant connection limit for the login role, across every app host. */
export const TENANT_CONNECTION_LIMIT = 50;
const SLUG_LOCK = 7_317_200;

export interface CreateTenantProps {
  platform: PlatformCore;
  slug: string;
  name?: string;
  /** Who asked (operator name or 'cli'); recorded in tenant_events. */
  actor: string;
  /**
   * Test hook: fail after the named step, to prove the rollback ('commit': the announcement after
   * the commit fails, which must not undo the tenant).
   */
  failAfter?: 'record' | 'roles' | 'database' | 'grants' | 'commit';
}

export interface CreatedTenant {
  tenant: Tenant;
  /** Shown once; only its hash is stored. */
  apiToken: string;
}

/** Validates a slug for create or rename; throws a 400-class AppError with the reason. */
export function assertValidSlug(slug: string): void {
  const problem = slugProblem(slug);
  if (problem) throw new AppError('validation-failed', `invalid slug '${slug}': ${problem}`);
}

/**
 * Runs `fn` holding the slug's session advisory lock on a dedicated control connection. If the lock
 * cannot be given back, the connection is closed instead (ending the session frees the lock), so
 * what `fn` did and returned stands.
 */
async function withSlugLock<T>(platform: PlatformCore, slug: string, fn: (control: pg.PoolClient) => Promise<T>): Promise<T> {
  const control = await platform.control.connect();
  let unlockFailed: Error | undefined;
  try {
    const got = await control.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [SLUG_LOCK, slug]);
    if (!got.rows[0]?.ok) throw new AppError('conflict', `tenant '${slug}' is being created or deleted by another process right now`);
    try {
      return await fn(control);
    } finally {
      try {
        await control.query('SELECT pg_advisory_unlock($1, hashtext($2))', [SLUG_LOCK, slug]);
      } catch (err) {
        unlockFailed = err as Error;
        platform.log.warn({ tenant: slug, err: unlockFailed.message }, 'could not release the slug lock; closing its connection instead');
      }
    }
  } finally {
    control.release(unlockFailed);
  }
}

async function roleExists(admin: pg.ClientBase, role: string): Promise<boolean> {
  const res = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  return (res.rowCount ?? 0) > 0;
}

async function databaseExists(admin: pg.ClientBase, database: string): Promise<boolean> {
  const res = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
  return (res.rowCount ?? 0) > 0;
}

/** Creates a tenant: record, roles, database from the template, grants, API token. */
export async function createTenant(props: CreateTenantProps): Promise<CreatedTenant> {
  const { platform, slug, actor } = props;
  assertValidSlug(slug);
  const name = (props.name ?? slug).trim();
  if (name.length === 0 || name.length > 200) throw new AppError('validation-failed', 'a tenant name has 1 to 200 characters');
  const names = tenantObjectNames(slug);
  const log = platform.log.child({ tenant: slug });

  return withSlugLock(platform, slug, async (control) => {
    // A record left in 'provisioning' while nobody holds the slug lock is from a creator that died.
    const stale = await control.query<{ id: string }>("SELECT id FROM tenants WHERE slug = $1 AND status = 'provisioning'", [slug]);
    if (stale.rows[0]) {
      log.warn('cleaning up an earlier create of this tenant that did not finish');
      await dropTaggedObjects(platform, stale.rows[0].id, names);
      await control.query('DELETE FROM tenants WHERE id = $1', [stale.rows[0].id]);
    }

    const taken = await control.query(
      `SELECT 1 FROM tenants WHERE slug = $1 OR database_name = $2
       UNION ALL SELECT 1 FROM tenant_slug_aliases WHERE slug = $1 AND expires_at > now()`,
      [slug, names.database],
    );
    if ((taken.rowCount ?? 0) > 0) throw new AppError('conflict', `tenant '${slug}' already exists (or was renamed from recently)`);

    const made = { record: false, owner: false, login: false, database: false };
    let tenantId = '';
    let created: CreatedTenant;
    try {
      const inserted = await control.query<{ id: string }>(
        `INSERT INTO tenants (slug, name, status, database_name, owner_role, login_role)
         VALUES ($1, $2, 'provisioning', $3, $4, $5) RETURNING id`,
        [slug, name, names.database, names.ownerRole, names.loginRole],
      );
      tenantId = inserted.rows[0]?.id ?? '';
      made.record = true;
      if (props.failAfter === 'record') throw new Error('injected failure after record');

      const password = tenantDbPassword(platform.masterKey, tenantId, 1);
      await withAdminClient(platform.target, maintenanceDb(platform.target), async (admin) => {
        if (await roleExists(admin, names.ownerRole)) throw new AppError('conflict', `role ${names.ownerRole} already exists in the cluster`);
        if (await roleExists(admin, names.loginRole)) throw new AppError('conflict', `role ${names.loginRole} already exists in the cluster`);
        if (await databaseExists(admin, names.database)) throw new AppError('conflict', `database ${names.database} already exists in the cluster`);
        const tag = escapeLiteral(ownershipTag(tenantId));
        await admin.query(`CREATE ROLE ${escapeIdentifier(names.ownerRole)} NOLOGIN`);
        made.owner = true;
        await admin.query(`COMMENT ON ROLE ${escapeIdentifier(names.ownerRole)} IS ${tag}`);
        await admin.query(
          `CREATE ROLE ${escapeIdentifier(names.loginRole)} LOGIN NOINHERIT CONNECTION LIMIT ${TENANT_CONNECTION_LIMIT} PASSWORD ${escapeLiteral(scramVerifier(password))}`,
        );
        made.login = true;
        await admin.query(`COMMENT ON ROLE ${escapeIdentifier(names.loginRole)} IS ${tag}`);
        if (props.failAfter === 'roles') throw new Error('injected failure after roles');

        await admin.query('SELECT pg_advisory_lock_shared($1)', [LOCKS.template]);
        try {
          await admin.query(
            `CREATE DATABASE ${escapeIdentifier(names.database)} TEMPLATE ${escapeIdentifier(TEMPLATE_DB)} OWNER ${escapeIdentifier(names.ownerRole)}`,
          );
          made.database = true;
        } finally {
          await admin.query('SELECT pg_advisory_unlock_shared($1)', [LOCKS.template]);
        }
        await admin.query(`COMMENT ON DATABASE ${escapeIdentifier(names.database)} IS ${tag}`);
        await admin.query(`REVOKE ALL ON DATABASE ${escapeIdentifier(names.database)} FROM PUBLIC`);
        await admin.query(`GRANT CONNECT ON DATABASE ${escapeIdentifier(names.database)} TO ${escapeIdentifier(names.loginRole)}`);
        await admin.query(`ALTER ROLE ${escapeIdentifier(names.loginRole)} SET search_path = app`);
        await admin.query(`ALTER ROLE ${escapeIdentifier(names.loginRole)} SET statement_timeout = '15s'`);
        await admin.query(`ALTER ROLE ${escapeIdentifier(names.loginRole)} SET idle_in_transaction_session_timeout = '60s'`);
      });
      if (props.failAfter === 'database') throw new Error('injected failure after database');

      const schemaVersion = await withAdminClient(platform.target, names.database, async (db) => {
        await grantTenantPrivileges(db, { ownerRole: names.ownerRole, loginRole: names.loginRole }, TEMPLATE_OWNER);
        return currentVersion(db);
      });
      if (props.failAfter === 'grants') throw new Error('injected failure after grants');

      const { token, hash } = newApiToken();
      await control.query('BEGIN');
      await control.query("INSERT INTO tenant_api_tokens (tenant_id, token_hash, label) VALUES ($1, $2, 'initial')", [tenantId, hash]);
      await control.query("UPDATE tenants SET status = 'active', schema_version = $2, updated_at = now() WHERE id = $1", [tenantId, schemaVersion]);
      await control.query(
        "INSERT INTO tenant_migrations (tenant_id, status, attempt, version, target_version, finished_at) VALUES ($1, 'succeeded', 0, $2, $2, now())",
        [tenantId, schemaVersion],
      );
      await recordTenantEvent(control, { tenantId, slug, event: 'created', actor, detail: { schemaVersion } });
      // Read inside the transaction, as it is about to commit: nothing that can fail is left between
      // the COMMIT and handing the tenant back.
      const tenant = await findTenantById(control, tenantId);
      if (!tenant) throw new Error('tenant vanished during create');
      await commitCreate(platform, control, tenantId, log);
      created = { tenant, apiToken: token };
    } catch (err) {
      if (err instanceof CreateOutcomeUnknown) throw err;
      await control.query('ROLLBACK').catch(() => undefined);
      log.warn({ err: (err as Error).message }, 'tenant create failed; undoing what it made');
      await dropTenantObjects(platform, {
        databaseName: made.database ? names.database : null,
        ownerRole: made.owner ? names.ownerRole : null,
        loginRole: made.login ? names.loginRole : null,
      });
      if (made.record) await control.query('DELETE FROM tenants WHERE id = $1', [tenantId]);
      if (err instanceof AppError || err instanceof UserError) throw err;
      throw new Error(`could not create tenant '${slug}': ${(err as Error).message}`, { cause: err });
    }
    // Committed: from here on nothing is undone.
    await announceCreated(control, { tenantId, failAfter: props.failAfter, log });
    log.info({ database: names.database }, 'tenant created');
    return created;
  });
}

/** A COMMIT failed and whether it took effect cannot be told: nothing may be undone. */
class CreateOutcomeUnknown extends Error {
  override name = 'CreateOutcomeUnknown';
}

/**
 * Commits the create. A COMMIT whose answer was lost (the connection broke) may have committed all
 * the same, so the tenant's status is read on another connection: active means committed (return as
 * usual), still provisioning means not (throw, and the create is undone), and if it cannot be read,
 * CreateOutcomeUnknown leaves everything as it is (a create left provisioning is cleaned up by the
 * next attempt).
 */
async function commitCreate(platform: PlatformCore, control: pg.ClientBase, tenantId: string, log: PlatformCore['log']): Promise<void> {
  try {
    await control.query('COMMIT');
  } catch (err) {
    let status: string | null;
    try {
      const res = await platform.control.query<{ status: string }>('SELECT status FROM tenants WHERE id = $1', [tenantId]);
      status = res.rows[0]?.status ?? null;
    } catch {
      throw new CreateOutcomeUnknown(
        `could not tell whether tenant ${tenantId} was created: the answer to its COMMIT was lost (${(err as Error).message}); look it up before retrying`,
        { cause: err },
      );
    }
    if (status !== 'active') throw err;
    log.warn({ err: (err as Error).message }, 'the answer to the COMMIT of a tenant create was lost, but it committed');
  }
}

/**
 * Tells every process about the new tenant (so a host cached as unknown resolves at once). The
 * tenant is committed by now: a failure here is logged, never undone; caches expire on their own.
 */
async function announceCreated(control: pg.ClientBase, props: { tenantId: string; failAfter: CreateTenantProps['failAfter']; log: PlatformCore['log'] }): Promise<void> {
  try {
    if (props.failAfter === 'commit') throw new Error('injected failure after commit');
    await announceTenantChange(control, props.tenantId);
  } catch (err) {
    props.log.warn({ err: (err as Error).message }, 'tenant created, but announcing it failed; other processes see it once their tenant cache expires');
  }
}

/**
 * Hands the objects copied from the template to the tenant's owner role and gives its login role
 * exactly DML on the app schema, now and for tables created by later migrations.
 */
export async function grantTenantPrivileges(db: pg.ClientBase, roles: { ownerRole: string; loginRole: string }, fromRole: string): Promise<void> {
  const owner = escapeIdentifier(roles.ownerRole);
  const login = escapeIdentifier(roles.loginRole);
  await db.query(`REASSIGN OWNED BY ${escapeIdentifier(fromRole)} TO ${owner}`);
  await db.query('REVOKE ALL ON SCHEMA public FROM PUBLIC');
  await db.query(`GRANT USAGE ON SCHEMA app TO ${login}`);
  await db.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO ${login}`);
  await db.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA app TO ${login}`);
  await db.query(`ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA app GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${login}`);
  await db.query(`ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA app GRANT USAGE, SELECT ON SEQUENCES TO ${login}`);
}

/** The comment that marks a role or database as made by TaskFlow for one tenant. */
function ownershipTag(tenantId: string): string {
  return `taskflow:tenant:${tenantId}`;
}

/** Drops what a dead create made: only objects tagged with that tenant's id, never a stranger's. */
async function dropTaggedObjects(
  platform: Pick<PlatformCore, 'target'>,
  tenantId: string,
  names: { database: string; ownerRole: string; loginRole: string },
): Promise<void> {
  const tag = ownershipTag(tenantId);
  const ours = await withAdminClient(platform.target, maintenanceDb(platform.target), async (admin) => {
    const roles = await admin.query<{ rolname: string }>(
      "SELECT rolname FROM pg_roles WHERE rolname = ANY($1) AND shobj_description(oid, 'pg_authid') = $2",
      [[names.ownerRole, names.loginRole], tag],
    );
    const dbs = await admin.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname = $1 AND shobj_description(oid, 'pg_database') = $2",
      [names.database, tag],
    );
    return { roles: new Set(roles.rows.map((r) => r.rolname)), database: dbs.rows.length > 0 };
  });
  await dropTenantObjects(platform, {
    databaseName: ours.database ? names.database : null,
    ownerRole: ours.roles.has(names.ownerRole) ? names.ownerRole : null,
    loginRole: ours.roles.has(names.loginRole) ? names.loginRole : null,
  });
}

/** Drops a tenant's database (forcing connections off) and roles; each name may be null to skip it. */
export async function dropTenantObjects(
  platform: Pick<PlatformCore, 'target'>,
  objects: { databaseName: string | null; ownerRole: string | null; loginRole: string | null },
): Promise<void> {
  await withAdminClient(platform.target, maintenanceDb(platform.target), async (admin) => {
    if (objects.databaseName) await admin.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(objects.databaseName)} WITH (FORCE)`);
    for (const role of [objects.loginRole, objects.ownerRole]) {
      if (role) await admin.query(`DROP ROLE IF EXISTS ${escapeIdentifier(role)}`);
    }
  });
}

/** Deletes a tenant for good: database, roles, record. Resumable if cut off half way. */
export async function deleteTenant(props: { platform: PlatformCore; tenant: Tenant; actor: string }): Promise<void> {
  const { platform, tenant, actor } = props;
  await withSlugLock(platform, tenant.slug, async (control) => {
    await control.query("UPDATE tenants SET status = 'deleting', updated_at = now() WHERE id = $1", [tenant.id]);
    await announceTenantChange(control, tenant.id);
    await dropTenantObjects(platform, { databaseName: tenant.databaseName, ownerRole: tenant.ownerRole, loginRole: tenant.loginRole });
    await control.query('BEGIN');
    await control.query('DELETE FROM tenants WHERE id = $1', [tenant.id]);
    await recordTenantEvent(control, { tenantId: tenant.id, slug: tenant.slug, event: 'deleted', actor });
    await control.query('COMMIT');
    await announceTenantChange(control, tenant.id);
  });
  platform.log.info({ tenant: tenant.slug }, 'tenant deleted');
}
