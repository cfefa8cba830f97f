/**
 * One pg.Pool per tenant, kept in least-recently-used order, under one cap on open connections
 * across all tenants.
 *
 * The lifecycle is built so eviction and use cannot race: `withTenantClient` takes a lease on the
 * pool entry synchronously, before its first await, and eviction only ever ends entries without a
 * lease, removing them from the map in the same tick. Once an entry is out of the map nobody can
 * lease it again, so a pool is never ended under a request or used after it was ended.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { AppError } from '../../errors.ts';
import { tenantDbPassword } from '../tenants/credentials.ts';
import type { Tenant } from '../tenants/registry.ts';
import { clientConfig, type ConnectionTarget } from './connection.ts';

/** How long close() waits for connections to finish closing. */
const CLOSE_WAIT_MS = 5_000;

/** A counting semaphore with FIFO waiters and timeouts; the global connection cap. */
export class ConnectionSlots {
  readonly capacity: number;
  #used = 0;
  #waiters: { grant: () => void }[] = [];
  #onDrained: (() => void)[] = [];

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get used(): number {
    return this.#used;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  /** Takes a slot if one is free right now; returns its release function or null. */
  tryAcquire(): (() => void) | null {
    if (this.#used >= this.capacity) return null;
    this.#used++;
    return this.#releaser();
  }

  /** Waits up to `timeoutMs` for a slot; rejects with `onTimeout()` if none frees up. */
  acquire(timeoutMs: number, onTimeout: () => Error): Promise<() => void> {
    const now = this.tryAcquire();
    if (now) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          clearTimeout(timer);
          resolve(this.#releaser());
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(onTimeout());
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Resolves once no slot is in use (true), or after `timeoutMs` with slots still out (false). */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.#used === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#onDrained = this.#onDrained.filter((d) => d !== done);
        resolve(false);
      }, timeoutMs);
      this.#onDrained.push(done);
    });
  }

  /** A release function that works once: a slot must never be returned twice. */
  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // Hand the slot straight to the first waiter, so `used` never dips below what is open.
      const next = this.#waiters.shift();
      if (next) {
        next.grant();
        return;
      }
      this.#used--;
      if (this.#used === 0) {
        const drained = this.#onDrained;
        this.#onDrained = [];
        for (const done of drained) done();
      }
    };
  }
}

export interface TenantPoolsOptions {
  target: ConnectionTarget;
  masterKey: string;
  log: Logger;
  /** Cap on open connections to tenant databases across all tenants. */
  maxConnections: number;
  perTenantMax: number;
  idleMs: number;
  /** How long a request waits for a connection before it is answered 503 server-busy. */
  acquireTimeoutMs: number;
  /** Retry-After sent with server-busy. */
  retryAfterSeconds: number;
}

interface PoolEntry {
  tenantId: string;
  /** What the pool connects with; a different value means the tenant's credentials moved on. */
  identity: string;
  pool: pg.Pool;
  leases: number;
  /** Out of the map: ends as soon as its last lease is returned. */
  retired: boolean;
}

export interface TenantPoolStats {
  pools: number;
  openConnections: number;
  leased: number;
}

/** Per-tenant pools under a global connection cap; see the module comment for the lifecycle rules. */
export class TenantPools {
  readonly #options: TenantPoolsOptions;
  readonly #slots: ConnectionSlots;
  /** Insertion order is recency order: a lease moves the entry to the end. */
  readonly #entries = new Map<string, PoolEntry>();
  readonly #ending = new Set<Promise<void>>();
  readonly #SlottedClient: typeof pg.Client;
  readonly #sweepTimer: NodeJS.Timeout;
  #leased = 0;
  #closed = false;

  constructor(options: TenantPoolsOptions) {
    this.#options = options;
    this.#slots = new ConnectionSlots(options.maxConnections);
    this.#SlottedClient = slottedClientClass((timeoutMs) => this.#acquireSlot(timeoutMs), options.acquireTimeoutMs);
    this.#sweepTimer = setInterval(() => {
      this.sweep();
    }, Math.max(1_000, options.idleMs));
    this.#sweepTimer.unref();
  }

  /**
   * Runs `fn` with a connection to the tenant's own database, as its login role. The connection
   * goes back to the pool afterwards (or is closed, if it broke or was left inside a transaction).
   */
  async withTenantClient<T>(tenant: Tenant, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.#closed) throw new AppError('server-busy', 'the server is shutting down', { headers: this.#retryAfter() });
    const entry = this.#lease(tenant);
    try {
      const client = await this.#checkout(entry);
      let broken: Error | null = null;
      const onError = (err: Error) => {
        broken = err;
      };
      client.on('error', onError);
      try {
        return await fn(client);
      } catch (err) {
        if (isConnectionError(err)) broken = err as Error;
        throw err;
      } finally {
        client.removeListener('error', onError);
        // A connection left in a transaction must not serve the next request; when others wait
        // for a slot, closing this one hands them its slot instead of keeping it idle here.
        const destroy = broken ?? (client.getTransactionStatus() !== 'I' || this.#slots.waiting > 0);
        client.release(destroy);
      }
    } finally {
      this.#unlease(entry);
    }
  }

  /** Drops a tenant's pool (or every pool, with '*'): at once if idle, else when its last request ends. */
  drop(tenantId: string): void {
    const entries = tenantId === '*' ? [...this.#entries.values()] : [this.#entries.get(tenantId)].filter((e) => e !== undefined);
    for (const entry of entries) this.#retire(entry);
  }

  /** Ends pools that are idle and have no open connections left. */
  sweep(): void {
    for (const entry of [...this.#entries.values()]) {
      if (entry.leases === 0 && entry.pool.totalCount === 0) this.#retire(entry);
    }
  }

  stats(): TenantPoolStats {
    return { pools: this.#entries.size, openConnections: this.#slots.used, leased: this.#leased };
  }

  /** Ends every pool and waits for its connections to close; call after in-flight requests have finished. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweepTimer);
    this.drop('*');
    while (this.#ending.size > 0) await Promise.all([...this.#ending]);
    // pool.end() resolves once its clients are told to end, not once their sockets have closed.
    if (!(await this.#slots.drained(CLOSE_WAIT_MS))) {
      this.#options.log.warn({ open: this.#slots.used }, 'tenant connections still open after closing the pools');
    }
  }

  #lease(tenant: Tenant): PoolEntry {
    const identity = `${tenant.databaseName}\u0000${tenant.loginRole}\u0000${tenant.credentialVersion}`;
    let entry = this.#entries.get(tenant.id);
    if (entry && entry.identity !== identity) {
      this.#retire(entry);
      entry = undefined;
    }
    if (entry) {
      this.#entries.delete(tenant.id);
    } else {
      entry = { tenantId: tenant.id, identity, pool: this.#newPool(tenant), leases: 0, retired: false };
    }
    this.#entries.set(tenant.id, entry);
    entry.leases++;
    this.#leased++;
    return entry;
  }

  #unlease(entry: PoolEntry): void {
    entry.leases--;
    this.#leased--;
    if (entry.retired && entry.leases === 0) this.#end(entry);
  }

  #retire(entry: PoolEntry): void {
    if (this.#entries.get(entry.tenantId) === entry) this.#entries.delete(entry.tenantId);
    if (entry.retired) return;
    entry.retired = true;
    if (entry.leases === 0) this.#end(entry);
  }

  #end(entry: PoolEntry): void {
    const ending = entry.pool
      .end()
      .catch((err: unknown) => {
        this.#options.log.warn({ err: (err as Error).message }, 'ending a tenant pool failed');
      })
      .finally(() => this.#ending.delete(ending));
    this.#ending.add(ending);
  }

  #newPool(tenant: Tenant): pg.Pool {
    const password = tenantDbPassword(this.#options.masterKey, tenant.id, tenant.credentialVersion);
    const pool = new pg.Pool({
      ...clientConfig(this.#options.target, tenant.databaseName, { user: tenant.loginRole, password }),
      max: this.#options.perTenantMax,
      idleTimeoutMillis: this.#options.idleMs,
      Client: this.#SlottedClient,
    });
    pool.on('error', (err) => {
      // An idle connection died (server restart, tenant dropped); the pool has already let it go.
      this.#options.log.warn({ tenant: tenant.slug, err: err.message }, 'idle tenant connection lost');
    });
    return pool;
  }

  /** Waits for a connection from the entry's pool, bounded by acquireTimeoutMs. */
  #checkout(entry: PoolEntry): Promise<pg.PoolClient> {
    const connecting = entry.pool.connect();
    return new Promise((resolve, reject) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        reject(this.#busy());
      }, this.#options.acquireTimeoutMs);
      connecting.then(
        (client) => {
          clearTimeout(timer);
          // Too late for the caller: give the connection straight back.
          if (timedOut) client.release();
          else resolve(client);
        },
        (err: unknown) => {
          clearTimeout(timer);
          if (!timedOut) reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  /** A slot for a new connection; under pressure, idle pools are evicted (least recently used first). */
  async #acquireSlot(timeoutMs: number): Promise<() => void> {
    const now = this.#slots.tryAcquire();
    if (now) return now;
    this.#evictIdle(this.#slots.waiting + 1);
    return this.#slots.acquire(timeoutMs, () => this.#busy());
  }

  /** Ends idle pools until at least `wanted` connections are on their way to being closed. */
  #evictIdle(wanted: number): void {
    let freeing = 0;
    for (const entry of [...this.#entries.values()]) {
      if (freeing >= wanted) break;
      if (entry.leases > 0 || entry.pool.totalCount === 0) continue;
      freeing += entry.pool.totalCount;
      this.#retire(entry);
    }
  }

  #busy(): AppError {
    return new AppError('server-busy', 'no database connection became free in time', { headers: this.#retryAfter() });
  }

  #retryAfter(): Record<string, string> {
    return { 'Retry-After': String(this.#options.retryAfterSeconds) };
  }
}

/**
 * A pg.Client that holds a global slot for as long as its connection is open: taken before
 * connecting, given back exactly once when the connection ends or fails to open.
 */
function slottedClientClass(acquireSlot: (timeoutMs: number) => Promise<() => void>, timeoutMs: number): typeof pg.Client {
  class SlottedClient extends pg.Client {
    override connect(): Promise<pg.Client>;
    override connect(callback: (err: Error | null, client?: pg.Client) => void): void;
    override connect(callback?: (err: Error | null, client?: pg.Client) => void): Promise<pg.Client> | undefined {
      const connected = this.#connectWithSlot();
      if (!callback) return connected;
      connected.then(
        (client) => {
          callback(null, client);
        },
        (err: unknown) => {
          callback(err as Error);
        },
      );
      return undefined;
    }

    async #connectWithSlot(): Promise<pg.Client> {
      const release = await acquireSlot(timeoutMs);
      // The socket's own 'end', listened to before pg's: the slot is free by the time anyone who
      // waited for this client to end (pool.end(), the pool's queue) hears about it.
      this.connection.once('end', release);
      this.once('end', release);
      try {
        await super.connect();
      } catch (err) {
        release();
        throw err;
      }
      return this;
    }
  }
  return SlottedClient;
}

const CONNECTION_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', '57P01', '57P02', '57P03']);

/** Whether an error means the connection itself is gone (as opposed to a failed statement). */
export function isConnectionError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (CONNECTION_ERROR_CODES.has(code) || code.startsWith('08'))) return true;
  return typeof message === 'string' && /^Connection terminated/.test(message);
}
