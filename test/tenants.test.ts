/** Tenant lifecycle against a real cluster: create, refuse bad input, roll back half-made creates, delete. */
import assert from 'node:assert/strict';
import { latestVersion } from '../src/platform/postgres/migrator.ts';
import { tenantMigrations } from '../src/platform/control-plane.ts';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { AppError } from '../src/errors.ts';
import { maintenanceDb } from '../src/platform/control-plane.ts';
import { clientConfig, withAdminClient } from '../src/platform/postgres/connection.ts';
import { createLogger } from '../src/platform/log.ts';
import { tenantDbPassword } from '../src/platform/tenants/credentials.ts';
import { renameTenant, requireTenant, resumeTenant, suspendTenant } from '../src/platform/tenants/lifecycle.ts';
import { createTenant, deleteTenant } from '../src/platform/tenants/provision.ts';
import { findTenantBySlug, listTenants } from '../src/platform/tenants/registry.ts';
import { startTestPlatform, type TestPlatform } from './helpers/platform.ts';

let tp: TestPlatform;
before(async () => {
  tp = await startTestPlatform();
});
after(async () => {
  await tp.cleanup();
});

/** What exists in the cluster and control database under a slug's names. */
async function leftovers(slug: string): Promise<{ databases: number; roles: number; records: number }> {
  const base = `tenant_${slug.replaceAll('-', '_')}`;
  return withAdminClient(tp.platform.target, maintenanceDb(tp.platform.target), async (admin) => {
    const dbs = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [base]);
    const roles = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = ANY($1)', [[`${base}_owner`, `${base}_app`]]);
    const records = await tp.platform.control.query('SELECT 1 FROM tenants WHERE slug = $1', [slug]);
    return { databases: dbs.rowCount ?? 0, roles: roles.rowCount ?? 0, records: records.rowCount ?? 0 };
  });
}

describe('creating a tenant', () => {
  test('makes its own database, owner and login roles, with CONNECT revoked from PUBLIC', async () => {
    const { tenant, apiToken } = await createTenant({ platform: tp.platform, slug: 'acme', name: 'Acme Ltd', actor: 'test' });
    assert.equal(tenant.status, 'active');
    assert.equal(tenant.databaseName, 'tenant_acme');
    assert.equal(tenant.schemaVersion, latestVersion(tenantMigrations()));
    assert.match(apiToken, /^tf_[A-Za-z0-9_-]{43}$/);
    await withAdminClient(tp.platform.target, maintenanceDb(tp.platform.target), async (admin) => {
      const db = await admin.query<{ owner: string; acl: string }>(
        "SELECT pg_get_userbyid(datdba) AS owner, datacl::text AS acl FROM pg_database WHERE datname = 'tenant_acme'",
      );
      assert.equal(db.rows[0]?.owner, 'tenant_acme_owner');
      const acl = db.rows[0].acl;
      assert.doesNotMatch(acl, /[{,]=/, 'PUBLIC has no privileges on the database');
      assert.match(acl, /tenant_acme_app=c\//, 'the login role may connect');
      // Only its own database: the shared template stays the administrator's.
      const owned = await admin.query<{ datname: string }>(
        "SELECT datname FROM pg_database WHERE pg_get_userbyid(datdba) LIKE 'tenant\\_%' ORDER BY datname",
      );
      assert.deepEqual(owned.rows.map((r) => r.datname), ['tenant_acme']);
      const roles = await admin.query<{ rolname: string; rolcanlogin: boolean; rolsuper: boolean; rolcreatedb: boolean; rolcreaterole: boolean }>(
        "SELECT rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname LIKE 'tenant\\_acme\\_%' ORDER BY rolname",
      );
      assert.deepEqual(
        roles.rows.map((r) => [r.rolname, r.rolcanlogin, r.rolsuper || r.rolcreatedb || r.rolcreaterole]),
        [
          ['tenant_acme_app', true, false],
          ['tenant_acme_owner', false, false],
        ],
      );
    });
    // The API token is stored only as a hash.
    const tokens = await tp.platform.control.query<{ token_hash: Buffer }>('SELECT token_hash FROM tenant_api_tokens WHERE tenant_id = $1', [tenant.id]);
    assert.equal(tokens.rows.length, 1);
    assert.equal(tokens.rows[0]?.token_hash.length, 32);
    const raw = await tp.platform.control.query("SELECT 1 FROM tenant_api_tokens WHERE encode(token_hash, 'escape') LIKE '%' || $1 || '%'", [apiToken.slice(3, 20)]);
    assert.equal(raw.rowCount, 0);
  });

  test('the login role owns nothing and can only read and write the app schema', async () => {
    const tenant = await requireTenant(tp.platform, 'acme');
    const client = new pg.Client(
      clientConfig(tp.platform.target, tenant.databaseName, { user: tenant.loginRole, password: tenantDbPassword(tp.platform.masterKey, tenant.id, tenant.credentialVersion) }),
    );
    await client.connect();
    try {
      await client.query("INSERT INTO projects (key, name) VALUES ('OPS', 'Operations')");
      const owner = await client.query<{ owner: string }>("SELECT tableowner AS owner FROM pg_tables WHERE schemaname = 'app' AND tablename = 'projects'");
      assert.equal(owner.rows[0]?.owner, 'tenant_acme_owner');
      await assert.rejects(client.query('DROP TABLE projects'), /must be owner/);
      await assert.rejects(client.query('CREATE TABLE app.sneaky (id int)'), /permission denied/);
      await assert.rejects(client.query('CREATE TABLE public.sneaky (id int)'), /permission denied/);
      await assert.rejects(client.query('SELECT * FROM taskflow.schema_migrations'), /permission denied/);
    } finally {
      await client.end();
    }
  });

  for (const slug of ['', 'Acme', 'a_b', '-acme', 'acme-', 'ac--me', 'www', 'api', 'ops', 'admin', 'x'.repeat(41), 'acme.corp', 'ａcme']) {
    test(`refuses the slug ${JSON.stringify(slug.length > 20 ? `${slug.slice(0, 8)}…(${slug.length})` : slug)}`, async () => {
      await assert.rejects(createTenant({ platform: tp.platform, slug, actor: 'test' }), (err: unknown) => err instanceof AppError && err.code === 'validation-failed');
    });
  }

  test('refuses a duplicate slug and leaves the first tenant as it was', async () => {
    await assert.rejects(createTenant({ platform: tp.platform, slug: 'acme', actor: 'test' }), (err: unknown) => err instanceof AppError && err.code === 'conflict');
    const tenant = await requireTenant(tp.platform, 'acme');
    assert.equal(tenant.status, 'active');
  });

  for (const step of ['record', 'roles', 'database', 'grants'] as const) {
    test(`a create that fails after the ${step} step leaves no database, role or record`, async () => {
      const slug = `half-${step}`;
      await assert.rejects(createTenant({ platform: tp.platform, slug, actor: 'test', failAfter: step }), /injected failure/);
      assert.deepEqual(await leftovers(slug), { databases: 0, roles: 0, records: 0 });
      // and the slug is free again
      const { tenant } = await createTenant({ platform: tp.platform, slug, actor: 'test' });
      assert.equal(tenant.status, 'active');
    });
  }

  test('a failure after the commit (the announcement) keeps the tenant: it is returned, not undone, and the failure is logged', async () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(line) } });
    const { tenant, apiToken } = await createTenant({ platform: { ...tp.platform, log }, slug: 'late-fail', actor: 'test', failAfter: 'commit' });
    assert.equal(tenant.status, 'active');
    assert.deepEqual(await leftovers('late-fail'), { databases: 1, roles: 2, records: 1 });
    assert.equal((await requireTenant(tp.platform, 'late-fail')).status, 'active');
    const token = await tp.platform.control.query('SELECT 1 FROM tenant_api_tokens WHERE tenant_id = $1', [tenant.id]);
    assert.equal(token.rowCount, 1, 'the API token handed back is the one stored');
    assert.match(apiToken, /^tf_/);
    // The login role works: the tenant is usable as created.
    const client = new pg.Client(
      clientConfig(tp.platform.target, tenant.databaseName, { user: tenant.loginRole, password: tenantDbPassword(tp.platform.masterKey, tenant.id, tenant.credentialVersion) }),
    );
    await client.connect();
    await client.end();
    assert.ok(lines.some((line) => line.includes('announcing it failed') && line.includes('injected failure after commit')), lines.join(''));
    assert.equal(lines.some((line) => line.includes('undoing')), false, 'nothing was undone');
  });

  test('a database of the same name that is not ours is refused and left untouched', async () => {
    await withAdminClient(tp.platform.target, maintenanceDb(tp.platform.target), (admin) => admin.query('CREATE DATABASE tenant_stranger'));
    await assert.rejects(createTenant({ platform: tp.platform, slug: 'stranger', actor: 'test' }), /already exists/);
    assert.deepEqual(await leftovers('stranger'), { databases: 1, roles: 0, records: 0 });
  });

  test('a create cut off by a crash is cleaned up by the next attempt', async () => {
    // What a creator killed after CREATE ROLE leaves: a provisioning record and tagged roles.
    const ins = await tp.platform.control.query<{ id: string }>(
      "INSERT INTO tenants (slug, name, status, database_name, owner_role, login_role) VALUES ('crashed', 'x', 'provisioning', 'tenant_crashed', 'tenant_crashed_owner', 'tenant_crashed_app') RETURNING id",
    );
    const id = ins.rows[0]?.id ?? '';
    await withAdminClient(tp.platform.target, maintenanceDb(tp.platform.target), async (admin) => {
      await admin.query('CREATE ROLE tenant_crashed_owner NOLOGIN');
      await admin.query(`COMMENT ON ROLE tenant_crashed_owner IS 'taskflow:tenant:${id}'`);
    });
    const { tenant } = await createTenant({ platform: tp.platform, slug: 'crashed', actor: 'test' });
    assert.equal(tenant.status, 'active');
    assert.notEqual(tenant.id, id);
    assert.deepEqual(await leftovers('crashed'), { databases: 1, roles: 2, records: 1 });
  });
});

describe('tenant lifecycle', () => {
  test('suspend, resume and rename keep the data and the database name', async () => {
    const { tenant } = await createTenant({ platform: tp.platform, slug: 'globex', actor: 'test' });
    const suspended = await suspendTenant({ platform: tp.platform, tenant, reason: 'unpaid invoice', actor: 'test' });
    assert.equal(suspended.status, 'suspended');
    assert.equal(suspended.statusReason, 'unpaid invoice');
    const resumed = await resumeTenant({ platform: tp.platform, tenant: suspended, actor: 'test' });
    assert.equal(resumed.status, 'active');
    const renamed = await renameTenant({ platform: tp.platform, tenant: resumed, newSlug: 'globex-corp', actor: 'test' });
    assert.equal(renamed.slug, 'globex-corp');
    assert.equal(renamed.databaseName, 'tenant_globex');
    assert.deepEqual(renamed.aliases.map((a) => a.slug), ['globex']);
    assert.equal((await findTenantBySlug(tp.platform.control, 'globex'))?.id, tenant.id, 'the old slug still resolves');
    await assert.rejects(createTenant({ platform: tp.platform, slug: 'globex', actor: 'test' }), /already exists/);
    await assert.rejects(renameTenant({ platform: tp.platform, tenant: renamed, newSlug: 'acme', actor: 'test' }), /taken/);
    await assert.rejects(renameTenant({ platform: tp.platform, tenant: renamed, newSlug: 'admin', actor: 'test' }), /reserved/);
    const events = await tp.platform.control.query<{ event: string }>('SELECT event FROM tenant_events WHERE tenant_id = $1 ORDER BY id', [tenant.id]);
    assert.deepEqual(events.rows.map((e) => e.event), ['created', 'suspended', 'resumed', 'renamed']);
  });

  test('delete drops the database and both roles, and forgets the tenant', async () => {
    const { tenant } = await createTenant({ platform: tp.platform, slug: 'initech', actor: 'test' });
    // An open connection to the tenant database does not block the delete.
    const client = new pg.Client(
      clientConfig(tp.platform.target, tenant.databaseName, { user: tenant.loginRole, password: tenantDbPassword(tp.platform.masterKey, tenant.id, 1) }),
    );
    client.on('error', () => undefined);
    await client.connect();
    await deleteTenant({ platform: tp.platform, tenant, actor: 'test' });
    await client.end().catch(() => undefined);
    assert.deepEqual(await leftovers('initech'), { databases: 0, roles: 0, records: 0 });
    assert.equal((await listTenants(tp.platform.control)).some((t) => t.slug === 'initech'), false);
  });
});
