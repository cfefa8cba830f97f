/**
 * PostgreSQL itself keeps tenants apart: a tenant's login role can reach its own database and no
 * other, whatever the application code might try.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { CONTROL_DATABASE } from '../src/platform/platform.ts';
import { clientConfig } from '../src/platform/postgres/connection.ts';
import { tenantDbPassword } from '../src/platform/tenants/credentials.ts';
import { createTenant } from '../src/platform/tenants/provision.ts';
import type { Tenant } from '../src/platform/tenants/registry.ts';
import { startTestPlatform, type TestPlatform } from './helpers/platform.ts';

let tp: TestPlatform;
let acme: Tenant;
let globex: Tenant;

before(async () => {
  tp = await startTestPlatform();
  acme = (await createTenant({ platform: tp.platform, slug: 'acme', actor: 'test' })).tenant;
  globex = (await createTenant({ platform: tp.platform, slug: 'globex', actor: 'test' })).tenant;
});
after(async () => {
  await tp.cleanup();
});

/** Connects as `tenant`'s login role to `database`, runs a query, and returns the error if any. */
async function connectAs(tenant: Tenant, database: string): Promise<{ code?: string; message: string } | null> {
  const password = tenantDbPassword(tp.platform.masterKey, tenant.id, tenant.credentialVersion);
  const client = new pg.Client(clientConfig(tp.platform.target, database, { user: tenant.loginRole, password }));
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return err as { code?: string; message: string };
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe("a tenant's login role", () => {
  test('connects to its own database', async () => {
    assert.equal(await connectAs(acme, acme.databaseName), null);
  });

  test("cannot connect to another tenant's database", async () => {
    const err = await connectAs(acme, globex.databaseName);
    assert.equal(err?.code, '42501');
    assert.match(err.message, /permission denied for database "?tenant_globex"?/);
    const back = await connectAs(globex, acme.databaseName);
    assert.equal(back?.code, '42501');
  });

  test('cannot connect to the control database', async () => {
    const err = await connectAs(acme, CONTROL_DATABASE);
    assert.equal(err?.code, '42501');
    assert.match(err.message, /permission denied for database "?taskflow_control"?/);
  });

  test('cannot connect to the tenant template', async () => {
    const err = await connectAs(acme, 'taskflow_tenant_template');
    assert.equal(err?.code, '42501');
  });

  test('cannot connect to the maintenance databases', async () => {
    for (const database of ['postgres', 'template1']) {
      const err = await connectAs(acme, database);
      assert.equal(err?.code, '42501', database);
    }
  });
});
