/** The Markdown report of a drill: what was done, what was measured, the timeline, and the verdict. */
import type { LoadFigures } from './measure.ts';
import type { DrillEvent, DrillSession } from './session.ts';

export interface ReportSection {
  title: string;
  /** A two-column table. */
  rows?: [string, string][];
  /** Paragraph lines or list items (start them with `- `). */
  lines?: string[];
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

function table(rows: [string, string][], head: [string, string] = ['', '']): string[] {
  return [`| ${head[0]} | ${head[1]} |`, '|---|---|', ...rows.map(([k, v]) => `| ${cell(k)} | ${cell(v)} |`)];
}

export function secondsText(value: number | null | undefined): string {
  return value === null || value === undefined ? 'none' : `${value.toFixed(3)} s`;
}

export function countText(value: number): string {
  return value.toLocaleString('en-GB');
}

/** Timeline lines: seconds since the drill started, then the event. */
export function timelineRows(session: DrillSession): [string, string][] {
  return session.events.map((e: DrillEvent) => [`+${((e.at - session.startedAt) / 1000).toFixed(3)} s`, e.what]);
}

/** Rows describing the writer load's outcome (shared by both kinds of drill). */
export function loadRows(load: LoadFigures, newPrimary: string): [string, string][] {
  return [
    [`RTO: kill to the first write ${newPrimary} acknowledged`, secondsText(load.rtoSeconds)],
    ['RPO: acknowledged writes lost', `${countText(load.lostAcknowledged)} of ${countText(load.acknowledgedByOldPrimary)} acknowledged by the old primary`],
    ['RPO: seconds of acknowledged writes lost', secondsText(load.rpoSeconds)],
    ['writes refused (last acknowledgement on the old primary to the first on the new)', secondsText(load.writesStoppedSeconds)],
    ['acknowledged writes in all', `${countText(load.acknowledged)} (${countText(load.acknowledgedByNewPrimary)} by ${newPrimary}) from ${load.writers} writer(s)`],
    ['committed but never acknowledged (the connection died first), survived', countText(load.unacknowledgedSurvivors)],
    ['failed write attempts', Object.entries(load.failedWrites).map(([k, v]) => `${k}: ${v}`).join(', ') || 'none'],
  ];
}

export function renderReport(input: { title: string; outcome: string; session: DrillSession; summary: [string, string][]; sections: ReportSection[] }): string {
  const { session } = input;
  const out: string[] = [
    `# ${input.title}: ${input.outcome}`,
    '',
    ...table(
      [
        ['drill', session.id],
        ['started', new Date(session.startedAt).toISOString()],
        ['finished', new Date().toISOString()],
        ['cluster (system identifier)', session.cluster],
        ['operator', session.operator],
        ...input.summary,
      ],
      ['', ''],
    ),
  ];
  for (const section of input.sections) {
    out.push('', `## ${section.title}`, '');
    if (section.rows) out.push(...table(section.rows, ['', '']));
    if (section.rows && section.lines) out.push('');
    if (section.lines) out.push(...section.lines);
  }
  out.push('', '## Timeline', '', ...table(timelineRows(session), ['time', 'event']));
  return out.join('\n') + '\n';
}
