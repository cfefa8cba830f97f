/**
 * Request rate limits per client address and per tenant (rate-limiter-flexible, in memory: a
 * limit per app process, which is what protects that process). The per-tenant budget is what keeps
 * one flooded tenant from starving the others; its connection pool is capped separately.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { AppError } from '../../errors.ts';
import type { App } from '../app.ts';

export interface RateLimitOptions {
  perIpPerMinute: number;
  perTenantPerMinute: number;
}

function tooMany(res: RateLimiterRes, scope: string): AppError {
  const seconds = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
  return new AppError('rate-limited', `too many requests ${scope}; slow down`, { headers: { 'Retry-After': String(seconds) } });
}

async function take(limiter: RateLimiterMemory, key: string, scope: string): Promise<void> {
  try {
    await limiter.consume(key);
  } catch (err) {
    if (err instanceof RateLimiterRes) throw tooMany(err, scope);
    throw err;
  }
}

/** Installs the limits; runs after tenancy, so the tenant is known. Health checks are not limited. */
export function installRateLimits(app: App, options: RateLimitOptions): void {
  const byIp = new RateLimiterMemory({ keyPrefix: 'ip', points: options.perIpPerMinute, duration: 60 });
  const byTenant = new RateLimiterMemory({ keyPrefix: 'tenant', points: options.perTenantPerMinute, duration: 60 });
  app.addHook('onRequest', async (request: FastifyRequest, _reply: FastifyReply) => {
    if (request.routeOptions.config.tenancy === 'none') return;
    await take(byIp, request.ip, 'from your address');
    if (request.tenant) await take(byTenant, request.tenant.id, 'for this organisation');
  });
}
