/**
 * The site-loss drill when the standby is assumed lost too (`--assume-standby-lost`): every node
 * is gone, and the whole cluster is restored from an off-site backup repository (the backups
 * engine's `restoreCluster`, to the newest moment the archive holds) onto the node at the other
 * site, which becomes the primary; the nodes it replaced are recorded as fenced, to be rebuilt.
 */
import type { Config } from '../../config.ts';
import { UserError } from '../../errors.ts';
import { openRepository, type RepositoryConfig } from '../backup/config.ts';
import { BackupError } from '../backup/errors.ts';
import { loadRestoreIdentity, type RestoreIdentity } from '../backup/physical/identity.ts';
import { restoreCluster, type RestoreClusterResult } from '../backup/physical/restore-cluster.ts';
import { indexWal, listSnapshots, segmentEnd } from '../backup/physical/restore-plan.ts';
import { ensureWalArchiving } from '../backup/physical/wal-archive.ts';
import { segmentNumber } from '../backup/physical/wal-names.ts';
import { loadTopology, nodeCluster, type ReplicationContext } from '../replication/context.ts';
import { parseLsn } from '../replication/lsn.ts';
import { probeNode } from '../replication/probe.ts';
import { requireNode, withTopologyLock, writeTopology, type NodeRecord, type Topology } from '../replication/topology.ts';
import type { DrillSession } from './session.ts';
import { prepareDrillDatabase } from './writers.ts';

export interface BackupSource {
  repository: RepositoryConfig;
  identity: RestoreIdentity;
}

function refuse(reason: string, exitCode = 4): never {
  throw new UserError(`refusing the drill: ${reason}`, exitCode);
}

/**
 * The repository to recover from (the backup primary when it is off the lost site, else the first
 * repository that is), and the age identity; refuses when either is missing or the repository
 * holds no snapshot of this cluster.
 */
export async function backupSource(
  config: Config,
  lost: RepositoryConfig[],
  systemIdentifier: string,
  identityFile: string | undefined,
): Promise<BackupSource> {
  if (config.backup.repositories.length === 0) refuse('--assume-standby-lost recovers from the backups, and none are configured (backup.repositories; docs/backups.md)');
  const offSite = config.backup.repositories.filter((r) => !lost.some((l) => l.name === r.name));
  const repository = offSite.find((r) => r.name === config.backup.primary) ?? offSite[0];
  if (!repository) refuse(`every backup repository (${config.backup.repositories.map((r) => r.name).join(', ')}) is at the site that is lost, so nothing would be left to recover from`);
  let identity: RestoreIdentity;
  try {
    identity = loadRestoreIdentity(identityFile === undefined ? {} : { file: identityFile });
  } catch (err) {
    if (err instanceof BackupError) refuse(err.message, 2);
    throw err;
  }
  const repo = openRepository(repository);
  try {
    if ((await listSnapshots(repo, systemIdentifier)).length === 0) {
      refuse(`repository ${repository.name} holds no snapshot of this cluster (${systemIdentifier}); take a snapshot first (docs/backups.md)`);
    }
  } finally {
    await repo.close().catch(() => undefined);
  }
  return { repository, identity };
}

/** The newest moment the repository can restore this cluster to: the end of its archived WAL after the latest snapshot, or that snapshot's end. */
async function newestRestorable(source: BackupSource, systemIdentifier: string): Promise<Date> {
  const repo = openRepository(source.repository);
  try {
    const snapshot = (await listSnapshots(repo, systemIdentifier)).at(-1);
    if (!snapshot) throw new Error(`repository ${source.repository.name} holds no snapshot of ${systemIdentifier}`);
    const first = segmentNumber(parseLsn(snapshot.stopLsn), snapshot.walSegmentSize);
    const index = await indexWal(repo, systemIdentifier, snapshot.walSegmentSize);
    const newest = [...index.values()].filter((s) => s.segno >= first).sort((a, b) => (a.segno < b.segno ? -1 : a.segno > b.segno ? 1 : 0)).at(-1);
    const end = newest ? await segmentEnd(repo, newest) : snapshot.stopTime;
    return end > snapshot.stopTime ? end : snapshot.stopTime;
  } finally {
    await repo.close().catch(() => undefined);
  }
}

export interface RestoredPrimary {
  node: string;
  repository: string;
  result: RestoreClusterResult;
  archiving: string;
}

/**
 * Restores the cluster into `node`'s (empty) data directory on its port and makes it the primary:
 * every other node is recorded as fenced, and the WAL archive is installed on it again.
 */
export async function restoreOnto(ctx: ReplicationContext, session: DrillSession, source: BackupSource, node: string): Promise<RestoredPrimary> {
  const topology = loadTopology(ctx);
  const target = nodeCluster(ctx, topology, node);
  const at = await newestRestorable(source, session.cluster);
  session.event(`restore from repository ${source.repository.name} (region ${source.repository.region}) to ${at.toISOString()}, the end of its archive, into ${node}`);
  const result = await restoreCluster({
    config: ctx.config,
    at,
    to: target.pgData,
    identity: source.identity,
    repository: source.repository.name,
    systemIdentifier: session.cluster,
    port: target.port,
    keepRunning: true,
    onPhase: (phase) => {
      session.event(`restore: ${phase}`);
    },
  });
  await adopt(ctx, node, result.reached.timeline);
  const restored = nodeCluster(ctx, loadTopology(ctx), node);
  if (!(await probeNode(restored)).reachable) throw new Error(`the restored cluster in ${restored.pgData} does not answer on port ${restored.port}`);
  // The drill's own table may have been created after the last archived WAL: the writers need it back.
  await prepareDrillDatabase(restored, { keepRows: true });
  const archiving = await ensureWalArchiving({ config: ctx.config, dir: ctx.dir, target: restored.target(), cluster: restored, masterKey: ctx.masterKey, log: ctx.log });
  session.event(`${node} is the primary, restored from snapshot ${result.snapshot} (last transaction kept ${result.reached.lastTransactionAt ?? '?'})`);
  return { node, repository: source.repository.name, result, archiving: archiving.installed ? 'installed again' : (archiving.reason ?? 'not installed') };
}

/** Records the restored `node` as the primary and every other node as fenced (replaced by the restore). */
async function adopt(ctx: ReplicationContext, node: string, timeline: number | null): Promise<void> {
  await withTopologyLock(ctx.dir, () => {
    const topology = loadTopology(ctx);
    const at = new Date().toISOString();
    const nodes: Record<string, NodeRecord> = {};
    for (const [name, record] of Object.entries(topology.nodes)) {
      const { upstream: _upstream, fence: _fence, ...rest } = record;
      nodes[name] =
        name === node
          ? { ...rest, role: 'primary' }
          : { ...rest, role: 'fenced', fence: { at, reason: `lost in a site-loss drill; the cluster was restored from backups onto ${node}`, replacedBy: node } };
    }
    requireNode(topology, node);
    const next: Topology = {
      ...topology,
      primary: node,
      pending: null,
      nodes,
      history: [...topology.history, { action: 'failover', from: topology.primary, to: node, startedAt: at, finishedAt: new Date().toISOString(), timeline, forced: true }],
    };
    writeTopology(ctx.dir, next);
    return Promise.resolve();
  });
}
