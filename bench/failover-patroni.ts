/**
 * Failover drills through Patroni, many times over: RTO and RPO of `runPatroniDrill` (what
 * `taskflow drill failover --engine patroni` runs) on etcd and two Patroni nodes on loopback, in
 * synchronous_mode, beside the same number of manual-engine drills (TaskFlow's own failover
 * command on a managed cluster with one standby, synchronous mode) under the same load as the
 * baseline; ratios are Patroni ÷ manual. Issue 6's target with Patroni is RTO ≤ 10 s.
 *
 * Patroni's timings (see docs/high-availability.md#patroni-timings): a crashed postmaster is seen
 * on the agent's next HA loop, so loop_wait (1 s) bounds detection; with primary_start_timeout 0
 * the agent gives up the leader lock at once instead of restarting PostgreSQL in place; ttl (6 s)
 * only matters when the agent dies too (the lock then expires); retry_timeout (2 s) is how long the
 * leader keeps trying etcd before it demotes itself; Patroni needs ttl ≥ loop_wait + 2 × retry_timeout.
 */
import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../src/config.ts';
import { PATRONI_RTO_TARGET_SECONDS } from '../src/platform/drill/failover-report.ts';
import { runPatroniDrill } from '../src/platform/drill/patroni-drill.ts';
import { createLogger } from '../src/platform/log.ts';
import { openReplication } from '../src/platform/replication/context.ts';
import { addStandby } from '../src/platform/replication/standby.ts';
import { startPatroniDrillSetup } from '../test/helpers/patroni-drill.ts';
import { startReplicatedCluster } from '../test/helpers/replication.ts';
import { drillOnce, errorRun, LOAD_SECONDS, ratio, runOf, series, spread, WRITERS, type Run, type Series } from './failover.ts';

const RUNS = Number(process.env.BENCH_FAILOVER_RUNS ?? 10);
/** Patroni's dynamic configuration for the drills; see the module comment. */
const PATRONI_TIMINGS = { ttl: 6, loop_wait: 1, retry_timeout: 2, primary_start_timeout: 0 };

/** A series of Patroni drills: no failover command ran, so the kill-to-election time takes its place. */
function patroniSeries(runs: Run[], elected: (number | null)[]): Omit<Series, 'failoverCommandMs'> & { electedSeconds: Series['rtoSeconds'] } {
  const { failoverCommandMs: _none, ...rest } = series(runs);
  return { ...rest, electedSeconds: spread(elected) };
}

async function patroniDrills(progress: (message: string) => void): Promise<{ runs: Run[]; elected: (number | null)[]; settings: unknown }> {
  progress('failover-patroni: starting etcd and two Patroni nodes');
  const setup = await startPatroniDrillSetup(PATRONI_TIMINGS);
  try {
    const config = loadConfig({ env: {}, overrides: { dataDir: setup.tp.dataDir } });
    const log = createLogger({ level: 'silent' });
    const runs: Run[] = [];
    const elected: (number | null)[] = [];
    let settings: unknown = null;
    for (let i = 1; i <= RUNS; i++) {
      try {
        const report = await runPatroniDrill(config, log, { writers: WRITERS, durationSeconds: LOAD_SECONDS, yesThisIsProduction: false, operator: 'bench' });
        const patroni = (report.figures as { patroni?: { electedSeconds: number | null; settings: unknown } }).patroni;
        runs.push(runOf(report));
        elected.push(patroni?.electedSeconds ?? null);
        settings ??= patroni?.settings ?? null;
      } catch (err) {
        runs.push(errorRun(err));
        elected.push(null);
      }
      const run = runs.at(-1)!;
      progress(`failover-patroni: patroni ${i}/${RUNS}: ${run.outcome}, RTO ${run.rtoSeconds ?? '?'} s, elected ${elected.at(-1) ?? '?'} s, lost ${run.lostAcknowledged ?? '?'}${run.error ? ` (${run.error})` : ''}`);
    }
    return { runs, elected, settings };
  } finally {
    await setup.cleanup();
  }
}

async function manualDrills(progress: (message: string) => void): Promise<Run[]> {
  progress('failover-patroni: baseline: a managed cluster and a standby');
  const rc = await startReplicatedCluster();
  try {
    const ctx = openReplication(loadConfig({ env: {}, overrides: { dataDir: rc.dataDir } }), createLogger({ level: 'silent' }));
    await addStandby(ctx, { name: 'b' });
    const runs: Run[] = [];
    for (let i = 1; i <= RUNS; i++) {
      const run = await drillOnce(ctx, 'sync', WRITERS);
      runs.push(run);
      progress(`failover-patroni: manual ${i}/${RUNS}: ${run.outcome}, RTO ${run.rtoSeconds ?? '?'} s, lost ${run.lostAcknowledged ?? '?'}${run.error ? ` (${run.error})` : ''}`);
    }
    return runs;
  } finally {
    await rc.cleanup();
  }
}

export async function runPatroniFailoverBenchmark(progress: (message: string) => void): Promise<unknown> {
  const loadBefore = loadavg();
  const started = performance.now();
  const patroni = await patroniDrills(progress);
  const manual = await manualDrills(progress);
  const p = patroniSeries(patroni.runs, patroni.elected);
  const m = series(manual);
  return {
    description:
      `${RUNS} failover drills through Patroni (etcd + 2 Patroni nodes on loopback, synchronous_mode, the leader's postmaster SIGKILLed, Patroni elects the other node) ` +
      `beside ${RUNS} manual-engine drills (TaskFlow's failover command, managed cluster with one standby, synchronous mode) as the baseline; ${WRITERS} writers, ${LOAD_SECONDS} s of load before each kill`,
    runs: RUNS,
    writers: WRITERS,
    loadSeconds: LOAD_SECONDS,
    patroniTimings: PATRONI_TIMINGS,
    patroniSettingsSeen: patroni.settings,
    patroni: p,
    baseline: { engine: 'manual', mode: 'sync', ...m },
    ratios: {
      rtoMedian: ratio(p.rtoSeconds.median, m.rtoSeconds.median),
      rtoWorst: ratio(p.rtoSeconds.worst, m.rtoSeconds.worst),
      rpoSecondsWorst: ratio(p.rpoSeconds.worst, m.rpoSeconds.worst),
    },
    targets: {
      rtoSeconds: PATRONI_RTO_TARGET_SECONDS,
      rtoWorstWithinTarget: (p.rtoSeconds.worst ?? Infinity) <= PATRONI_RTO_TARGET_SECONDS,
      noAcknowledgedWriteLostInAnyRun: patroni.runs.every((r) => r.lostAcknowledged === 0),
    },
    machineLoad: { cpus: availableParallelism(), loadAverageBefore: loadBefore.map((v) => Math.round(v * 100) / 100), loadAverageAfter: loadavg().map((v) => Math.round(v * 100) / 100) },
    durationSeconds: Math.round((performance.now() - started) / 1000),
  };
}
