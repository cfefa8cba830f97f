/**
 * Creates and migrates the control database and the tenant template database. Idempotent: on an
 * up-to-date cluster it only reads. Concurrent starters serialise on an advisory lock.
 */
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { escapeIdentifier, withAdminClient, type ConnectionTarget } from './postgres/connection.ts';
import { loadMigrations, migrate, type Migration } from './postgres/migrator.ts';
import { UserError } from '../errors.ts';

export const CONTROL_DB = 'taskflow_control';
export const TEMPLATE_DB = 'taskflow_tenant_template';
export const TEMPLATE_OWNER = 'taskflow_template_owner';

/** Advisory lock keys (in the maintenance database). */
export const LOCKS = {
  bootstrap: 7_317_100,
  /** Shared while a tenant is copied from the template, exclusive while the template is migrated. */
  template: 7_317_101,
} as const;

const CONTROL_MIGRATIONS_DIR = fileURLToPath(new URL('../db/control/migrations/', import.meta.url));
const TENANT_MIGRATIONS_DIR = fileURLToPath(new URL('../db/tenant/migrations/', import.meta.url));

export function controlMigrations(): Migration[] {
  return loadMigrations(CONTROL_MIGRATIONS_DIR);
}

export function tenantMigrations(): Migration[] {
  return loadMigrations(TENANT_MIGRATIONS_DIR);
}

export interface ControlPlaneOptions {
  target: ConnectionTarget;
  log: Logger;
  /** Tenant migrations to keep the template at (tests pass their own set). */
  tenantMigrationSet?: Migration[];
  /**
   * Revoke CONNECT on the cluster's maintenance databases (postgres, template1) from PUBLIC, so a
   * tenant role reaches its own database and nothing else. Done for the managed cluster; on an
   * external cluster other programs may rely on those grants, so it is the operator's choice.
   */
  lockMaintenanceDatabases?: boolean;
}

const MAINTENANCE_DATABASES = ['postgres', 'template1'] as const;

/** The maintenance database to connect to for cluster-wide statements. */
export function maintenanceDb(target: ConnectionTarget): string {
  return target.database ?? 'postgres';
}

export async function ensureControlPlane(options: ControlPlaneOptions): Promise<void> {
  const { target, log } = options;
  await withAdminClient(target, maintenanceDb(target), async (admin) => {
    await admin.query('SELECT pg_advisory_lock($1)', [LOCKS.bootstrap]);
    try {
      const dbs = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname = ANY($1)', [[CONTROL_DB, TEMPLATE_DB]]);
      const have = new Set(dbs.rows.map((r) => r.datname));
      if (!have.has(CONTROL_DB)) {
        log.info('creating control database');
        await admin.query(`CREATE DATABASE ${escapeIdentifier(CONTROL_DB)}`);
        await admin.query(`REVOKE ALL ON DATABASE ${escapeIdentifier(CONTROL_DB)} FROM PUBLIC`);
      }
      const role = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [TEMPLATE_OWNER]);
      if (role.rowCount === 0) await admin.query(`CREATE ROLE ${escapeIdentifier(TEMPLATE_OWNER)} NOLOGIN`);
      if (!have.has(TEMPLATE_DB)) {
        log.info('creating tenant template database');
        await admin.query(`CREATE DATABASE ${escapeIdentifier(TEMPLATE_DB)}`);
        await admin.query(`REVOKE ALL ON DATABASE ${escapeIdentifier(TEMPLATE_DB)} FROM PUBLIC`);
        await admin.query(`ALTER DATABASE ${escapeIdentifier(TEMPLATE_DB)} IS_TEMPLATE true`);
      }
      // The template database itself stays the administrator's: a tenant create runs REASSIGN OWNED
      // BY the template owner, which also moves cluster-wide objects such as a database it owned.
      await admin.query(`ALTER DATABASE ${escapeIdentifier(TEMPLATE_DB)} OWNER TO CURRENT_USER`);
      await admin.query(`GRANT CREATE ON DATABASE ${escapeIdentifier(TEMPLATE_DB)} TO ${escapeIdentifier(TEMPLATE_OWNER)}`);
      if (options.lockMaintenanceDatabases) {
        for (const database of MAINTENANCE_DATABASES) {
          // The administrator keeps its access explicitly, in case it is not a superuser.
          await admin.query(`GRANT CONNECT ON DATABASE ${escapeIdentifier(database)} TO CURRENT_USER`);
          await admin.query(`REVOKE CONNECT, TEMPORARY ON DATABASE ${escapeIdentifier(database)} FROM PUBLIC`);
        }
      }
    } finally {
      await admin.query('SELECT pg_advisory_unlock($1)', [LOCKS.bootstrap]);
    }
  });

  const control = await withAdminClient(target, CONTROL_DB, (client) => migrate(client, controlMigrations()));
  if (!control.ok) throw new UserError(`control database migration failed at ${control.failedAt ?? '?'}: ${control.error}`);
  if (control.applied.length > 0) log.info({ from: control.from, to: control.to }, 'control database migrated');

  await migrateTemplate(target, options.tenantMigrationSet ?? tenantMigrations(), log);
}

/** Keeps the template at the latest tenant schema, holding the template lock exclusively. */
export async function migrateTemplate(target: ConnectionTarget, migrations: Migration[], log: Logger): Promise<number> {
  return withAdminClient(target, maintenanceDb(target), async (admin) => {
    await admin.query('SELECT pg_advisory_lock($1)', [LOCKS.template]);
    try {
      const result = await withAdminClient(target, TEMPLATE_DB, async (client) => {
        // The public schema is not used; nobody gets to create objects there.
        await client.query('REVOKE ALL ON SCHEMA public FROM PUBLIC');
        return migrate(client, migrations, { ownerRole: TEMPLATE_OWNER });
      });
      if (!result.ok) throw new UserError(`tenant template migration failed at ${result.failedAt ?? '?'}: ${result.error}`);
      if (result.applied.length > 0) log.info({ from: result.from, to: result.to }, 'tenant template migrated');
      return result.to;
    } finally {
      await admin.query('SELECT pg_advisory_unlock($1)', [LOCKS.template]);
    }
  });
}
