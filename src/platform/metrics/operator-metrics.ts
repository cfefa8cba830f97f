/**
 * What the operator metrics listener (src/app/metrics-server.ts) serves: this process (prom-client's
 * default metrics), its database pools, whether it has a primary, the open alerts by severity and
 * the managed cluster's replication status (platform/replication/metrics.ts). Alerts and status are
 * read from the databases, so they come from one SharedProbe: a scrape every second, or ten at once,
 * never piles up probes. Every name starts `taskflow_`.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { AlertSeverity } from '../alerts/alerts.ts';
import type { Platform } from '../platform.ts';
import type { TenantPoolStats } from '../postgres/tenant-pools.ts';
import { openReplication, type ReplicationContext } from '../replication/context.ts';
import { replicationMetrics } from '../replication/metrics.ts';
import { clusterStatus } from '../replication/status.ts';
import { SharedProbe, type Probed } from './shared-probe.ts';

export const METRICS_PREFIX = 'taskflow_';

const SEVERITIES: readonly AlertSeverity[] = ['critical', 'warning', 'info'];

/** A source read by the probe: its result, or why it could not be read. */
type Read<T> = { ok: true; value: T } | { ok: false; error: string };

/** What one probe read. */
export interface OperatorSnapshot {
  /** The replication metrics as text; absent when this process does not manage the cluster (databaseUrl). */
  clusterStatus?: Read<string>;
  alerts: Read<Record<AlertSeverity, number>>;
}

export interface OperatorMetricsOptions {
  platform: Pick<Platform, 'config' | 'control' | 'cluster' | 'log'> & Partial<Pick<Platform, 'primary'>>;
  /** The tenant pools of the app this process serves, when it serves one. */
  tenantPools?: () => TenantPoolStats;
  /** How long a probe's result is reused (metrics.probeCacheMs). */
  probeCacheMs: number;
  /** How long a scrape waits for a probe under way before answering with the last one (metrics.probeWaitMs). */
  probeWaitMs: number;
}

async function read<T>(what: string, log: Logger, fn: () => Promise<T>): Promise<Read<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    log.warn({ err: error }, `metrics: the ${what} could not be read`);
    return { ok: false, error };
  }
}

async function openAlerts(control: Pick<pg.Pool, 'query'>): Promise<Record<AlertSeverity, number>> {
  const res = await control.query<{ severity: AlertSeverity; open: number }>(
    'SELECT severity, count(*)::int AS open FROM alerts WHERE resolved_at IS NULL GROUP BY severity',
  );
  const counts = { critical: 0, warning: 0, info: 0 };
  for (const row of res.rows) counts[row.severity] = row.open;
  return counts;
}

/** The registry of this process's own metrics, plus the probed ones rendered per scrape. */
export class OperatorMetrics {
  /** Long-lived: process, pools, primary; the HTTP server adds its request histogram here. */
  readonly registry = new Registry();
  readonly #probe: SharedProbe<OperatorSnapshot>;

  constructor(options: OperatorMetricsOptions) {
    const { platform } = options;
    collectDefaultMetrics({ register: this.registry, prefix: METRICS_PREFIX });
    this.#poolGauges(platform.control, options.tenantPools, platform.config.pools.maxConnections);
    const { primary } = platform;
    if (primary) {
      this.#gauge('primary_available', 'Whether this process has a primary to write to (1); 0 while it has none, as during a failover (requests are answered 503).', () =>
        primary.available() ? 1 : 0,
      );
    }
    const replication = platform.cluster ? replicationContext(platform) : null;
    this.#probe = new SharedProbe({
      maxAgeMs: options.probeCacheMs,
      waitMs: options.probeWaitMs,
      probe: async () => {
        const [status, alerts] = await Promise.all([
          replication ? read('cluster status', platform.log, async () => (await replicationMetrics(await clusterStatus(replication()))).text) : undefined,
          read('open alerts', platform.log, () => openAlerts(platform.control)),
        ]);
        return status ? { clusterStatus: status, alerts } : { alerts };
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The whole exposition: this process's metrics, then the probed ones (fresh, shared or last). */
  async exposition(): Promise<string> {
    const probed = await this.#probe.get();
    const parts = [await this.registry.metrics(), await probedMetrics(probed, this.#probe.started)];
    const status = probed?.value.clusterStatus;
    if (status?.ok) parts.push(status.value);
    // Each part ends in a newline; a blank line between them, as within one.
    return parts.filter((p) => p.trim() !== '').join('\n');
  }

  /** Waits for a probe under way, so nothing reaches the databases after this resolves. */
  async close(): Promise<void> {
    await this.#probe.settled();
  }

  #gauge(name: string, help: string, value: () => number): void {
    new Gauge({
      name: METRICS_PREFIX + name,
      help,
      registers: [this.registry],
      collect() {
        this.set(value());
      },
    });
  }

  #poolGauges(control: pg.Pool, tenantPools: (() => TenantPoolStats) | undefined, maxConnections: number): void {
    this.#gauge('control_pool_connections', 'Open connections of the control database pool.', () => control.totalCount);
    this.#gauge('control_pool_waiting', 'Queries waiting for a control database connection.', () => control.waitingCount);
    if (!tenantPools) return;
    this.#gauge('tenant_pool_connections', 'Connections to tenant databases holding a slot (open, opening or closing), all tenants together.', () => tenantPools().openConnections);
    this.#gauge('tenant_pool_max_connections', 'The cap on tenant connections (pools.maxConnections): connections at the cap mean requests wait.', () => maxConnections);
    this.#gauge('tenant_pool_leased', 'Requests holding or waiting for a tenant connection.', () => tenantPools().leased);
    this.#gauge('tenant_pools', 'Tenants with a pool in this process.', () => tenantPools().pools);
  }
}

/**
 * The managed cluster's replication context, opened at the first probe and kept; failing to open it
 * (PostgreSQL's replication tools missing) fails that source, not the listener.
 */
function replicationContext(platform: OperatorMetricsOptions['platform']): () => ReplicationContext {
  let ctx: ReplicationContext | null = null;
  return () => (ctx ??= openReplication(platform.config, platform.log));
}

/** The probe's own gauges and the open alerts, in a registry of their own for this scrape. */
async function probedMetrics(probed: Probed<OperatorSnapshot> | null, probes: number): Promise<string> {
  const registry = new Registry();
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Gauge<L>({ name: METRICS_PREFIX + name, help, labelNames, registers: [registry] });
  new Counter({ name: `${METRICS_PREFIX}metrics_probes_total`, help: 'Probes of the databases (cluster status, alerts) started by this process; scrapes share them.', registers: [registry] }).inc(probes);
  const up = gauge('metrics_source_up', 'Whether the last probe could read the source (1): cluster_status (the replication_ metrics) or alerts.', ['source']);
  if (!probed) {
    // No probe has finished yet (the first one is slow): each source is unknown, not failed.
    return registry.metrics();
  }
  const { value } = probed;
  gauge('metrics_probe_age_seconds', 'Age of the probe the cluster status and alert metrics come from.').set((Date.now() - probed.at) / 1000);
  gauge('metrics_probe_duration_seconds', 'How long that probe took.').set(probed.tookMs / 1000);
  if (value.clusterStatus) up.set({ source: 'cluster_status' }, value.clusterStatus.ok ? 1 : 0);
  up.set({ source: 'alerts' }, value.alerts.ok ? 1 : 0);
  if (value.alerts.ok) {
    const open = gauge('alerts_open', 'Open alerts (taskflow alerts list), by severity.', ['severity']);
    for (const severity of SEVERITIES) open.set({ severity }, value.alerts.value[severity]);
  }
  return registry.metrics();
}
