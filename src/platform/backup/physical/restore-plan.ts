/**
 * What a restore to a point in time needs, read from the repository alone (object names and
 * manifests, never the catalog), so it works on a machine that has nothing but the repository's
 * configuration and the age identity: the latest snapshot that ended at or before the target,
 * and proof that the archived WAL from that snapshot up to the target is complete.
 *
 * A WAL segment's manifest carries `walEndAt`, the moment PostgreSQL last wrote to it before it
 * was archived: every commit in it happened before, every commit after it lies in later segments.
 * So "the archive reaches TIME" means some archived segment was written until TIME or later, with
 * no segment missing between the snapshot and it.
 */
import { UserError } from '../../../errors.ts';
import { MANIFEST_SUFFIX, readManifest, type BackupManifest } from '../manifest.ts';
import type { Repository } from '../repository.ts';
import { parseLsn } from '../../replication/lsn.ts';
import { DEFAULT_WAL_SEGMENT_SIZE, parseWalFileName, segmentFileName, segmentNumber, segmentNumberOf, snapshotPrefix, walPrefix } from './wal-names.ts';

export type RefusalReason = 'no-snapshot' | 'several-clusters' | 'before-oldest-snapshot' | 'after-archive' | 'wal-missing';

/** A restore that cannot be done as asked; `reason` says which rule refused it. */
export class RestoreRefused extends UserError {
  override name = 'RestoreRefused';
  readonly reason: RefusalReason;
  constructor(reason: RefusalReason, message: string) {
    super(message, reason === 'wal-missing' ? 1 : reason === 'no-snapshot' ? 3 : 2);
    this.reason = reason;
  }
}

export interface SnapshotInfo {
  name: string;
  systemIdentifier: string;
  timeline: number;
  startLsn: string;
  stopLsn: string;
  /** When the backup ended: the earliest moment it restores to. */
  stopTime: Date;
  walSegmentSize: number;
  manifest: BackupManifest;
}

export interface ArchivedSegment {
  name: string;
  file: string;
  segno: bigint;
  timeline: number;
}

function text(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/** Names in `names` that have their manifest beside them: complete objects. */
function completeObjects(names: string[]): string[] {
  const all = new Set(names);
  return names.filter((n) => !n.endsWith(MANIFEST_SUFFIX) && all.has(`${n}${MANIFEST_SUFFIX}`));
}

/** The snapshots in a repository (of one cluster, or all), oldest first. */
export async function listSnapshots(repository: Repository, systemIdentifier?: string): Promise<SnapshotInfo[]> {
  const names = completeObjects((await repository.list(snapshotPrefix(systemIdentifier))).map((o) => o.name));
  const out: SnapshotInfo[] = [];
  for (const name of names) {
    const manifest = await readManifest(repository, name);
    const s = manifest.source;
    const [sysid, startLsn, stopLsn, stopTime] = [text(s.systemIdentifier), text(s.startLsn), text(s.stopLsn), text(s.stopTime)];
    if (manifest.kind !== 'snapshot' || !sysid || !startLsn || !stopLsn || !stopTime || typeof s.timeline !== 'number') continue;
    out.push({
      name,
      systemIdentifier: sysid,
      timeline: s.timeline,
      startLsn,
      stopLsn,
      stopTime: new Date(stopTime),
      walSegmentSize: typeof s.walSegmentSize === 'number' ? s.walSegmentSize : DEFAULT_WAL_SEGMENT_SIZE,
      manifest,
    });
  }
  return out.sort((a, b) => a.stopTime.getTime() - b.stopTime.getTime());
}

/** The archived segments of a cluster by segment number (the highest timeline where several have one). */
export async function indexWal(repository: Repository, systemIdentifier: string, segmentSize: number): Promise<Map<bigint, ArchivedSegment>> {
  const index = new Map<bigint, ArchivedSegment>();
  for (const name of completeObjects((await repository.list(walPrefix(systemIdentifier))).map((o) => o.name))) {
    const file = parseWalFileName(name.slice(name.lastIndexOf('/') + 1));
    if (file?.kind !== 'segment') continue;
    const segno = segmentNumberOf(file, segmentSize);
    const known = index.get(segno);
    if (!known || known.timeline < file.timeline) index.set(segno, { name, file: file.file, segno, timeline: file.timeline });
  }
  return index;
}

/** When PostgreSQL last wrote to an archived segment (its manifest's walEndAt). */
export async function segmentEnd(repository: Repository, segment: ArchivedSegment): Promise<Date> {
  const at = text((await readManifest(repository, segment.name)).source.walEndAt);
  if (!at) throw new Error(`the manifest of ${segment.name} has no walEndAt`);
  return new Date(at);
}

export interface RestorePlan {
  systemIdentifier: string;
  snapshot: SnapshotInfo;
  /** The last archived segment recovery needs, and when it was last written; null when the snapshot alone suffices. */
  through: { file: string; walEndAt: Date } | null;
  /** The archived segments recovery reads, in order (from the snapshot's start to `through`), for prefetching. */
  walFiles: { name: string; file: string }[];
}

/** The archived segments from the snapshot's start up to segment `last`, in order. */
function walFilesThrough(index: Map<bigint, ArchivedSegment>, snapshot: SnapshotInfo, last: bigint): { name: string; file: string }[] {
  const first = segmentNumber(parseLsn(snapshot.startLsn), snapshot.walSegmentSize);
  return [...index.values()].filter((s) => s.segno >= first && s.segno <= last).sort((a, b) => (a.segno < b.segno ? -1 : 1)).map((s) => ({ name: s.name, file: s.file }));
}

/** Picks the cluster: the one asked for, or the only one in the repository. */
function oneCluster(snapshots: SnapshotInfo[], repository: Repository): string {
  const ids = [...new Set(snapshots.map((s) => s.systemIdentifier))];
  if (ids.length === 0) throw new RestoreRefused('no-snapshot', `repository ${repository.name} (${repository.location}) holds no snapshot`);
  if (ids.length > 1) {
    throw new RestoreRefused('several-clusters', `repository ${repository.name} holds snapshots of several clusters (${ids.join(', ')}); name one with --system-id`);
  }
  return ids[0] ?? '';
}

/**
 * Checks that every segment from the one holding `fromLsn` to `last` is archived; refuses naming
 * the first missing one and how far the archive is continuous.
 */
async function requireContinuous(repository: Repository, index: Map<bigint, ArchivedSegment>, snapshot: SnapshotInfo, last: bigint, goal: string): Promise<void> {
  const first = segmentNumber(parseLsn(snapshot.stopLsn), snapshot.walSegmentSize);
  for (let s = first; s <= last; s++) {
    if (index.has(s)) continue;
    const before = index.get(s - 1n);
    const reach = before ? `up to ${(await segmentEnd(repository, before)).toISOString()} (${before.file})` : `not even past the snapshot's end (${snapshot.stopTime.toISOString()})`;
    throw new RestoreRefused(
      'wal-missing',
      `WAL segment ${segmentFileName(snapshot.timeline, s, snapshot.walSegmentSize)} is missing from repository ${repository.name}: the archive after snapshot ${snapshot.name} is continuous only ${reach}, so ${goal} cannot be reached; choose an earlier time, or another repository that has the segment`,
    );
  }
}

/** Plans a restore to `at`: the snapshot, and the archived WAL through the segment written until `at` or later. */
export async function planRestoreToTime(repository: Repository, at: Date, options: { systemIdentifier?: string } = {}): Promise<RestorePlan> {
  const all = await listSnapshots(repository, options.systemIdentifier);
  const systemIdentifier = options.systemIdentifier ?? oneCluster(all, repository);
  const snapshots = all.filter((s) => s.systemIdentifier === systemIdentifier);
  const oldest = snapshots[0];
  if (!oldest) throw new RestoreRefused('no-snapshot', `repository ${repository.name} holds no snapshot of cluster ${systemIdentifier}`);
  if (at < oldest.stopTime) {
    throw new RestoreRefused('before-oldest-snapshot', `${at.toISOString()} is before the oldest snapshot in repository ${repository.name}, which ended at ${oldest.stopTime.toISOString()}; that is the earliest time it can restore to`);
  }
  const snapshot = snapshots.filter((s) => s.stopTime <= at).pop() ?? oldest;
  const index = await indexWal(repository, systemIdentifier, snapshot.walSegmentSize);
  const first = segmentNumber(parseLsn(snapshot.stopLsn), snapshot.walSegmentSize);
  const candidates = [...index.keys()].filter((s) => s >= first).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  // walEndAt grows with the segment number: binary search for the first segment written until `at` or later.
  let lo = 0;
  let hi = candidates.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const segment = index.get(candidates[mid] ?? 0n);
    if (segment && (await segmentEnd(repository, segment)) >= at) hi = mid;
    else lo = mid + 1;
  }
  const found = candidates[lo] === undefined ? undefined : index.get(candidates[lo] ?? 0n);
  if (!found) {
    const newest = candidates.length > 0 ? index.get(candidates[candidates.length - 1] ?? 0n) : undefined;
    const reach = newest ? `was written until ${(await segmentEnd(repository, newest)).toISOString()} (${newest.file})` : `holds nothing after snapshot ${snapshot.name}`;
    throw new RestoreRefused('after-archive', `${at.toISOString()} is after the newest archived WAL in repository ${repository.name}, which ${reach}; wait for the archive (archive_timeout) or choose an earlier time`);
  }
  await requireContinuous(repository, index, snapshot, found.segno, at.toISOString());
  return { systemIdentifier, snapshot, through: { file: found.file, walEndAt: await segmentEnd(repository, found) }, walFiles: walFilesThrough(index, snapshot, found.segno) };
}

/** Plans a restore of one snapshot to a WAL position at or after its end (verify --restore's row-count position). */
export async function planRestoreToLsn(repository: Repository, snapshotName: string, lsn: string): Promise<RestorePlan> {
  const snapshot = (await listSnapshots(repository)).find((s) => s.name === snapshotName);
  if (!snapshot) throw new RestoreRefused('no-snapshot', `snapshot ${snapshotName} is not in repository ${repository.name} (or has no manifest)`);
  const last = segmentNumber(parseLsn(lsn), snapshot.walSegmentSize);
  const index = await indexWal(repository, snapshot.systemIdentifier, snapshot.walSegmentSize);
  await requireContinuous(repository, index, snapshot, last, `position ${lsn}`);
  const segment = index.get(last);
  return {
    systemIdentifier: snapshot.systemIdentifier,
    snapshot,
    through: segment ? { file: segment.file, walEndAt: await segmentEnd(repository, segment) } : null,
    walFiles: walFilesThrough(index, snapshot, last),
  };
}

/** Plans a restore of one snapshot alone, to the moment it became consistent (no archived WAL needed). */
export async function planSnapshotOnly(repository: Repository, snapshotName: string): Promise<RestorePlan> {
  const snapshot = (await listSnapshots(repository)).find((s) => s.name === snapshotName);
  if (!snapshot) throw new RestoreRefused('no-snapshot', `snapshot ${snapshotName} is not in repository ${repository.name} (or has no manifest)`);
  return { systemIdentifier: snapshot.systemIdentifier, snapshot, through: null, walFiles: [] };
}

/** Whether an error is a refusal (as opposed to a repository failure). */
export function isRefusal(err: unknown, reason?: RefusalReason): err is RestoreRefused {
  return err instanceof RestoreRefused && (reason === undefined || err.reason === reason);
}
