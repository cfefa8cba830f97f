/**
 * `taskflow drill failover`: the loss of the primary, rehearsed on the real cluster.
 *
 * 1. Checks (nothing changes if they fail): one running primary, a standby that streams and is
 *    caught up, and the production flag on a cluster that serves tenants.
 * 2. A writer load into the drill database, every acknowledged write recorded by the client.
 * 3. SIGKILL of the primary's postmaster and its children, then TaskFlow's own failover to the
 *    most caught-up standby (forced: the old primary is treated as gone for good).
 * 4. RTO: the kill to the first write the new primary acknowledges. RPO: acknowledged writes the
 *    new primary does not have, as a count and in seconds.
 * 5. The old primary is rebuilt as a standby of the new one (pg_rewind), so the drill can be run
 *    again at once; the replication mode is put back if the drill changed it.
 *
 * The drill is recorded in the control database from the start; one that fails half way is
 * recorded as failed, raises `drill.failed`, and leaves the cluster with one primary.
 */
import type { ReplicationContext } from '../replication/context.ts';
import { nodeCluster, loadTopology } from '../replication/context.ts';
import type { FailoverResult } from '../replication/failover.ts';
import { formatBytes } from '../replication/lsn.ts';
import { setMode } from '../replication/mode.ts';
import { rebuildNode, type RebuiltNode } from '../replication/standby.ts';
import type { ReplicationMode } from '../replication/topology.ts';
import { killNode, type Killed } from './kill.ts';
import type { LoadFigures } from './measure.ts';
import { awaitRowsOn, awaitWritesAndMeasure, failOverTo, runLoad } from './phases.ts';
import { assertDrillAllowed, assessCluster, productionTenants } from './preflight.ts';
import { leaveOnePrimary } from './recovery.ts';
import { concludeFailoverDrill, type DrillFailure } from './failover-report.ts';
import { countText } from './report.ts';
import { managedScope, readControl, startDrill, type DrillReport, type DrillSession } from './session.ts';
import { prepareDrillDatabase, type WriterLoad } from './writers.ts';

export { ASYNC_RPO_TARGET_SECONDS, MANUAL_RTO_TARGET_SECONDS } from './failover-report.ts';

export interface FailoverDrillOptions {
  /** The replication mode to drill in; the cluster's own mode when not given (and put back afterwards when changed). */
  mode?: ReplicationMode;
  /** Concurrent writers before the kill; 0 drills an idle cluster (one writer starts at the kill, to time the recovery). */
  writers: number;
  /** Seconds of load before the kill. */
  durationSeconds: number;
  yesThisIsProduction: boolean;
  operator: string;
  progress?: (line: string) => void;
  /** For tests: runs right after the kill, before the failover (to break something on purpose). */
  hooks?: { afterKill?: () => Promise<void> };
}

interface Progress {
  stage: string;
  killed: Killed | null;
  failover: FailoverResult | null;
  load: LoadFigures | null;
  rebuilt: RebuiltNode | null;
  rowsOnRebuilt: number | null;
  modeRestored: boolean;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function runFailoverDrill(ctx: ReplicationContext, options: FailoverDrillOptions): Promise<DrillReport> {
  const readiness = await assessCluster(ctx);
  assertDrillAllowed(await readControl(ctx, productionTenants), options.yesThisIsProduction);
  const from = readiness.primary.name;
  const to = readiness.target.name;
  const previousMode = readiness.status.mode;
  const mode = options.mode ?? previousMode;
  const session = await startDrill(managedScope(ctx), {
    kind: 'failover',
    operator: options.operator,
    progress: options.progress,
    parameters: {
      engine: 'manual',
      mode,
      writers: options.writers,
      durationSeconds: options.durationSeconds,
      yesThisIsProduction: options.yesThisIsProduction,
      primary: { name: from, site: readiness.primary.site },
      target: { name: to, site: readiness.target.site, lagBytes: readiness.target.lagBytes },
      nodes: readiness.status.nodes.map((n) => ({ name: n.name, role: n.role, site: n.site })),
    },
  });
  const p: Progress = { stage: 'prepare', killed: null, failover: null, load: null, rebuilt: null, rowsOnRebuilt: null, modeRestored: mode === previousMode };
  let load: WriterLoad | null = null;
  let failure: DrillFailure | null = null;
  try {
    if (mode !== previousMode) {
      await setMode(ctx, mode);
      session.event(`replication mode set to ${mode} for the drill (it was ${previousMode})`);
    }
    await prepareDrillDatabase(nodeCluster(ctx, loadTopology(ctx), from));
    p.stage = 'load';
    const run = await runLoad(session, options.writers, options.durationSeconds);
    load = run.load;
    p.stage = 'kill';
    p.killed = await killNode(nodeCluster(ctx, loadTopology(ctx), from));
    session.event(`SIGKILL to the postmaster of ${from} (pid ${p.killed.pid ?? '?'}) and its children`, p.killed.at);
    run.startProbe();
    await options.hooks?.afterKill?.();
    p.stage = 'failover';
    p.failover = await failOverTo(ctx, session, to);
    p.stage = 'resume';
    p.load = await awaitWritesAndMeasure(session, { ...run, writers: options.writers }, p.killed.at, to);
    p.stage = 'restore';
    p.rebuilt = await rebuildNode(ctx, { name: from });
    session.event(`${from} rebuilt as a standby of ${to} (${p.rebuilt.method}, ${p.rebuilt.tookMs} ms)`);
    p.rowsOnRebuilt = await awaitRowsOn(ctx, from, session.id, p.load.survivingRows);
    session.event(`${from} has replayed ${p.rowsOnRebuilt ?? '?'} of the ${p.load.survivingRows} rows of the drill`);
    if (p.rowsOnRebuilt !== p.load.survivingRows) throw new Error(`the rebuilt ${from} has ${p.rowsOnRebuilt ?? 'none'} of the ${p.load.survivingRows} rows of the drill after a minute`);
    if (mode !== previousMode) {
      await setMode(ctx, previousMode);
      p.modeRestored = true;
      session.event(`replication mode put back to ${previousMode}`);
    }
  } catch (err) {
    await load?.stop().catch(() => undefined);
    session.event(`the drill failed during ${p.stage}: ${message(err)}`);
    const recovery = await leaveOnePrimary(ctx);
    if (!p.modeRestored) {
      await setMode(ctx, previousMode).then(
        () => recovery.push(`replication mode put back to ${previousMode}`),
        (e: unknown) => recovery.push(`could not put the replication mode back to ${previousMode}: ${message(e)}`),
      );
    }
    for (const line of recovery) session.event(`recovery: ${line}`);
    failure = { stage: p.stage, error: message(err), recovery };
  }
  return conclude(session, { from, to, mode, options, p, failure });
}

function conclude(session: DrillSession, r: { from: string; to: string; mode: ReplicationMode; options: FailoverDrillOptions; p: Progress; failure: DrillFailure | null }): Promise<DrillReport> {
  const { from, to, p } = r;
  const gap = p.failover?.gap;
  return concludeFailoverDrill(session, {
    ...r,
    progress: p,
    engine: 'manual',
    promoted: p.failover ? `${to} (timeline ${p.failover.timeline ?? '?'})` : 'nothing',
    failoverRows: [
      ["the failover command's own work", p.failover ? `${p.failover.tookMs} ms` : 'none'],
      [`WAL of ${from} that ${to} never received`, gap?.known ? `${formatBytes(gap.missingBytes)}, ${gap.missingCommits} committed transaction(s)` : `unknown (${gap ? gap.reason : 'no failover'})`],
      ...(p.failover ? [discardedRow(p.failover)] : []),
    ],
    restore: p.rebuilt
      ? {
          rows: [
            [`${from} rebuilt`, `${p.rebuilt.method}, ${p.rebuilt.tookMs} ms`],
            [`rows of the drill on ${from}`, p.rowsOnRebuilt === null ? 'unknown' : `${countText(p.rowsOnRebuilt)} of ${countText(p.load?.survivingRows ?? 0)}`],
            ['replication mode', p.modeRestored ? 'as before the drill' : 'changed by the drill'],
          ],
          figures: { node: from, method: p.rebuilt.method, tookMs: p.rebuilt.tookMs, rowsReplayed: p.rowsOnRebuilt, modeRestored: p.modeRestored },
          line: `${from} is a standby of ${to} again; the drill can be run again at once.`,
        }
      : null,
    engineFigures: { failover: p.failover ? { tookMs: p.failover.tookMs, timeline: p.failover.timeline, gap: p.failover.gap, discarded: p.failover.discarded, forced: p.failover.forced } : null },
  });
}

/** The report's row for the committed transactions the failover discarded (`cluster failover`'s `discarded`), acknowledged or not. */
export function discardedRow(failover: Pick<FailoverResult, 'gap' | 'discarded'>): [string, string] {
  const label = 'committed transactions discarded';
  const d = failover.discarded;
  if (!d) return [label, failover.gap?.known ? 'none' : 'unknown (what the new primary lacked could not be read)'];
  const ack = d.acknowledged === 'no' ? 'never acknowledged to a client' : 'may have been acknowledged (lost by --force)';
  const last = d.lastCommitAt ? `, the last committed at ${d.lastCommitAt}` : '';
  return [label, `${countText(d.commits)} (${formatBytes(d.bytes)})${last}: ${ack}; ${d.why}`];
}
