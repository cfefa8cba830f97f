/**
 * Holes in the WAL archive, found before anyone needs to restore across them. Restore planning
 * refuses a point in time whose WAL is not all there (restore-plan.ts, `wal-missing`), but that is
 * the moment of need; this check reads the primary repository the same way (complete objects, by
 * segment number, any timeline) from the oldest snapshot's end to the newest archived segment, and
 * raises `backup.wal-missing` (key `backup.wal-missing:<repository>`) naming the first missing
 * segment and how far the archive reaches before it. It runs once a day with the prune job and
 * resolves itself once no hole is left (a segment put back, or the snapshots before it pruned).
 */
import type { Platform } from '../../platform.ts';
import { parseLsn } from '../../replication/lsn.ts';
import { errorText, resolveAlerts } from '../outcomes.ts';
import type { Repository } from '../repository.ts';
import { clusterIdentifier, openBackupTarget } from '../service.ts';
import { indexWal, listSnapshots, segmentEnd } from './restore-plan.ts';
import { segmentFileName, segmentNumber } from './wal-names.ts';

export interface WalHole {
  /** The first missing segment's file name, and how many follow it missing. */
  first: string;
  missing: number;
  /** The last archived segment before the hole and when PostgreSQL last wrote it (null: the hole starts at the snapshot's end). */
  before: { file: string; walEndAt: string } | null;
}

export interface WalContinuity {
  repository: string;
  /** The oldest snapshot the check starts from (null: no snapshot, nothing to check). */
  from: string | null;
  /** The newest archived segment. */
  through: string | null;
  holes: WalHole[];
}

/** Finds the holes in the archived WAL of a cluster in one repository (see the module comment). */
export async function findWalHoles(repository: Repository, systemIdentifier: string): Promise<WalContinuity> {
  const result: WalContinuity = { repository: repository.name, from: null, through: null, holes: [] };
  const [oldest] = await listSnapshots(repository, systemIdentifier);
  if (!oldest) return result;
  result.from = oldest.name;
  const index = await indexWal(repository, systemIdentifier, oldest.walSegmentSize);
  const first = segmentNumber(parseLsn(oldest.stopLsn), oldest.walSegmentSize);
  let last = -1n;
  for (const segno of index.keys()) if (segno > last) last = segno;
  if (last < first) return result;
  result.through = index.get(last)?.file ?? null;
  let hole: { start: bigint; count: number } | null = null;
  for (let s = first; s <= last + 1n; s++) {
    if (s <= last && !index.has(s)) {
      hole = hole ? { start: hole.start, count: hole.count + 1 } : { start: s, count: 1 };
      continue;
    }
    if (!hole) continue;
    const before = index.get(hole.start - 1n);
    result.holes.push({
      first: segmentFileName((before ?? index.get(s))?.timeline ?? oldest.timeline, hole.start, oldest.walSegmentSize),
      missing: hole.count,
      before: before ? { file: before.file, walEndAt: (await segmentEnd(repository, before)).toISOString() } : null,
    });
    hole = null;
  }
  return result;
}

/** The daily check of the primary repository: raises or resolves `backup.wal-missing:<repository>`. */
export async function checkWalContinuity(platform: Platform): Promise<WalContinuity> {
  const primary = openBackupTarget(platform.config).primary;
  const key = `backup.wal-missing:${primary.name}`;
  const result = await findWalHoles(primary, await clusterIdentifier(platform));
  const [hole] = result.holes;
  if (!hole) {
    await resolveAlerts(platform, [key], 'the WAL archive is continuous from the oldest snapshot on');
    return result;
  }
  const reach = hole.before ? `it reaches ${hole.before.walEndAt} (${hole.before.file}) before it` : `it does not even reach past the end of snapshot ${result.from ?? ''}`;
  await platform.alerts
    .raise({
      code: 'backup.wal-missing',
      key,
      severity: 'critical',
      summary:
        `WAL segment ${hole.first}${hole.missing > 1 ? ` and the ${hole.missing - 1} after it are` : ' is'} missing from repository ${primary.name}` +
        `${result.holes.length > 1 ? ` (${result.holes.length} holes in all)` : ''}: ${reach}, so no point in time after that can be restored from the snapshots before the hole; ` +
        'take a snapshot now, and put the segment back from a secondary repository if one has it',
      details: { repository: primary.name, holes: result.holes, from: result.from, through: result.through },
    })
    .catch((err: unknown) => {
      platform.log.warn({ err: errorText(err) }, 'could not raise backup.wal-missing');
    });
  return result;
}
