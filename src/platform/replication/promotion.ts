/** Promoting a standby to primary and pointing the other standbys at it: shared by failover and switchover. */
import { UserError } from '../../errors.ts';
import { escapeLiteral } from '../postgres/connection.ts';
import { standbyConninfo } from './access.ts';
import { nodeCluster, type ReplicationContext } from './context.ts';
import { ensureSlot } from './copy.ts';
import { synchronousStandbyNames } from './mode.ts';
import { probeNode, withNodeClient } from './probe.ts';
import { slotName, standbyNames, type NodeRecord, type Topology } from './topology.ts';

/** The topology once `to` is primary: other standbys follow it; fenced nodes stay fenced. */
export function promotedTopology(topology: Topology, to: string): Topology {
  const nodes: Record<string, NodeRecord> = {};
  for (const [name, node] of Object.entries(topology.nodes)) {
    if (name === to) {
      const { upstream: _upstream, fence: _fence, ...rest } = node;
      nodes[name] = { ...rest, role: 'primary' };
    } else if (node.role === 'standby') nodes[name] = { ...node, upstream: to };
    else nodes[name] = node;
  }
  return { ...topology, primary: to, nodes };
}

/**
 * Promotes the standby `to` of `next` (the topology after the change) and makes the other
 * standbys stream from it. The new primary gets its synchronous_standby_names before it takes its
 * first write: it carries its old primary's, which may name itself and would block every commit.
 * Returns the new primary's timeline.
 */
export async function promote(
  ctx: ReplicationContext,
  next: Topology,
  to: string,
  synchronousNames = synchronousStandbyNames(next, to),
): Promise<{ timeline: number | null; promotedAt: number }> {
  const target = nodeCluster(ctx, next, to);
  const probe = await probeNode(target);
  if (!probe.reachable) throw new UserError(`node ${to} is not reachable (${probe.error ?? 'unknown'}); start it and run the command again`, 4);
  const promotedAt = await withNodeClient(target, async (client) => {
    await client.query(`ALTER SYSTEM SET synchronous_standby_names = ${escapeLiteral(synchronousNames)}`);
    await client.query('SELECT pg_reload_conf()');
    if (probe.inRecovery) {
      const promoted = await client.query<{ ok: boolean }>('SELECT pg_promote(true, 60) AS ok');
      if (!promoted.rows[0]?.ok) throw new UserError(`node ${to} did not finish promotion within 60 s; see ${target.pgData}/log`);
    }
    const at = performance.now();
    ctx.log.debug({ node: to }, 'promoted');
    await client.query('ALTER SYSTEM RESET primary_conninfo');
    await client.query('ALTER SYSTEM RESET primary_slot_name');
    await client.query('SELECT pg_reload_conf()');
    // Promotion does not wait for a checkpoint; until one is done, pg_control still names the old
    // timeline and pg_rewind against this node would rewind to the wrong history.
    await client.query('CHECKPOINT');
    return at;
  });
  for (const name of standbyNames(next)) {
    if (name === to) continue;
    await ensureSlot(target, name);
    const standby = nodeCluster(ctx, next, name);
    const conninfo = standbyConninfo(ctx, next, name, to);
    if ((await probeNode(standby)).reachable) {
      // primary_conninfo and primary_slot_name take effect on reload: the WAL receiver reconnects.
      await withNodeClient(standby, async (client) => {
        await client.query(`ALTER SYSTEM SET primary_conninfo = ${escapeLiteral(conninfo)}`);
        await client.query(`ALTER SYSTEM SET primary_slot_name = ${escapeLiteral(slotName(name))}`);
        await client.query('SELECT pg_reload_conf()');
      });
    } else if (standby.isInitialised()) {
      standby.writeStandbySettings({ primaryConninfo: conninfo, slotName: slotName(name) });
    }
  }
  return { timeline: (await probeNode(target)).timeline, promotedAt };
}
