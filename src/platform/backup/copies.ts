/**
 * Copies of complete objects in the secondary repositories: each copy streamed from the primary
 * with its checksum checked on the way, read back from the secondary and verified, and only then
 * recorded as a location in the catalog. A failed copy raises `backup.copy-failed` for that
 * repository; a later good copy resolves it.
 */
import { getObject, recordLocation, type CatalogEntry } from './catalog.ts';
import { isBackupError } from './errors.ts';
import { errorText, reportCopyFailure, resolveAlerts } from './outcomes.ts';
import { copyBackupObject } from './pipeline.ts';
import { withBackupTarget, type BackupPlatform, type BackupTarget } from './service.ts';

export interface CopyOutcome {
  repository: string;
  ok: boolean;
  /** Already there and verified before: nothing was copied. */
  skipped?: boolean;
  verifiedAt?: string;
  error?: string;
  /** The failure was the object's (its stored bytes or manifest), not the repository's. */
  objectFault?: boolean;
}

/** Failures that belong to one object (a bad copy in the primary), so other objects may still copy. */
function isObjectFault(err: unknown): boolean {
  return isBackupError(err, 'checksum-mismatch') || isBackupError(err, 'manifest-invalid') || isBackupError(err, 'object-not-found');
}

export interface CopyOptions {
  /** Repositories already open (otherwise they are opened from the configuration and closed after). */
  target?: BackupTarget;
  /** Called as each copy starts. */
  onCopy?: (repository: string) => void;
}

/**
 * Copies a complete object from the primary to every secondary that does not hold a verified copy
 * yet. Never throws for a failed copy: each outcome is returned (and alerted); the object stays
 * good in the primary whatever happens here.
 */
export async function copyToSecondaries(platform: BackupPlatform, entry: CatalogEntry, options: CopyOptions = {}): Promise<CopyOutcome[]> {
  return withBackupTarget(platform.config, options.target, async (target) => {
    if (target.secondaries.length === 0) return [];
    const current = (await getObject(platform.control, entry.id)) ?? entry;
    if (current.state !== 'complete') throw new Error(`object ${entry.name} is ${current.state}; only complete objects are copied`);
    if (!current.locations.some((l) => l.repository === target.primary.name)) {
      throw new Error(`object ${entry.name} is not in the primary repository ${target.primary.name}; copies are made from there`);
    }
    const outcomes: CopyOutcome[] = [];
    for (const repository of target.secondaries) {
      if (current.locations.some((l) => l.repository === repository.name && l.verifiedAt !== null)) {
        outcomes.push({ repository: repository.name, ok: true, skipped: true });
        continue;
      }
      options.onCopy?.(repository.name);
      try {
        await copyBackupObject({ from: target.primary, to: repository, name: entry.name });
        const verifiedAt = new Date();
        await recordLocation(platform.control, entry.id, repository.name, verifiedAt);
        outcomes.push({ repository: repository.name, ok: true, verifiedAt: verifiedAt.toISOString() });
        await resolveAlerts(platform, [`backup.copy-failed:${repository.name}`], `copy of ${entry.name} verified`);
      } catch (err) {
        outcomes.push({ repository: repository.name, ok: false, error: errorText(err), ...(isObjectFault(err) ? { objectFault: true } : {}) });
        await reportCopyFailure(platform, err, { object: entry.name, repository: repository.name, tenantId: entry.tenantId });
      }
    }
    return outcomes;
  });
}

export interface CopyMissingOptions {
  target?: BackupTarget;
  /** Only objects finished at least this long ago, so a copy in progress elsewhere is not raced (10). */
  settleMinutes?: number;
  /** At most this many objects per pass (200). */
  limit?: number;
  /** Only these kinds (every kind by default). */
  kinds?: string[];
  /** Oldest first (WAL: each pass extends an unbroken run of segments); newest first by default. */
  oldestFirst?: boolean;
  /** Starts no further copy after this moment (ms since the epoch). */
  deadline?: number;
}

export interface CopyMissingReport {
  objects: number;
  copied: number;
  failed: number;
  skippedRepositories: string[];
  /** Objects left for a later pass because the deadline came. */
  deferred: number;
}

/**
 * Copies what an earlier failure left uncopied (or what no copy was made of yet, such as WAL
 * segments): complete objects in the primary, finished at least `settleMinutes` ago, that lack a
 * secondary. A secondary that fails once is left alone for the rest of the pass, so a server that
 * is down costs one connection timeout, not one per object; a failure of one object's own bytes
 * (a checksum mismatch in the primary) skips only that object.
 */
export async function copyMissing(platform: BackupPlatform, options: CopyMissingOptions = {}): Promise<CopyMissingReport> {
  return withBackupTarget(platform.config, options.target, async (target) => {
    const live = new Set(target.secondaries.map((r) => r.name));
    const report = { objects: 0, copied: 0, failed: 0, skippedRepositories: [] as string[], deferred: 0 };
    if (live.size === 0) return report;
    const res = await platform.control.query<{ id: string }>(
      `SELECT o.id::text FROM backup_objects o
        WHERE o.state = 'complete' AND o.finished_at < now() - make_interval(mins => $2)
          AND ($5::text[] IS NULL OR o.kind = ANY($5))
          AND EXISTS (SELECT 1 FROM backup_locations p WHERE p.object_id = o.id AND p.repository = $4)
          AND EXISTS (SELECT 1 FROM unnest($1::text[]) r(name)
                       WHERE NOT EXISTS (SELECT 1 FROM backup_locations l WHERE l.object_id = o.id AND l.repository = r.name AND l.verified_at IS NOT NULL))
          AND NOT (o.details ? 'pruning')
        ORDER BY CASE WHEN $6 THEN o.finished_at END ASC, o.finished_at DESC LIMIT $3`,
      [[...live], options.settleMinutes ?? 10, options.limit ?? 200, target.primary.name, options.kinds ?? null, options.oldestFirst ?? false],
    );
    report.objects = res.rows.length;
    for (const [index, { id }] of res.rows.entries()) {
      if (live.size === 0) break;
      if (options.deadline !== undefined && Date.now() >= options.deadline) {
        report.deferred = res.rows.length - index;
        break;
      }
      const entry = await getObject(platform.control, id);
      if (!entry) continue;
      const outcomes = await copyToSecondaries(platform, entry, { target: { ...target, secondaries: target.secondaries.filter((r) => live.has(r.name)) } });
      for (const o of outcomes) {
        if (o.ok && !o.skipped) report.copied++;
        if (!o.ok) {
          report.failed++;
          if (!o.objectFault) live.delete(o.repository);
        }
      }
    }
    report.skippedRepositories = target.secondaries.map((r) => r.name).filter((name) => !live.has(name));
    return report;
  });
}
