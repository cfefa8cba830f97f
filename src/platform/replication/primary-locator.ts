/**
 * Which node is the primary now, for a process that keeps running while the primary moves. The
 * platform's control pool, the tenant pools and every admin connection go where the locator says,
 * and follow it when a failover, a switchover or Patroni moves the primary: no restart.
 *
 * A lookup says where the primary is: the managed cluster's replication.json (managed-primary.ts),
 * Patroni's REST API (patroni.ts), or the fixed `databaseUrl`. The locator asks it on start, every
 * `checkIntervalMs`, when the lookup's watcher sees a change, and when a connection to the primary
 * fails (`refresh`), and tells its listeners whenever the answer changes. While it knows no primary
 * (a failover under way, no leader, two nodes claiming to be primary) `current()` is null: pools
 * refuse at once with 503 `primary-unavailable` instead of queueing requests behind a dead server.
 */
import type { Logger } from 'pino';
import { AppError } from '../../errors.ts';
import type { Alerts } from '../alerts/alerts.ts';
import type { ConnectionTarget } from '../postgres/connection.ts';

export type PrimarySource = 'managed' | 'patroni' | 'url';

/** A node that accepts writes, and where to reach it. */
export interface PrimaryNode {
  /** The managed node's name, the Patroni member's name, or `database` for a fixed URL. */
  name: string;
  host: string;
  port: number;
  timeline?: number | null;
}

/** Several nodes claim to be the primary: what the alert says, and who they are. */
export interface SplitBrain {
  summary: string;
  nodes: string[];
}

export interface LookupResult {
  primary: PrimaryNode | null;
  /** Why there is no primary to use (for logs and operators; never sent to tenants). */
  reason?: string;
  splitBrain?: SplitBrain;
}

/** Where the primary is, for one kind of cluster. */
export interface PrimaryLookup {
  readonly source: PrimarySource;
  find(): Promise<LookupResult>;
  /** Calls `wake` when something may have changed (a file was replaced); returns how to stop. */
  watch?(wake: () => void): () => void;
}

export interface PrimaryState {
  source: PrimarySource;
  primary: PrimaryNode | null;
  reason: string | null;
  /** Bumped whenever the primary changes: to another node, to none, or back. */
  epoch: number;
  /** When the current answer began. */
  since: Date;
}

export interface PrimaryLocatorOptions {
  lookup: PrimaryLookup;
  /** Credentials, database and TLS of every admin connection; host and port come from the primary. */
  credentials: ConnectionTarget;
  log: Logger;
  checkIntervalMs: number;
  /** Retry-After of `primary-unavailable`. */
  retryAfterSeconds: number;
  /** Bound on opening a connection to the primary. */
  connectTimeoutMs: number;
}

/** Several refreshes asked for within this long are answered by one lookup. */
const MIN_REFRESH_GAP_MS = 100;

type Listener = (state: PrimaryState) => void;

/** Follows the primary; see the module comment. */
export class PrimaryLocator {
  readonly #o: PrimaryLocatorOptions;
  readonly #listeners = new Set<Listener>();
  #state: PrimaryState;
  /** The last primary known, for `target` while there is none (connections to it fail or are refused). */
  #lastKnown: { host: string; port: number };
  #inflight: Promise<PrimaryState> | null = null;
  /** The one lookup after the one under way, for refreshes asked for meanwhile (it may have read too early). */
  #queued: Promise<PrimaryState> | null = null;
  #lastLookupAt = 0;
  #timer: NodeJS.Timeout | null = null;
  #unwatch: (() => void) | null = null;
  #alerts: Alerts | null = null;
  /** The split brain being alerted about, by alert key. */
  #openSplit: string | null = null;
  #closed = false;
  /** Host and port of the current primary, read at each use; the credentials of the configuration. */
  readonly target: ConnectionTarget;

  constructor(options: PrimaryLocatorOptions) {
    this.#o = options;
    this.#state = { source: options.lookup.source, primary: null, reason: 'not looked up yet', epoch: 0, since: new Date() };
    this.#lastKnown = { host: options.credentials.host, port: options.credentials.port };
    const { user, password, database, ssl, ca } = options.credentials;
    const lastKnown = () => this.#state.primary ?? this.#lastKnown;
    this.target = {
      get host() {
        return lastKnown().host;
      },
      get port() {
        return lastKnown().port;
      },
      user,
      password,
      ...(database === undefined ? {} : { database }),
      ...(ssl === undefined ? {} : { ssl }),
      ...(ca === undefined ? {} : { ca }),
      connectTimeoutMs: options.connectTimeoutMs,
    };
  }

  get state(): PrimaryState {
    return this.#state;
  }

  get epoch(): number {
    return this.#state.epoch;
  }

  get retryAfterSeconds(): number {
    return this.#o.retryAfterSeconds;
  }

  /** The primary to use now, or null while there is none. */
  current(): PrimaryNode | null {
    return this.#state.primary;
  }

  available(): boolean {
    return this.#state.primary !== null;
  }

  /** Looks the primary up once and starts following it. */
  async start(): Promise<void> {
    await this.refresh('start');
    if (this.#closed) return;
    this.#unwatch = this.#o.lookup.watch?.(() => void this.refresh('watch')) ?? null;
    this.#timer = setInterval(() => void this.refresh('interval'), this.#o.checkIntervalMs);
    this.#timer.unref();
  }

  /** Where alerts go (the control database's alerts need a pool that needs this locator first). */
  attachAlerts(alerts: Alerts): void {
    this.#alerts = alerts;
  }

  /** Called with the new state whenever the primary changes; returns how to stop listening. */
  onChange(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Looks again now (a connection to the primary failed, the file changed, a node turned out to be
   * read-only). Coalesced: while a lookup is under way, every refresh asked for shares one more after it.
   */
  refresh(why: string): Promise<PrimaryState> {
    if (this.#closed) return Promise.resolve(this.#state);
    if (this.#inflight) {
      this.#queued ??= this.#inflight.then(() => {
        this.#queued = null;
        return this.refresh(why);
      });
      return this.#queued;
    }
    this.#inflight = this.#lookup(why).finally(() => {
      this.#inflight = null;
    });
    return this.#inflight;
  }

  /** Resolves with the primary once there is one, or null after `timeoutMs`. */
  async waitForPrimary(timeoutMs: number): Promise<PrimaryNode | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { primary } = await this.refresh('waiting for a primary');
      if (primary || Date.now() >= deadline || this.#closed) return primary;
      await new Promise((resolve) => setTimeout(resolve, Math.min(250, this.#o.checkIntervalMs)));
    }
  }

  /**
   * The 503 for work that needs the primary while there is none, or whose connection to it broke
   * (`inFlight`: a change under way may or may not have been made).
   */
  unavailable(cause?: unknown, inFlight = false): AppError {
    const detail = inFlight
      ? 'the connection to the database was lost during the request; a change it was making may or may not have been made'
      : 'no database server accepts writes right now (the primary is being replaced); nothing was changed';
    return new AppError('primary-unavailable', detail, { headers: { 'Retry-After': String(this.#o.retryAfterSeconds) }, cause });
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#unwatch?.();
    this.#unwatch = null;
    this.#listeners.clear();
  }

  async #lookup(why: string): Promise<PrimaryState> {
    const wait = this.#lastLookupAt + MIN_REFRESH_GAP_MS - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    this.#lastLookupAt = Date.now();
    let result: LookupResult;
    try {
      result = await this.#o.lookup.find();
    } catch (err) {
      result = { primary: null, reason: `looking up the primary failed: ${(err as Error).message}` };
    }
    if (this.#closed) return this.#state;
    this.#apply(result, why);
    void this.#alertSplit(result);
    return this.#state;
  }

  #apply(result: LookupResult, why: string): void {
    const before = this.#state;
    const primary = result.primary;
    const same = primary === null ? before.primary === null : before.primary !== null && sameNode(before.primary, primary);
    if (same) {
      // Same node: keep the epoch (connections stay), take the fresher details.
      this.#state = { ...before, primary, reason: primary ? null : (result.reason ?? 'unknown') };
      return;
    }
    if (primary) this.#lastKnown = { host: primary.host, port: primary.port };
    this.#state = { source: before.source, primary, reason: primary ? null : (result.reason ?? 'unknown'), epoch: before.epoch + 1, since: new Date() };
    const fields = { source: before.source, from: before.primary?.name ?? null, to: primary?.name ?? null, why, reason: this.#state.reason };
    if (primary) this.#o.log.info({ ...fields, host: primary.host, port: primary.port }, 'primary located');
    else this.#o.log.warn(fields, 'no primary to use; requests that need the database are refused until there is one');
    for (const listener of [...this.#listeners]) {
      try {
        listener(this.#state);
      } catch (err) {
        this.#o.log.error({ err }, 'primary change listener failed');
      }
    }
  }

  /** Raises `replication.split-brain` once per episode; when it is over, records it (again, in case the first could not be stored) and resolves it. */
  async #alertSplit(result: LookupResult): Promise<void> {
    const key = `replication.split-brain:${this.#o.lookup.source}`;
    const split = result.splitBrain;
    if (split && this.#openSplit === null) {
      this.#openSplit = split.summary;
      await this.#alerts?.raise({ code: 'replication.split-brain', severity: 'critical', key, summary: split.summary, details: { nodes: split.nodes } });
    } else if (!split && this.#openSplit !== null && result.primary) {
      const summary = this.#openSplit;
      this.#openSplit = null;
      await this.#alerts?.raise({ code: 'replication.split-brain', severity: 'critical', key, summary });
      await this.#alerts?.resolve(key, `only ${result.primary.name} accepts writes now`).catch(() => false);
    }
  }
}

function sameNode(a: PrimaryNode, b: PrimaryNode): boolean {
  return a.name === b.name && a.host === b.host && a.port === b.port;
}

/** The primary of a fixed `databaseUrl`: always the same server. */
export function fixedPrimary(target: ConnectionTarget): PrimaryLookup {
  return {
    source: 'url',
    find: () => Promise.resolve({ primary: { name: 'database', host: target.host, port: target.port } }),
  };
}
