/**
 * API authentication: `Authorization: Bearer tf_…`, checked against the SHA-256 hashes stored for
 * the tenant the Host resolved to — a token of another tenant is simply unknown here. Found tokens
 * are cached briefly; any change to the tenant (such as revoking tokens) drops its entries.
 */
import type { FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import type pg from 'pg';
import { AppError } from '../../errors.ts';
import { API_TOKEN_PREFIX, hashApiToken } from '../../platform/tenants/credentials.ts';

const TOKEN_BODY = /^[A-Za-z0-9_-]{43}$/;
const BEARER = /^Bearer +(\S+) *$/i;

/** Looks up API tokens, with a short positive cache. */
export class ApiTokenVerifier {
  readonly #control: Pick<pg.Pool, 'query'>;
  readonly #cache: LRUCache<string, true> | null;

  constructor(options: { control: Pick<pg.Pool, 'query'>; cacheTtlMs: number; maxEntries?: number }) {
    this.#control = options.control;
    // Never longer than a minute: a revocation that misses its notification still takes effect.
    const ttl = Math.min(options.cacheTtlMs, 60_000);
    this.#cache = ttl > 0 ? new LRUCache<string, true>({ max: options.maxEntries ?? 10_000, ttl }) : null;
  }

  /** Whether `token` is a live (unrevoked) token of this tenant. */
  async verify(tenantId: string, token: string): Promise<boolean> {
    // Anything not shaped like our tokens cannot match; skip the lookup.
    if (!token.startsWith(API_TOKEN_PREFIX) || !TOKEN_BODY.test(token.slice(API_TOKEN_PREFIX.length))) return false;
    const hash = hashApiToken(token);
    const key = `${tenantId}:${hash.toString('hex')}`;
    if (this.#cache?.get(key)) return true;
    const res = await this.#control.query('SELECT 1 FROM tenant_api_tokens WHERE token_hash = $1 AND tenant_id = $2 AND revoked_at IS NULL', [hash, tenantId]);
    const ok = (res.rowCount ?? 0) > 0;
    if (ok) this.#cache?.set(key, true);
    return ok;
  }

  /** Forgets the cached tokens of a tenant (or of all, with '*'). */
  invalidate(tenantId: string): void {
    if (!this.#cache) return;
    if (tenantId === '*') {
      this.#cache.clear();
      return;
    }
    const prefix = `${tenantId}:`;
    for (const key of [...this.#cache.keys()]) if (key.startsWith(prefix)) this.#cache.delete(key);
  }
}

function unauthenticated(detail: string, error?: 'invalid_token'): AppError {
  // RFC 6750 §3: name the scheme; say invalid_token only when a token was actually presented.
  const challenge = error ? `Bearer error="${error}"` : 'Bearer';
  return new AppError('unauthenticated', detail, { headers: { 'WWW-Authenticate': challenge } });
}

/** An onRequest hook that lets a request through only with a valid token of its tenant. */
export function bearerAuthentication(verifier: ApiTokenVerifier): (request: FastifyRequest) => Promise<void> {
  return async (request) => {
    const tenant = request.tenant;
    if (!tenant) throw new Error('authentication needs a resolved tenant');
    const header = request.headers.authorization;
    if (header === undefined || header === '') throw unauthenticated('send an API token as Authorization: Bearer <token>');
    const presented = BEARER.exec(header)?.[1];
    if (presented === undefined) throw unauthenticated('the Authorization header must be Bearer <token>', 'invalid_token');
    if (!(await verifier.verify(tenant.id, presented))) throw unauthenticated('the API token is not valid for this tenant', 'invalid_token');
  };
}
