/**
 * How far behind a standby is when its primary is gone: the WAL the old primary wrote that the
 * standby never received, read from the old primary's own pg_wal with pg_waldump, and the committed
 * transactions in it, which a failover to that standby would lose.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalCluster } from '../postgres/local-cluster.ts';
import { runTool } from '../postgres/tools.ts';
import { extraTool, type ReplicationContext } from './context.ts';
import { formatLsn, parseLsn } from './lsn.ts';

export type WalGap =
  | { known: true; endLsn: string; missingBytes: number; missingCommits: number; lastMissingCommitAt: string | null }
  | { known: false; reason: string };

/** One line of pg_waldump: `rmgr: Transaction len (rec/tot): 34/ 34, tx: 735, lsn: 0/03000148, prev …, desc: COMMIT 2026-…`. */
const RECORD = /^rmgr: (\w+) +len \(rec\/tot\): *\d+\/ *(\d+), tx: *\d+, lsn: ([0-9A-F]+\/[0-9A-F]+), prev [0-9A-F/]+, desc: (\w+)(.*)$/;
/** The commit time at the start of a COMMIT record's description. */
const COMMIT_TIME = /^ (\d{4}-\d\d-\d\d \d\d:\d\d:[\d.]+ \w+)/;

/** Parses pg_waldump output and measures what lies beyond `received`. */
export function measureGap(dump: string, received: string): WalGap {
  const receivedAt = parseLsn(received);
  let end = receivedAt;
  let missingCommits = 0;
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
      lastMissingCommitAt = COMMIT_TIME.exec(m[5] ?? '')?.[1] ?? lastMissingCommitAt;
    }
  }
  return { known: true, endLsn: formatLsn(end), missingBytes: Number(end - receivedAt), missingCommits, lastMissingCommitAt };
}

interface WalFiles {
  timeline: number;
  /** Bytes per segment (the size of a segment file). */
  segmentSize: bigint;
  /** Segment numbers present on that timeline. */
  segments: Set<bigint>;
}

/** The newest timeline among the WAL segment files in a pg_wal directory, and its segments. */
function walFiles(walDir: string): WalFiles | null {
  const names = readdirSync(walDir).filter((entry) => /^[0-9A-F]{24}$/.test(entry));
  if (names.length === 0) return null;
  const timeline = Math.max(...names.map((n) => Number.parseInt(n.slice(0, 8), 16)));
  const segmentSize = BigInt(statSync(join(walDir, names[0] ?? '')).size);
  const perLogId = 0x100000000n / segmentSize;
  const segments = new Set(
    names.filter((n) => Number.parseInt(n.slice(0, 8), 16) === timeline).map((n) => BigInt(`0x${n.slice(8, 16)}`) * perLogId + BigInt(`0x${n.slice(16)}`)),
  );
  return { timeline, segmentSize, segments };
}

/**
 * The WAL of the stopped `oldPrimary` beyond what the standby has: records are read from
 * `replayed` (a record boundary the standby reached) and those ending after `received` count as
 * missing. Unknown when the old primary's WAL cannot be read.
 */
export async function walGap(ctx: ReplicationContext, oldPrimary: LocalCluster, standby: { replayed: string; received: string }): Promise<WalGap> {
  const walDir = join(oldPrimary.pgData, 'pg_wal');
  let files: WalFiles | null;
  try {
    files = walFiles(walDir);
  } catch (err) {
    return { known: false, reason: `cannot read ${walDir}: ${(err as Error).message}` };
  }
  if (files === null) return { known: false, reason: `${walDir} holds no WAL segment` };
  const { timeline } = files;
  const startSegment = parseLsn(standby.replayed) / files.segmentSize;
  if (!files.segments.has(startSegment)) {
    // The old primary never began the segment the standby is at: it wrote nothing beyond it.
    // (pg_waldump would search for the missing file for seconds before saying so.)
    if ([...files.segments].every((segment) => segment < startSegment)) return measureGap('', standby.received);
    return { known: false, reason: `${walDir} no longer holds the WAL from ${standby.replayed}` };
  }
  let stdout: string;
  let stderr: string;
  try {
    ({ stdout, stderr } = await runTool(extraTool(ctx, 'pg_waldump'), ['--path', walDir, '--timeline', String(timeline), '--start', standby.replayed], {
      runAs: ctx.runAs,
      timeoutMs: 300_000,
    }));
  } catch (err) {
    // pg_waldump always ends with an error at the end of valid WAL; what it printed before counts.
    const e = err as { stdout?: string; stderr?: string; message: string };
    stdout = e.stdout ?? '';
    stderr = e.stderr ?? e.message;
  }
  if (stdout.trim() === '') {
    if (/could not find a valid record after/.test(stderr)) return measureGap('', standby.received);
    return { known: false, reason: `pg_waldump could not read ${walDir}: ${stderr.trim().split('\n').pop() ?? 'no output'}` };
  }
  return measureGap(stdout, standby.received);
}
