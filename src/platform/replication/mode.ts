/**
 * Asynchronous or synchronous replication. In sync mode the primary's synchronous_standby_names
 * is `ANY 1 ("b", "c")`: a commit returns once any one standby has flushed it, so an acknowledged
 * write survives the loss of the primary. synchronous_commit stays `on` either way. Switching is an
 * ALTER SYSTEM and a reload: no restart, no rebuild.
 */
import { UserError } from '../../errors.ts';
import { escapeLiteral } from '../postgres/connection.ts';
import type { LocalCluster } from '../postgres/local-cluster.ts';
import { assertSinglePrimary, loadTopology, nodeCluster, type ReplicationContext } from './context.ts';
import { primaryView, withNodeClient } from './probe.ts';
import { assertNoPendingChange, standbyNames, withTopologyLock, writeTopology, type ReplicationMode, type Topology } from './topology.ts';

/** The synchronous_standby_names a primary needs for the topology: empty in async mode or with no standby. */
export function synchronousStandbyNames(topology: Topology, primary = topology.primary): string {
  const names = standbyNames(topology).filter((name) => name !== primary);
  if (topology.mode !== 'sync' || names.length === 0) return '';
  return `ANY 1 (${names.map((name) => `"${name}"`).join(', ')})`;
}

/** Sets synchronous_standby_names on `node` for the topology and reloads it. */
export async function applySynchronousNames(node: LocalCluster, topology: Topology, primary = topology.primary): Promise<string> {
  const names = synchronousStandbyNames(topology, primary);
  await withNodeClient(node, async (client) => {
    await client.query(`ALTER SYSTEM SET synchronous_standby_names = ${escapeLiteral(names)}`);
    await client.query('SELECT pg_reload_conf()');
  });
  return names;
}

export interface ModeResult {
  mode: ReplicationMode;
  synchronousStandbyNames: string;
  /** Standbys streaming now, which sync mode can wait for. */
  streaming: string[];
}

/**
 * Switches between async and sync. Sync with no standby streaming would make every commit wait
 * until one comes back, so it is refused unless forced.
 */
export async function setMode(ctx: ReplicationContext, mode: ReplicationMode, options: { force?: boolean } = {}): Promise<ModeResult> {
  return withTopologyLock(ctx.dir, async () => {
    const topology = loadTopology(ctx);
    assertNoPendingChange(topology);
    await assertSinglePrimary(ctx, topology);
    const primary = nodeCluster(ctx, topology, topology.primary);
    const view = await primaryView(primary).catch((err: unknown) => {
      throw new UserError(`the primary ${topology.primary} is not reachable (${(err as Error).message}); start it or fail over first`, 4);
    });
    const standbys = standbyNames(topology);
    const streaming = view.senders.filter((s) => s.state === 'streaming' && standbys.includes(s.name)).map((s) => s.name);
    if (mode === 'sync') {
      if (standbys.length === 0) throw new UserError("sync mode needs a standby to wait for; add one first ('taskflow cluster standby add NAME')", 4);
      if (streaming.length === 0 && !options.force) {
        throw new UserError(
          `no standby is streaming now (${standbys.join(', ')}), so every commit would wait until one is; start one ('taskflow cluster start NAME') or add --force`,
          4,
        );
      }
    }
    const next: Topology = { ...topology, mode };
    const names = await applySynchronousNames(primary, next);
    writeTopology(ctx.dir, next);
    ctx.log.info({ mode, synchronousStandbyNames: names }, 'replication mode set');
    return { mode, synchronousStandbyNames: names, streaming };
  });
}
