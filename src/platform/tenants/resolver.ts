/**
 * Host → tenant. One place turns a Host header into a slug and a slug into a tenant record, with a
 * short-lived cache that every process drops as soon as the control database announces a change.
 */
import pg from 'pg';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { clientConfig, type ConnectionTarget } from '../postgres/connection.ts';
import { CONTROL_DATABASE } from '../platform.ts';
import { findTenantBySlug, TENANT_CHANGED_CHANNEL, type Tenant } from './registry.ts';
import { MAX_SLUG_LENGTH } from './slug.ts';

export type HostResolution =
  | { ok: true; slug: string }
  | { ok: false; reason: 'missing' | 'malformed' | 'ip-literal' | 'other-domain' | 'base-domain' | 'nested' | 'invalid-label' };

const LABEL_CHARS = /^[a-z0-9-]+$/;
const PORT = /^[0-9]{1,5}$/;

/**
 * The tenant slug a Host header names under `baseDomain`, or why it names none. Accepts a port
 * (1–65535), any letter case and one trailing dot (the absolute form of a DNS name); exactly one label may
 * stand in front of the base domain.
 */
export function normaliseHost(host: string | undefined, baseDomain: string): HostResolution {
  if (host === undefined || host === '') return { ok: false, reason: 'missing' };
  let name = host.toLowerCase();
  if (name.startsWith('[')) return { ok: false, reason: 'ip-literal' };
  const colon = name.indexOf(':');
  if (colon !== -1) {
    // More than one colon without brackets is a bare IPv6 address, which is not a valid Host; a
    // port outside 1–65535 cannot be where the request arrived.
    const port = name.slice(colon + 1);
    if (!PORT.test(port) || Number(port) < 1 || Number(port) > 65_535) return { ok: false, reason: 'malformed' };
    name = name.slice(0, colon);
  }
  if (name.endsWith('.')) name = name.slice(0, -1);
  const base = baseDomain.toLowerCase().replace(/\.$/, '');
  if (name === base) return { ok: false, reason: 'base-domain' };
  if (!name.endsWith(`.${base}`)) return { ok: false, reason: 'other-domain' };
  const label = name.slice(0, -(base.length + 1));
  if (label.includes('.')) return { ok: false, reason: 'nested' };
  if (label.length > MAX_SLUG_LENGTH || !LABEL_CHARS.test(label) || label.startsWith('-') || label.endsWith('-')) return { ok: false, reason: 'invalid-label' };
  return { ok: true, slug: label };
}

export interface TenantResolverOptions {
  /** Pool on the control database for lookups. */
  control: Pick<pg.Pool, 'query'>;
  /** Where the control database is, for the dedicated LISTEN connection. */
  target: ConnectionTarget;
  log: Logger;
  /** How long a found tenant is cached; 0 disables caching. */
  ttlMs: number;
  /** How long "no such tenant" is cached; kept short so a new tenant is served quickly. */
  negativeTtlMs?: number;
  maxEntries?: number;
}

type CacheEntry = { tenant: Tenant | null };
type ChangeListener = (tenantId: string) => void;

const MAX_BACKOFF_MS = 30_000;
const FIRST_BACKOFF_MS = 200;

/** Resolves slugs to tenants through a TTL cache that LISTEN/NOTIFY on the control database keeps honest. */
export class TenantResolver {
  readonly #options: TenantResolverOptions;
  readonly #cache: LRUCache<string, CacheEntry>;
  readonly #inflight = new Map<string, Promise<Tenant | null>>();
  readonly #listeners: ChangeListener[] = [];
  /** Bumped by every invalidation, so a lookup that started before it cannot cache what it read. */
  #generation = 0;
  #client: pg.Client | null = null;
  #listening = false;
  #closed = false;
  #backoffMs = FIRST_BACKOFF_MS;
  #retryTimer: NodeJS.Timeout | null = null;

  constructor(options: TenantResolverOptions) {
    this.#options = options;
    this.#cache = new LRUCache<string, CacheEntry>({ max: options.maxEntries ?? 10_000, ttl: Math.max(options.ttlMs, 1), ttlAutopurge: false });
  }

  /** Whether change notifications are arriving; while they are not, nothing is cached. */
  get listening(): boolean {
    return this.#listening;
  }

  /** Opens the LISTEN connection; if that fails it keeps retrying in the background. */
  async start(): Promise<void> {
    await this.#connect();
  }

  /** Called with a tenant id whenever that tenant changed (or, after a reconnect, with '*'). */
  onChange(listener: ChangeListener): void {
    this.#listeners.push(listener);
  }

  /** The tenant `slug` names now or named before a rename still in its grace period; null if none. */
  resolve(slug: string): Promise<Tenant | null> {
    const hit = this.#cachingAllowed() ? this.#cache.get(slug) : undefined;
    if (hit) return Promise.resolve(hit.tenant);
    const pending = this.#inflight.get(slug);
    if (pending) return pending;
    const generation = this.#generation;
    const lookup = findTenantBySlug(this.#options.control, slug)
      .then((tenant) => {
        if (generation === this.#generation && this.#cachingAllowed()) {
          const ttl = tenant ? this.#options.ttlMs : Math.min(this.#options.ttlMs, this.#options.negativeTtlMs ?? 1_000);
          if (ttl > 0) this.#cache.set(slug, { tenant }, { ttl });
        }
        return tenant;
      })
      .finally(() => {
        if (this.#inflight.get(slug) === lookup) this.#inflight.delete(slug);
      });
    this.#inflight.set(slug, lookup);
    return lookup;
  }

  /** Forgets a tenant (or everything, with '*') and tells the listeners. */
  invalidate(tenantId: string): void {
    this.#generation++;
    this.#inflight.clear();
    if (tenantId === '*') {
      this.#cache.clear();
    } else {
      for (const [slug, entry] of this.#cache.entries()) {
        // Negative entries go too: the change may be a create or a rename onto that slug.
        if (entry.tenant === null || entry.tenant.id === tenantId) this.#cache.delete(slug);
      }
    }
    for (const listener of this.#listeners) {
      try {
        listener(tenantId);
      } catch (err) {
        this.#options.log.error({ err }, 'tenant change listener failed');
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#listening = false;
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => undefined);
    this.#cache.clear();
  }

  #cachingAllowed(): boolean {
    // Without notifications a cached record could stay wrong for a whole TTL after a suspend.
    return this.#listening && this.#options.ttlMs > 0;
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client({ ...clientConfig(this.#options.target, CONTROL_DATABASE), application_name: 'taskflow-tenant-listener' });
    this.#client = client;
    let dropped = false;
    const onDrop = (err?: Error) => {
      if (dropped) return;
      dropped = true;
      if (this.#client === client) this.#client = null;
      this.#listening = false;
      if (this.#closed) return;
      this.#options.log.warn({ err: err?.message }, 'tenant change listener lost its connection; reconnecting');
      client.end().catch(() => undefined);
      this.#scheduleReconnect();
    };
    client.on('error', onDrop);
    client.on('end', () => {
      onDrop();
    });
    client.on('notification', (msg) => {
      if (msg.channel === TENANT_CHANGED_CHANNEL && msg.payload) this.invalidate(msg.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(TENANT_CHANGED_CHANNEL)}`);
    } catch (err) {
      onDrop(err as Error);
      return;
    }
    // Closed, or dropped and already reconnecting, while LISTEN was on its way.
    if (this.#client !== client) {
      await client.end().catch(() => undefined);
      return;
    }
    // Changes made while nobody listened were missed: start from an empty cache.
    this.invalidate('*');
    this.#listening = true;
    this.#backoffMs = FIRST_BACKOFF_MS;
  }

  #scheduleReconnect(): void {
    if (this.#retryTimer || this.#closed) return;
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, MAX_BACKOFF_MS);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      void this.#connect();
    }, delay);
    this.#retryTimer.unref();
  }
}
