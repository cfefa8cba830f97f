/**
 * The operator metrics listener (configuration `metrics`, off by default): `GET /metrics` in
 * Prometheus' text format and `GET /healthz`, on an address and port of its own (loopback by
 * default), never on the tenant-facing listener. With `metrics.tokenFile`, /metrics needs
 * `Authorization: Bearer <token>`. Everything else is a 404 problem. What it serves is built in
 * platform/metrics/operator-metrics.ts; the app's request histogram is added here.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Histogram, type Registry } from 'prom-client';
import type { Config } from '../config.ts';
import { AppError, UserError, type ProblemCode } from '../errors.ts';
import { METRICS_PREFIX, OperatorMetrics, type OperatorMetricsOptions } from '../platform/metrics/operator-metrics.ts';
import { pathOf, problemFor, PROBLEM_CONTENT_TYPE } from './problem.ts';
import { serverInternals } from './server.ts';

/** The `route` label of requests that matched no route (any path: unbounded, so not the path). */
const UNMATCHED_ROUTE = '(unmatched)';
const REQUEST_TIMEOUT_MS = 30_000;

export interface MetricsServer {
  /** `http://host:port`, as bound. */
  url: string;
  port: number;
  /** Stops listening, lets answers in progress finish and waits for a probe under way. */
  close(): Promise<void>;
}

export interface StartMetricsServerOptions {
  platform: OperatorMetricsOptions['platform'];
  /** The app this process serves: its requests and tenant pools are measured too. Before it listens. */
  app?: FastifyInstance;
  /** The token /metrics requires (platform/metrics/token.ts reads metrics.tokenFile); null: none. */
  token: string | null;
}

/** Compares digests, so the time taken says nothing about the token, not even its length. */
function tokenMatches(header: string | undefined, expected: Buffer): boolean {
  const given = /^Bearer ([^\s]+)$/i.exec(header ?? '')?.[1] ?? '';
  return timingSafeEqual(createHash('sha256').update(given).digest(), expected);
}

/** Counts the app's requests by method, route template and status, with their durations. */
export function instrumentHttp(app: FastifyInstance, registry: Registry): void {
  const histogram = new Histogram({
    name: `${METRICS_PREFIX}http_request_duration_seconds`,
    help: 'Requests answered by the app, by method, route template and status code, and how long they took.',
    labelNames: ['method', 'route', 'status_code'] as const,
    registers: [registry],
  });
  app.addHook('onResponse', (request, reply, done) => {
    histogram.observe({ method: request.method, route: (request.is404 ? undefined : request.routeOptions.url) ?? UNMATCHED_ROUTE, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
    done();
  });
}

function answerProblem(res: ServerResponse, path: string, code: ProblemCode, detail?: string, headers: Record<string, string> = {}): void {
  const { problem } = problemFor(new AppError(code, detail), path, 1);
  res.writeHead(problem.status, { ...headers, 'content-type': PROBLEM_CONTENT_TYPE }).end(JSON.stringify(problem));
}

function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new UserError(`the metrics listener cannot listen on ${host}:${port} (metrics.host, metrics.port): ${err.code ?? err.message}`, 2));
    });
    server.listen(port, host, () => {
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Starts the listener of `platform.config.metrics` (call only when it is enabled). */
export async function startMetricsServer(options: StartMetricsServerOptions): Promise<MetricsServer> {
  const { platform, app } = options;
  const config: Config['metrics'] = platform.config.metrics;
  const token = options.token === null ? null : createHash('sha256').update(options.token).digest();
  const tenantPools = app ? serverInternals(app).pools : null;
  const metrics = new OperatorMetrics({
    platform,
    probeCacheMs: config.probeCacheMs,
    probeWaitMs: config.probeWaitMs,
    ...(tenantPools ? { tenantPools: () => tenantPools.stats() } : {}),
  });
  if (app) instrumentHttp(app, metrics.registry);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = pathOf(req.url ?? '/');
    res.setHeader('cache-control', 'no-store');
    res.setHeader('x-content-type-options', 'nosniff');
    const readOnly = req.method === 'GET' || req.method === 'HEAD';
    if (readOnly && path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok' }));
    } else if (!readOnly || path !== '/metrics') {
      answerProblem(res, path, 'not-found', 'this listener serves GET /metrics and GET /healthz only');
    } else if (token && !tokenMatches(req.headers.authorization, token)) {
      answerProblem(res, path, 'unauthenticated', 'send the token of metrics.tokenFile as Authorization: Bearer <token>', { 'www-authenticate': 'Bearer realm="taskflow-metrics"' });
    } else {
      const text = await metrics.exposition();
      res.writeHead(200, { 'content-type': metrics.contentType });
      res.end(req.method === 'HEAD' ? undefined : text);
    }
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      platform.log.error({ err: err instanceof Error ? err.message : String(err) }, 'metrics: a scrape failed');
      if (!res.headersSent) answerProblem(res, pathOf(req.url ?? '/'), 'internal');
      else res.destroy();
    });
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  const address = await listen(server, config.host, config.port);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  platform.log.info({ host: address.address, port: address.port, token: token !== null }, 'metrics listener started');
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeIdleConnections();
      });
      await metrics.close();
    },
  };
}
