/**
 * What a base backup says about itself, as pg_basebackup --verbose reports it (the backup_label
 * and backup_manifest are inside the archive, which pg_basebackup compresses itself).
 */
export interface BaseBackupFacts {
  timeline: number;
  startLsn: string;
  stopLsn: string;
}

const START = /^pg_basebackup: write-ahead log start point: ([0-9A-F]+\/[0-9A-F]+) on timeline (\d+)$/;
const END = /^pg_basebackup: write-ahead log end point: ([0-9A-F]+\/[0-9A-F]+)$/;

/** The facts pg_basebackup --verbose reports on stderr (in the C locale); throws naming what is missing. */
export function verboseFacts(lines: string[]): BaseBackupFacts {
  let start: RegExpExecArray | null = null;
  let end: RegExpExecArray | null = null;
  for (const line of lines) {
    start ??= START.exec(line.trim());
    end ??= END.exec(line.trim());
  }
  if (!start?.[1] || !start[2] || !end?.[1]) throw new Error("pg_basebackup did not report the backup's start and end WAL positions (--verbose)");
  return { timeline: Number(start[2]), startLsn: start[1], stopLsn: end[1] };
}
