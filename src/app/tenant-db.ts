/**
 * A tenant's database as a handler sees it: already bound to the tenant the request resolved to,
 * with no way to name another one.
 */
import type pg from 'pg';
import type { TenantPools } from '../platform/postgres/tenant-pools.ts';
import type { Tenant } from '../platform/tenants/registry.ts';

/** What a command may do with the database: run statements, nothing else. */
export type Db = Pick<pg.ClientBase, 'query'>;

export interface TenantDb {
  /** Runs `fn` on one connection, statement by statement (autocommit). */
  read<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  /** Runs `fn` in one transaction: committed if it returns, rolled back if it throws. */
  transaction<T>(fn: (db: Db) => Promise<T>): Promise<T>;
}

/** Runs `fn` in one transaction on `client`: committed if it returns, rolled back if it throws. */
export async function inTransaction<T>(client: Db, fn: (db: Db) => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    // If the rollback fails too, the pool sees the open transaction and closes the connection.
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** The TenantDb of one tenant. */
export function tenantDbFor(pools: TenantPools, tenant: Tenant): TenantDb {
  return {
    read: (fn) => pools.withTenantClient(tenant, (client) => fn(client)),
    transaction: (fn) => pools.withTenantClient(tenant, (client) => inTransaction(client, fn)),
  };
}
