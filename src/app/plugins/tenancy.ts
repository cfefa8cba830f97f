/**
 * Tenant resolution, first thing on every request except the routes served on any host: Host →
 * slug → tenant record (cached) → status check. Afterwards the request carries its tenant, a
 * database bound to it, and a logger that names it on every line.
 */
import type { FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import type { TenantPools } from '../../platform/postgres/tenant-pools.ts';
import type { Tenant } from '../../platform/tenants/registry.ts';
import { normaliseHost, type TenantResolver } from '../../platform/tenants/resolver.ts';
import type { App } from '../app.ts';
import { tenantDbFor, type TenantDb } from '../tenant-db.ts';
import { bindTenantToLog } from './logging.ts';

export interface TenancyOptions {
  resolver: TenantResolver;
  pools: TenantPools;
  baseDomain: string;
  retryAfterSeconds: number;
}

/** Throws the problem a tenant in this state answers with, if it is not serving. */
function assertServing(tenant: Tenant, retryAfterSeconds: number): void {
  const headers = { 'Retry-After': String(retryAfterSeconds) };
  switch (tenant.status) {
    case 'active':
      return;
    case 'suspended':
      throw new AppError('tenant-suspended', undefined, { headers });
    case 'provisioning':
    case 'deleting':
      throw new AppError('tenant-unavailable', undefined, { headers });
  }
}

export function installTenancy(app: App, options: TenancyOptions): void {
  const { resolver, pools, baseDomain, retryAfterSeconds } = options;
  app.decorateRequest('tenant', null);
  app.decorateRequest('tenantDb', {
    getter(this: FastifyRequest): TenantDb {
      if (!this.tenant) throw new Error(`route ${this.routeOptions.url ?? '?'} is served without a tenant and has no tenant database`);
      return tenantDbFor(pools, this.tenant);
    },
  });

  app.addHook('onRequest', async (request, reply) => {
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
