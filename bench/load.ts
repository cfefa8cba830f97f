/**
 * The load generator of the HTTP benchmark: autocannon in a worker thread (this same module,
 * started with a LoadJob), so the load does not share an event loop with the server it measures.
 * Requests rotate Host header and API token over the job's targets, one request after another.
 */
import { createRequire } from 'node:module';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/** The part of autocannon's programmatic API used here (the package ships no types). */
interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  setupRequest?: (request: AutocannonRequest) => AutocannonRequest;
}

interface AutocannonLatency {
  mean: number;
  max: number;
  p50: number;
  p97_5: number;
  p99: number;
}

/** A run's result as autocannon hands it over inside a worker thread: histograms still encoded. */
interface AutocannonRawResult {
  totalCompletedRequests: number;
  /** Seconds the measured run lasted (the warm-up not included). */
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number }>;
}

interface AutocannonOptions {
  url: string;
  connections: number;
  duration: number;
  warmup: { connections: number; duration: number };
  requests: AutocannonRequest[];
}

interface Autocannon {
  (options: AutocannonOptions): PromiseLike<AutocannonRawResult>;
  aggregateResult(results: AutocannonRawResult[], options: AutocannonOptions): { latency: AutocannonLatency };
}

/** Where one request goes: the tenant's Host header and its API token. */
export interface LoadTarget {
  host: string;
  token: string;
}

/** How to load: HTTP connections kept busy, for how long, on which path. */
export interface LoadShape {
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
  path: string;
}

interface LoadJob {
  kind: 'taskflow-bench-load';
  port: number;
  shape: LoadShape;
  targets: LoadTarget[];
}

/** What one measured run gave, as reported in the JSON. */
export interface LoadFigures {
  requestsPerSecond: number;
  latencyMs: { mean: number; p50: number; p97_5: number; p99: number; max: number };
  requests: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodes: Record<string, number>;
}

/** `value` rounded to `digits` decimals. */
export function round(value: number, digits = 1): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

function isLoadJob(data: unknown): data is LoadJob {
  return typeof data === 'object' && data !== null && (data as { kind?: unknown }).kind === 'taskflow-bench-load';
}

/** Runs autocannon against the job's port, rotating Host and token over its targets request by request. */
async function generateLoad(job: LoadJob): Promise<LoadFigures> {
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const { shape } = job;
  let next = 0;
  const options: AutocannonOptions = {
    url: `http://127.0.0.1:${job.port}`,
    connections: shape.connections,
    duration: shape.durationSeconds,
    warmup: { connections: shape.connections, duration: shape.warmupSeconds },
    requests: [
      {
        method: 'GET',
        path: shape.path,
        // One counter for all connections: consecutive requests go to different tenants.
        setupRequest: (req) => {
          const target = job.targets[next++ % job.targets.length]!;
          return { ...req, headers: { ...req.headers, host: target.host, authorization: `Bearer ${target.token}` } };
        },
      },
    ],
  };
  const result = await autocannon(options);
  // Outside its main thread autocannon skips aggregation (it takes itself for one of its own
  // workers); aggregateResult decodes the latency histogram. Its per-second request histogram
  // would be empty here, so req/s is computed from the totals.
  const { latency } = autocannon.aggregateResult([result], options);
  return {
    requestsPerSecond: round(result.totalCompletedRequests / result.duration),
    latencyMs: { mean: round(latency.mean, 2), p50: latency.p50, p97_5: latency.p97_5, p99: latency.p99, max: latency.max },
    requests: result.totalCompletedRequests,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, stat]) => [code, stat.count])),
  };
}

/** Starts a worker thread that loads the server on `port` and answers with the figures. */
export function loadFromWorker(port: number, shape: LoadShape, targets: LoadTarget[]): Promise<LoadFigures> {
  const job: LoadJob = { kind: 'taskflow-bench-load', port, shape, targets };
  const worker = new Worker(new URL(import.meta.url), { workerData: job });
  return new Promise<LoadFigures>((resolve, reject) => {
    worker.once('message', (figures: LoadFigures) => {
      resolve(figures);
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      reject(new Error(`the load generator exited (code ${code}) without figures`));
    });
  }).finally(() => worker.terminate());
}

if (!isMainThread && isLoadJob(workerData)) {
  parentPort?.postMessage(await generateLoad(workerData));
}
