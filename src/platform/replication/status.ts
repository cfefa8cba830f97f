/**
 * `cluster status`: every node's recorded and actual role, site, timeline, WAL position, lag and
 * slot, and the problems an operator should act on. Lag in bytes is the primary's WAL position
 * minus what the standby replayed; lag in seconds is 0 when caught up, else the age of the last
 * transaction the standby replayed (an upper bound when the primary was idle before the lag).
 */
import { certificatesExpireAt } from './access.ts';
import { allClusters, loadTopology, siteOf, type ReplicationContext } from './context.ts';
import { lsnGap } from './lsn.ts';
import { synchronousStandbyNames } from './mode.ts';
import { primaryView, probeNode, type NodeProbe, type PrimaryView } from './probe.ts';
import { describeRemote } from './remote-shell.ts';
import { splitBrainProblem } from './split-brain.ts';
import { slotName, type Fence, type NodeRole, type ReplicationMode, type RoleChange, type RoleChangeRecord, type Topology } from './topology.ts';

export interface SlotStatus {
  name: string;
  active: boolean;
  restartLsn: string | null;
  walStatus: string | null;
  walRetainedBytes: number | null;
}

export interface NodeStatus {
  name: string;
  /** The role TaskFlow recorded. */
  role: NodeRole;
  /** What the node says it is: primary (accepts writes), standby (in recovery), or down. */
  actual: 'primary' | 'standby' | 'down';
  site: string;
  /** A node on another machine: the SSH target TaskFlow reaches it through (`postgres@db2:22`). */
  remote?: string;
  port: number;
  pgData: string;
  error: string | null;
  timeline: number | null;
  /** A primary's WAL position, or the position a standby replayed. */
  lsn: string | null;
  upstream: string | null;
  /** A standby's WAL receiver state (`streaming` when all is well). */
  receiver: string | null;
  lagBytes: number | null;
  lagSeconds: number | null;
  replayPaused: boolean;
  /** How the primary counts this standby for synchronous commit: async, potential, sync or quorum. */
  syncState: string | null;
  /** TLS version of the replication connection, as the primary sees it. */
  tls: string | null;
  /** The standby's slot on the primary. */
  slot: SlotStatus | null;
  fence: Fence | null;
}

export interface ClusterStatus {
  primary: string;
  mode: ReplicationMode;
  /** synchronous_standby_names as the primary has it (null when the primary is down). */
  synchronousStandbyNames: string | null;
  pending: RoleChange | null;
  lastChange: RoleChangeRecord | null;
  certificatesExpireAt: string | null;
  nodes: NodeStatus[];
  /** Two nodes accepting writes (or the wrong one): TaskFlow refuses to work until it is resolved. */
  splitBrain: boolean;
  problems: string[];
}

const ROLE_ORDER: Record<NodeRole, number> = { primary: 0, standby: 1, fenced: 2 };

export async function clusterStatus(ctx: ReplicationContext): Promise<ClusterStatus> {
  const topology = loadTopology(ctx);
  const clusters = allClusters(ctx, topology);
  const primaryCluster = clusters.get(topology.primary);
  const view: PrimaryView | null = primaryCluster ? await primaryView(primaryCluster).catch(() => null) : null;
  const probes = new Map<string, NodeProbe>();
  await Promise.all([...clusters.entries()].map(async ([name, cluster]) => probes.set(name, await probeNode(cluster))));
  const now = Date.now();

  const nodes: NodeStatus[] = Object.entries(topology.nodes)
    .sort(([a, na], [b, nb]) => ROLE_ORDER[na.role] - ROLE_ORDER[nb.role] || a.localeCompare(b))
    .map(([name, node]) => {
      const probe = probes.get(name);
      const isPrimary = name === topology.primary;
      const sender = isPrimary ? undefined : view?.senders.find((s) => s.name === name);
      const slot = isPrimary ? undefined : view?.slots.find((s) => s.name === slotName(name));
      const lsn = probe?.inRecovery ? probe.replayLsn : (probe?.currentLsn ?? null);
      const lagBytes = isPrimary || node.role !== 'standby' || !view ? null : lsnGap(view.currentLsn, probe?.replayLsn ?? sender?.replayLsn ?? null);
      let lagSeconds: number | null = null;
      if (lagBytes === 0) lagSeconds = 0;
      else if (lagBytes !== null && probe?.lastReplayAt) lagSeconds = Math.max(0, Math.round((now - probe.lastReplayAt.getTime()) / 100) / 10);
      return {
        name,
        role: node.role,
        actual: !probe?.reachable ? 'down' : probe.inRecovery ? 'standby' : 'primary',
        site: siteOf(ctx.config, name, node.site),
        ...(node.remote ? { remote: describeRemote(node.remote) } : {}),
        port: node.port,
        pgData: clusters.get(name)?.pgData ?? '',
        error: probe?.reachable ? null : (probe?.error ?? null),
        timeline: probe?.timeline ?? null,
        lsn,
        upstream: node.upstream ?? null,
        receiver: probe?.receiver?.status ?? null,
        lagBytes,
        lagSeconds,
        replayPaused: probe?.replayPaused ?? false,
        syncState: sender?.syncState ?? null,
        tls: sender ? (sender.ssl ? (sender.tlsVersion ?? 'yes') : 'none') : null,
        slot: slot ? { name: slot.name, active: slot.active, restartLsn: slot.restartLsn, walStatus: slot.walStatus, walRetainedBytes: slot.retainedBytes } : null,
        fence: node.fence ?? null,
      } satisfies NodeStatus;
    });

  const split = splitBrainProblem(topology, probes);
  return {
    primary: topology.primary,
    mode: topology.mode,
    synchronousStandbyNames: view?.synchronousStandbyNames ?? null,
    pending: topology.pending,
    lastChange: topology.history.at(-1) ?? null,
    certificatesExpireAt: certificatesExpireAt(ctx),
    nodes,
    splitBrain: split !== null,
    problems: [...(split ? [split] : []), ...problemsOf(topology, nodes, view)],
  };
}

function problemsOf(topology: Topology, nodes: NodeStatus[], view: PrimaryView | null): string[] {
  const problems: string[] = [];
  if (topology.pending) {
    const p = topology.pending;
    problems.push(`a ${p.action} from ${p.from} to ${p.to} did not finish; run 'taskflow cluster ${p.action} --to ${p.to}'`);
  }
  const primary = nodes.find((n) => n.name === topology.primary);
  if (primary?.actual === 'down') {
    problems.push(`the primary ${topology.primary} is down (${primary.error ?? 'unknown'}): start it ('taskflow cluster start'), or fail over ('taskflow cluster failover --to NODE')`);
  }
  for (const node of nodes) {
    if (node.role === 'standby') {
      if (node.actual === 'down') problems.push(`standby ${node.name} is down (${node.error ?? 'unknown'}): 'taskflow cluster start ${node.name}'`);
      else if (node.receiver !== 'streaming') problems.push(`standby ${node.name} is not streaming (${node.receiver ?? 'no WAL receiver'}); see ${node.pgData}/log`);
      if (node.replayPaused) problems.push(`standby ${node.name} has its replay paused (SELECT pg_wal_replay_resume() on it)`);
      if (view && !node.slot) problems.push(`standby ${node.name} has no replication slot on the primary: 'taskflow cluster rebuild ${node.name}'`);
      const slotProblem = slotLimitProblem(node);
      if (slotProblem) problems.push(slotProblem);
    }
    if (node.role === 'fenced' && node.actual === 'standby') problems.push(`fenced node ${node.name} is running read-only; 'taskflow cluster rebuild ${node.name}' makes it a standby again`);
  }
  if (view) {
    const expected = synchronousStandbyNames(topology);
    if (view.synchronousStandbyNames !== expected) {
      problems.push(`synchronous_standby_names on the primary is '${view.synchronousStandbyNames}', expected '${expected}' for ${topology.mode} mode: run 'taskflow cluster mode ${topology.mode}'`);
    }
    const standbySlots = new Set(nodes.filter((n) => n.role === 'standby').map((n) => slotName(n.name)));
    for (const slot of view.slots) {
      if (slot.name.startsWith('taskflow_') && !standbySlots.has(slot.name)) {
        problems.push(`the slot ${slot.name} on the primary keeps ${slot.retainedBytes ?? '?'} bytes of WAL for no standby; drop it (SELECT pg_drop_replication_slot('${slot.name}'))`);
      }
    }
  }
  return problems;
}

/**
 * A slot past replication.maxSlotWalKeepSizeMb (max_slot_wal_keep_size): `unreserved` means the WAL
 * it needs goes at the next checkpoint, `lost` that it has gone and the standby can never catch up.
 */
export function slotLimitProblem(node: Pick<NodeStatus, 'name' | 'slot'>): string | null {
  if (node.slot?.walStatus === 'lost') {
    return `standby ${node.name} fell further behind than replication.maxSlotWalKeepSizeMb allows and its slot ${node.slot.name} was invalidated: the primary no longer keeps the WAL it needs, so it can never catch up; rebuild it ('taskflow cluster rebuild ${node.name}')`;
  }
  if (node.slot?.walStatus === 'unreserved') {
    return `standby ${node.name} is so far behind that its slot ${node.slot.name} keeps more WAL than replication.maxSlotWalKeepSizeMb allows; at the next checkpoint it is invalidated and the standby must be rebuilt, unless it catches up first`;
  }
  return null;
}
