/**
 * P8 placement, checked when the server starts: a copy of the backups besides the primary
 * repository, and one in another region. What is missing is a warning (stderr at start) and the
 * warning-severity alert `backup.placement`, resolved by the first start with a configuration that
 * has both, since a single on-premises server may rightly keep one repository.
 */
import type { Platform } from '../platform.ts';
import { backupPlacementWarnings, backupsConfigured } from './config.ts';

export const PLACEMENT_KEY = 'backup.placement';

/** Raises or resolves `backup.placement` for the configuration; returns the warnings to show. */
export async function checkBackupPlacement(platform: Pick<Platform, 'config' | 'alerts'>): Promise<string[]> {
  const { backup } = platform.config;
  const warnings = backupPlacementWarnings(backup);
  if (warnings.length > 0) {
    await platform.alerts.raise({
      code: 'backup.placement',
      key: PLACEMENT_KEY,
      severity: 'warning',
      summary: warnings.join('; ').slice(0, 500),
      details: { repositories: backup.repositories.map((r) => ({ name: r.name, region: r.region, jurisdiction: r.jurisdiction })), primary: backup.primary ?? backup.repositories[0]?.name ?? null },
    });
  } else {
    await platform.alerts.resolve(
      PLACEMENT_KEY,
      backupsConfigured(backup) ? 'the backup repositories include a secondary in another region than the primary' : 'backups are no longer configured',
    );
  }
  return warnings;
}
