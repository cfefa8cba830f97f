/**
 * The first owner's setup link: an owner invitation issued by an operator, mailed to the address
 * given. The link is never printed or logged; with no SMTP server it waits in the local mailbox.
 */
import pg from 'pg';
import { clientConfig } from '../../platform/postgres/connection.ts';
import type { Platform } from '../../platform/platform.ts';
import { tenantDbPassword } from '../../platform/tenants/credentials.ts';
import type { Tenant } from '../../platform/tenants/registry.ts';
import { tenantOrigin } from '../../platform/tenants/urls.ts';
import { inTransaction, type TenantDb } from '../tenant-db.ts';
import { accountServices } from './build.ts';
import { inviteUser, type InvitationView } from './users/commands.ts';

/** Runs `fn` with the tenant's database, connected as the tenant's own login role. */
export async function withTenantDb<T>(platform: Pick<Platform, 'target' | 'masterKey'>, tenant: Tenant, fn: (db: TenantDb) => Promise<T>): Promise<T> {
  const password = tenantDbPassword(platform.masterKey, tenant.id, tenant.credentialVersion);
  const client = new pg.Client(clientConfig(platform.target, tenant.databaseName, { user: tenant.loginRole, password }));
  await client.connect();
  try {
    const tenantDb: TenantDb = { read: (work) => work(client), transaction: (work) => inTransaction(client, work) };
    return await fn(tenantDb);
  } finally {
    await client.end();
  }
}

/** Issues (or re-issues, revoking the earlier one) the setup link of a tenant's first owner. */
export async function issueSetupLink(props: {
  platform: Pick<Platform, 'config' | 'control' | 'masterKey' | 'log' | 'target'>;
  tenant: Tenant;
  email: string;
  operator: string;
}): Promise<InvitationView> {
  const { platform, tenant } = props;
  const { services } = accountServices(platform);
  return withTenantDb(platform, tenant, (tenantDb) =>
    inviteUser({
      tenantDb,
      services,
      caller: { tenantId: tenant.id, tenantSlug: tenant.slug, tenantName: tenant.name, origin: tenantOrigin(platform.config, tenant.slug), ip: null, userAgent: null },
      actor: null,
      operator: props.operator,
      email: props.email,
      role: 'owner',
    }),
  );
}
