/** Suspending, resuming and renaming tenants, and rotating their API tokens. */
import { AppError } from '../../errors.ts';
import { newApiToken } from './credentials.ts';
import { assertValidSlug, type PlatformCore } from './provision.ts';
import { announceTenantChange, findTenantById, findTenantBySlug, recordTenantEvent, type Tenant } from './registry.ts';

/** Looks a tenant up by its current slug (not by an alias); 404-class error when there is none. */
export async function requireTenant(platform: Pick<PlatformCore, 'control'>, slug: string): Promise<Tenant> {
  const tenant = await findTenantBySlug(platform.control, slug);
  if (!tenant || tenant.slug !== slug) throw new AppError('not-found', `no tenant '${slug}'`);
  return tenant;
}

async function setStatus(
  platform: PlatformCore,
  tenant: Tenant,
  change: { from: Tenant['status'][]; to: 'active' | 'suspended'; reason: string | null; actor: string; event: string },
): Promise<Tenant> {
  const client = await platform.control.connect();
  try {
    await client.query('BEGIN');
    const res = await client.query(
      'UPDATE tenants SET status = $2, status_reason = $3, updated_at = now() WHERE id = $1 AND status = ANY($4)',
      [tenant.id, change.to, change.reason, change.from],
    );
    if (res.rowCount === 0) {
      await client.query('ROLLBACK');
      throw new AppError('conflict', `tenant '${tenant.slug}' is ${tenant.status}; cannot ${change.event.replace(/ed$/, '')} it`);
    }
    await recordTenantEvent(client, { tenantId: tenant.id, slug: tenant.slug, event: change.event, actor: change.actor, detail: { reason: change.reason } });
    await client.query('COMMIT');
    await announceTenantChange(client, tenant.id);
  } finally {
    client.release();
  }
  return (await findTenantById(platform.control, tenant.id)) ?? tenant;
}

/** Suspends a tenant: its subdomain answers 503 with Retry-After until it is resumed. */
export function suspendTenant(props: { platform: PlatformCore; tenant: Tenant; reason?: string; actor: string }): Promise<Tenant> {
  const reason = props.reason?.trim() ?? null;
  if (reason !== null && reason.length > 500) throw new AppError('validation-failed', 'a reason has at most 500 characters');
  return setStatus(props.platform, props.tenant, { from: ['active', 'suspended'], to: 'suspended', reason, actor: props.actor, event: 'suspended' });
}

export function resumeTenant(props: { platform: PlatformCore; tenant: Tenant; actor: string }): Promise<Tenant> {
  return setStatus(props.platform, props.tenant, { from: ['suspended', 'active'], to: 'active', reason: null, actor: props.actor, event: 'resumed' });
}

/**
 * Renames a tenant's slug. The old slug keeps resolving for the grace period; the database and roles
 * keep their names, so connections, backups and grants stay valid.
 */
export async function renameTenant(props: { platform: PlatformCore; tenant: Tenant; newSlug: string; actor: string }): Promise<Tenant> {
  const { platform, tenant, newSlug, actor } = props;
  assertValidSlug(newSlug);
  if (newSlug === tenant.slug) throw new AppError('validation-failed', `tenant is already called '${newSlug}'`);
  const graceDays = platform.config.tenants.renameGraceDays;
  const client = await platform.control.connect();
  try {
    await client.query('BEGIN');
    const taken = await client.query(
      `SELECT 1 FROM tenants WHERE slug = $1
       UNION ALL SELECT 1 FROM tenant_slug_aliases WHERE slug = $1 AND expires_at > now() AND tenant_id <> $2`,
      [newSlug, tenant.id],
    );
    if ((taken.rowCount ?? 0) > 0) {
      await client.query('ROLLBACK');
      throw new AppError('conflict', `slug '${newSlug}' is taken`);
    }
    await client.query('DELETE FROM tenant_slug_aliases WHERE slug = $1 OR expires_at <= now()', [newSlug]);
    await client.query('UPDATE tenants SET slug = $2, updated_at = now() WHERE id = $1', [tenant.id, newSlug]);
    if (graceDays > 0) {
      await client.query(
        `INSERT INTO tenant_slug_aliases (slug, tenant_id, expires_at) VALUES ($1, $2, now() + make_interval(days => $3))
         ON CONFLICT (slug) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, expires_at = EXCLUDED.expires_at`,
        [tenant.slug, tenant.id, graceDays],
      );
    }
    await recordTenantEvent(client, { tenantId: tenant.id, slug: newSlug, event: 'renamed', actor, detail: { from: tenant.slug, to: newSlug, graceDays } });
    await client.query('COMMIT');
    await announceTenantChange(client, tenant.id);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
  return (await findTenantById(platform.control, tenant.id)) ?? tenant;
}

/** Issues a new API token; with `revokeOthers`, every earlier token stops working at once. */
export async function issueApiToken(props: { platform: PlatformCore; tenant: Tenant; label: string; revokeOthers: boolean; actor: string }): Promise<string> {
  const { platform, tenant } = props;
  const { token, hash } = newApiToken();
  const client = await platform.control.connect();
  try {
    await client.query('BEGIN');
    if (props.revokeOthers) {
      await client.query('UPDATE tenant_api_tokens SET revoked_at = now() WHERE tenant_id = $1 AND revoked_at IS NULL', [tenant.id]);
    }
    await client.query('INSERT INTO tenant_api_tokens (tenant_id, token_hash, label) VALUES ($1, $2, $3)', [tenant.id, hash, props.label]);
    await recordTenantEvent(client, { tenantId: tenant.id, slug: tenant.slug, event: 'api-token-issued', actor: props.actor, detail: { label: props.label, revokeOthers: props.revokeOthers } });
    await client.query('COMMIT');
    await announceTenantChange(client, tenant.id);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
  return token;
}
