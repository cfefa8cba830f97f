/**
 * Switchover: a planned move of the primary role to a standby, losing nothing.
 *
 * 1. Refused unless the primary runs, the standby streams from it and lags by no more than
 *    replication.switchoverMaxLagBytes (so the write stop below is short).
 * 2. Writes stop: a checkpoint (so the shutdown is quick), then a clean shutdown of the primary,
 *    during which it sends all its WAL to the standby. The old primary is fenced at once, so an
 *    interrupted switchover cannot leave two primaries.
 * 3. The standby must replay up to the old primary's shutdown checkpoint; if it does not within
 *    replication.catchUpTimeoutSeconds, the old primary is unfenced and restarted: nothing changed.
 * 4. The standby is promoted; the old primary is rewound (usually "no rewind required", since it
 *    stopped cleanly and the new primary has all of its WAL) and streams from the new one.
 */
import { UserError } from '../../errors.ts';
import type { LocalCluster } from '../postgres/local-cluster.ts';
import { assertSinglePrimary, loadTopology, nodeCluster, type ReplicationContext } from './context.ts';
import { formatBytes, lsnGap, parseLsn } from './lsn.ts';
import { applySynchronousNames, synchronousStandbyNames } from './mode.ts';
import { poll, primaryView, probeNode, withNodeClient } from './probe.ts';
import { promote, promotedTopology } from './promotion.ts';
import { asStandby, rejoin, writablePrimary } from './standby.ts';
import { assertNoPendingChange, requireNode, standbyNames, withTopologyLock, writeTopology, type Topology } from './topology.ts';

export interface SwitchoverResult {
  from: string;
  to: string;
  timeline: number | null;
  /** The old primary's last WAL position, which the new primary replayed before it was promoted. */
  finalLsn: string | null;
  /** How long writes were refused: from the old primary's shutdown to the new primary's promotion. */
  writeStopMs: number;
  /** Whether the old primary now streams from the new one; if not, `rejoinError` says why. */
  rejoined: boolean;
  rejoinError?: string;
  resumed: boolean;
  tookMs: number;
}

function chooseTarget(topology: Topology, to: string | undefined): string {
  if (to !== undefined) return to;
  const candidates = standbyNames(topology);
  if (candidates.length === 0) throw new UserError("there is no standby to switch over to; add one first ('taskflow cluster standby add NAME')", 4);
  if (candidates.length > 1) throw new UserError(`name the standby to switch over to with --to (standbys: ${candidates.join(', ')})`, 2);
  return candidates[0] ?? '';
}

export async function switchover(ctx: ReplicationContext, options: { to?: string } = {}): Promise<SwitchoverResult> {
  return withTopologyLock(ctx.dir, async () => {
    const started = performance.now();
    const topology = loadTopology(ctx);
    if (topology.pending) {
      const p = topology.pending;
      if (p.action !== 'switchover' || (options.to !== undefined && options.to !== p.to)) assertNoPendingChange(topology);
      // Interrupted before the promotion, the standby may not have everything yet: check as a fresh run would.
      let finalLsn: string | null = null;
      if ((await probeNode(nodeCluster(ctx, topology, p.to))).inRecovery) {
        const before: Topology = { ...topology, pending: null, nodes: { ...topology.nodes, [p.from]: { port: topology.nodes[p.from]?.port ?? 0, addedAt: topology.nodes[p.from]?.addedAt ?? '', role: 'primary' } } };
        finalLsn = await catchUpOrUndo(ctx, before, p.from, p.to);
      }
      const done = await finish(ctx, topology, p.to);
      return { from: p.from, to: p.to, finalLsn, writeStopMs: 0, ...done, resumed: true, tookMs: Math.round(performance.now() - started) };
    }
    const to = chooseTarget(topology, options.to);
    const target = requireNode(topology, to);
    const from = topology.primary;
    if (to === from) throw new UserError(`node ${to} is already the primary`, 4);
    if (target.role !== 'standby') throw new UserError(`node ${to} is fenced, not a standby; rebuild it first ('taskflow cluster rebuild ${to}')`, 4);
    await assertSinglePrimary(ctx, topology);
    const primary = await writablePrimary(ctx, topology).catch((err: unknown) => {
      throw new UserError(`${(err as Error).message}. A switchover needs a running primary; when it is lost, use 'taskflow cluster failover --to ${to}'`, 4);
    });
    const view = await primaryView(primary);
    const sender = view.senders.find((s) => s.name === to);
    if (sender?.state !== 'streaming') {
      throw new UserError(`node ${to} is not streaming from ${from} (${sender ? sender.state : 'not connected'}); start it or rebuild it, then try again`, 4);
    }
    const lag = lsnGap(view.currentLsn, sender.replayLsn) ?? Number.MAX_SAFE_INTEGER;
    const limit = ctx.config.replication.switchoverMaxLagBytes;
    if (lag > limit) {
      throw new UserError(
        `node ${to} is ${formatBytes(lag)} (${lag} bytes) behind ${from}, more than replication.switchoverMaxLagBytes (${limit}); wait until it catches up ('taskflow cluster status') and try again`,
        4,
      );
    }

    // Stop writes: checkpoint first so that the shutdown checkpoint has little left to do.
    await withNodeClient(primary, (client) => client.query('CHECKPOINT'));
    const at = new Date().toISOString();
    const fenced: Topology = {
      ...topology,
      pending: { action: 'switchover', from, to, startedAt: at },
      nodes: { ...topology.nodes, [from]: { ...topology.nodes[from], port: topology.nodes[from]?.port ?? 0, addedAt: topology.nodes[from]?.addedAt ?? at, role: 'fenced', fence: { at, reason: `switchover to ${to}`, replacedBy: to } } },
    };
    writeTopology(ctx.dir, fenced);
    const stopAt = performance.now();
    await primary.stop('fast');
    ctx.log.debug({ node: from, ms: Math.round(performance.now() - stopAt) }, 'old primary stopped');
    primary.fence(`fenced at ${at} during a switchover to ${to}; it rejoins as a standby when the switchover finishes ('taskflow cluster switchover --to ${to}' finishes an interrupted one).`);
    const finalLsn = await catchUpOrUndo(ctx, topology, from, to);
    ctx.log.debug({ node: to, finalLsn, ms: Math.round(performance.now() - stopAt) }, 'the standby replayed the final WAL');
    const done = await finish(ctx, fenced, to);
    return { from, to, finalLsn, writeStopMs: Math.round(done.promotedAt - stopAt), ...done, resumed: false, tookMs: Math.round(performance.now() - started) };
  });
}

/**
 * Waits until `to` has replayed past the stopped old primary's shutdown checkpoint, its last WAL
 * record, and returns that position. If it does not in time, the old primary is unfenced and
 * restarted and `before` recorded again: the switchover is refused with nothing changed.
 */
async function catchUpOrUndo(ctx: ReplicationContext, before: Topology, from: string, to: string): Promise<string> {
  const oldPrimary = nodeCluster(ctx, before, from);
  const finalLsn = (await oldPrimary.controlData())['Latest checkpoint location'] ?? null;
  const timeoutMs = ctx.config.replication.catchUpTimeoutSeconds * 1000;
  if (finalLsn && (await waitForReplay(nodeCluster(ctx, before, to), finalLsn, timeoutMs))) return finalLsn;
  oldPrimary.unfence();
  writeTopology(ctx.dir, before);
  await oldPrimary.start();
  throw new UserError(
    `node ${to} did not replay ${from}'s final WAL (${finalLsn ?? 'unknown'}) within ${ctx.config.replication.catchUpTimeoutSeconds} s (is its replay paused?); ${from} is the primary again and nothing changed`,
    4,
  );
}

/** Waits until `standby` has replayed past `lsn` (the old primary's shutdown checkpoint record). */
async function waitForReplay(standby: LocalCluster, lsn: string, timeoutMs: number): Promise<boolean> {
  const target = parseLsn(lsn);
  const ok = await poll(async () => {
    const p = await probeNode(standby);
    return p.replayLsn && parseLsn(p.replayLsn) > target ? true : undefined;
  }, timeoutMs, 50);
  return ok === true;
}

/** Promotes `to`, then makes the old primary its standby; records each step. */
async function finish(
  ctx: ReplicationContext,
  fenced: Topology,
  to: string,
): Promise<{ timeline: number | null; promotedAt: number; rejoined: boolean; rejoinError?: string }> {
  const from = fenced.pending?.from ?? '';
  const promoted = promotedTopology(fenced, to);
  // In sync mode the new primary waits for the old one from its first commit: it rejoins in seconds,
  // and no write is acknowledged with a single copy meanwhile.
  const intended = asStandby(promoted, from, to);
  const { timeline, promotedAt } = await promote(ctx, promoted, to, synchronousStandbyNames(intended, to));
  const history = [...fenced.history, { action: 'switchover' as const, from, to, startedAt: fenced.pending?.startedAt ?? '', finishedAt: new Date().toISOString(), timeline }];
  writeTopology(ctx.dir, { ...promoted, pending: null, history });
  const newPrimary = nodeCluster(ctx, promoted, to);
  try {
    await rejoin(ctx, promoted, { name: from, node: nodeCluster(ctx, promoted, from), primary: newPrimary, fresh: false });
    writeTopology(ctx.dir, { ...intended, pending: null, history });
    return { timeline, promotedAt, rejoined: true };
  } catch (err) {
    // The old primary stays fenced; commits must not wait for it.
    await applySynchronousNames(newPrimary, { ...promoted, pending: null });
    ctx.log.warn({ node: from, err: (err as Error).message }, 'the old primary did not rejoin as a standby');
    return { timeline, promotedAt, rejoined: false, rejoinError: (err as Error).message };
  }
}
