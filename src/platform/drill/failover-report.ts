/**
 * The end of a failover drill, whatever moved the primary (TaskFlow's failover command or Patroni):
 * the verdict against issue 6's targets, the Markdown report, the figures, and the stored evidence.
 */
import type { ReplicationMode } from '../replication/topology.ts';
import type { Killed } from './kill.ts';
import type { LoadFigures } from './measure.ts';
import { loadRows, renderReport, secondsText, type ReportSection } from './report.ts';
import { completeDrill, type DrillReport, type DrillSession } from './session.ts';

/** Targets of issue 6 on one machine, shown beside the figures (a drill never fails on a timing). */
export const MANUAL_RTO_TARGET_SECONDS = 5;
export const PATRONI_RTO_TARGET_SECONDS = 10;
export const ASYNC_RPO_TARGET_SECONDS = 1;

export type FailoverEngine = 'manual' | 'patroni';

export interface DrillFailure {
  stage: string;
  error: string;
  recovery: string[];
}

export interface FailoverConclusion {
  engine: FailoverEngine;
  from: string;
  to: string;
  mode: ReplicationMode;
  options: { writers: number; durationSeconds: number };
  /** What the drill got to: the kill and the measured load. */
  progress: { killed: Killed | null; load: LoadFigures | null };
  failure: DrillFailure | null;
  /** The summary's "promoted" row. */
  promoted: string;
  /** The engine's own rows of the Figures section. */
  failoverRows: [string, string][];
  /** How the old primary came back, or null when it did not (yet). */
  restore: { rows: [string, string][]; figures: Record<string, unknown>; line: string } | null;
  /** The engine's own figures (`failover` for the manual engine, `patroni` for Patroni). */
  engineFigures: Record<string, unknown>;
}

const ENGINE_TEXT: Record<FailoverEngine, { kind: string; rtoTarget: number; rtoNote: string }> = {
  manual: {
    kind: "failover, manual (TaskFlow's failover command)",
    rtoTarget: MANUAL_RTO_TARGET_SECONDS,
    rtoNote: "for a manual failover (the failover was started at once; an operator's reaction time comes on top)",
  },
  patroni: { kind: 'failover, automatic (Patroni elected the new leader; TaskFlow only followed it)', rtoTarget: PATRONI_RTO_TARGET_SECONDS, rtoNote: 'with Patroni' },
};

function verdictLines(c: FailoverConclusion, syncLoss: boolean): string[] {
  const verdict: string[] = [];
  const { failure, mode } = c;
  const { load } = c.progress;
  if (failure) verdict.push(`- **Failed** during ${failure.stage}: ${failure.error}`);
  if (load) {
    if (mode === 'sync') {
      verdict.push(syncLoss ? `- **Synchronous mode lost ${load.lostAcknowledged} acknowledged write(s)**: the promise of RPO 0 is broken.` : '- Synchronous mode lost no acknowledged write (RPO 0, as promised).');
    } else {
      const met = load.rpoSeconds < ASYNC_RPO_TARGET_SECONDS ? 'within' : 'over';
      verdict.push(`- Asynchronous mode lost ${load.lostAcknowledged} acknowledged write(s), ${secondsText(load.rpoSeconds)} of writes: ${met} the target of under ${ASYNC_RPO_TARGET_SECONDS} s.`);
    }
    if (load.rtoSeconds !== null) {
      const { rtoTarget, rtoNote } = ENGINE_TEXT[c.engine];
      verdict.push(`- Writes resumed ${secondsText(load.rtoSeconds)} after the kill: ${load.rtoSeconds <= rtoTarget ? 'within' : 'over'} the target of ${rtoTarget} s ${rtoNote}.`);
    }
  }
  if (c.restore) verdict.push(`- ${c.restore.line}`);
  return verdict;
}

/** Judges, renders and stores a failover drill; see the module comment. */
export function concludeFailoverDrill(session: DrillSession, c: FailoverConclusion): Promise<DrillReport> {
  const { from, to, mode, failure } = c;
  const { killed, load } = c.progress;
  const { writers, durationSeconds } = c.options;
  const syncLoss = mode === 'sync' && load !== null && load.lostAcknowledged > 0;
  const outcome = failure || syncLoss ? 'failed' : 'passed';
  const verdict = verdictLines(c, syncLoss);
  const sections: ReportSection[] = [];
  if (load) sections.push({ title: 'Figures', rows: [...loadRows(load, to), ...c.failoverRows] });
  if (c.restore) sections.push({ title: 'Restore', rows: c.restore.rows });
  if (failure) sections.push({ title: 'Recovery after the failure', lines: failure.recovery.map((line) => `- ${line}`) });
  sections.push({ title: 'Verdict', lines: verdict.length > 0 ? verdict : ['- nothing was measured'] });
  const summary: [string, string][] = [
    ['kind', ENGINE_TEXT[c.engine].kind],
    ['engine', c.engine],
    ['mode', mode],
    ['load', writers === 0 ? 'none before the kill; one writer from the kill on' : `${writers} writer(s), ${durationSeconds} s before the kill`],
    ['killed', `${from}: SIGKILL to the postmaster (pid ${killed?.pid ?? '?'}) and its children`],
    ['promoted', c.promoted],
    ['acknowledged writes', session.ackFile],
  ];
  const figures = {
    mode,
    engine: c.engine,
    from,
    to,
    killedAt: killed ? new Date(killed.at).toISOString() : null,
    load,
    ...c.engineFigures,
    restore: c.restore?.figures ?? null,
    ackFile: session.ackFile,
    timeline: session.events.map((e) => ({ at: new Date(e.at).toISOString(), what: e.what })),
    ...(failure ? { failure } : {}),
    ...(syncLoss ? { failure: { stage: 'verify', error: `synchronous mode lost ${load.lostAcknowledged} acknowledged write(s)`, recovery: [] } } : {}),
  };
  const engine = c.engine === 'patroni' ? ' through Patroni' : '';
  const title = `Failover drill${engine}, ${mode} mode, ${new Date(session.startedAt).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
  return completeDrill(session, {
    outcome,
    figures,
    reportMarkdown: renderReport({ title, outcome, session, summary, sections }),
    ...(failure ? { failure: `${failure.stage}: ${failure.error}` } : syncLoss ? { failure: 'synchronous mode lost acknowledged writes' } : {}),
  });
}
