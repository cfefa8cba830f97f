/**
 * How far behind a standby is when its primary is gone: the WAL the old primary wrote that the
 * standby never received, read from the old primary's own pg_wal with pg_waldump (here, or on its
 * machine over SSH: see wal-source.ts), and the committed transactions in it, which a failover to
 * that standby would lose.
 */
import { formatLsn, parseLsn } from './lsn.ts';

export type WalGap =
  | {
      known: true;
      endLsn: string;
      missingBytes: number;
      missingCommits: number;
      /** Commit times (UTC, as pg_waldump prints them) of the first and last missing commit. */
      firstMissingCommitAt: string | null;
      lastMissingCommitAt: string | null;
    }
  | { known: false; reason: string };

/** The old primary's pg_wal, wherever it is: its segment files and pg_waldump over them. */
export interface WalSource {
  /** For messages: the pg_wal directory (and the machine, when it is another one). */
  readonly where: string;
  /** Names of the files in pg_wal, and the size of a segment file (null when there is none). */
  listing(): Promise<{ names: string[]; segmentSize: number | null }>;
  /**
   * `pg_waldump --timeline T --start LSN` over that pg_wal, with commit times in UTC. pg_waldump
   * always ends with an error at the end of valid WAL; what it printed before counts, so this
   * resolves with both streams. A source may leave out records other than commits, except the last.
   */
  dump(timeline: number, start: string): Promise<{ stdout: string; stderr: string }>;
}

/** One line of pg_waldump: `rmgr: Transaction len (rec/tot): 34/ 34, tx: 735, lsn: 0/03000148, prev …, desc: COMMIT 2026-…`. */
const RECORD = /^rmgr: (\w+) +len \(rec\/tot\): *\d+\/ *(\d+), tx: *\d+, lsn: ([0-9A-F]+\/[0-9A-F]+), prev [0-9A-F/]+, desc: (\w+)(.*)$/;
/** The commit time at the start of a COMMIT record's description. */
const COMMIT_TIME = /^ (\d{4}-\d\d-\d\d \d\d:\d\d:[\d.]+ \w+)/;

/** Parses pg_waldump output and measures what lies beyond `received`. */
export function measureGap(dump: string, received: string): WalGap {
  const receivedAt = parseLsn(received);
  let end = receivedAt;
  let missingCommits = 0;
  let firstMissingCommitAt: string | null = null;
  let lastMissingCommitAt: string | null = null;
  for (const line of dump.split('\n')) {
    const m = RECORD.exec(line);
    if (!m?.[2] || !m[3]) continue;
    const start = parseLsn(m[3]);
    const recordEnd = start + BigInt(m[2]);
    if (recordEnd <= receivedAt) continue;
    if (recordEnd > end) end = recordEnd;
    if (m[1] === 'Transaction' && (m[4] === 'COMMIT' || m[4] === 'COMMIT_PREPARED')) {
      missingCommits++;
      const at = COMMIT_TIME.exec(m[5] ?? '')?.[1] ?? null;
      firstMissingCommitAt ??= at;
      lastMissingCommitAt = at ?? lastMissingCommitAt;
    }
  }
  return { known: true, endLsn: formatLsn(end), missingBytes: Number(end - receivedAt), missingCommits, firstMissingCommitAt, lastMissingCommitAt };
}

/** A commit time as pg_waldump prints it in UTC (`2026-11-23 22:07:31.156471 UTC`), or null for anything else. */
export function parseCommitTime(text: string | null): Date | null {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)([.\d]*) UTC$/.exec(text ?? '');
  if (!m) return null;
  // Microseconds are cut to the milliseconds a Date holds.
  const at = new Date(`${m[1] ?? ''}T${m[2] ?? ''}${(m[3] ?? '').slice(0, 4)}Z`);
  return Number.isNaN(at.getTime()) ? null : at;
}

interface WalFiles {
  timeline: number;
  /** Bytes per segment (the size of a segment file). */
  segmentSize: bigint;
  /** Segment numbers present on that timeline. */
  segments: Set<bigint>;
}

/** The newest timeline among the WAL segment files of a pg_wal listing, and its segments. */
export function walFiles(listing: { names: string[]; segmentSize: number | null }): WalFiles | null {
  const names = listing.names.filter((entry) => /^[0-9A-F]{24}$/.test(entry));
  if (names.length === 0 || !listing.segmentSize) return null;
  const timeline = Math.max(...names.map((n) => Number.parseInt(n.slice(0, 8), 16)));
  const segmentSize = BigInt(listing.segmentSize);
  const perLogId = 0x100000000n / segmentSize;
  const segments = new Set(
    names.filter((n) => Number.parseInt(n.slice(0, 8), 16) === timeline).map((n) => BigInt(`0x${n.slice(8, 16)}`) * perLogId + BigInt(`0x${n.slice(16)}`)),
  );
  return { timeline, segmentSize, segments };
}

/**
 * The WAL of the stopped old primary beyond what the standby has: records are read from
 * `replayed` (a record boundary the standby reached) and those ending after `received` count as
 * missing. Unknown when the old primary's WAL cannot be read.
 */
export async function walGap(source: WalSource, standby: { replayed: string; received: string }): Promise<WalGap> {
  let files: WalFiles | null;
  try {
    files = walFiles(await source.listing());
  } catch (err) {
    return { known: false, reason: `cannot read ${source.where}: ${(err as Error).message}` };
  }
  if (files === null) return { known: false, reason: `${source.where} holds no WAL segment` };
  const startSegment = parseLsn(standby.replayed) / files.segmentSize;
  if (!files.segments.has(startSegment)) {
    // The old primary never began the segment the standby is at: it wrote nothing beyond it.
    // (pg_waldump would search for the missing file for seconds before saying so.)
    if ([...files.segments].every((segment) => segment < startSegment)) return measureGap('', standby.received);
    return { known: false, reason: `${source.where} no longer holds the WAL from ${standby.replayed}` };
  }
  let out: { stdout: string; stderr: string };
  try {
    out = await source.dump(files.timeline, standby.replayed);
  } catch (err) {
    return { known: false, reason: `pg_waldump could not read ${source.where}: ${(err as Error).message}` };
  }
  if (out.stdout.trim() === '') {
    if (/could not find a valid record after/.test(out.stderr)) return measureGap('', standby.received);
    return { known: false, reason: `pg_waldump could not read ${source.where}: ${out.stderr.trim().split('\n').pop() ?? 'no output'}` };
  }
  return measureGap(out.stdout, standby.received);
}
