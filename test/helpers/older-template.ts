/**
 * A test platform one step behind: its template database, and so every tenant created on it, stops
 * just before a tenant migration, for the suites that migrate data written under the older schema.
 */
import { ensureControlPlane, maintenanceDb, TEMPLATE_DB } from '../../src/platform/control-plane.ts';
import { withAdminClient } from '../../src/platform/postgres/connection.ts';
import type { Migration } from '../../src/platform/postgres/migrator.ts';
import { BASE_DOMAIN } from './http-server.ts';
import { startTestPlatform, type TestPlatform } from './platform.ts';

/** Starts a platform (base domain BASE_DOMAIN, proxy trusted) whose template is at `version - 1` of `migrations`. */
export async function startPlatformBefore(migrations: Migration[], version: number): Promise<TestPlatform> {
  const tp = await startTestPlatform({ overrides: { 'server.baseDomain': BASE_DOMAIN, 'server.trustProxy': true } });
  try {
    const { target, log } = tp.platform;
    // The template is made again from the earlier migrations only.
    await withAdminClient(target, maintenanceDb(target), async (admin) => {
      await admin.query(`ALTER DATABASE ${TEMPLATE_DB} IS_TEMPLATE false`);
      await admin.query(`DROP DATABASE ${TEMPLATE_DB}`);
    });
    await ensureControlPlane({ target, log, tenantMigrationSet: migrations.filter((m) => m.version < version), lockMaintenanceDatabases: true });
    return tp;
  } catch (err) {
    await tp.cleanup();
    throw err;
  }
}
