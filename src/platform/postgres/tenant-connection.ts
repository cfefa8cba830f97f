/**
 * One connection of the tenant pools (tenant-pools.ts) and what it knows about its server: opened to
 * the primary of the moment, used only once the server said it is not in recovery, cancelled when
 * its request's time is up, and watched for a COMMIT that no synchronous standby confirmed.
 */
import pg from 'pg';
import { AppError } from '../../errors.ts';
import { clientConfig, type ConnectionTarget } from './connection.ts';
import { assertPrimary, watchSession, type SessionWatch } from './primary-session.ts';

export type ConnectionState = 'opening' | 'busy' | 'idle' | 'closing';

export interface TenantConnection {
  client: pg.Client;
  entry: PoolEntry;
  state: ConnectionState;
  /** The connection failed (socket error, server ended it): it must not serve another request. */
  lost: boolean;
  /** Whether it still holds its global slot: until PostgreSQL has let the connection go. */
  holdsSlot: boolean;
  /** Closes it once it has been idle for idleMs; set only while idle. */
  idleTimer: NodeJS.Timeout | null;
  /** The primary's epoch when it opened: from an older one, it leads to a former primary. */
  epoch: number;
  watch: SessionWatch;
}

export interface Waiter {
  entry: PoolEntry;
  resolve: (connection: TenantConnection) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export interface PoolEntry {
  tenantId: string;
  slug: string;
  /** What the pool connects with; a different value means the tenant's credentials moved on. */
  identity: string;
  database: string;
  login: { user: string; password: string };
  /** Most recently used last. Empty whenever `waiters` is not: an idle connection serves at once. */
  idle: TenantConnection[];
  busy: number;
  opening: number;
  /** Requests waiting for a connection, first come first served. */
  waiters: Set<Waiter>;
  leases: number;
  /** Counted among the tenants that hold or want connections (the divisor of the fair share). */
  holding: boolean;
  /** Out of the map: serves the requests that leased it, then closes every connection it has. */
  retired: boolean;
}

/** The time a request has left; Infinity once it has been answered. */
export interface RequestTime {
  remainingMs(): number;
}

/** After the deadline, statement_timeout has ended any statement; this is for a COMMIT still waiting for a standby. */
const CANCEL_AFTER_DEADLINE_MS = 100;

/**
 * Cancels what the connection is doing once the request's time is up. A COMMIT waiting for a
 * synchronous standby is the case: statement_timeout does not end it, the request's deadline does
 * not answer while it runs, and a standby that is gone would hold it for ever. Cancelled, it returns
 * without the standby's confirmation, which is answered 503 commit-unconfirmed.
 */
export function cancelAtDeadline(watch: SessionWatch, deadline: RequestTime | undefined): NodeJS.Timeout | null {
  const ms = deadline?.remainingMs() ?? Infinity;
  if (!Number.isFinite(ms)) return null;
  const timer = setTimeout(() => {
    watch.cancel();
  }, Math.max(0, ms) + CANCEL_AFTER_DEADLINE_MS);
  timer.unref();
  return timer;
}

/** The 503 for a COMMIT that returned without its synchronous standby's confirmation. */
export function unconfirmedCommit(retryAfterSeconds: number): AppError {
  return new AppError('commit-unconfirmed', 'the change was made on the primary database, but no standby confirmed it in time; it may be lost if the primary fails before one does', {
    headers: { 'Retry-After': String(retryAfterSeconds) },
  });
}

export interface OpeningSession {
  client: pg.Client;
  watch: SessionWatch;
  /** Resolves once connected to a server that accepts writes; rejects otherwise (NotPrimaryError when it is read-only). */
  ready: Promise<void>;
  /** Whether a session was made (and so must be ended), even if `ready` failed. */
  started(): boolean;
}

/** Opens a connection to `database` on the server `target` names at this moment. */
export function openSession(target: ConnectionTarget, database: string, login: { user: string; password: string }): OpeningSession {
  const config = clientConfig(target, database, login);
  const client = new pg.Client(config);
  const watch = watchSession(client, { host: config.host ?? '127.0.0.1', port: config.port ?? 5432 });
  let started = false;
  const ready = client.connect().then(() => {
    started = true;
    return assertPrimary(client, watch);
  });
  return { client, watch, ready, started: () => started };
}
