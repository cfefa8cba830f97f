/**
 * `taskflow drill failover --engine patroni`: the loss of the leader of a cluster that Patroni runs.
 *
 * The same writer load, the same SIGKILL and the same measures as the manual drill
 * (failover-drill.ts), but TaskFlow does not fail over: Patroni's agent on the old leader sees its
 * PostgreSQL crash and, with primary_start_timeout 0, gives up the leader lock; a replica takes it
 * and promotes itself. The writers follow the leader Patroni's REST API names. Afterwards Patroni
 * rejoins the old leader as a replica (pg_rewind) and the drill checks it has every surviving row.
 */
import type { Logger } from 'pino';
import type { Config } from '../../config.ts';
import { poll } from '../replication/probe.ts';
import type { ReplicationMode } from '../replication/topology.ts';
import { concludeFailoverDrill, type DrillFailure } from './failover-report.ts';
import { killPostmaster, processRuns, type Killed } from './kill.ts';
import type { LoadFigures } from './measure.ts';
import { assessPatroni, followPatroni, leaderPostmaster, patroniMembers, type Member, type PatroniFollower, type PatroniSettings } from './patroni-cluster.ts';
import { awaitRowsAt, awaitWritesAndMeasure, RECOVERY_TIMEOUT_MS, runLoad } from './phases.ts';
import { assertDrillAllowed, productionTenants } from './preflight.ts';
import { countText } from './report.ts';
import { readControl, startDrill, type DrillReport, type DrillSession } from './session.ts';
import { prepareDrillDatabase, preciseNow, type WriterLoad } from './writers.ts';

/** How long Patroni may take to bring the old leader back as a (synchronous) replica. */
const REJOIN_TIMEOUT_MS = 90_000;

export interface PatroniDrillOptions {
  writers: number;
  durationSeconds: number;
  yesThisIsProduction: boolean;
  operator: string;
  progress?: (line: string) => void;
}

interface Progress {
  stage: string;
  killed: Killed | null;
  to: string | null;
  electedAt: number | null;
  timeline: number | null;
  load: LoadFigures | null;
  rejoined: { member: Member; tookMs: number } | null;
  rowsOnRejoined: number | null;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs one drill on the Patroni cluster of the configuration; see the module comment. */
export async function runPatroniDrill(config: Config, log: Logger, options: PatroniDrillOptions): Promise<DrillReport> {
  const follower = await followPatroni(config, log);
  try {
    return await drill(follower, options);
  } finally {
    follower.close();
  }
}

async function drill(f: PatroniFollower, options: PatroniDrillOptions): Promise<DrillReport> {
  const { scope } = f;
  const ready = await assessPatroni(f);
  assertDrillAllowed(await readControl(scope, productionTenants), options.yesThisIsProduction);
  const from = ready.leader;
  const session = await startDrill(scope, {
    kind: 'failover',
    operator: options.operator,
    progress: options.progress,
    lockMaintenanceDatabases: false,
    parameters: {
      engine: 'patroni',
      mode: ready.mode,
      writers: options.writers,
      durationSeconds: options.durationSeconds,
      yesThisIsProduction: options.yesThisIsProduction,
      primary: { name: from },
      candidates: ready.candidates,
      patroni: { endpoints: f.endpoints, ...ready.settings },
      nodes: ready.members.map((m) => ({ name: m.name, role: m.role, state: m.state ?? null, lag: m.lag ?? null })),
    },
  });
  const p: Progress = { stage: 'prepare', killed: null, to: null, electedAt: null, timeline: null, load: null, rejoined: null, rowsOnRejoined: null };
  let load: WriterLoad | null = null;
  let failure: DrillFailure | null = null;
  try {
    await prepareDrillDatabase(scope.primary().target);
    p.stage = 'load';
    const run = await runLoad(session, options.writers, options.durationSeconds);
    load = run.load;
    p.stage = 'kill';
    const postmaster = await leaderPostmaster(scope.primary().target, from);
    p.killed = await killPostmaster(postmaster.pid, () => processRuns(postmaster.pid), postmaster.dataDir);
    session.event(`SIGKILL to the postmaster of the Patroni leader ${from} (pid ${postmaster.pid}) and its children; TaskFlow does not fail over, Patroni does`, p.killed.at);
    run.startProbe();
    p.stage = 'election';
    await awaitElection(f, session, p, from);
    const to = p.to ?? from;
    p.stage = 'resume';
    p.load = await awaitWritesAndMeasure(session, { ...run, writers: options.writers }, p.killed.at, to);
    p.stage = 'rejoin';
    const rejoined = await awaitRejoin(f, from, ready.settings, p.killed.at);
    p.rejoined = rejoined;
    session.event(`Patroni rejoined ${from} as ${rejoined.member.role} of ${to} (${rejoined.tookMs} ms after the kill)`);
    p.rowsOnRejoined = await awaitRowsAt(f.targetOf(rejoined.member.host ?? '127.0.0.1', rejoined.member.port ?? 5432), session.id, p.load.survivingRows);
    session.event(`${from} has replayed ${p.rowsOnRejoined ?? '?'} of the ${p.load.survivingRows} rows of the drill`);
    if (p.rowsOnRejoined !== p.load.survivingRows) throw new Error(`the rejoined ${from} has ${p.rowsOnRejoined ?? 'none'} of the ${p.load.survivingRows} rows of the drill after a minute`);
  } catch (err) {
    await load?.stop().catch(() => undefined);
    session.event(`the drill failed during ${p.stage}: ${message(err)}`);
    // Patroni runs this cluster: TaskFlow changes nothing, it says what Patroni has made of it.
    const members = await patroniMembers(f).catch(() => []);
    const recovery = [
      'TaskFlow changed nothing: Patroni runs this cluster',
      members.length > 0 ? `Patroni members now: ${members.map((m) => `${m.name} ${m.role} ${m.state ?? '?'}`).join(', ')}` : 'no Patroni member answers',
    ];
    for (const line of recovery) session.event(`recovery: ${line}`);
    failure = { stage: p.stage, error: message(err), recovery };
  }
  return conclude(session, { from, mode: ready.mode, settings: ready.settings, options, p, failure });
}

/** Waits for Patroni to name a leader other than the killed one, running as a primary. */
async function awaitElection(f: PatroniFollower, session: DrillSession, p: Progress, from: string): Promise<void> {
  const elected = await poll(async () => {
    const now = f.locator.current() ?? (await f.locator.refresh('drill: waiting for the election')).primary;
    return now && now.name !== from ? now : undefined;
  }, RECOVERY_TIMEOUT_MS, 20);
  if (!elected) {
    throw new Error(`Patroni named no leader other than ${from} within ${RECOVERY_TIMEOUT_MS / 1000} s of the kill (${f.locator.state.reason ?? `${f.locator.current()?.name ?? 'nobody'} leads`}); see 'patronictl list' and the Patroni logs`);
  }
  p.to = elected.name;
  p.electedAt = preciseNow();
  p.timeline = elected.timeline ?? null;
  session.event(`Patroni elected ${elected.name} (timeline ${elected.timeline ?? '?'}); seen through its REST API`, p.electedAt);
}

/** Waits for Patroni to bring the old leader back as a replica (a synchronous one in synchronous_mode, so the next drill can run at once). */
async function awaitRejoin(f: PatroniFollower, name: string, settings: PatroniSettings, killedAt: number): Promise<{ member: Member; tookMs: number }> {
  const wanted = settings.synchronousMode ? ['sync_standby'] : ['replica', 'sync_standby'];
  const member = await poll(async () => {
    const m = (await patroniMembers(f)).find((x) => x.name === name);
    return m && wanted.includes(m.role) && (m.state === 'running' || m.state === 'streaming') ? m : undefined;
  }, REJOIN_TIMEOUT_MS, 250);
  if (!member) throw new Error(`Patroni did not bring ${name} back as ${wanted.join(' or ')} within ${REJOIN_TIMEOUT_MS / 1000} s; see 'patronictl list' and its log`);
  return { member, tookMs: Math.round(preciseNow() - killedAt) };
}

function conclude(
  session: DrillSession,
  r: { from: string; mode: ReplicationMode; settings: PatroniSettings; options: PatroniDrillOptions; p: Progress; failure: DrillFailure | null },
): Promise<DrillReport> {
  const { from, p, settings } = r;
  const to = p.to ?? 'nobody';
  const electionSeconds = p.killed && p.electedAt ? Math.round(p.electedAt - p.killed.at) / 1000 : null;
  return concludeFailoverDrill(session, {
    ...r,
    to,
    progress: p,
    engine: 'patroni',
    promoted: p.to ? `${p.to} by Patroni (timeline ${p.timeline ?? '?'})` : 'nothing',
    failoverRows: [
      [`kill to Patroni naming ${to} the leader`, electionSeconds === null ? 'none' : `${electionSeconds.toFixed(3)} s`],
      ['Patroni settings', `ttl ${settings.ttl ?? '?'} s, loop_wait ${settings.loopWait ?? '?'} s, retry_timeout ${settings.retryTimeout ?? '?'} s, primary_start_timeout ${settings.primaryStartTimeout} s, synchronous_mode ${settings.synchronousMode ? 'on' : 'off'}`],
    ],
    restore: p.rejoined
      ? {
          rows: [
            [`${from} rejoined by Patroni`, `${p.rejoined.member.role}, ${p.rejoined.tookMs} ms after the kill`],
            [`rows of the drill on ${from}`, p.rowsOnRejoined === null ? 'unknown' : `${countText(p.rowsOnRejoined)} of ${countText(p.load?.survivingRows ?? 0)}`],
          ],
          figures: { node: from, method: 'patroni-rejoin', role: p.rejoined.member.role, tookMs: p.rejoined.tookMs, rowsReplayed: p.rowsOnRejoined },
          line: `Patroni rejoined ${from} as a ${p.rejoined.member.role === 'sync_standby' ? 'synchronous ' : ''}replica of ${to}; the drill can be run again at once.`,
        }
      : null,
    engineFigures: { patroni: { electedSeconds: electionSeconds, timeline: p.timeline, settings } },
  });
}
