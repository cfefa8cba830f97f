/**
 * Schema rollout over every tenant database. Fails closed: each tenant migrates in one transaction
 * (all pending migrations or none), a failure is recorded in the ledger and reported, the others go on,
 * and the run as a whole reports failure.
 */
import { randomUUID } from 'node:crypto';
import { migrateTemplate, tenantMigrations } from '../control-plane.ts';
import { withAdminClient } from '../postgres/connection.ts';
import { latestVersion, migrate, type Migration } from '../postgres/migrator.ts';
import type { PlatformCore } from './provision.ts';
import { listTenants, type Tenant } from './registry.ts';

export interface TenantRolloutResult {
  slug: string;
  tenantId: string;
  outcome: 'migrated' | 'up-to-date' | 'would-migrate' | 'failed';
  from: number;
  to: number;
  applied: number[];
  attempt: number;
  error: string | null;
}

export interface RolloutReport {
  runId: string;
  dryRun: boolean;
  targetVersion: number;
  templateVersion: number | null;
  results: TenantRolloutResult[];
  failed: number;
}

export interface RolloutProps {
  platform: PlatformCore;
  migrations?: Migration[];
  concurrency?: number;
  dryRun?: boolean;
  /** Only these slugs (default: every active or suspended tenant). */
  only?: string[];
  onStart?(total: number): void;
  onResult?(result: TenantRolloutResult): void;
}

/** Runs `worker` over `items`, at most `limit` at a time, in order of start. */
export async function forEachLimited<T>(items: T[], limit: number, worker: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await worker(item);
    }
  });
  await Promise.all(runners);
}

async function migrateOne(platform: PlatformCore, tenant: Tenant, migrations: Migration[], runId: string, dryRun: boolean): Promise<TenantRolloutResult> {
  const target = latestVersion(migrations);
  let attempt = 0;
  if (!dryRun) {
    const ledger = await platform.control.query<{ attempt: number }>(
      `INSERT INTO tenant_migrations (tenant_id, status, attempt, version, target_version, run_id, started_at, error, finished_at)
       VALUES ($1, 'running', 1, $2, $3, $4, now(), NULL, NULL)
       ON CONFLICT (tenant_id) DO UPDATE SET status = 'running', attempt = tenant_migrations.attempt + 1,
         target_version = EXCLUDED.target_version, run_id = EXCLUDED.run_id, started_at = now(), error = NULL, finished_at = NULL
       RETURNING attempt`,
      [tenant.id, tenant.schemaVersion, target, runId],
    );
    attempt = ledger.rows[0]?.attempt ?? 1;
  }
  let result;
  try {
    result = await withAdminClient(platform.target, tenant.databaseName, (db) => migrate(db, migrations, { ownerRole: tenant.ownerRole, dryRun }));
  } catch (err) {
    result = { ok: false as const, from: tenant.schemaVersion, failedAt: null, error: (err as Error).message };
  }
  const base = { slug: tenant.slug, tenantId: tenant.id, attempt };
  if (!result.ok) {
    if (!dryRun) {
      await platform.control.query(
        "UPDATE tenant_migrations SET status = 'failed', error = $2, version = $3, finished_at = now() WHERE tenant_id = $1",
        [tenant.id, result.error.slice(0, 2000), result.from],
      );
    }
    return { ...base, outcome: 'failed', from: result.from, to: result.from, applied: [], error: result.error };
  }
  if (!dryRun) {
    await platform.control.query(
      "UPDATE tenant_migrations SET status = 'succeeded', version = $2, error = NULL, finished_at = now() WHERE tenant_id = $1",
      [tenant.id, result.to],
    );
    await platform.control.query('UPDATE tenants SET schema_version = $2, updated_at = now() WHERE id = $1', [tenant.id, result.to]);
  }
  const outcome = result.applied.length === 0 ? 'up-to-date' : dryRun ? 'would-migrate' : 'migrated';
  return { ...base, outcome, from: result.from, to: result.to, applied: result.applied, error: null };
}

/** Brings the template and then every tenant database to the latest tenant schema. */
export async function migrateTenants(props: RolloutProps): Promise<RolloutReport> {
  const { platform } = props;
  const migrations = props.migrations ?? tenantMigrations();
  const dryRun = props.dryRun ?? false;
  const runId = randomUUID();
  // New tenants are copied from the template, so it goes first; if it cannot migrate, nothing does.
  const templateVersion = dryRun ? null : await migrateTemplate(platform.target, migrations, platform.log);
  let tenants = (await listTenants(platform.control)).filter((t) => t.status === 'active' || t.status === 'suspended');
  if (props.only) {
    const wanted = new Set(props.only);
    tenants = tenants.filter((t) => wanted.has(t.slug));
  }
  props.onStart?.(tenants.length);
  const results: TenantRolloutResult[] = [];
  await forEachLimited(tenants, props.concurrency ?? platform.config.tenants.migrateConcurrency, async (tenant) => {
    const result = await migrateOne(platform, tenant, migrations, runId, dryRun);
    results.push(result);
    props.onResult?.(result);
  });
  results.sort((a, b) => a.slug.localeCompare(b.slug));
  return { runId, dryRun, targetVersion: latestVersion(migrations), templateVersion, results, failed: results.filter((r) => r.outcome === 'failed').length };
}
