/** The site-loss drill's outcome, figures and Markdown report. */
import type { RepositoryConfig } from '../backup/config.ts';
import type { FailoverResult } from '../replication/failover.ts';
import type { RestoredPrimary } from './from-backups.ts';
import type { LoadFigures } from './measure.ts';
import { countText, loadRows, renderReport, secondsText, type ReportSection } from './report.ts';
import { completeDrill, type DrillReport, type DrillSession } from './session.ts';
import type { TenantRecovery } from './tenant-check.ts';

/** What the site held: nodes with their directories moved aside, and repositories. */
export interface Removed {
  nodes: { name: string; pgData: string; aside: string | null; pid: number | null }[];
  repositories: { name: string; path: string; aside: string | null; note: string }[];
}

export interface SiteLossResult {
  lostSite: string;
  from: string;
  to: string;
  recoverySite: string;
  mode: string;
  lostRepositories: RepositoryConfig[];
  options: { writers: number; durationSeconds: number; assumeStandbyLost: boolean };
  removed: Removed;
  failover: FailoverResult | null;
  restored: RestoredPrimary | null;
  figures: LoadFigures | null;
  recoveries: TenantRecovery[];
  rebuilt: string[];
  failure: { stage: string; error: string; recovery: string[] } | null;
}

function tenantLines(recoveries: TenantRecovery[]): string[] {
  return [
    '| tenant | recovered after | rows before | rows after | rows lost | tables changed |',
    '|---|---|---|---|---|---|',
    ...recoveries.map(
      (t) =>
        `| ${t.slug} | ${t.recoverySeconds === null ? `not back (${t.error ?? '?'})` : secondsText(t.recoverySeconds)} | ${countText(t.rowsBefore)} | ${t.rowsAfter === null ? '?' : countText(t.rowsAfter)} | ${t.rowsLost ?? '?'} | ${t.changedTables.map((c) => `${c.table} ${c.before}→${c.after ?? '?'}`).join(', ') || 'none'} |`,
    ),
  ];
}

function restoredRows(restored: RestoredPrimary): [string, string][] {
  const r = restored.result;
  return [
    ['repository', restored.repository],
    ['snapshot', r.snapshot],
    ['restored to', `${r.at} (the end of the archive)`],
    ['last transaction kept', r.reached.lastTransactionAt ?? 'unknown'],
    ['timeline', String(r.reached.timeline ?? '?')],
    ['extract / replay / in all', `${r.timings.extractMs ?? '?'} / ${r.timings.recoveryMs ?? '?'} / ${r.timings.totalMs ?? '?'} ms`],
    ['WAL archive on the restored primary', restored.archiving],
  ];
}

export function concludeSiteLoss(session: DrillSession, r: SiteLossResult): Promise<DrillReport> {
  const unreached = r.recoveries.filter((t) => t.recoverySeconds === null);
  const tenantLoss = r.recoveries.reduce((n, t) => n + (t.rowsLost ?? 0), 0);
  // From a standby in sync mode nothing acknowledged may be lost; from backups, what the archive lacked is.
  const syncLoss = r.mode === 'sync' && !r.options.assumeStandbyLost && ((r.figures?.lostAcknowledged ?? 0) > 0 || tenantLoss > 0);
  const problem = r.failure
    ? `${r.failure.stage}: ${r.failure.error}`
    : unreached.length > 0
      ? `${unreached.length} tenant(s) not back: ${unreached.map((t) => t.slug).join(', ')}`
      : syncLoss
        ? 'synchronous mode lost data'
        : null;
  const outcome = problem ? 'failed' : 'passed';
  const slowest = Math.max(0, ...r.recoveries.map((t) => t.recoverySeconds ?? 0));
  const sections: ReportSection[] = [
    {
      title: `What was lost`,
      lines: [
        ...r.removed.nodes.map((n) => `- node ${n.name}: SIGKILL (pid ${n.pid ?? 'not running'}), ${n.pgData} moved aside`),
        ...r.removed.repositories.map((repo) => `- repository ${repo.name} (${repo.path}): ${repo.note}`),
      ],
    },
    { title: 'Tenants', lines: tenantLines(r.recoveries) },
  ];
  if (r.restored) sections.push({ title: 'Recovered from backups', rows: restoredRows(r.restored) });
  if (r.figures) {
    const took = r.failover ? `${r.failover.tookMs} ms (failover)` : r.restored ? `${r.restored.result.timings.totalMs ?? '?'} ms (restore)` : 'none';
    sections.push({ title: 'Writer load', rows: [...loadRows(r.figures, r.to), ["the recovery command's own work", took]] });
  }
  if (r.failure) sections.push({ title: 'Recovery after the failure', lines: r.failure.recovery.map((l) => `- ${l}`) });
  sections.push({
    title: 'Verdict',
    lines: [
      problem ? `- **Failed**: ${problem}` : `- Every tenant (${r.recoveries.length}) writes again at site ${r.recoverySite}, the slowest ${secondsText(slowest)} after the loss; ${tenantLoss} tenant row(s) lost.`,
      ...(r.rebuilt.length > 0 ? [`- The lost nodes were put back: ${r.rebuilt.join(', ')} rebuilt as standby(s) of ${r.to}.`] : []),
    ],
  });
  const how = r.options.assumeStandbyLost ? 'recovered from the off-site backups (the standby assumed lost too)' : 'recovered from the standby at the other site';
  const summary: [string, string][] = [
    ['kind', `site loss, ${how}`],
    ['mode', r.mode],
    ['lost site', `${r.lostSite} (nodes lost: ${r.removed.nodes.map((n) => n.name).join(', ') || '?'})`],
    ['recovered at', `${r.recoverySite}: ${r.to}${r.failover ? ` promoted (timeline ${r.failover.timeline ?? '?'})` : r.restored ? ' restored from backups' : ' (not recovered)'}`],
    ['load', `${r.options.writers} writer(s), ${r.options.durationSeconds} s before the loss`],
  ];
  const figures = {
    mode: r.mode,
    assumeStandbyLost: r.options.assumeStandbyLost,
    lostSite: r.lostSite,
    from: r.from,
    to: r.to,
    load: r.figures,
    tenants: r.recoveries,
    slowestTenantRecoverySeconds: r.recoveries.length > 0 ? slowest : null,
    tenantRowsLost: tenantLoss,
    failover: r.failover ? { tookMs: r.failover.tookMs, timeline: r.failover.timeline, gap: r.failover.gap, forced: r.failover.forced } : null,
    restoredFromBackups: r.restored ? { repository: r.restored.repository, ...r.restored.result, archiving: r.restored.archiving } : null,
    removed: r.removed,
    rebuilt: r.rebuilt,
    ackFile: session.ackFile,
    timeline: session.events.map((e) => ({ at: new Date(e.at).toISOString(), what: e.what })),
    ...(problem ? { failure: r.failure ?? { stage: 'verify', error: problem, recovery: [] } } : {}),
  };
  const title = `Site-loss drill, site ${r.lostSite}, ${new Date(session.startedAt).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
  return completeDrill(session, { outcome, figures, reportMarkdown: renderReport({ title, outcome, session, summary, sections }), ...(problem ? { failure: problem } : {}) });
}
