/** What a failover gathers to tell unacknowledged commits from acknowledged ones (failover-decision.ts decides). */
import { nodeCluster, type ReplicationContext } from './context.ts';
import type { DecisionInput, PeerPosition } from './failover-decision.ts';
import { laterLsn } from './lsn.ts';
import { probeNode, withNodeClient } from './probe.ts';
import type { Topology } from './topology.ts';
import type { OldPrimaryFiles } from './wal-source.ts';

/** synchronous_commit set with ALTER ROLE / ALTER DATABASE, as the target's catalog has it. */
async function commitOverrides(ctx: ReplicationContext, topology: Topology, to: string): Promise<DecisionInput['overrides']> {
  try {
    return await withNodeClient(nodeCluster(ctx, topology, to), async (client) => {
      const res = await client.query<{ db: string | null; role: string | null; setting: string }>(
        `SELECT d.datname AS db, r.rolname AS role, c AS setting
           FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole,
                unnest(s.setconfig) AS c
          WHERE lower(c) LIKE 'synchronous\\_commit=%'`,
      );
      return res.rows.map((row) => ({
        scope: row.db && row.role ? `role ${row.role} in database ${row.db}` : row.role ? `role ${row.role}` : `database ${row.db ?? '?'}`,
        value: row.setting.slice(row.setting.indexOf('=') + 1),
      }));
    });
  } catch (err) {
    return { unknown: (err as Error).message };
  }
}

/** The WAL each other node has flushed, where that can be told safely. */
async function peerPositions(ctx: ReplicationContext, topology: Topology, skip: string[]): Promise<Map<string, PeerPosition>> {
  const entries = await Promise.all(
    Object.entries(topology.nodes)
      .filter(([name]) => !skip.includes(name))
      .map(async ([name, node]): Promise<[string, PeerPosition]> => {
        if (node.role !== 'standby') return [name, { role: node.role, flushed: null, why: `it is ${node.role}` }];
        const p = await probeNode(nodeCluster(ctx, topology, name));
        if (!p.reachable) return [name, { role: node.role, flushed: null, why: `it is not reachable (${p.error ?? 'unknown'})` }];
        // Until a restarted standby has replayed all the WAL it holds it asks for none: no received
        // position, and its replay position may still be short of what it has.
        if (!p.inRecovery || p.receiveLsn === null) return [name, { role: node.role, flushed: null, why: p.inRecovery ? 'it reports no received WAL position yet (still replaying its own WAL after a start)' : 'it accepts writes' }];
        return [name, { role: node.role, flushed: laterLsn(p.receiveLsn, p.replayLsn), why: null }];
      }),
  );
  return new Map(entries.map(([name, position]) => [name.toLowerCase(), position]));
}

/** Everything decideFailover needs besides the gap. */
export async function gatherEvidence(
  ctx: ReplicationContext,
  topology: Topology,
  spec: { from: string; to: string; files: OldPrimaryFiles },
): Promise<Pick<DecisionInput, 'recordedMode' | 'config' | 'overrides' | 'peers'>> {
  const [config, overrides, peers] = await Promise.all([
    spec.files.config().catch((err: unknown) => ({ unknown: (err as Error).message })),
    commitOverrides(ctx, topology, spec.to),
    peerPositions(ctx, topology, [spec.from, spec.to]),
  ]);
  return { recordedMode: topology.mode, config, overrides, peers };
}
