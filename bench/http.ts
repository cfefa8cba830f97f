/**
 * `GET /api/tasks` throughput: TaskFlow's real server against a bare baseline (plain Fastify and pg,
 * none of TaskFlow's plugins) that runs the same query on the same tenant databases: for one
 * tenant, for a few, for many under the default connection cap, and for many with the cap raised
 * above what the baseline opens. The baseline shows what the hardware, Node, Fastify and PostgreSQL
 * give anyway; the ratio is what TaskFlow's tenancy, authentication, pools and response checking
 * cost on top, and the last two scenarios tell the cost of the cap from the cost of those layers.
 *
 * The load comes from autocannon in a worker thread (load.ts), so the load generator does not share
 * an event loop with the server it measures.
 */
import type { AddressInfo } from 'node:net';
import { seedProject } from '../test/helpers/work.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance } from 'fastify';
import pg from 'pg';
import { buildServer } from '../src/app/server.ts';
import { listTasks } from '../src/app/work/tasks/commands.ts';
import type { Config } from '../src/config.ts';
import { maintenanceDb } from '../src/platform/control-plane.ts';
import { clientConfig } from '../src/platform/postgres/connection.ts';
import { tenantDbPassword } from '../src/platform/tenants/credentials.ts';
import { request } from '../test/helpers/http.ts';
import { BASE_DOMAIN, call, makeTenant, type TestTenant } from '../test/helpers/http-server.ts';
import { startTestPlatform, type TestPlatform } from '../test/helpers/platform.ts';
import { loadFromWorker, round, type LoadFigures, type LoadTarget } from './load.ts';

const SETTINGS = {
  durationSeconds: 10,
  warmupSeconds: 2,
  connections: 50,
  fewTenants: 20,
  spreadTenants: 200,
  /** pools.maxConnections of the uncapped scenario: above the baseline's one connection per tenant. */
  uncappedMaxConnections: 250,
  tasksPerTenant: 5,
  /** Tenants created at once while setting up; creates of different slugs run in parallel. */
  createConcurrency: 4,
  path: '/api/tasks',
};

/**
 * The request rate limits (plugins/rate-limits.ts) raised to their maxima: the load comes from one
 * address at thousands of requests a second, and the benchmark measures serving, not 429 answers.
 */
const RATE_LIMIT_OVERRIDES = {
  'rateLimits.perIpPerMinute': 1_000_000,
  'rateLimits.perTenantPerMinute': 10_000_000,
};

/** application_name of the baseline's connections, to tell them apart in pg_stat_activity. */
const BASELINE_APPLICATION = 'taskflow-bench-baseline';
/** Connections PostgreSQL keeps free of the baseline's pools: control plane, sampler, superuser reserve. */
const CONNECTION_HEADROOM = 50;

// ---------------------------------------------------------------------------------------------
// The servers under test (main thread side)

interface RunningServer {
  port: number;
  close(): Promise<void>;
}

function portOf(app: FastifyInstance): number {
  return (app.server.address() as AddressInfo).port;
}

/** TaskFlow's server on the platform's configuration, with the pool settings of the scenario. */
async function startTaskflow(tp: TestPlatform, pools: Config['pools']): Promise<RunningServer> {
  const app = await buildServer({ platform: { ...tp.platform, config: { ...tp.config, pools } } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { port: portOf(app), close: () => app.close() };
}

/**
 * The baseline: Host → that tenant's own pg.Pool, connecting as the tenant's login role, and the
 * same listTasks query TaskFlow runs. No tenant lookup, no token check, no global connection cap,
 * no response schema, no hooks.
 */
async function startBaseline(tp: TestPlatform, tenants: TestTenant[], perTenantMax: number): Promise<RunningServer> {
  const { target, masterKey, config } = tp.platform;
  const pools = new Map<string, pg.Pool>();
  for (const { tenant, host } of tenants) {
    const password = tenantDbPassword(masterKey, tenant.id, tenant.credentialVersion);
    const pool = new pg.Pool({
      ...clientConfig(target, tenant.databaseName, { user: tenant.loginRole, password }),
      application_name: BASELINE_APPLICATION,
      max: perTenantMax,
      idleTimeoutMillis: config.pools.idleMs,
    });
    pool.on('error', () => {
      /* an idle connection died; the pool has let it go */
    });
    pools.set(host, pool);
  }
  const app = Fastify();
  app.get(SETTINGS.path, async (req, reply) => {
    const pool = pools.get(req.headers.host ?? '');
    if (!pool) return reply.code(404).send({ error: 'no such tenant' });
    return listTasks({ db: pool, filter: {} });
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    port: portOf(app),
    async close() {
      await app.close();
      await Promise.all([...pools.values()].map((pool) => pool.end()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Setup, measurement and report

interface ServerFigures extends LoadFigures {
  /** Most connections PostgreSQL had open for tenant login roles at once during the run. */
  peakTenantConnections: number;
  /** Connections opened to tenant databases from server start to close, warm-up included. */
  tenantConnectionsOpened: number;
}

interface ScenarioResult {
  tenants: number;
  /** The pool settings TaskFlow ran with in this scenario. */
  taskflowPools: Pick<Config['pools'], 'maxConnections' | 'perTenantMax'>;
  baselinePoolMaxPerTenant: number;
  taskflow: ServerFigures;
  baseline: ServerFigures;
  /** taskflow / baseline: under 1 for req/s, over 1 for latency, means TaskFlow is slower. */
  ratio: { requestsPerSecond: number | null; latencyP50: number | null; latencyP97_5: number | null; latencyP99: number | null };
}

export interface HttpResult {
  description: string;
  postgresVersion: string;
  settings: typeof SETTINGS & { loopback: string };
  taskflow: { pools: Config['pools']; rateLimits: Config['rateLimits']; rateLimitsNote: string; logLevel: string };
  baseline: { connectsAs: string; does: string };
  scenarios: { oneTenant: ScenarioResult; fewTenants: ScenarioResult; spread: ScenarioResult; spreadUncapped: ScenarioResult };
}

/** taskflow / baseline, or null where the baseline gave zero. */
function ratioOf(taskflow: number, baseline: number): number | null {
  return baseline === 0 ? null : round(taskflow / baseline, 3);
}

/** Runs `fn` over `items`, at most `limit` at a time; results in the order of `items`. */
async function mapConcurrently<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!, index);
    }
  });
  await Promise.all(lanes);
  return results;
}

/** Gives every tenant one project (made as an administrator would: API tokens cannot manage projects) with a few tasks through the API. */
async function seedTasks(tp: TestPlatform, tenants: TestTenant[]): Promise<void> {
  const app = await buildServer({ platform: tp.platform });
  try {
    for (const t of tenants) {
      const projectId = (await seedProject(tp, t, 'BENCH', 'Benchmark')).id;
      for (let i = 1; i <= SETTINGS.tasksPerTenant; i++) {
        const task = await call(app, t, `/api/projects/${projectId}/tasks`, { method: 'POST', body: { title: `Benchmark task ${i}` } });
        if (task.statusCode !== 201) throw new Error(`seeding ${t.tenant.slug}: POST tasks answered ${task.statusCode}: ${task.body}`);
      }
    }
  } finally {
    await app.close();
  }
}

/** A server that answers wrongly would make its figures meaningless: check one tenant's page first. */
async function assertServesTasks(server: RunningServer, tenant: TestTenant, name: string): Promise<void> {
  const res = await request({ port: server.port, host: tenant.host, path: SETTINGS.path, headers: { authorization: `Bearer ${tenant.token}` } });
  const items = res.status === 200 ? (res.json() as { items?: unknown[] }).items : undefined;
  if (items?.length !== SETTINGS.tasksPerTenant) {
    throw new Error(`${name} answered ${res.status} with ${items?.length ?? 'no'} tasks for ${tenant.host}: ${res.text.slice(0, 200)}`);
  }
}

const TENANT_BACKENDS_SQL = "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename LIKE 'tenant\\_%\\_app'";

async function tenantBackends(admin: pg.Client): Promise<number> {
  const res = await admin.query<{ n: number }>(TENANT_BACKENDS_SQL);
  return res.rows[0]?.n ?? 0;
}

/** Sessions PostgreSQL has ever opened on tenant databases (counted at connect, PostgreSQL 14+). */
async function tenantSessions(admin: pg.Client): Promise<number> {
  const res = await admin.query<{ n: string | null }>("SELECT sum(sessions)::text AS n FROM pg_stat_database WHERE datname LIKE 'tenant\\_%'");
  return Number(res.rows[0]?.n ?? 0);
}

/** Samples the tenant connections every 250 ms until stopped; resolves with the peak. */
function sampleTenantBackends(admin: pg.Client): { stop(): Promise<number> } {
  const state = { running: true };
  let peak = 0;
  const loop = (async () => {
    while (state.running) {
      peak = Math.max(peak, await tenantBackends(admin));
      await sleep(250);
    }
  })();
  return {
    async stop() {
      state.running = false;
      await loop;
      return peak;
    },
  };
}

/** Waits (up to 10 s) for the previous run's tenant connections to be gone, so runs start equal. */
async function settle(admin: pg.Client): Promise<void> {
  for (let waited = 0; waited < 10_000 && (await tenantBackends(admin)) > 0; waited += 100) await sleep(100);
}

/** Loads the server while sampling its tenant connections; returns the figures and the peak. */
async function measure(admin: pg.Client, server: RunningServer, targets: LoadTarget[]): Promise<LoadFigures & { peakTenantConnections: number }> {
  const sampler = sampleTenantBackends(admin);
  let figures: LoadFigures;
  try {
    figures = await loadFromWorker(server.port, SETTINGS, targets);
  } finally {
    await sampler.stop();
  }
  return { ...figures, peakTenantConnections: await sampler.stop() };
}

async function runScenario(
  props: { tp: TestPlatform; admin: pg.Client; tenants: TestTenant[]; postgresMaxConnections: number; pools?: Partial<Config['pools']> },
  progress: (message: string) => void,
): Promise<ScenarioResult> {
  const { tp, admin, tenants } = props;
  const pools = { ...tp.config.pools, ...props.pools };
  const targets = tenants.map((t) => ({ host: t.host, token: t.token }));
  // As many connections per tenant as TaskFlow allows, unless that would exhaust PostgreSQL.
  const budget = Math.max(1, props.postgresMaxConnections - CONNECTION_HEADROOM);
  const baselinePoolMax = Math.max(1, Math.min(pools.perTenantMax, Math.floor(budget / tenants.length)));
  const label = `${tenants.length} tenant${tenants.length === 1 ? '' : 's'}, cap ${pools.maxConnections}`;

  const runs: Record<'taskflow' | 'baseline', ServerFigures | null> = { taskflow: null, baseline: null };
  for (const name of ['taskflow', 'baseline'] as const) {
    await settle(admin);
    const sessionsBefore = await tenantSessions(admin);
    const server = name === 'taskflow' ? await startTaskflow(tp, pools) : await startBaseline(tp, tenants, baselinePoolMax);
    let measured: Awaited<ReturnType<typeof measure>>;
    try {
      await assertServesTasks(server, tenants[tenants.length - 1]!, name);
      progress(`http: ${label}, ${name}: ${SETTINGS.warmupSeconds} s warm-up + ${SETTINGS.durationSeconds} s`);
      measured = await measure(admin, server, targets);
    } finally {
      await server.close();
    }
    // A backend's counters reach pg_stat_database by the time it has exited.
    await settle(admin);
    const figures = { ...measured, tenantConnectionsOpened: (await tenantSessions(admin)) - sessionsBefore };
    runs[name] = figures;
    progress(`http: ${label}, ${name}: ${figures.requestsPerSecond} req/s, p99 ${figures.latencyMs.p99} ms, non-2xx ${figures.non2xx}, connections opened ${figures.tenantConnectionsOpened}`);
  }
  const taskflow = runs.taskflow!;
  const baseline = runs.baseline!;
  return {
    tenants: tenants.length,
    taskflowPools: { maxConnections: pools.maxConnections, perTenantMax: pools.perTenantMax },
    baselinePoolMaxPerTenant: baselinePoolMax,
    taskflow,
    baseline,
    ratio: {
      requestsPerSecond: ratioOf(taskflow.requestsPerSecond, baseline.requestsPerSecond),
      latencyP50: ratioOf(taskflow.latencyMs.p50, baseline.latencyMs.p50),
      latencyP97_5: ratioOf(taskflow.latencyMs.p97_5, baseline.latencyMs.p97_5),
      latencyP99: ratioOf(taskflow.latencyMs.p99, baseline.latencyMs.p99),
    },
  };
}

/** Creates the tenants (a few at a time) and gives each its tasks. */
async function prepareTenants(tp: TestPlatform, progress: (message: string) => void): Promise<TestTenant[]> {
  const slugs = Array.from({ length: SETTINGS.spreadTenants }, (_, i) => `load-${String(i + 1).padStart(3, '0')}`);
  let created = 0;
  const tenants = await mapConcurrently(slugs, SETTINGS.createConcurrency, async (slug) => {
    const tenant = await makeTenant(tp, slug);
    if (++created % 50 === 0) progress(`http: ${created}/${slugs.length} tenants created`);
    return tenant;
  });
  progress(`http: seeding ${SETTINGS.tasksPerTenant} tasks per tenant`);
  await seedTasks(tp, tenants);
  return tenants;
}

/** Runs the HTTP benchmark on its own fresh cluster, which it removes afterwards. */
export async function runHttpBenchmark(progress: (message: string) => void): Promise<HttpResult> {
  progress(`http: starting a fresh managed cluster; request rate limits raised (${Object.entries(RATE_LIMIT_OVERRIDES).map(([k, v]) => `${k} ${v}`).join(', ')}) to measure serving, not 429s`);
  const tp = await startTestPlatform({ overrides: { 'server.baseDomain': BASE_DOMAIN, ...RATE_LIMIT_OVERRIDES } });
  try {
    const tenants = await prepareTenants(tp, progress);
    const admin = new pg.Client(clientConfig(tp.platform.target, maintenanceDb(tp.platform.target)));
    await admin.connect();
    try {
      const settings = await admin.query<{ server_version: string; max_connections: string }>(
        "SELECT current_setting('server_version') AS server_version, current_setting('max_connections') AS max_connections",
      );
      const postgresMaxConnections = Number(settings.rows[0]?.max_connections ?? 100);
      const common = { tp, admin, postgresMaxConnections };
      const oneTenant = await runScenario({ ...common, tenants: tenants.slice(0, 1) }, progress);
      const fewTenants = await runScenario({ ...common, tenants: tenants.slice(0, SETTINGS.fewTenants) }, progress);
      const spread = await runScenario({ ...common, tenants }, progress);
      const spreadUncapped = await runScenario({ ...common, tenants, pools: { maxConnections: SETTINGS.uncappedMaxConnections } }, progress);
      return {
        description: `GET ${SETTINGS.path} under autocannon (${SETTINGS.connections} connections, ${SETTINGS.durationSeconds} s after ${SETTINGS.warmupSeconds} s warm-up): TaskFlow's server against a bare Fastify + pg baseline, for 1, ${SETTINGS.fewTenants} and ${SETTINGS.spreadTenants} tenants, and for ${SETTINGS.spreadTenants} tenants with pools.maxConnections ${SETTINGS.uncappedMaxConnections}`,
        postgresVersion: settings.rows[0]?.server_version ?? 'unknown',
        settings: { ...SETTINGS, loopback: '127.0.0.1' },
        taskflow: {
          pools: tp.config.pools,
          rateLimits: tp.config.rateLimits,
          rateLimitsNote: 'raised to their maxima for the benchmark (the defaults are far below its request rate from one address), so that it measures serving rather than 429 answers',
          logLevel: tp.platform.log.level,
        },
        baseline: {
          connectsAs: "each tenant's login role (password derived as TenantPools does), one pg.Pool per tenant",
          does: 'Host header → pool, the same listTasks query, JSON.stringify; no tenant lookup, token check, connection cap or response schema',
        },
        scenarios: { oneTenant, fewTenants, spread, spreadUncapped },
      };
    } finally {
      await admin.end().catch(() => undefined);
    }
  } finally {
    progress('http: stopping the cluster');
    await tp.cleanup();
  }
}
