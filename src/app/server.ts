/**
 * Assembles the HTTP server: cross-cutting plugins in the order a request meets them, then the
 * routes. Call `app.listen()` to serve and `app.close()` to drain in-flight requests and release
 * the tenant pools and the resolver's LISTEN connection; the platform itself stays open.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { TlsMaterial } from '../platform/tls/certificates.ts';
import { hstsValue, httpsServerFactory, installProxyRedirect } from './https.ts';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { TenantPools } from '../platform/postgres/tenant-pools.ts';
import type { Platform } from '../platform/platform.ts';
import { TenantResolver } from '../platform/tenants/resolver.ts';
import type { App } from './app.ts';
import { ApiTokenVerifier } from './plugins/auth.ts';
import { answerWithProblem, installErrors } from './plugins/errors.ts';
import { installHealth } from './plugins/health.ts';
import { installBodyLimits } from './plugins/limits.ts';
import { installResponseLog } from './plugins/logging.ts';
import { installProblemDocs } from './plugins/problem-docs.ts';
import { applySecurityHeaders, installSecurityHeaders } from './plugins/security-headers.ts';
import { installShutdown } from './plugins/shutdown.ts';
import { installTenancy } from './plugins/tenancy.ts';
import { AJV_OPTIONS, installValidation } from './plugins/validation.ts';
import { PROBLEM_CONTENT_TYPE } from './problem.ts';
import { api } from './api.ts';
import type { BackgroundWork } from './background.ts';
import { accountServices } from './accounts/build.ts';
import { installRateLimits } from './plugins/rate-limits.ts';
import fastifyCookie from '@fastify/cookie';
import { installOpenApi } from './openapi/document.ts';
import { webApp } from './plugins/web.ts';

export interface BuildServerOptions {
  platform: Pick<Platform, 'config' | 'control' | 'target' | 'masterKey' | 'log'> & Partial<Pick<Platform, 'primary'>>;
  /** Serve HTTPS with this certificate (see platform/tls); plain HTTP without. */
  tls?: TlsMaterial | null;
}

/** What buildServer adds beyond Fastify, for operators and tests. */
export interface ServerInternals {
  pools: TenantPools;
  resolver: TenantResolver;
  /** Work left for after a reply (reset mails); tests wait on it with drain(). */
  background: BackgroundWork;
}

const internals = new WeakMap<FastifyInstance, ServerInternals>();

/** The pools and resolver behind a server built here (stats for monitoring, tests). */
export function serverInternals(app: FastifyInstance): ServerInternals {
  const found = internals.get(app);
  if (!found) throw new Error('not a server made by buildServer');
  return found;
}

/** Builds the server (not yet listening); its LISTEN connection for tenant changes is open already. */
export async function buildServer(options: BuildServerOptions): Promise<FastifyInstance> {
  const { platform } = options;
  const { server: serverConfig, pools: poolConfig, tenants: tenantConfig } = platform.config;
  const retryAfterSeconds = serverConfig.retryAfterSeconds;

  const resolver = new TenantResolver({ control: platform.control, target: platform.target, log: platform.log, ttlMs: tenantConfig.cacheTtlMs });
  const pools = new TenantPools({
    target: platform.target,
    masterKey: platform.masterKey,
    log: platform.log,
    maxConnections: poolConfig.maxConnections,
    perTenantMax: poolConfig.perTenantMax,
    idleMs: poolConfig.idleMs,
    acquireTimeoutMs: poolConfig.acquireTimeoutMs,
    retryAfterSeconds,
    // Connections follow the primary through failovers (platform/replication/primary-locator.ts).
    ...(platform.primary ? { primary: platform.primary } : {}),
  });
  const tokens = new ApiTokenVerifier({ control: platform.control, cacheTtlMs: tenantConfig.cacheTtlMs });
  const accounts = accountServices(platform);
  resolver.onChange((tenantId) => {
    // A suspended or deleted tenant must not keep connections; a rotated token must stop working.
    pools.drop(tenantId);
    tokens.invalidate(tenantId);
  });

  // Typed as Fastify's logger interface so the instance has the same type as every plugin's.
  const logger: FastifyBaseLogger = platform.log;
  const app: App = Fastify({
    loggerInstance: logger,
    // Our own single line per response replaces Fastify's two per request (plugins/logging.ts).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: serverConfig.bodyLimitBytes,
    requestTimeout: serverConfig.requestTimeoutMs,
    trustProxy: serverConfig.trustProxy,
    // Shutdown answers arrive as problems through our own hook (see plugins/shutdown.ts).
    return503OnClosing: false,
    ...(options.tls ? { serverFactory: httpsServerFactory(options.tls, serverConfig.baseDomain) } : {}),
    ajv: AJV_OPTIONS,
    // Errors found before routing (a malformed URL) skip every hook, so headers are set here.
    frameworkErrors: (error, request, reply) => {
      void reply.type(PROBLEM_CONTENT_TYPE);
      applySecurityHeaders(reply, request.url);
      answerWithProblem(error, request, reply, retryAfterSeconds);
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  try {
    await resolver.start();
    installResponseLog(app);
    installSecurityHeaders(app, { hsts: hstsValue(platform.config) });
    installErrors(app, { retryAfterSeconds, ...(platform.primary ? { primary: platform.primary } : {}) });
    installValidation(app);
    installBodyLimits(app);
    installShutdown(app, { resolver, pools, retryAfterSeconds, background: accounts.background });
    installProxyRedirect(app, platform.config);
    installTenancy(app, { resolver, pools, baseDomain: serverConfig.baseDomain, retryAfterSeconds, requestTimeoutMs: serverConfig.requestTimeoutMs });
    installRateLimits(app, platform.config.rateLimits);
    // Before any route, so the OpenAPI document sees them all.
    await installOpenApi(app);
    installHealth(app, { control: platform.control });
    installProblemDocs(app);
    await app.register(fastifyCookie);
    await app.register(api({ verifier: tokens, services: accounts.services }), { prefix: '/api' });
    await app.register(webApp());
  } catch (err) {
    await resolver.close();
    await pools.close();
    throw err;
  }
  internals.set(app, { pools, resolver, background: accounts.background });
  return app;
}
