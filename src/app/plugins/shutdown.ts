/**
 * Graceful shutdown: `app.close()` stops accepting connections and lets in-flight requests finish;
 * a request that still arrives on a kept-alive connection meanwhile is told to come back, and the
 * tenant pools and the resolver's LISTEN connection are closed only after the last response.
 */
import { AppError } from '../../errors.ts';
import type { TenantPools } from '../../platform/postgres/tenant-pools.ts';
import type { TenantResolver } from '../../platform/tenants/resolver.ts';
import type { App } from '../app.ts';
import type { BackgroundWork } from '../background.ts';

export function installShutdown(
  app: App,
  options: { resolver: TenantResolver; pools: TenantPools; retryAfterSeconds: number; background: BackgroundWork },
): void {
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    void reply.header('connection', 'close');
    throw new AppError('server-busy', 'the server is shutting down', { headers: { 'Retry-After': String(options.retryAfterSeconds) } });
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    // Kept-alive connections would hold app.close() open until they time out: end them after this response.
    if (closing) void reply.header('connection', 'close');
    return payload;
  });
  app.addHook('onClose', async () => {
    // Work a request left for after its reply (a reset mail) still needs the pools.
    await options.background.drain();
    await options.resolver.close();
    await options.pools.close();
  });
}
