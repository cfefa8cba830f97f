/**
 * Alerts from the managed cluster's status, raised by the running process (`taskflow start`) every
 * `replication.statusCheckSeconds`: a standby that is down, or whose slot was invalidated by
 * replication.maxSlotWalKeepSizeMb (it can never catch up), raises `replication.standby-down`; one
 * whose slot is about to be invalidated raises `replication.lagging`. Each is raised once when the
 * watch first sees it and resolved by the first check that no longer does.
 *
 * `cluster status` only reports: raising an alert is a commit on the primary, which a read-only
 * command must not make (it would, say, be one more commit a stopped standby lacks).
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { ControlDbAlerts, type Alerts } from '../alerts/alerts.ts';
import { CONTROL_DB } from '../control-plane.ts';
import { clientConfig } from '../postgres/connection.ts';
import type { LocalCluster } from '../postgres/local-cluster.ts';
import { loadTopology, nodeCluster, type ReplicationContext } from './context.ts';
import { clusterStatus, slotLimitProblem, type ClusterStatus } from './status.ts';

/**
 * Raises and resolves the alerts a status calls for. With `raised` (what this caller raised before,
 * by key), an alert still open with the same summary is not raised again, so an unchanged status
 * writes nothing; a changed one (a standby that was down and has now lost its slot) is.
 */
export async function raiseStatusAlerts(alerts: Alerts, status: ClusterStatus, raised = new Map<string, string>()): Promise<void> {
  const raise = async (key: string, alert: Omit<Parameters<Alerts['raise']>[0], 'key'>) => {
    if (raised.get(key) === alert.summary) return;
    await alerts.raise({ ...alert, key });
    raised.set(key, alert.summary);
  };
  const resolve = async (key: string, resolution: string) => {
    raised.delete(key);
    // An UPDATE that matches nothing writes no WAL.
    await alerts.resolve(key, resolution);
  };
  for (const node of status.nodes) {
    if (node.role !== 'standby') continue;
    const downKey = `replication.standby-down:${node.name}`;
    const lagKey = `replication.lagging:${node.name}`;
    const lost = node.slot?.walStatus === 'lost';
    if (lost || node.actual === 'down') {
      const summary = lost ? (slotLimitProblem(node) ?? `standby ${node.name} lost its slot`) : `standby ${node.name} is down (${node.error ?? 'unknown'}): 'taskflow cluster start ${node.name}'`;
      await raise(downKey, { code: 'replication.standby-down', severity: lost ? 'critical' : 'warning', summary, details: { node: node.name, slot: node.slot } });
    } else {
      await resolve(downKey, `standby ${node.name} is up and its slot is valid`);
    }
    if (node.slot?.walStatus === 'unreserved') {
      const summary = slotLimitProblem(node) ?? `standby ${node.name} lags`;
      await raise(lagKey, { code: 'replication.lagging', severity: 'warning', summary, details: { node: node.name, lagBytes: node.lagBytes, slot: node.slot } });
    } else {
      await resolve(lagKey, `standby ${node.name} is within replication.maxSlotWalKeepSizeMb`);
    }
  }
}

/**
 * Runs `fn` with the alerts of the primary's control database, on a connection of its own that
 * does not wait for a standby (in sync mode with every standby down a commit would wait for ever).
 */
export async function withPrimaryAlerts(ctx: ReplicationContext, primary: LocalCluster, fn: (alerts: Alerts) => Promise<void>): Promise<void> {
  const client = new pg.Client({ ...clientConfig(primary.target(), CONTROL_DB), connectionTimeoutMillis: 5_000, application_name: 'taskflow-replication-watch' });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query("SET synchronous_commit = 'local'; SET statement_timeout = '5s'");
    await fn(new ControlDbAlerts(client, ctx.log));
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Records the alerts of a status in the primary's control database. */
async function recordStatusAlerts(ctx: ReplicationContext, status: ClusterStatus, raised: Map<string, string>): Promise<void> {
  const primary = status.nodes.find((n) => n.name === status.primary);
  if (primary?.actual !== 'primary') return;
  await withPrimaryAlerts(ctx, nodeCluster(ctx, loadTopology(ctx), status.primary), (alerts) => raiseStatusAlerts(alerts, status, raised));
}

/** Checks the managed cluster's status on an interval and keeps its alerts up to date. */
export class ReplicationWatch {
  readonly #ctx: ReplicationContext;
  readonly #log: Logger;
  readonly #raised = new Map<string, string>();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  constructor(ctx: ReplicationContext) {
    this.#ctx = ctx;
    this.#log = ctx.log;
  }

  /** The first check comes after one interval: a short command that opens the platform is gone by then. */
  start(intervalMs: number): void {
    this.#timer = setInterval(() => void this.check(), intervalMs);
    this.#timer.unref();
  }

  /** One check now (a check already under way is waited for instead); never throws. */
  check(): Promise<void> {
    this.#running ??= (async () => {
      try {
        await recordStatusAlerts(this.#ctx, await clusterStatus(this.#ctx), this.#raised);
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'the replication status could not be checked');
      }
    })().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}

