/**
 * One log line per response, in place of Fastify's two per request: tenant, method, path (never the
 * query string, which may carry secrets), route, status and duration. Lines written while a request
 * runs carry its tenant through a child logger; secrets are redacted by the platform logger.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../app.ts';
import { pathOf } from '../problem.ts';

const tenantBound = new WeakSet<FastifyRequest>();

/** From here on, every line this request logs names the tenant. */
export function bindTenantToLog(request: FastifyRequest, reply: FastifyReply, slug: string): void {
  if (tenantBound.has(request)) return;
  tenantBound.add(request);
  request.log = request.log.child({ tenant: slug });
  reply.log = request.log;
}

export function installResponseLog(app: App): void {
  app.addHook('onResponse', async (request, reply) => {
    const line = {
      // A bound logger already carries the tenant; naming it twice would write the key twice.
      ...(tenantBound.has(request) ? {} : { tenant: null }),
      method: request.method,
      url: pathOf(request.url),
      route: request.routeOptions.url ?? null,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
    };
    if (reply.statusCode >= 500) request.log.warn(line, 'response');
    else request.log.info(line, 'response');
  });
}
