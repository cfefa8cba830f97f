/**
 * Failover: the primary is lost (or must go now), a standby becomes primary.
 *
 * 1. The target must be a running standby; no node but the primary may accept writes.
 * 2. The old primary is stopped if it still runs. Its WAL on disk (here, or over SSH on its machine)
 *    is compared with what the target received: committed transactions the target lacks would be
 *    lost, so the failover is refused unless forced, saying how many bytes and commits; unless, in
 *    synchronous mode, they can be shown never to have been acknowledged (failover-decision.ts):
 *    then they are discarded and reported as such. Nothing has changed when it is refused.
 * 3. The old primary is fenced: recorded as fenced, with standby.signal and no upstream in its
 *    data directory, so if anyone starts it, it comes up read-only. A node that comes back as a
 *    primary anyway is caught by the split-brain check every command makes.
 * 4. The target is promoted, the other standbys follow it, and it is recorded as the primary that
 *    the next `taskflow start` and every command use.
 *
 * The record of the change is written before the promotion: a failover interrupted half way is
 * finished by running the same command again.
 */
import { UserError } from '../../errors.ts';
import { assertSinglePrimary, loadTopology, nodeCluster, type ReplicationContext } from './context.ts';
import { decideFailover } from './failover-decision.ts';
import { gatherEvidence } from './failover-evidence.ts';
import { raiseFailoverAlert } from './failover-alert.ts';
import { laterLsn } from './lsn.ts';
import { postmasterState } from './processes.ts';
import { poll, probeNode } from './probe.ts';
import { promote, promotedTopology } from './promotion.ts';
import { assertNoPendingChange, requireNode, withTopologyLock, writeTopology, type Topology } from './topology.ts';
import { walGap, type WalGap } from './wal-gap.ts';
import { oldPrimaryFiles } from './wal-source.ts';

/** Commits of the old primary that the new one never received, and were discarded (not acknowledged) or lost (--force). */
export interface DiscardedCommits {
  commits: number;
  bytes: number;
  lastCommitAt: string | null;
  /** 'no': synchronous mode and nobody else confirmed them, so no client waiting for synchronous commit saw them succeed; 'maybe': lost by --force. */
  acknowledged: 'no' | 'maybe';
  /** Why they count as unacknowledged, or why that could not be established. */
  why: string;
}

export interface FailoverResult {
  from: string;
  to: string;
  timeline: number | null;
  /** Whether the old primary was still running (and was stopped) or already down. */
  oldPrimary: 'stopped' | 'was-down';
  /** What the new primary had not received from the old one. */
  gap: WalGap | null;
  /** The committed transactions in `gap`, when there were any: unacknowledged ones discarded, or ones lost by --force. */
  discarded: DiscardedCommits | null;
  /** --force was needed (and given): the failover may have lost acknowledged writes, or could not tell. */
  forced: boolean;
  /** An interrupted failover that this run finished. */
  resumed: boolean;
  tookMs: number;
}

export async function failover(ctx: ReplicationContext, options: { to: string; force?: boolean }): Promise<FailoverResult> {
  return withTopologyLock(ctx.dir, async () => {
    const started = performance.now();
    const topology = loadTopology(ctx);
    const { to } = options;
    if (topology.pending) {
      if (topology.pending.action !== 'failover' || topology.pending.to !== to) assertNoPendingChange(topology);
      const timeline = await finish(ctx, topology, to, {});
      return { from: topology.pending.from, to, timeline, oldPrimary: 'was-down', gap: null, discarded: null, forced: false, resumed: true, tookMs: elapsed(started) };
    }
    const target = requireNode(topology, to);
    if (to === topology.primary) throw new UserError(`node ${to} is already the primary`, 4);
    if (target.role !== 'standby') {
      throw new UserError(`node ${to} is not a standby: it was fenced at ${target.fence?.at ?? '?'} (${target.fence?.reason ?? 'replaced'}); rebuild it first ('taskflow cluster rebuild ${to}')`, 4);
    }
    const from = topology.primary;
    const oldPrimary = nodeCluster(ctx, topology, from);
    const probes = await assertSinglePrimary(ctx, topology);
    const targetProbe = probes.get(to);
    if (!targetProbe?.reachable) {
      throw new UserError(`node ${to} is not reachable (${targetProbe?.error ?? 'unknown'}); start it first ('taskflow cluster start ${to}'): only a running standby can take over`, 4);
    }

    ctx.log.debug({ ms: elapsed(started) }, 'nodes probed');
    // A primary that still answers is stopped cleanly (it sends its last WAL to the standbys on the
    // way down) and restarted if the failover is refused. One whose postmaster lingers without
    // answering is stopped at once and stays down: it must not come back to life and take writes.
    // A killed postmaster that init has not reaped yet is as dead as one that was.
    const wasRunning = probes.get(from)?.reachable === true;
    if (wasRunning) {
      ctx.log.warn({ node: from }, 'the primary is still running: stopping it before the failover');
      await oldPrimary.stop('fast').catch(() => oldPrimary.stop('immediate'));
    } else if (postmasterState(oldPrimary) === 'alive') {
      await oldPrimary.stop('immediate').catch((err: unknown) => {
        throw new UserError(`cannot stop what is left of ${from} (${(err as Error).message}); stop it by hand, then fail over`, 4);
      });
    }
    const files = oldPrimaryFiles(ctx, oldPrimary);
    let received = '0/0';
    const measure = async (): Promise<WalGap> => {
      const p = await probeNode(nodeCluster(ctx, topology, to));
      const replayed = p.replayLsn ?? p.receiveLsn;
      received = laterLsn(p.receiveLsn, p.replayLsn) ?? '0/0';
      if (!replayed) return { known: false, reason: `node ${to} does not report its WAL position (${p.error ?? 'no answer'})` };
      return walGap(files.wal, { replayed, received });
    };
    // A primary stopped just now sent its last WAL while shutting down; give the standby a moment to write it.
    let gap = await measure();
    if (wasRunning && gap.known && gap.missingBytes > 0) {
      gap = (await poll(async () => {
        const g = await measure();
        return g.known && g.missingBytes === 0 ? g : undefined;
      }, ctx.config.replication.catchUpTimeoutSeconds * 1000, 200)) ?? (await measure());
    }
    ctx.log.debug({ ms: elapsed(started), gap }, 'measured what the standby lacks');
    // Only commits the target lacks need the evidence of whether they were acknowledged.
    const evidence = gap.known && gap.missingCommits > 0 ? await gatherEvidence(ctx, topology, { from, to, files }) : { recordedMode: topology.mode, config: [], overrides: [], peers: new Map() };
    const decision = decideFailover({ from, to, gap, targetReceived: received, ...evidence });
    ctx.log.debug({ ms: elapsed(started), decision }, 'decided');
    if (!decision.allowed && !options.force) {
      if (wasRunning) await oldPrimary.start();
      throw new UserError(`${decision.reason}${wasRunning ? `; ${from} was restarted as the primary, nothing changed` : ''}`, 4);
    }
    const forced = !decision.allowed;
    let discarded: DiscardedCommits | null = null;
    if (decision.allowed && decision.discarded) discarded = { ...decision.discarded, acknowledged: 'no' };
    else if (!decision.allowed && gap.known && gap.missingCommits > 0) {
      discarded = { commits: gap.missingCommits, bytes: gap.missingBytes, lastCommitAt: gap.lastMissingCommitAt, acknowledged: 'maybe', why: decision.reason };
    }

    const at = new Date().toISOString();
    const fenced: Topology = {
      ...topology,
      pending: { action: 'failover', from, to, startedAt: at },
      nodes: {
        ...topology.nodes,
        [from]: { ...topology.nodes[from], port: topology.nodes[from]?.port ?? 0, addedAt: topology.nodes[from]?.addedAt ?? at, role: 'fenced', fence: { at, reason: `failover to ${to}`, replacedBy: to } },
      },
    };
    writeTopology(ctx.dir, fenced);
    if (oldPrimary.isInitialised()) oldPrimary.fence(`fenced at ${at}: node ${to} took over by failover. Make this node a standby with 'taskflow cluster rebuild ${from}'.`);
    const timeline = await finish(ctx, fenced, to, { gap, forced, discarded });
    const result: FailoverResult = { from, to, timeline, oldPrimary: wasRunning ? 'stopped' : 'was-down', gap, discarded, forced, resumed: false, tookMs: elapsed(started) };
    await raiseFailoverAlert(ctx, result);
    return result;
  });
}

/** Promotes `to` and records it as the primary (also finishes an interrupted failover). */
async function finish(ctx: ReplicationContext, fenced: Topology, to: string, detail: { gap?: WalGap; forced?: boolean; discarded?: DiscardedCommits | null }): Promise<number | null> {
  const next = promotedTopology(fenced, to);
  const { timeline } = await promote(ctx, next, to);
  const pending = fenced.pending;
  writeTopology(ctx.dir, {
    ...next,
    pending: null,
    history: [
      ...next.history,
      {
        action: 'failover',
        from: pending?.from ?? '?',
        to,
        startedAt: pending?.startedAt ?? new Date().toISOString(),
        finishedAt: new Date().toISOString(),
        timeline,
        ...(detail.gap?.known ? { lostWalBytes: detail.gap.missingBytes, lostCommits: detail.gap.missingCommits } : {}),
        ...(detail.forced ? { forced: true } : {}),
        ...(detail.discarded ? { lostCommitsAcknowledged: detail.discarded.acknowledged, lastLostCommitAt: detail.discarded.lastCommitAt } : {}),
      },
    ],
  });
  ctx.log.info({ from: pending?.from, to, timeline }, 'failover done');
  return timeline;
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}
