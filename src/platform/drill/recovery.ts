/**
 * After a drill fails half way: leave the cluster with exactly one primary. An interrupted failover
 * is finished; a recorded primary that the drill killed but did not replace is started again (it
 * recovers from the crash like any server after a power cut); standbys that are down are started.
 * Each step is attempted whatever the previous one did, and reported as a line for the drill report.
 */
import { assertSinglePrimary, loadTopology, nodeCluster, type ReplicationContext } from '../replication/context.ts';
import { failover } from '../replication/failover.ts';
import { awaitReaped } from '../replication/processes.ts';
import { probeNode } from '../replication/probe.ts';
import { standbyNames } from '../replication/topology.ts';

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Brings the cluster back to one running primary; returns what was done, and what could not be. */
export async function leaveOnePrimary(ctx: ReplicationContext): Promise<string[]> {
  const notes: string[] = [];
  const pending = loadTopology(ctx).pending;
  if (pending?.action === 'failover') {
    try {
      await failover(ctx, { to: pending.to, force: true });
      notes.push(`finished the interrupted failover from ${pending.from} to ${pending.to}`);
    } catch (err) {
      notes.push(`could not finish the failover from ${pending.from} to ${pending.to}: ${message(err)}`);
    }
  }
  const topology = loadTopology(ctx);
  const primary = nodeCluster(ctx, topology, topology.primary);
  if (!(await probeNode(primary)).reachable && primary.isInitialised() && !primary.isFenced()) {
    try {
      await awaitReaped(primary);
      await primary.start();
      notes.push(`started the primary ${topology.primary} again; it recovered from the crash`);
    } catch (err) {
      notes.push(`could not start the primary ${topology.primary}: ${message(err)}`);
    }
  }
  for (const name of standbyNames(topology)) {
    const standby = nodeCluster(ctx, topology, name);
    if ((await probeNode(standby)).reachable || !standby.isInitialised()) continue;
    try {
      await awaitReaped(standby);
      await standby.start();
      notes.push(`started the standby ${name} again`);
    } catch (err) {
      notes.push(`could not start the standby ${name}: ${message(err)}; 'taskflow cluster rebuild ${name}'`);
    }
  }
  try {
    const probes = await assertSinglePrimary(ctx, topology);
    const up = probes.get(topology.primary);
    notes.push(up?.reachable && up.inRecovery === false ? `one primary: ${topology.primary}` : `no node accepts writes: the primary ${topology.primary} is down; see 'taskflow cluster status'`);
  } catch (err) {
    notes.push(`NOT RESOLVED: ${message(err)}`);
  }
  return notes;
}
