/**
 * A tenant's database as a handler sees it: already bound to the tenant the request resolved to,
 * with no way to name another one, and to the request's deadline (plugins/deadline.ts): a request
 * that has been answered `request-timeout` starts no more work and commits nothing.
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

/** What database work needs to know of its request's deadline. */
export interface Deadline {
  /** Milliseconds left; Infinity once the request has been answered (work after the answer is not bound). */
  remainingMs(): number;
  /** Throws 503 request-timeout once the request has been answered so. */
  assertNotPassed(): void;
  /**
   * Runs `commit` unless the deadline has passed (then throws request-timeout instead); while it
   * runs, the deadline does not answer, so a change is never committed under a timeout answer.
   */
  commit<T>(commit: () => Promise<T>): Promise<T>;
}

/**
 * SQL that lowers statement_timeout for the rest of the transaction to the time the request has
 * left, so a slow statement ends (57014, answered request-timeout) when the request does; it never
 * raises the role's own limit. Empty when there is no limit to apply.
 */
function boundStatementTimeoutSql(remainingMs: number): string {
  if (!Number.isFinite(remainingMs)) return '';
  // A whole number computed here, so it can stand in the SQL text and ride along with BEGIN.
  const ms = Math.max(1, Math.ceil(remainingMs));
  return `SELECT set_config('statement_timeout', (CASE WHEN setting::bigint = 0 THEN ${ms} ELSE LEAST(setting::bigint, ${ms}) END)::text, true)
    FROM pg_settings WHERE name = 'statement_timeout'`;
}

/**
 * Runs `fn` in one transaction on `client`: committed if it returns, rolled back if it throws or
 * if the deadline has passed by the time it returns.
 */
export async function inTransaction<T>(client: Db, fn: (db: Db) => Promise<T>, deadline?: Deadline): Promise<T> {
  deadline?.assertNotPassed();
  const bound = deadline ? boundStatementTimeoutSql(deadline.remainingMs()) : '';
  // One round trip: both statements go as one simple query.
  await client.query(bound === '' ? 'BEGIN' : `BEGIN; ${bound}`);
  try {
    const result = await fn(client);
    if (deadline) await deadline.commit(() => client.query('COMMIT'));
    else await client.query('COMMIT');
    return result;
  } catch (err) {
    // If the rollback fails too, the pool sees the open transaction and closes the connection.
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** The TenantDb of one tenant, for work bound by `deadline` (none: unbounded). */
export function tenantDbFor(pools: TenantPools, tenant: Tenant, deadline?: Deadline | null): TenantDb {
  const bound = deadline ?? undefined;
  return {
    read: (fn) =>
      pools.withTenantClient(
        tenant,
        (client) => {
          // Checked once a connection is in hand: waiting for one may have taken the rest of the time.
          bound?.assertNotPassed();
          return fn(client);
        },
        bound,
      ),
    // The pool cancels a COMMIT still waiting for a synchronous standby when the time is up.
    transaction: (fn) => pools.withTenantClient(tenant, (client) => inTransaction(client, fn, bound), bound),
  };
}

