/**
 * `backup verify` (without --restore): every copy of every complete object, in every repository
 * the catalog places it, read back and compared with its manifest's size and SHA-256. No identity
 * is needed, so the server proves its backups intact on its own. A good copy gets its
 * `verified_at` renewed; a bad or missing one raises `backup.corrupted` for that repository.
 */
import { UserError } from '../../../errors.ts';
import { listObjects, getObject, recordLocation, type CatalogEntry } from '../catalog.ts';
import { errorText, resolveAlerts } from '../outcomes.ts';
import { verifyBackupObject } from '../pipeline.ts';
import { withBackupTarget, type BackupPlatform } from '../service.ts';

export interface ObjectCheck {
  id: string;
  name: string;
  kind: string;
  repository: string;
  ok: boolean;
  problem?: string;
}

export interface VerifyObjectsOptions {
  /** Only this object (catalog id or name). */
  object?: string;
  /** Called after each copy is checked, with how many there are in all. */
  onCheck?: (check: ObjectCheck, done: number, total: number) => void;
}

function corruptedKey(repository: string): string {
  return `backup.corrupted:${repository}`;
}

export async function verifyObjects(platform: BackupPlatform, options: VerifyObjectsOptions = {}): Promise<ObjectCheck[]> {
  return withBackupTarget(platform.config, undefined, async (target) => {
    let entries: CatalogEntry[];
    if (options.object !== undefined) {
      const one = await getObject(platform.control, options.object);
      if (!one) throw new UserError(`no backup object '${options.object}'`, 3);
      entries = [one];
    } else entries = await listObjects(platform.control, { state: 'complete', limit: 1_000_000, ascending: true });
    const copies = entries.filter((e) => e.state === 'complete').flatMap((e) => e.locations.map((l) => ({ entry: e, repository: l.repository })));
    const checks: ObjectCheck[] = [];
    const failedRepositories = new Set<string>();
    for (const { entry, repository: name } of copies) {
      const repository = target.all.find((r) => r.name === name);
      let check: ObjectCheck;
      if (!repository) {
        check = { id: entry.id, name: entry.name, kind: entry.kind, repository: name, ok: false, problem: `repository ${name} is no longer configured` };
      } else {
        try {
          const result = await verifyBackupObject({ repository, name: entry.name });
          check = { id: entry.id, name: entry.name, kind: entry.kind, repository: name, ok: result.ok, ...(result.problem ? { problem: result.problem } : {}) };
          if (result.ok && result.sha256 !== entry.sha256) check = { ...check, ok: false, problem: `its manifest names SHA-256 ${result.sha256}, the catalog ${entry.sha256 ?? 'none'}` };
        } catch (err) {
          check = { id: entry.id, name: entry.name, kind: entry.kind, repository: name, ok: false, problem: errorText(err) };
        }
      }
      if (check.ok) await recordLocation(platform.control, entry.id, name, new Date());
      else {
        failedRepositories.add(name);
        await platform.alerts.raise({
          code: 'backup.corrupted',
          key: corruptedKey(name),
          severity: 'critical',
          summary: `the copy of ${entry.name} in repository ${name} does not verify: ${check.problem ?? 'unknown'}`.slice(0, 500),
          tenantId: entry.tenantId,
          details: { object: entry.name, repository: name },
        });
      }
      checks.push(check);
      options.onCheck?.(check, checks.length, copies.length);
    }
    if (options.object === undefined) {
      const clean = target.all.map((r) => r.name).filter((n) => !failedRepositories.has(n));
      await resolveAlerts(platform, clean.map(corruptedKey), 'every copy in the repository verified');
    }
    return checks;
  });
}
