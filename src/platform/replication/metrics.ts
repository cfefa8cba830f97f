/**
 * The replication status as Prometheus metrics (`taskflow cluster status --metrics`), built from the
 * model `clusterStatus` computes, so the table, the JSON and the metrics never disagree.
 *
 * Conventions: base units (`_bytes`, `_seconds`), 0/1 gauges for booleans, and states as one series
 * per possible state with 1 on the current one (OpenMetrics' StateSet), so a change of state never
 * leaves a stale series behind. A value that is unknown (the lag of a stopped standby, the timeline of
 * a node that is down) has no sample rather than a made-up 0: alert on `taskflow_replication_node_up`.
 */
import { Gauge, Registry } from 'prom-client';
import type { ClusterStatus } from './status.ts';

/** The values PostgreSQL reports in pg_replication_slots.wal_status. */
export const SLOT_WAL_STATES = ['reserved', 'extended', 'unreserved', 'lost'] as const;
/** How the primary counts a standby for synchronous commit (pg_stat_replication.sync_state). */
export const SYNC_STATES = ['async', 'potential', 'sync', 'quorum'] as const;

const PREFIX = 'taskflow_replication_';

/** The states of a StateSet: the known ones, plus the current one should PostgreSQL ever report a new one. */
function statesOf(known: readonly string[], current: string): readonly string[] {
  return known.includes(current) ? known : [...known, current];
}

/** A fresh registry (never prom-client's global one) holding the replication metrics of one status. */
export function replicationRegistry(status: ClusterStatus): Registry {
  const registry = new Registry();
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Gauge<L>({ name: PREFIX + name, help, labelNames, registers: [registry] });
  const flag = (value: boolean) => (value ? 1 : 0);
  gauge('sync_mode', 'Whether TaskFlow runs replication in synchronous mode (1) or asynchronous (0).', []).set(flag(status.mode === 'sync'));
  gauge('split_brain', 'Whether more than one node accepts writes, or the wrong one does (1): TaskFlow refuses to work until resolved.', []).set(flag(status.splitBrain));
  gauge('problems', 'Number of problems cluster status reports (a node down, not streaming, a slot about to be lost, ...).', []).set(status.problems.length);
  if (status.certificatesExpireAt) {
    gauge('certificate_expiry_timestamp_seconds', 'When the replication certificates expire, as a Unix time in seconds.', []).set(Date.parse(status.certificatesExpireAt) / 1000);
  }

  const up = gauge('node_up', 'Whether the node answers (1) or is down (0); role is the role TaskFlow recorded (primary, standby, fenced).', ['node', 'site', 'role']);
  const isPrimary = gauge('is_primary', 'Whether the node accepts writes (1) or is in recovery or down (0).', ['node']);
  const timeline = gauge('timeline', 'The timeline the node is on; no sample while it is down.', ['node']);
  const lagBytes = gauge('lag_bytes', "A standby's lag: the primary's WAL position minus what the standby replayed, in bytes.", ['node']);
  const lagSeconds = gauge('lag_seconds', "A standby's lag in seconds: 0 when caught up, else the age of the last transaction it replayed.", ['node']);
  const replayPaused = gauge('replay_paused', "Whether a standby's WAL replay is paused (1).", ['node']);
  const syncState = gauge('sync_state', 'How the primary counts the standby for synchronous commit: 1 on the current state.', ['node', 'sync_state']);
  const slotActive = gauge('slot_active', "Whether the standby's replication slot on the primary is in use by a connection (1).", ['node', 'slot']);
  const slotRetained = gauge('slot_retained_wal_bytes', "WAL the primary keeps for the standby's slot, in bytes.", ['node', 'slot']);
  const slotWalStatus = gauge('slot_wal_status', "The slot's wal_status (reserved, extended, unreserved, lost): 1 on the current one.", ['node', 'slot', 'wal_status']);

  for (const n of status.nodes) {
    const node = { node: n.name };
    up.set({ ...node, site: n.site, role: n.role }, flag(n.actual !== 'down'));
    isPrimary.set(node, flag(n.actual === 'primary'));
    if (n.timeline !== null) timeline.set(node, n.timeline);
    if (n.lagBytes !== null) lagBytes.set(node, n.lagBytes);
    if (n.lagSeconds !== null) lagSeconds.set(node, n.lagSeconds);
    if (n.actual === 'standby') replayPaused.set(node, flag(n.replayPaused));
    if (n.syncState !== null) {
      for (const state of statesOf(SYNC_STATES, n.syncState)) syncState.set({ ...node, sync_state: state }, flag(n.syncState === state));
    }
    if (n.slot) {
      const slot = { ...node, slot: n.slot.name };
      slotActive.set(slot, flag(n.slot.active));
      if (n.slot.walRetainedBytes !== null) slotRetained.set(slot, n.slot.walRetainedBytes);
      const walStatus = n.slot.walStatus;
      if (walStatus !== null) {
        for (const state of statesOf(SLOT_WAL_STATES, walStatus)) slotWalStatus.set({ ...slot, wal_status: state }, flag(walStatus === state));
      }
    }
  }
  return registry;
}

/** The Prometheus text exposition of a status, and its content type for an HTTP answer. */
export async function replicationMetrics(status: ClusterStatus): Promise<{ text: string; contentType: string }> {
  const registry = replicationRegistry(status);
  return { text: await registry.metrics(), contentType: registry.contentType };
}
