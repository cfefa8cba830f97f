/**
 * What a recovery did, read from the server log it wrote (lc_messages = C): where it stopped, the
 * last transaction it replayed, the new timeline, or the fatal error that ended it. A restore on a
 * bare machine cannot connect to the restored cluster (its passwords live in the old data
 * directory), so the log is how it reports the point reached.
 */

export interface RecoveryReport {
  /** "recovery stopping before commit of transaction 745, time 2026-…": the target was found. */
  stoppedAt: { before: boolean; xid: string; at: string } | null;
  /** Stopped at a WAL position target (recovery_target_lsn) or at consistency (recovery_target = immediate). */
  stoppedAtLsn: string | null;
  stoppedAtConsistency: boolean;
  /** "last completed transaction was at log time …". */
  lastTransactionAt: string | null;
  /** "redo done at 0/3000060". */
  redoDoneAt: string | null;
  /** "selected new timeline ID: 2": promoted. */
  newTimeline: number | null;
  /** "archive recovery complete". */
  complete: boolean;
  /** The FATAL (or PANIC) line that ended the server, if any. */
  fatal: string | null;
  /** The target lay beyond the WAL that could be read (PostgreSQL refuses to promote then). */
  endedBeforeTarget: boolean;
}

/** PostgreSQL's timestamp text (`2026-11-23 14:05:07.123456+00`) as ISO 8601. */
export function pgTimeToIso(text: string): string {
  const trimmed = text.trim();
  const [day = '', time = '', named] = trimmed.split(' ');
  // The zone follows the seconds directly (+00, -05:30), or as a word (UTC).
  const at = /[+-]/.exec(time.slice(8));
  const clock = at ? time.slice(0, 8 + at.index) : time;
  const offset = at ? time.slice(8 + at.index) : named === undefined || named === 'UTC' || named === 'GMT' ? 'Z' : null;
  if (offset === null || !/^\d{4}-\d\d-\d\d$/.test(day) || !/^\d\d:\d\d:\d\d/.test(clock)) return trimmed;
  const zone = offset === 'Z' ? 'Z' : offset.length === 3 ? `${offset}:00` : offset.includes(':') ? offset : `${offset.slice(0, 3)}:${offset.slice(3)}`;
  const date = new Date(`${day}T${clock.slice(0, 12)}${zone}`);
  return Number.isNaN(date.getTime()) ? trimmed : date.toISOString();
}

export function parseRecoveryLog(log: string): RecoveryReport {
  const report: RecoveryReport = {
    stoppedAt: null,
    stoppedAtLsn: null,
    stoppedAtConsistency: false,
    lastTransactionAt: null,
    redoDoneAt: null,
    newTimeline: null,
    complete: false,
    fatal: null,
    endedBeforeTarget: false,
  };
  for (const line of log.split('\n')) {
    let m = /recovery stopping (before|after) (?:commit|abort) of transaction (\d+), time (.+)$/.exec(line);
    if (m?.[1] && m[2] && m[3]) report.stoppedAt = { before: m[1] === 'before', xid: m[2], at: pgTimeToIso(m[3]) };
    m = /recovery stopping (?:before|after) WAL location \(LSN\) "([0-9A-F]+\/[0-9A-F]+)"/.exec(line);
    if (m?.[1]) report.stoppedAtLsn = m[1];
    if (line.includes('recovery stopping after reaching consistency')) report.stoppedAtConsistency = true;
    m = /last completed transaction was at log time (.+)$/.exec(line);
    if (m?.[1]) report.lastTransactionAt = pgTimeToIso(m[1]);
    m = /redo done at ([0-9A-F]+\/[0-9A-F]+)/.exec(line);
    if (m?.[1]) report.redoDoneAt = m[1];
    m = /selected new timeline ID: (\d+)/.exec(line);
    if (m?.[1]) report.newTimeline = Number(m[1]);
    if (line.includes('archive recovery complete')) report.complete = true;
    m = /(?:FATAL|PANIC):\s+(.*)$/.exec(line);
    if (m?.[1] && !report.fatal) report.fatal = m[1].trim();
    if (line.includes('recovery ended before configured recovery target was reached')) report.endedBeforeTarget = true;
  }
  return report;
}
