/** The Caller of a request: tenant, origin for links, client address and user agent. */
import type { FastifyRequest } from 'fastify';
import { requestOrigin } from '../plugins/csrf.ts';
import type { Caller } from './services.ts';

export function callerOf(request: FastifyRequest): Caller {
  const tenant = request.tenant;
  if (!tenant) throw new Error('account routes need a resolved tenant');
  const agent = request.headers['user-agent'];
  return {
    tenantId: tenant.id,
    tenantSlug: tenant.slug,
    tenantName: tenant.name,
    origin: requestOrigin(request),
    ip: request.ip,
    userAgent: typeof agent === 'string' ? agent.slice(0, 512) : null,
  };
}
