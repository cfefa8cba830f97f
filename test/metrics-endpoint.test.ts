/**
 * The operator metrics listener on a real primary with a real standby, scraped over real HTTP
 * (fetch): the replication metrics of `cluster status`, the process, pools, alerts and the app's
 * requests; the bearer token; scrapes sharing one probe; nothing but GET /metrics and /healthz;
 * never on the app's listener; and `taskflow start` serving it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { startMetricsServer, type MetricsServer } from '../src/app/metrics-server.ts';
import { buildServer } from '../src/app/server.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/platform/log.ts';
import { readMetricsToken } from '../src/platform/metrics/token.ts';
import { freePort } from '../src/platform/postgres/local-cluster.ts';
import { openReplication, type ReplicationContext } from '../src/platform/replication/context.ts';
import { addStandby } from '../src/platform/replication/standby.ts';
import { clusterStatus } from '../src/platform/replication/status.ts';
import { runCli, TASKFLOW_BIN } from './helpers/cli.ts';
import { startTestPlatform, type TestPlatform } from './helpers/platform.ts';
import { parseExposition, type Exposition } from './helpers/prometheus.ts';
import { eventually } from './helpers/replication.ts';

const TOKEN = 'tf-metrics-0123456789abcdef0123456789abcdef';
const PROBE_CACHE_MS = 1_000;

interface Problem {
  status: number;
  code: string;
  detail: string;
}

describe('the metrics listener', { timeout: 120_000 }, () => {
  let tp: TestPlatform;
  let ctx: ReplicationContext;
  let app: FastifyInstance;
  let appUrl: string;
  /** No token; measures the app. */
  let open: MetricsServer;
  /** Needs TOKEN. */
  let guarded: MetricsServer;
  let tokenFile: string;

  const scrape = async (server: MetricsServer = open): Promise<Exposition> => {
    const res = await fetch(`${server.url}/metrics`, { headers: server === guarded ? { authorization: `Bearer ${TOKEN}` } : {} });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    return parseExposition(await res.text());
  };
  const problem = async (res: Response, status: number, code: string): Promise<Problem> => {
    assert.equal(res.status, status);
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
    const body = (await res.json()) as Problem;
    assert.equal(body.status, status);
    assert.equal(body.code, code);
    return body;
  };

  before(async () => {
    tp = await startTestPlatform({ overrides: { 'metrics.enabled': true, 'metrics.port': 0, 'metrics.probeCacheMs': PROBE_CACHE_MS } });
    ctx = openReplication(tp.config, createLogger({ level: 'silent' }));
    await addStandby(ctx, { name: 'b' });
    tokenFile = join(tp.dataDir, '..', 'metrics.token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    app = await buildServer({ platform: tp.platform });
    open = await startMetricsServer({ platform: tp.platform, app, token: null });
    guarded = await startMetricsServer({ platform: tp.platform, token: readMetricsToken(tokenFile) });
    await app.listen({ host: '127.0.0.1', port: 0 });
    appUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await open.close();
    await guarded.close();
    await app.close();
    await tp.cleanup();
  });

  test('a scrape holds the replication status of the primary and its standby, as cluster status has it', async () => {
    const m = await eventually('the standby streaming and caught up', async () => {
      const found = await scrape();
      return found.value('taskflow_replication_lag_bytes', { node: 'b' }) === 0 && found.value('taskflow_replication_slot_active', { node: 'b' }) === 1 ? found : undefined;
    });
    assert.equal(m.select('taskflow_replication_node_up').length, 2);
    for (const [node, role, primary] of [['main', 'primary', 1], ['b', 'standby', 0]] as const) {
      assert.equal(m.value('taskflow_replication_node_up', { node, role }), 1, `${node} up`);
      assert.equal(m.value('taskflow_replication_is_primary', { node }), primary, `${node} ${role}`);
    }
    assert.equal(m.value('taskflow_replication_split_brain'), 0);
    const status = await clusterStatus(ctx);
    for (const node of status.nodes) assert.equal(m.value('taskflow_replication_timeline', { node: node.name }), node.timeline, `timeline of ${node.name}`);
    assert.equal(m.value('taskflow_metrics_source_up', { source: 'cluster_status' }), 1);
    assert.equal(m.type.get('taskflow_replication_lag_bytes'), 'gauge');
  });

  test('and the process, its pools, its primary and the open alerts by severity', async () => {
    const m = await scrape();
    for (const name of ['taskflow_process_cpu_user_seconds_total', 'taskflow_process_resident_memory_bytes', 'taskflow_nodejs_eventloop_lag_seconds']) {
      assert.ok(m.type.has(name), `${name} is exposed`);
    }
    assert.equal(m.value('taskflow_primary_available'), 1);
    assert.equal(m.value('taskflow_tenant_pool_max_connections'), tp.config.pools.maxConnections);
    assert.equal(m.value('taskflow_tenant_pool_connections'), 0);
    assert.ok((m.value('taskflow_control_pool_connections') ?? 0) >= 1);
    assert.equal(m.value('taskflow_metrics_source_up', { source: 'alerts' }), 1);
    assert.deepEqual(
      m.select('taskflow_alerts_open').map((s) => [s.labels.severity, s.value]),
      [
        ['critical', 0],
        ['warning', 0],
        ['info', 0],
      ],
    );

    await tp.platform.alerts.raise({ code: 'backup.failed', severity: 'critical', key: 'metrics-test', summary: 'a test alert' });
    await eventually('the alert counted', async () => ((await scrape()).value('taskflow_alerts_open', { severity: 'critical' }) === 1 ? true : undefined));
    await tp.platform.alerts.resolve('metrics-test', 'test over');
    await eventually('the alert resolved', async () => ((await scrape()).value('taskflow_alerts_open', { severity: 'critical' }) === 0 ? true : undefined));
  });

  test("the app's requests are counted by method, route template and status", async () => {
    const before = await scrape();
    const count = (m: Exposition, method: string, route: string, status: string) => m.value('taskflow_http_request_duration_seconds_count', { method, route, status_code: status }) ?? 0;
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`${appUrl}/healthz`)).status, 200);
    // GET of any other path is the web app's `/*` (here 404: no tenant at this host); POST matches no route.
    assert.equal((await fetch(`${appUrl}/no-such-route/42`, { method: 'POST' })).status, 404);
    const m = await scrape();
    assert.equal(count(m, 'GET', '/healthz', '200') - count(before, 'GET', '/healthz', '200'), 3);
    assert.equal(count(m, 'POST', '(unmatched)', '404') - count(before, 'POST', '(unmatched)', '404'), 1, 'unmatched paths share one label value');
    assert.equal(m.type.get('taskflow_http_request_duration_seconds'), 'histogram');
    assert.equal(m.select('taskflow_http_request_duration_seconds_count').filter((s) => s.labels.route?.includes('42')).length, 0, 'no path in a label');
  });

  test('with a token configured: 401 problem+json without it or with a wrong one, the metrics with it', async () => {
    const url = `${guarded.url}/metrics`;
    for (const authorization of [undefined, 'Bearer wrong', `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, TOKEN]) {
      const res = await fetch(url, { headers: authorization === undefined ? {} : { authorization } });
      const body = await problem(res, 401, 'unauthenticated');
      assert.match(body.detail, /Authorization: Bearer/);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="taskflow-metrics"');
    }
    const m = await scrape(guarded);
    assert.equal(m.value('taskflow_replication_is_primary', { node: 'main' }), 1);
    assert.equal((await fetch(`${guarded.url}/healthz`)).status, 200, 'liveness needs no token');
  });

  test('a token file other users can read, or a short token, is refused at start', () => {
    const loose = join(tp.dataDir, '..', 'loose.token');
    writeFileSync(loose, TOKEN, { mode: 0o644 });
    assert.throws(() => readMetricsToken(loose), /metrics\.tokenFile .*loose\.token can be read by other users \(mode 0644\).*chmod 600/);
    const short = join(tp.dataDir, '..', 'short.token');
    writeFileSync(short, 'letmein\n', { mode: 0o600 });
    assert.throws(() => readMetricsToken(short), /at least 16 characters/);
    assert.throws(() => readMetricsToken(join(tp.dataDir, 'missing.token')), /cannot be read/);
  });

  test('twenty scrapes at once share one probe of the databases', async () => {
    const first = await scrape();
    const probesBefore = first.value('taskflow_metrics_probes_total') ?? 0;
    // Let the result age past metrics.probeCacheMs, so the next scrape needs a probe.
    await new Promise((r) => setTimeout(r, PROBE_CACHE_MS + 100));
    const all = await Promise.all(Array.from({ length: 20 }, () => scrape()));
    assert.deepEqual(new Set(all.map((m) => m.value('taskflow_metrics_probes_total'))), new Set([probesBefore + 1]), 'one probe for twenty scrapes');
    assert.equal(new Set(all.map((m) => m.value('taskflow_metrics_probe_duration_seconds'))).size, 1, 'all from the same probe');
    for (const m of all) assert.equal(m.value('taskflow_replication_node_up', { node: 'b' }), 1);
  });

  test('anything but GET /metrics and /healthz is a 404 problem', async () => {
    for (const [method, path] of [
      ['GET', '/'],
      ['GET', '/metrics/'],
      ['GET', '/api/tasks'],
      ['POST', '/metrics'],
      ['DELETE', '/metrics'],
    ] as const) {
      const body = await problem(await fetch(`${open.url}${path}`, { method }), 404, 'not-found');
      assert.match(body.detail, /GET \/metrics and GET \/healthz only/, `${method} ${path}`);
    }
    assert.deepEqual(await (await fetch(`${open.url}/healthz`)).json(), { status: 'ok' });
    assert.equal((await fetch(`${open.url}/metrics?name[]=x`)).status, 200, 'a query string does not change the path');
  });

  test("the app's own listener does not serve the metrics", async () => {
    for (const path of ['/metrics', '/api/metrics']) {
      const res = await fetch(`${appUrl}${path}`);
      assert.equal(res.status, 404, path);
      assert.doesNotMatch(await res.text(), /taskflow_/);
    }
    assert.notEqual(new URL(open.url).port, new URL(appUrl).port);
  });

  test("the configuration refuses the app's port and an address beyond loopback without a token", () => {
    const load = (overrides: Record<string, unknown>) => () => loadConfig({ env: {}, overrides: { dataDir: tp.dataDir, 'metrics.enabled': true, ...overrides } });
    assert.throws(load({ 'metrics.port': 8443 }), /metrics\.port[^:]*: 8443 is a port of the app's own listener/);
    assert.throws(load({ 'metrics.host': '0.0.0.0' }), /metrics\.tokenFile: required when metrics\.host \(0\.0\.0\.0\) is not a loopback address/);
    assert.equal(load({ 'metrics.host': '0.0.0.0', 'metrics.tokenFile': tokenFile })().metrics.host, '0.0.0.0');
    assert.equal(loadConfig({ env: {}, overrides: { dataDir: tp.dataDir } }).metrics.enabled, false, 'off by default');
    const fromEnv = loadConfig({ env: { TASKFLOW_METRICS_ENABLED: 'true', TASKFLOW_METRICS_PORT: '9999' }, overrides: { dataDir: tp.dataDir } }).metrics;
    assert.deepEqual([fromEnv.enabled, fromEnv.port], [true, 9999]);
  });

  test('taskflow start refuses a token file others can read before starting anything, and serves the metrics with a good one', async () => {
    const loose = join(tp.dataDir, '..', 'loose-start.token');
    writeFileSync(loose, TOKEN, { mode: 0o640 });
    const env = { TASKFLOW_METRICS_ENABLED: 'true', TASKFLOW_METRICS_PORT: String(await freePort()) };
    const refused = await runCli(['start', '--tls', 'off', '--port', '0', '--data-dir', tp.dataDir], { env: { ...env, TASKFLOW_METRICS_TOKEN_FILE: loose } });
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /loose-start\.token can be read by other users \(mode 0640\)/);

    // The in-process servers step aside; the cluster keeps running for the server process.
    await open.close();
    await guarded.close();
    await app.close();
    await tp.platform.close({ stopCluster: false });
    const child = spawn(process.execPath, [TASKFLOW_BIN, 'start', '--tls', 'off', '--port', '0', '--data-dir', tp.dataDir], {
      env: { ...process.env, ...env, TASKFLOW_METRICS_TOKEN_FILE: tokenFile, TASKFLOW_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const url = await eventually('the server to start', () => Promise.resolve(/Metrics for Prometheus at (\S+) \(bearer token/.exec(stderr)?.[1]), 60_000);
      assert.equal(url, `http://127.0.0.1:${env.TASKFLOW_METRICS_PORT}/metrics`);
      assert.equal((await fetch(url)).status, 401);
      const res = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(res.status, 200);
      const m = parseExposition(await res.text());
      assert.equal(m.value('taskflow_replication_node_up', { node: 'main' }), 1);
      assert.equal(m.value('taskflow_replication_node_up', { node: 'b' }), 1);
    } finally {
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr.slice(-2000));
    }
    await assert.rejects(fetch(`http://127.0.0.1:${env.TASKFLOW_METRICS_PORT}/healthz`), 'the listener closed with the server');
  });
});
