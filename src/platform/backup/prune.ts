/**
 * Prune: deletes what retention (retention.ts) says is past keeping, from every repository, and
 * forgets it in the catalog. The order makes any interruption safe to resume:
 *
 *   1. the row is marked `pruning` (it stays, so its name is remembered, but is no longer "good");
 *   2. per repository: the location is removed from the catalog, then the manifest, then the
 *      object; so the catalog never lists a copy that may be gone, and a repository never holds a
 *      manifest without its object (an object without a manifest is never a backup);
 *   3. the row is deleted once every configured repository is done.
 *
 * A prune that stops anywhere leaves rows marked `pruning`, which the next prune finishes first.
 * One prune runs at a time across all hosts (an advisory lock).
 *
 * It also drops the databases tenant restores set aside (tenant-swap.ts) once they are older than
 * `backup.retention.asideDays` (7; 0 keeps them until `taskflow restore aside --drop`).
 */
import pg from 'pg';
import { UserError } from '../../errors.ts';
import { CONTROL_DB } from '../control-plane.ts';
import { clientConfig } from '../postgres/connection.ts';
import { deleteObject, listObjects, removeLocation, type CatalogEntry } from './catalog.ts';
import { manifestName } from './manifest.ts';
import { errorText, reportFailure, resolveAlerts } from './outcomes.ts';
import { dropAside, listAside } from './physical/tenant-swap.ts';
import { planPrune, type PruneDecision } from './retention.ts';
import { withBackupTarget, type BackupPlatform, type BackupTarget } from './service.ts';

const PRUNE_LOCK = 7_317_301;
/** Far more rows than any retention window holds; a prune reads the whole catalog. */
const CATALOG_LIMIT = 10_000_000;

export interface PrunedObject {
  id: string;
  kind: string;
  name: string;
  tenant: string | null;
  dataAt: string | null;
  state: string;
  reason: string;
  /** Whether it is gone (false in a dry run, or when a repository could not be reached). */
  deleted: boolean;
  errors: { repository: string; error: string }[];
}

export interface PruneReport {
  dryRun: boolean;
  at: string;
  policy: { snapshotDays: number; exportDays: number; asideDays: number };
  /** What is (or, in a dry run, would be) deleted. */
  deleted: PrunedObject[];
  /** How many objects are kept. */
  kept: number;
  /** Objects that could not be deleted everywhere (the next prune retries them). */
  failed: number;
  /** Databases tenant restores set aside that are (or would be) dropped, with the error if one could not be. */
  aside: { database: string; tenantId: string; setAsideAt: string; dropped: boolean; error?: string }[];
}

export interface PruneOptions {
  dryRun?: boolean;
  now?: Date;
  target?: BackupTarget;
  /** Called after each object, with how many of how many are done. */
  onProgress?: (done: number, total: number, name: string) => void;
}

async function withPruneLock<T>(platform: Pick<BackupPlatform, 'target'>, fn: () => Promise<T>): Promise<T> {
  const client = new pg.Client(clientConfig(platform.target, CONTROL_DB));
  client.on('error', () => undefined);
  await client.connect();
  try {
    const got = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [PRUNE_LOCK]);
    if (!got.rows[0]?.ok) throw new UserError('another prune is running right now (on this or another host); try again when it has finished', 4);
    return await fn();
  } finally {
    // Ending the session releases the lock.
    await client.end().catch(() => undefined);
  }
}

/** Deletes one object everywhere, in the order the module comment gives. */
async function deleteEverywhere(platform: BackupPlatform, target: BackupTarget, entry: CatalogEntry): Promise<PrunedObject['errors']> {
  await platform.control.query(`UPDATE backup_objects SET details = details || jsonb_build_object('pruning', now()) WHERE id = $1`, [entry.id]);
  const errors: PrunedObject['errors'] = [];
  for (const repository of target.all) {
    try {
      await removeLocation(platform.control, entry.id, repository.name);
      await repository.delete(manifestName(entry.name));
      await repository.delete(entry.name);
    } catch (err) {
      errors.push({ repository: repository.name, error: errorText(err) });
      await reportFailure(platform, err, { what: `prune of ${entry.name}`, kind: 'prune', repository: repository.name, details: { object: entry.name } });
    }
  }
  if (errors.length === 0) await deleteObject(platform.control, entry.id);
  return errors;
}

function describe(decision: PruneDecision): PrunedObject {
  const { entry } = decision;
  return { id: entry.id, kind: entry.kind, name: entry.name, tenant: entry.tenantSlug, dataAt: entry.dataAt, state: entry.state, reason: decision.reason, deleted: false, errors: [] };
}

/** Applies retention; with `dryRun`, only reports what it would delete. */
export async function pruneBackups(platform: BackupPlatform, options: PruneOptions = {}): Promise<PruneReport> {
  const policy = platform.config.backup.retention;
  const now = options.now ?? new Date();
  const run = async (target: BackupTarget | null): Promise<PruneReport> => {
    const entries = await listObjects(platform.control, { ascending: true, limit: CATALOG_LIMIT });
    const decisions = planPrune(entries, policy, now);
    const doomed = decisions.filter((d) => d.delete);
    const cutoff = now.getTime() - policy.asideDays * 86_400_000;
    const asideDue = policy.asideDays === 0 ? [] : (await listAside(platform.target)).filter((a) => Date.parse(a.setAsideAt) <= cutoff);
    const report: PruneReport = {
      dryRun: target === null,
      at: now.toISOString(),
      policy,
      deleted: doomed.map(describe),
      kept: decisions.length - doomed.length,
      failed: 0,
      aside: asideDue.map((a) => ({ database: a.database, tenantId: a.tenantId, setAsideAt: a.setAsideAt, dropped: false })),
    };
    if (!target) return report;
    for (const aside of report.aside) {
      try {
        await dropAside(platform.target, aside.database);
        aside.dropped = true;
        platform.log.info({ database: aside.database, setAsideAt: aside.setAsideAt }, 'prune dropped a database a tenant restore set aside');
      } catch (err) {
        // Kept for the next prune; the command exits 1 (report.aside carries the error).
        aside.error = errorText(err);
      }
    }
    const reachable = new Set(target.all.map((r) => r.name));
    for (const [i, decision] of doomed.entries()) {
      const result = report.deleted[i];
      if (!result) continue;
      result.errors = await deleteEverywhere(platform, target, decision.entry);
      result.deleted = result.errors.length === 0;
      for (const e of result.errors) reachable.delete(e.repository);
      if (!result.deleted) report.failed++;
      options.onProgress?.(i + 1, doomed.length, decision.entry.name);
    }
    if (doomed.length > 0) await resolveAlerts(platform, [...reachable].map((name) => `backup.repository-unreachable:${name}`), 'prune reached the repository');
    platform.log.info({ deleted: report.deleted.length - report.failed, failed: report.failed, kept: report.kept }, 'backup prune finished');
    return report;
  };
  if (options.dryRun) return run(null);
  return withPruneLock(platform, () => withBackupTarget(platform.config, options.target, run));
}
