/**
 * The steps both kinds of drill share: the writer load before the loss, the failover to the chosen
 * standby, waiting for the first write on it, and counting what survived.
 */
import { loadTopology, nodeCluster, type ReplicationContext } from '../replication/context.ts';
import { failover, type FailoverResult } from '../replication/failover.ts';
import type { ConnectionTarget } from '../postgres/connection.ts';
import { formatBytes } from '../replication/lsn.ts';
import { poll } from '../replication/probe.ts';
import { measureLoad, type LoadFigures } from './measure.ts';
import type { DrillSession } from './session.ts';
import { preciseNow, survivingWrites, WriterLoad, type WriteTarget } from './writers.ts';

/** How long writes may take to resume on the new primary before the drill counts as failed. */
export const RECOVERY_TIMEOUT_MS = 60_000;
/** How long the load keeps writing on the new primary before it stops. */
const AFTER_RECOVERY_MS = 1000;

/** Where writes go: the node recorded as primary now (what `taskflow start` and every command use). */
export function recordedPrimaryTarget(ctx: ReplicationContext): WriteTarget {
  const topology = loadTopology(ctx);
  return { node: topology.primary, target: nodeCluster(ctx, topology, topology.primary).target() };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Starts the writers and lets them write for `durationSeconds`. With no writers the load is only
 * created: `startProbe` starts one writer at the kill, to time the recovery of an idle cluster.
 */
export async function runLoad(session: DrillSession, writers: number, durationSeconds: number): Promise<{ load: WriterLoad; startedAt: number; startProbe: () => void }> {
  const load = new WriterLoad({ drillId: session.id, writers: Math.max(writers, 1), target: () => session.scope.primary(), ackFile: session.ackFile });
  const startedAt = preciseNow();
  if (writers === 0) {
    return {
      load,
      startedAt,
      startProbe: () => {
        load.start();
      },
    };
  }
  load.start();
  session.event(`writer load started: ${writers} writer(s) into ${session.ackFile.replace(/.*\//, '')}`, startedAt);
  await sleep(durationSeconds * 1000);
  if (load.acks.length === 0) {
    throw new Error(`the writers made no write in ${durationSeconds} s (failures: ${JSON.stringify(Object.fromEntries(load.failures))})`);
  }
  session.event(`${load.acks.length} writes acknowledged so far`);
  return { load, startedAt, startProbe: () => undefined };
}

/** The failover itself, through TaskFlow's own failover command. Forced: the drill's premise is that the old primary is gone for good. */
export async function failOverTo(ctx: ReplicationContext, session: DrillSession, to: string): Promise<FailoverResult> {
  session.event(`failover to ${to} started ('taskflow cluster failover --to ${to} --force')`);
  const result = await failover(ctx, { to, force: true });
  const gap = result.gap?.known ? `; WAL ${to} never received: ${formatBytes(result.gap.missingBytes)} holding ${result.gap.missingCommits} committed transaction(s)` : '';
  session.event(`failover done: ${to} is the primary on timeline ${result.timeline ?? '?'} (the command's own work ${result.tookMs} ms)${gap}`);
  return result;
}

/** Waits for the first write the new primary acknowledges, lets the load run a moment longer, stops it and measures RTO and RPO. */
export async function awaitWritesAndMeasure(
  session: DrillSession,
  run: { load: WriterLoad; startedAt: number; writers: number },
  killAt: number,
  to: string,
): Promise<LoadFigures> {
  const { load } = run;
  let timer: NodeJS.Timeout | undefined;
  const first = await Promise.race([load.firstAckFrom(to), new Promise<null>((resolve) => {
      timer = setTimeout(() => {
        resolve(null);
      }, RECOVERY_TIMEOUT_MS);
    })]);
  clearTimeout(timer);
  if (!first) throw new Error(`no write was acknowledged by ${to} within ${RECOVERY_TIMEOUT_MS / 1000} s of the failover`);
  session.event(`first write acknowledged by ${to}`, first.at);
  await sleep(AFTER_RECOVERY_MS);
  await load.stop();
  session.event(`writer load stopped: ${load.acks.length} writes acknowledged in all`);
  if (load.fileError) session.event(`${session.ackFile} is incomplete (${load.fileError}); the figures come from the writers' memory`);
  const survivors = await survivingWrites(session.scope.primary().target, session.id);
  return measureLoad({ acks: load.acks, survivors, killAt, loadStartedAt: run.startedAt, newPrimary: to, writers: run.writers, failures: load.failures });
}

/** Waits until a rebuilt node has replayed every row of the drill; returns the count it has, or null when it did not within a minute. */
export function awaitRowsOn(ctx: ReplicationContext, node: string, drillId: string, expected: number): Promise<number | null> {
  return awaitRowsAt(nodeCluster(ctx, loadTopology(ctx), node).target(), drillId, expected);
}

/** Waits until the node at `target` has replayed every row of the drill; the count it has, or null when it could not be read within a minute. */
export async function awaitRowsAt(target: ConnectionTarget, drillId: string, expected: number): Promise<number | null> {
  let seen = -1;
  const ok = await poll(
    async () => {
      seen = (await survivingWrites(target, drillId).catch(() => new Set())).size;
      return seen === expected ? true : undefined;
    },
    60_000,
    200,
  );
  return ok ? expected : seen < 0 ? null : seen;
}
