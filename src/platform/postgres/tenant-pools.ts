/**
 * Connections to tenant databases, one small pool per tenant, under one cap on open connections
 * across all tenants.
 *
 * Every connection is in exactly one state, and every change of state happens within one tick:
 * opening → busy (handed to a request) ⇄ idle (parked, most recently used last) → closing. Only
 * idle connections are ever evicted or expired, and a busy one belongs to one request until that
 * request hands it back, so eviction cannot race with use. A pool entry is leased synchronously,
 * before the request's first await; `drop` takes the entry out of the map at once (nobody can lease
 * it again), closes its idle connections and closes the others as their requests finish.
 *
 * Under the cap, connections go where they are needed without wasting handshakes:
 * - a connection handed back goes straight to a request of the same tenant that waits for one;
 * - a tenant's share of the cap adapts: `maxConnections ÷ tenants holding connections` (at least 1,
 *   at most `perTenantMax`). Beyond its share a tenant only takes slots that are free; a tenant above
 *   its share gives a connection it hands back to a tenant waiting below its share, not to its own
 *   queue, and only its idle connections may be evicted for a tenant that already has one;
 * - to make room, the least recently used idle connection is closed (above-share tenants' first), not
 *   the one just handed back; a tenant with no connection at all may evict anyone's idle one;
 * - a slot counts as used until PostgreSQL has let its connection go (the cap is what PostgreSQL
 *   sees), and a connection already closing is counted as room on its way rather than evicting another.
 *
 * Connections go to the primary the `primary` gate names when they open, and only serve once the
 * server has said it is not in recovery. When the primary changes every pool is dropped (as above),
 * so no request is served by the old primary afterwards; while there is no primary, and when opening
 * a connection finds the primary gone, requests are answered 503 `primary-unavailable` at once
 * rather than queued. A COMMIT that returns without its synchronous standby's confirmation is
 * answered 503 `commit-unconfirmed`, never as a success (primary-session.ts).
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { AppError } from '../../errors.ts';
import { tenantDbPassword } from '../tenants/credentials.ts';
import type { Tenant } from '../tenants/registry.ts';
import { isConnectionError, type ConnectionTarget } from './connection.ts';
import { ConnectionSlots } from './connection-slots.ts';
import { isPrimaryLoss, NotPrimaryError, type PrimaryGate } from './primary-session.ts';
import { cancelAtDeadline, openSession, unconfirmedCommit, type PoolEntry, type RequestTime, type TenantConnection, type Waiter } from './tenant-connection.ts';

export { isConnectionError, type RequestTime };

/** How long close() waits for connections to finish closing. */
const CLOSE_WAIT_MS = 5_000;

export interface TenantPoolsOptions {
  target: ConnectionTarget;
  masterKey: string;
  log: Logger;
  /** Cap on open connections to tenant databases across all tenants. */
  maxConnections: number;
  perTenantMax: number;
  /** An idle connection is closed after this long unused. */
  idleMs: number;
  /** How long a request waits for a connection before it is answered 503 server-busy. */
  acquireTimeoutMs: number;
  /** Retry-After sent with server-busy. */
  retryAfterSeconds: number;
  /** Where the primary is now (platform.primary); without it, `target` is used as it is. */
  primary?: PrimaryGate;
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
  readonly #entries = new Map<string, PoolEntry>();
  /** Every idle connection of every tenant, least recently used first: the eviction order. */
  readonly #idle = new Set<TenantConnection>();
  /** Entries with waiting requests, in turn: one that gets a new connection goes to the back. */
  readonly #waiting = new Set<PoolEntry>();
  readonly #sweepTimer: NodeJS.Timeout;
  /** Connections told to close that still hold their slot: room that is on its way. */
  #closing = 0;
  #holdingEntries = 0;
  #leased = 0;
  #closed = false;
  readonly #unfollow: () => void;

  constructor(options: TenantPoolsOptions) {
    this.#options = options;
    this.#slots = new ConnectionSlots(options.maxConnections);
    // Connections to a former primary must not serve again: every pool starts afresh.
    this.#unfollow = options.primary?.onChange(() => {
      this.drop('*');
    }) ?? (() => undefined);
    this.#sweepTimer = setInterval(() => {
      this.sweep();
    }, Math.max(1_000, options.idleMs));
    this.#sweepTimer.unref();
  }

  /**
   * Runs `fn` with a connection to the tenant's own database, as its login role. The connection
   * goes back to the pool afterwards (or is closed, if it broke or was left inside a transaction).
   */
  async withTenantClient<T>(tenant: Tenant, fn: (client: pg.ClientBase) => Promise<T>, deadline?: RequestTime): Promise<T> {
    if (this.#closed) throw new AppError('server-busy', 'the server is shutting down', { headers: this.#retryAfter() });
    const primary = this.#options.primary;
    if (primary && !primary.available()) throw primary.unavailable();
    const entry = this.#lease(tenant);
    try {
      const connection = await this.#checkout(entry);
      const cancelTimer = cancelAtDeadline(connection.watch, deadline);
      try {
        const result = await fn(connection.client);
        if (connection.watch.takeUnconfirmedCommit()) throw unconfirmedCommit(this.#options.primary?.retryAfterSeconds ?? this.#options.retryAfterSeconds);
        return result;
      } catch (err) {
        if (isPrimaryLoss(err)) {
          connection.lost = true;
          primary?.refresh('a tenant connection to the primary failed');
          if (primary && !(err instanceof AppError)) throw primary.unavailable(err, true);
        }
        throw err;
      } finally {
        if (cancelTimer) clearTimeout(cancelTimer);
        connection.watch.takeUnconfirmedCommit();
        // A connection left in a transaction must not serve the next request.
        this.#checkin(connection, connection.client.getTransactionStatus() !== 'I');
      }
    } finally {
      this.#unlease(entry);
    }
  }

  /** Drops a tenant's pool (or every pool, with '*'): idle connections at once, the others when their requests end. */
  drop(tenantId: string): void {
    const entries = tenantId === '*' ? [...this.#entries.values()] : [this.#entries.get(tenantId)].filter((e) => e !== undefined);
    for (const entry of entries) this.#retire(entry);
  }

  /** Forgets pools that are not in use and have no connections left (idle ones close after idleMs). */
  sweep(): void {
    for (const entry of [...this.#entries.values()]) {
      if (entry.leases === 0 && entry.busy + entry.opening + entry.idle.length === 0) this.#retire(entry);
    }
  }

  /** Pools in the map, connections holding a slot (open, opening or closing), requests holding a lease. */
  stats(): TenantPoolStats {
    return { pools: this.#entries.size, openConnections: this.#slots.used, leased: this.#leased };
  }

  /** Ends every pool and waits for its connections to close; call after in-flight requests have finished. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#unfollow();
    clearInterval(this.#sweepTimer);
    this.drop('*');
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
    if (!entry) {
      entry = this.#newEntry(tenant, identity);
      this.#entries.set(tenant.id, entry);
    }
    entry.leases++;
    this.#leased++;
    return entry;
  }

  #unlease(entry: PoolEntry): void {
    entry.leases--;
    this.#leased--;
  }

  #newEntry(tenant: Tenant, identity: string): PoolEntry {
    const password = tenantDbPassword(this.#options.masterKey, tenant.id, tenant.credentialVersion);
    return {
      tenantId: tenant.id,
      slug: tenant.slug,
      identity,
      database: tenant.databaseName,
      login: { user: tenant.loginRole, password },
      idle: [],
      busy: 0,
      opening: 0,
      waiters: new Set(),
      leases: 0,
      holding: false,
      retired: false,
    };
  }

  #retire(entry: PoolEntry): void {
    if (this.#entries.get(entry.tenantId) === entry) this.#entries.delete(entry.tenantId);
    if (entry.retired) return;
    entry.retired = true;
    for (const connection of [...entry.idle]) this.#close(connection);
  }

  /** An idle connection of the tenant at once, or a place in its queue until one is handed over. */
  #checkout(entry: PoolEntry): Promise<TenantConnection> {
    const idle = entry.idle.pop();
    if (idle) {
      this.#unpark(idle);
      this.#markBusy(idle);
      return Promise.resolve(idle);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        entry,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#removeWaiter(waiter);
          reject(this.#busy());
        }, this.#options.acquireTimeoutMs),
      };
      entry.waiters.add(waiter);
      this.#waiting.add(entry);
      this.#refreshHolding(entry);
      this.#grow();
    });
  }

  /** Takes back a connection a request is done with, and decides who gets it next. */
  #checkin(connection: TenantConnection, destroy: boolean): void {
    const { entry } = connection;
    entry.busy--;
    this.#refreshHolding(entry);
    if (destroy || connection.lost || connection.epoch !== this.#epoch()) {
      this.#close(connection);
    } else if (entry.waiters.size > 0 && !(this.#aboveShare(entry) && this.#anotherStarving(entry))) {
      this.#handOver(connection);
      return;
    } else if (entry.retired || entry.waiters.size > 0) {
      // Retired, or above its share while another tenant starves: the slot serves better elsewhere.
      this.#close(connection);
    } else {
      this.#park(connection);
    }
    this.#grow();
  }

  /** Gives a connection to the first request waiting for its tenant. */
  #handOver(connection: TenantConnection): void {
    const { entry } = connection;
    const waiter = entry.waiters.values().next().value;
    if (!waiter) throw new Error('handOver needs a waiting request');
    this.#removeWaiter(waiter);
    clearTimeout(waiter.timer);
    this.#markBusy(connection);
    waiter.resolve(connection);
  }

  #removeWaiter(waiter: Waiter): void {
    const { entry } = waiter;
    entry.waiters.delete(waiter);
    if (entry.waiters.size === 0) this.#waiting.delete(entry);
    this.#refreshHolding(entry);
  }

  #markBusy(connection: TenantConnection): void {
    connection.state = 'busy';
    connection.entry.busy++;
    this.#refreshHolding(connection.entry);
  }

  #park(connection: TenantConnection): void {
    connection.state = 'idle';
    connection.entry.idle.push(connection);
    this.#idle.add(connection);
    this.#refreshHolding(connection.entry);
    connection.idleTimer = setTimeout(() => {
      connection.idleTimer = null;
      this.#close(connection);
    }, this.#options.idleMs);
    connection.idleTimer.unref();
  }

  /** Takes an idle connection out of both idle lists (its entry's and the global one). */
  #unpark(connection: TenantConnection): void {
    const { idle } = connection.entry;
    const at = idle.indexOf(connection);
    if (at >= 0) idle.splice(at, 1);
    this.#idle.delete(connection);
    if (connection.idleTimer) clearTimeout(connection.idleTimer);
    connection.idleTimer = null;
    this.#refreshHolding(connection.entry);
  }

  /** Closes a connection that no request holds; its slot comes back once PostgreSQL has let it go. */
  #close(connection: TenantConnection): void {
    if (connection.state === 'closing') return;
    if (connection.state === 'idle') this.#unpark(connection);
    connection.state = 'closing';
    if (connection.holdsSlot) this.#closing++;
    connection.client.end().catch(() => undefined);
  }

  /**
   * Opens connections for tenants whose requests wait, in turn, as far as the cap allows: a free
   * slot is taken up to perTenantMax; within the tenant's fair share, a connection already closing
   * is counted on, or else an idle connection is evicted (see #evictFor).
   */
  #grow(): void {
    if (this.#waiting.size === 0) return;
    let roomOnItsWay = this.#closing;
    for (const entry of [...this.#waiting]) {
      let wanted = entry.waiters.size - entry.opening;
      let held = entry.busy + entry.opening;
      const share = this.#shareOf(entry);
      while (wanted > 0 && held < this.#options.perTenantMax) {
        const release = this.#slots.tryAcquire();
        if (release) {
          this.#open(entry, release);
          // Round robin: the next free slot goes to the next tenant in line.
          this.#waiting.delete(entry);
          this.#waiting.add(entry);
        } else if (held >= share) {
          break;
        } else if (roomOnItsWay > 0) {
          roomOnItsWay--;
        } else if (!this.#evictFor(entry, held)) {
          // Every slot is in use by a request or opening: wait for one to be handed back.
          if (this.#idle.size === 0) return;
          break;
        }
        wanted--;
        held++;
      }
    }
  }

  /**
   * Closes an idle connection to make room for `needy`, least recently used first: one of a tenant
   * above its share, or, for a tenant that holds no connection at all, anyone's. False if none may go.
   */
  #evictFor(needy: PoolEntry, held: number): boolean {
    let fallback: TenantConnection | undefined;
    for (const connection of this.#idle) {
      const { entry } = connection;
      if (entry === needy) continue;
      if (entry.busy + entry.opening + entry.idle.length > this.#shareOf(entry)) {
        this.#close(connection);
        return true;
      }
      fallback ??= connection;
    }
    if (held > 0 || !fallback) return false;
    this.#close(fallback);
    return true;
  }

  /** A tenant's fair share of the cap: the cap divided among the tenants that hold or want connections. */
  #shareOf(entry: PoolEntry): number {
    const tenants = Math.max(1, this.#holdingEntries + (entry.holding ? 0 : 1));
    return Math.max(1, Math.min(this.#options.perTenantMax, Math.floor(this.#slots.capacity / tenants)));
  }

  /** Whether the tenant holds more connections than its share, counting the one being handed back. */
  #aboveShare(entry: PoolEntry): boolean {
    return entry.busy + entry.opening + 1 > this.#shareOf(entry);
  }

  /** Whether another tenant waits for a connection while holding less than its share. */
  #anotherStarving(except: PoolEntry): boolean {
    for (const entry of this.#waiting) {
      if (entry !== except && entry.waiters.size > entry.opening && entry.busy + entry.opening < this.#shareOf(entry)) return true;
    }
    return false;
  }

  #refreshHolding(entry: PoolEntry): void {
    const holding = entry.busy + entry.opening + entry.idle.length + entry.waiters.size > 0;
    if (holding === entry.holding) return;
    entry.holding = holding;
    this.#holdingEntries += holding ? 1 : -1;
  }

  #epoch(): number {
    return this.#options.primary?.epoch ?? 0;
  }

  /** Opens a connection for the entry on a slot already taken; it goes to the entry's first waiter. */
  #open(entry: PoolEntry, releaseSlot: () => void): void {
    // The primary of this moment, not of when the pool entry was made.
    const session = openSession(this.#options.target, entry.database, entry.login);
    const { client } = session;
    const connection: TenantConnection = { client, entry, state: 'opening', lost: false, holdsSlot: true, idleTimer: null, epoch: this.#epoch(), watch: session.watch };
    const freeSlot = () => {
      if (!connection.holdsSlot) return;
      connection.holdsSlot = false;
      if (connection.state === 'closing') this.#closing--;
      releaseSlot();
      this.#grow();
    };
    // The socket's own 'end', listened to before pg's: the slot is free by the time anyone who
    // waited for this connection to end hears about it.
    client.connection.once('end', freeSlot);
    client.once('end', freeSlot);
    client.on('error', (err) => {
      this.#lost(connection, err);
    });
    entry.opening++;
    this.#refreshHolding(entry);
    session.ready.then(
      () => {
        entry.opening--;
        this.#refreshHolding(entry);
        this.#opened(connection);
      },
      (err: unknown) => {
        entry.opening--;
        this.#refreshHolding(entry);
        // The request this connection was for hears why first, so the free slot does not go to a
        // retry for it.
        this.#failed(entry, err instanceof Error ? err : new Error(String(err)));
        if (session.started()) {
          // A session on a server that is no primary: ended, its slot is free once PostgreSQL let it go.
          this.#close(connection);
        } else {
          // No session was made (the server refused it or was never reached), so the slot is
          // free; pg has already let go of the socket or is about to.
          freeSlot();
          connection.state = 'closing';
        }
        this.#grow();
      },
    );
  }

  #opened(connection: TenantConnection): void {
    const { entry } = connection;
    if (connection.lost) {
      this.#close(connection);
      this.#grow();
    } else if (entry.waiters.size > 0) {
      this.#handOver(connection);
    } else if (entry.retired || this.#closed) {
      this.#close(connection);
    } else {
      // Its request gave up waiting; another request of the tenant, or an eviction, will use it.
      this.#park(connection);
      this.#grow();
    }
  }

  /**
   * A connection could not be opened: the first request not covered by another opening connection
   * hears why; when the primary is gone (or is not the primary), every waiting request does, at once,
   * rather than queueing behind a server that will not answer.
   */
  #failed(entry: PoolEntry, err: Error): void {
    const primary = this.#options.primary;
    const lost = isPrimaryLoss(err);
    if (lost) primary?.refresh(err instanceof NotPrimaryError ? 'a tenant connection reached a read-only server' : 'a tenant connection to the primary failed');
    const reason = lost && primary ? primary.unavailable(err) : err;
    const count = lost ? entry.waiters.size : entry.waiters.size > entry.opening ? 1 : 0;
    if (count > 0) {
      for (const waiter of [...entry.waiters].slice(0, count)) {
        this.#removeWaiter(waiter);
        clearTimeout(waiter.timer);
        waiter.reject(reason);
      }
    } else {
      this.#options.log.warn({ tenant: entry.slug, err: err.message }, 'opening a tenant connection failed');
    }
  }

  /** The server ended a connection or its socket failed; an idle one goes at once, a busy one when handed back. */
  #lost(connection: TenantConnection, err: Error): void {
    connection.lost = true;
    if (connection.state !== 'idle') return;
    // An idle connection died (server restart, tenant dropped): let it go.
    this.#options.log.warn({ tenant: connection.entry.slug, err: err.message }, 'idle tenant connection lost');
    this.#close(connection);
    this.#grow();
  }

  #busy(): AppError {
    return new AppError('server-busy', 'no database connection became free in time', { headers: this.#retryAfter() });
  }

  #retryAfter(): Record<string, string> {
    return { 'Retry-After': String(this.#options.retryAfterSeconds) };
  }
}
