/**
 * A drill's life in the control database: the row written when it starts, the row completed when
 * it ends, and the `drill.failed` alert when it fails. Each step connects to whichever node is the
 * recorded primary at that moment, because the drill moves the primary.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import { UserError } from '../../errors.ts';
import { ControlDbAlerts } from '../alerts/alerts.ts';
import { CONTROL_DB, ensureControlPlane } from '../control-plane.ts';
import { clientConfig, withAdminClient, type ConnectionTarget } from '../postgres/connection.ts';
import type { LocalCluster } from '../postgres/local-cluster.ts';
import { loadTopology, nodeCluster, type ReplicationContext } from '../replication/context.ts';
import { drillProcess, saveDrill, settleRunningDrills, type DrillKind, type DrillOutcome, type DrillRecord } from './store.ts';
import { preciseNow, type WriteTarget } from './writers.ts';

/**
 * Where a drill runs: the managed cluster (replication.json names the primary) or a cluster an HA
 * engine runs (Patroni names it). Every step that needs the primary asks `primary()` at that moment.
 */
export interface DrillScope {
  log: Logger;
  /** The data directory; `drills/` in it holds the files of acknowledged writes. */
  root: string;
  /** The primary now (or the last one known while there is none), as the administrator. */
  primary(): WriteTarget;
}

/** The scope of the managed cluster: the primary is the node recorded as primary now (what `taskflow start` and every command use). */
export function managedScope(ctx: ReplicationContext): DrillScope {
  return {
    log: ctx.log,
    root: ctx.dir.root,
    primary() {
      const topology = loadTopology(ctx);
      return { node: topology.primary, target: nodeCluster(ctx, topology, topology.primary).target() };
    },
  };
}

export interface DrillEvent {
  /** Epoch ms. */
  at: number;
  what: string;
}

export interface DrillSession {
  scope: DrillScope;
  id: string;
  kind: DrillKind;
  startedAt: number;
  cluster: string;
  operator: string;
  parameters: Record<string, unknown>;
  /** `<dataDir>/drills/<id>.acks.csv`: every acknowledged write of the load. */
  ackFile: string;
  events: DrillEvent[];
  /** Records an event for the report's timeline and tells the operator. */
  event(what: string, at?: number): void;
}

/** The PostgreSQL system identifier of a node's cluster: the same on every node, and what backups are filed under. */
export function systemIdentifierOf(node: LocalCluster | ConnectionTarget): Promise<string> {
  const target = 'target' in node ? node.target() : node;
  return withAdminClient(target, 'postgres', async (c) => (await c.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()')).rows[0]?.id ?? 'unknown');
}

/** Runs `fn` with a connection pool on the control database of the primary now. */
async function withControl<T>(scope: DrillScope, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = new pg.Pool({ ...clientConfig(scope.primary().target, CONTROL_DB), max: 2, connectionTimeoutMillis: 5000 });
  pool.on('error', () => undefined);
  try {
    return await fn(pool);
  } finally {
    await pool.end().catch(() => undefined);
  }
}

/** Runs `fn` on the control database of the primary (for the production check before a drill). */
export function readControl<T>(scope: DrillScope | ReplicationContext, fn: (db: Pick<pg.Pool, 'query'>) => Promise<T>): Promise<T> {
  return withControl('primary' in scope ? scope : managedScope(scope), fn);
}

/**
 * Brings the control database up to date, settles drills whose process died, refuses (exit 4) while
 * another drill runs, and records this one as running.
 */
export async function startDrill(
  scope: DrillScope,
  spec: { kind: DrillKind; parameters: Record<string, unknown>; operator: string; progress?: (line: string) => void; lockMaintenanceDatabases?: boolean },
): Promise<DrillSession> {
  const primary = scope.primary().target;
  await ensureControlPlane({ target: primary, log: scope.log, lockMaintenanceDatabases: spec.lockMaintenanceDatabases ?? true });
  const cluster = await systemIdentifierOf(primary);
  const id = randomUUID();
  const startedAt = Date.now();
  const parameters = { ...spec.parameters, ...drillProcess(), dataDir: scope.root };
  await withControl(scope, async (pool) => {
    const { live, interrupted } = await settleRunningDrills(pool);
    if (live) throw new UserError(`refusing the drill: drill ${live.id} (${live.kind}, started ${live.startedAt}, pid ${String(live.parameters.pid)}) is still running`, 4);
    for (const old of interrupted) scope.log.warn({ drill: old }, 'an earlier drill did not finish; it is marked failed');
    await saveDrill(pool, { id, kind: spec.kind, startedAt: new Date(startedAt).toISOString(), finishedAt: null, outcome: 'running', cluster, parameters, figures: {}, reportMarkdown: '', operator: spec.operator });
  });
  const dir = join(scope.root, 'drills');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const events: DrillEvent[] = [];
  return {
    scope,
    id,
    kind: spec.kind,
    startedAt,
    cluster,
    operator: spec.operator,
    parameters,
    ackFile: join(dir, `${id}.acks.csv`),
    events,
    event(what, at = preciseNow()) {
      // Kept in time order: an event can be recorded after a later one happened (the first write on a new primary).
      const i = events.findLastIndex((e) => e.at <= at);
      events.splice(i + 1, 0, { at, what });
      spec.progress?.(what);
    },
  };
}

/**
 * The key of a drill's `drill.failed` alert: one per kind, and the Patroni engine's failover drill
 * has its own, so a passing manual drill does not resolve a failed Patroni one (or the reverse).
 */
export function drillAlertKey(kind: DrillKind, parameters: Record<string, unknown>): string {
  return parameters.engine === 'patroni' ? `drill.failed:${kind}:patroni` : `drill.failed:${kind}`;
}

/**
 * Completes the drill's row on the current primary and, for a failed drill, raises `drill.failed`.
 * Throws when the evidence cannot be stored (the caller still has the report to print).
 */
export async function finishDrill(
  session: DrillSession,
  result: { outcome: Exclude<DrillOutcome, 'running'>; figures: Record<string, unknown>; reportMarkdown: string; failure?: string },
): Promise<DrillRecord> {
  const record: DrillRecord = {
    id: session.id,
    kind: session.kind,
    startedAt: new Date(session.startedAt).toISOString(),
    finishedAt: new Date().toISOString(),
    outcome: result.outcome,
    cluster: session.cluster,
    parameters: session.parameters,
    figures: result.figures,
    reportMarkdown: result.reportMarkdown,
    operator: session.operator,
  };
  await withControl(session.scope, async (pool) => {
    const alerts = new ControlDbAlerts(pool, session.scope.log);
    const key = drillAlertKey(session.kind, session.parameters);
    if (result.outcome === 'passed') await alerts.resolve(key, `drill ${session.id} passed`);
    else {
      await alerts.raise({
        code: 'drill.failed',
        severity: 'critical',
        key,
        summary: `${session.kind} drill ${session.id} failed: ${result.failure ?? 'see its report'}`,
        details: { drill: session.id, kind: session.kind, failure: result.failure ?? null },
      });
    }
    await saveDrill(pool, record);
  });
  return record;
}

export interface DrillReport {
  id: string;
  kind: DrillKind;
  outcome: Exclude<DrillOutcome, 'running'>;
  figures: Record<string, unknown>;
  reportMarkdown: string;
  /** Why the evidence could not be stored in the control database (the report is still returned). */
  storeError: string | null;
}

/** Stores the result (and the alert) and returns the report; a failure to store is reported, not thrown. */
export async function completeDrill(
  session: DrillSession,
  result: { outcome: Exclude<DrillOutcome, 'running'>; figures: Record<string, unknown>; reportMarkdown: string; failure?: string },
): Promise<DrillReport> {
  let storeError: string | null = null;
  try {
    await finishDrill(session, result);
  } catch (err) {
    storeError = err instanceof Error ? err.message : String(err);
    session.scope.log.error({ drill: session.id, err: storeError }, 'the drill report could not be stored');
  }
  return { id: session.id, kind: session.kind, outcome: result.outcome, figures: result.figures, reportMarkdown: result.reportMarkdown, storeError };
}
