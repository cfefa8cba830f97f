/**
 * `taskflow restore tenant SLUG --at TIME [--as NEW_SLUG] [--force]`: one tenant back to a point in
 * time without touching any other. The cluster is restored to TIME in a scratch cluster beside the
 * live one; that tenant's database is dumped from it and loaded into a new database on the live
 * cluster; then, in place, the live database is renamed aside and the restored one takes its name
 * in one transaction (restore-tenant's swap), or, with --as, the restored data becomes a new tenant
 * beside the original. Every step before the swap leaves the live tenant untouched, and a restore
 * cut off anywhere is cleaned up by the next one. Who restored what is written to the audit log,
 * the snapshot's catalog row gets the proof.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { AppError, UserError } from '../../../errors.ts';
import { Audit } from '../../audit/audit.ts';
import { ControlDbAuditStore } from '../../audit/control-store.ts';
import { CONTROL_DB } from '../../control-plane.ts';
import type { Platform } from '../../platform.ts';
import { clientConfig, withAdminClient } from '../../postgres/connection.ts';
import { assertValidSlug, createTenant, deleteTenant } from '../../tenants/provision.ts';
import { announceTenantChange, findTenantById, findTenantBySlug, recordTenantEvent, type Tenant } from '../../tenants/registry.ts';
import { requireTenant } from '../../tenants/lifecycle.ts';
import { getObject, recordProof } from '../catalog.ts';
import { errorText, resolveAlerts } from '../outcomes.ts';
import type { Repository } from '../repository.ts';
import { openBackupTarget } from '../service.ts';
import type { RestoreIdentity } from './identity.ts';
import { isRefusal, planRestoreToTime, type RestorePlan } from './restore-plan.ts';
import { archiveUntilNow, releaseScratchRestore, removeScratchRestore, restoreIntoScratch, sweepInterruptedRestores, type ScratchRestore } from './scratch-restore.ts';
import { loadDatabase, prepareLoaded } from './tenant-load.ts';
import { assertNotInUse, dropIncoming, incomingName, installForNewTenant, swapIn, tenantUse, type TenantUse } from './tenant-swap.ts';

const RESTORE_LOCK = 7_317_301;

export interface RestoreTenantProps {
  platform: Platform;
  slug: string;
  at: Date;
  identity: RestoreIdentity;
  /** Who asked (`cli:alice`), for the audit log and tenant events. */
  actor: string;
  /** Restore into a new tenant with this slug instead of replacing the original. */
  asSlug?: string;
  /** Disconnect whoever uses the tenant instead of refusing. */
  force?: boolean;
  /** Restore from this repository (default: the primary). */
  repository?: string;
  onPhase?: (phase: string) => void;
}

export interface RestoreTenantResult {
  tenant: string;
  /** The tenant that now holds the restored data (the original, or the --as one). */
  restoredInto: string;
  database: string;
  at: string;
  snapshot: string;
  /** What recovery reports: where it stopped (the first transaction after TIME) and the last one it kept. */
  reached: { stoppedBeforeCommitAt: string | null; lastTransactionAt: string | null; endOfArchive: boolean };
  /** The replaced database, kept until pruned ('taskflow restore aside'). */
  asideDatabase: string | null;
  /** --as: the new tenant's API token, shown once. */
  apiToken?: string;
  schemaVersion: number;
  timings: Record<string, number>;
}

/** Runs `fn` holding the tenant's restore lock (one restore of a tenant at a time, across hosts). */
async function withRestoreLock<T>(platform: Platform, tenant: Tenant, fn: () => Promise<T>): Promise<T> {
  const client = new pg.Client({ ...clientConfig(platform.target, CONTROL_DB), application_name: 'taskflow-restore' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const got = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [RESTORE_LOCK, tenant.id]);
    if (!got.rows[0]?.ok) throw new AppError('conflict', `tenant '${tenant.slug}' is being restored by another process right now`);
    return await fn();
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The plan, after making the archive reach TIME when it is just past (the live host can close the segment). */
async function planFor(platform: Platform, repository: Repository, at: Date): Promise<RestorePlan> {
  try {
    return await planRestoreToTime(repository, at);
  } catch (err) {
    if (!isRefusal(err, 'after-archive') || at.getTime() > Date.now()) throw err;
    await archiveUntilNow(platform);
    return planRestoreToTime(repository, at);
  }
}

export async function restoreTenant(props: RestoreTenantProps): Promise<RestoreTenantResult> {
  const { platform, at } = props;
  const began = Date.now();
  if (at.getTime() > Date.now()) throw new UserError(`${at.toISOString()} is in the future`, 2);
  const tenant = await requireTenant(platform, props.slug);
  if (tenant.status !== 'active' && tenant.status !== 'suspended') throw new AppError('conflict', `tenant '${tenant.slug}' is ${tenant.status}; only active or suspended tenants are restored`);
  if (props.asSlug !== undefined) {
    assertValidSlug(props.asSlug);
    if (await findTenantBySlug(platform.control, props.asSlug)) throw new AppError('conflict', `slug '${props.asSlug}' is taken`);
  }
  const audit = new Audit(new ControlDbAuditStore(platform.control));
  /** A `tenant.restored` failure in the audit log: who tried, for when, why it did not happen. */
  const recordFailure = (err: unknown, details: Record<string, unknown>) =>
    audit
      .record({ action: 'tenant.restored', outcome: 'failure', tenantId: tenant.id, actor: { type: 'operator', id: props.actor, label: props.actor }, subject: { type: 'tenant', id: tenant.id }, ip: null, userAgent: null, details: { at: at.toISOString(), as: props.asSlug ?? null, force: props.force === true, ...details, error: errorText(err) } })
      .catch(() => undefined);
  // With --force, what was in use goes to the audit log: whom the restore disconnected.
  const useAtStart = props.asSlug === undefined ? await tenantUse(platform.target, tenant) : null;
  if (useAtStart && !props.force) {
    try {
      assertNotInUse(tenant, useAtStart);
    } catch (err) {
      // A refused attempt is recorded too.
      await recordFailure(err, { refused: 'in-use' });
      throw err;
    }
  }

  const target = openBackupTarget(platform.config);
  const repository = props.repository === undefined ? target.primary : target.all.find((r) => r.name === props.repository);
  const repositoryConfig = platform.config.backup.repositories.find((r) => r.name === repository?.name);
  if (!repository || !repositoryConfig) throw new UserError(`no repository named '${props.repository ?? ''}'`, 2);
  try {
    return await withRestoreLock(platform, tenant, async () => {
      await sweepInterruptedRestores(platform);
      props.onPhase?.('planning from the repository');
      const plan = await planFor(platform, repository, at);
      let scratch: ScratchRestore | null = null;
      let created: Tenant | null = null;
      try {
        scratch = await restoreIntoScratch({
          platform, repository, repositoryConfig, plan, target: { time: at }, identity: props.identity, purpose: 'restore-tenant',
          facts: { tenant: tenant.slug, at: at.toISOString() }, ...(props.onPhase ? { onPhase: props.onPhase } : {}),
        });
        const timings: Record<string, number> = { ...scratch.timings };
        const existed = await withAdminClient(scratch.cluster.target(), 'postgres', async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [tenant.databaseName])).rowCount === 1);
        if (!existed) throw new UserError(`tenant '${tenant.slug}' did not exist yet at ${at.toISOString()}: its database is not in the cluster as it was then`, 2);
        let apiToken: string | undefined;
        if (props.asSlug !== undefined) {
          props.onPhase?.(`creating tenant ${props.asSlug}`);
          const made = await createTenant({ platform, slug: props.asSlug, name: `${tenant.name} (restored to ${at.toISOString()})`.slice(0, 200), actor: props.actor });
          created = made.tenant;
          apiToken = made.apiToken;
          scratch.job.note({ createdTenant: props.asSlug });
        }
        const into = created ?? tenant;
        const incoming = incomingName(into.databaseName, randomBytes(3).toString('hex'));
        scratch.job.note({ incomingDatabase: incoming });
        props.onPhase?.(`copying ${tenant.databaseName} out of the scratch cluster into ${incoming}`);
        let started = Date.now();
        await loadDatabase({
          tools: platform.tools, from: scratch.cluster.target(), fromDatabase: tenant.databaseName, to: platform.target, toDatabase: incoming,
          ownerRole: into.ownerRole, asNewTenant: created !== null, jobId: scratch.job.record.id, secretsDir: platform.dir.secretsDir,
        });
        const schemaVersion = await prepareLoaded(platform.target, { database: incoming, ownerRole: into.ownerRole, loginRole: into.loginRole, asNewTenant: created !== null });
        timings.loadMs = Date.now() - started;
        await releaseScratchRestore(platform, scratch);
        started = Date.now();
        let aside: string | null = null;
        let forcedUse: TenantUse | null = null;
        if (created) await installForNewTenant(platform.target, { tenant: created, incoming });
        else {
          const current = (await findTenantById(platform.control, tenant.id)) ?? tenant;
          const useAtSwap = await tenantUse(platform.target, current);
          if (!props.force) assertNotInUse(current, useAtSwap);
          else forcedUse = useAtSwap;
          props.onPhase?.('swapping the restored database in');
          aside = await swapIn(platform.target, { tenant: current, incoming, at: new Date() });
        }
        scratch.job.note({ phase: 'swapped' });
        timings.swapMs = Date.now() - started;
        const result: RestoreTenantResult = {
          tenant: tenant.slug,
          restoredInto: into.slug,
          database: into.databaseName,
          at: at.toISOString(),
          snapshot: plan.snapshot.name,
          reached: {
            stoppedBeforeCommitAt: scratch.run.report.stoppedAt?.at ?? null,
            lastTransactionAt: scratch.run.report.lastTransactionAt,
            endOfArchive: scratch.run.fellBackToEndOfArchive,
          },
          asideDatabase: aside,
          ...(apiToken ? { apiToken } : {}),
          schemaVersion,
          timings: { ...timings, totalMs: Date.now() - began },
        };
        const force = props.force === true && props.asSlug === undefined;
        await recordRestored(platform, { tenant, into, result, actor: props.actor, audit, force: force ? { atStart: useAtStart, atSwap: forcedUse } : null });
        await removeScratchRestore(platform, scratch);
        return result;
      } catch (err) {
        if (scratch) await removeScratchRestore(platform, scratch).catch(() => undefined);
        if (scratch?.job.record.facts.incomingDatabase && scratch.job.record.facts.phase !== 'swapped') {
          await dropIncoming(platform.target, scratch.job.record.facts.incomingDatabase, scratch.job.record.id).catch(() => false);
        }
        if (created && scratch?.job.record.facts.phase !== 'swapped') await deleteTenant({ platform, tenant: created, actor: props.actor }).catch(() => undefined);
        throw err;
      }
    });
  } catch (err) {
    await recordFailure(err, {});
    // A refused request (in use, a bad time, no such tenant) is the caller's to fix; a missing WAL segment or a failure is an operator's.
    const refused = err instanceof AppError || (err instanceof UserError && !isRefusal(err, 'wal-missing'));
    if (!refused) {
      await platform.alerts.raise({
        code: isRefusal(err, 'wal-missing') ? 'backup.wal-missing' : 'restore.failed',
        key: isRefusal(err, 'wal-missing') ? 'backup.wal-missing' : `restore.failed:${tenant.id}`,
        severity: 'critical',
        summary: `restore of tenant ${tenant.slug} to ${at.toISOString()} failed: ${errorText(err)}`.slice(0, 500),
        tenantId: tenant.id,
        details: { at: at.toISOString(), as: props.asSlug ?? null },
      });
    }
    throw err;
  } finally {
    await target.close();
  }
}

/** The registry, tenant events, audit log and the snapshot's proof after a successful restore. */
async function recordRestored(
  platform: Platform,
  props: { tenant: Tenant; into: Tenant; result: RestoreTenantResult; actor: string; audit: Audit; force: { atStart: TenantUse | null; atSwap: TenantUse | null } | null },
): Promise<void> {
  const { tenant, into, result } = props;
  // `force`: whether --force overrode the in-use check; `inUse`: who used the tenant when the restore began and at the swap (disconnected by it).
  const detail = {
    at: result.at, snapshot: result.snapshot, reached: result.reached, asideDatabase: result.asideDatabase, from: tenant.slug,
    force: props.force !== null,
    ...(props.force ? { inUse: { atStart: props.force.atStart, atSwap: props.force.atSwap } } : {}),
  };
  const client = await platform.control.connect();
  try {
    await client.query('BEGIN');
    await client.query('UPDATE tenants SET schema_version = $2, updated_at = now() WHERE id = $1', [into.id, result.schemaVersion]);
    await recordTenantEvent(client, { tenantId: into.id, slug: into.slug, event: 'restored', actor: props.actor, detail });
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
  await announceTenantChange(platform.control, into.id);
  await props.audit.record({
    action: 'tenant.restored',
    outcome: 'success',
    tenantId: into.id,
    actor: { type: 'operator', id: props.actor, label: props.actor },
    subject: { type: 'tenant', id: tenant.id },
    ip: null,
    userAgent: null,
    details: { ...detail, restoredInto: into.slug },
  });
  const snapshot = await getObject(platform.control, result.snapshot);
  if (snapshot) await recordProof(platform.control, snapshot.id, { kind: 'tenant-restore', tenant: tenant.slug, restoredInto: into.slug, at: result.at, reached: result.reached, timings: result.timings });
  await resolveAlerts(platform, [`restore.failed:${tenant.id}`], `tenant ${tenant.slug} restored to ${result.at}`);
}
