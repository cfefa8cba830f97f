/**
 * Tenant resolution, first thing on every request except the routes served on any host: Host →
 * slug → tenant record (cached) → status check. Afterwards the request carries its tenant, a
 * database bound to it (and to the request's deadline), and a logger that names it on every line.
 */
import type { FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import type { TenantPools } from '../../platform/postgres/tenant-pools.ts';
import type { Tenant } from '../../platform/tenants/registry.ts';
import { normaliseHost, type TenantResolver } from '../../platform/tenants/resolver.ts';
import type { App } from '../app.ts';
import { tenantDbFor, type TenantDb } from '../tenant-db.ts';
import { installDeadline } from './deadline.ts';
import { bindTenantToLog } from './logging.ts';

export interface TenancyOptions {
  resolver: TenantResolver;
  pools: TenantPools;
  baseDomain: string;
  retryAfterSeconds: number;
  /** Each request's time (plugins/deadline.ts); by default the route's Fastify handlerTimeout. */
  requestTimeoutMs?: number;
}

/**
 * Retry-After of a suspended tenant. A suspension lasts until an operator resumes the tenant, which
 * no client can predict; an hour says "do not poll", where the transient value (minutes) would
 * invite a retry storm against a tenant that will not come back soon.
 */
const SUSPENDED_RETRY_AFTER_SECONDS = 3600;

/** Throws the problem a tenant in this state answers with, if it is not serving. */
function assertServing(tenant: Tenant, retryAfterSeconds: number): void {
  switch (tenant.status) {
    case 'active':
      return;
    case 'suspended':
      throw new AppError('tenant-suspended', 'the operator has suspended this tenant; it answers again once resumed', {
        headers: { 'Retry-After': String(Math.max(SUSPENDED_RETRY_AFTER_SECONDS, retryAfterSeconds)) },
      });
    case 'provisioning':
    case 'deleting':
      throw new AppError('tenant-unavailable', undefined, { headers: { 'Retry-After': String(retryAfterSeconds) } });
  }
}

/** How many Host header lines the request came with (Node.js keeps only the first in `headers`). */
function hostHeaderCount(rawHeaders: readonly string[]): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]?.toLowerCase() === 'host') count++;
  return count;
}

export function installTenancy(app: App, options: TenancyOptions): void {
  const { resolver, pools, baseDomain, retryAfterSeconds } = options;
  // The tenant database is bound to the request's deadline, so the deadline comes first.
  installDeadline(app, options.requestTimeoutMs === undefined ? {} : { timeoutMs: options.requestTimeoutMs });
  app.decorateRequest('tenant', null);
  app.decorateRequest('tenantDb', {
    getter(this: FastifyRequest): TenantDb {
      if (!this.tenant) throw new Error(`route ${this.routeOptions.url ?? '?'} is served without a tenant and has no tenant database`);
      return tenantDbFor(pools, this.tenant, this.deadline);
    },
  });

  app.addHook('onRequest', async (request, reply) => {
    // RFC 9112 §3.2: a request with more than one Host line is answered 400, whatever its route;
    // taking the first would let a proxy and this server disagree about the tenant.
    if (hostHeaderCount(request.raw.rawHeaders) > 1) throw new AppError('bad-request', 'a request must have exactly one Host header');
    if (request.routeOptions.config.tenancy === 'none') return;
    const host = normaliseHost(request.host, baseDomain);
    // The same answer for every kind of miss, so the response tells nothing about which tenants exist.
    if (!host.ok) throw new AppError('tenant-not-found');
    const tenant = await resolver.resolve(host.slug);
    if (!tenant) throw new AppError('tenant-not-found');
    bindTenantToLog(request, reply, tenant.slug);
    assertServing(tenant, retryAfterSeconds);
    request.tenant = tenant;
  });
}
