/**
 * Per-tenant pools under the global connection cap, against a real cluster: the cap holds (also as
 * PostgreSQL counts connections), every request is still served, a full server answers 503
 * server-busy, idle and suspended tenants' pools go away, and dropping a pool in use is safe.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { buildServer, serverInternals } from '../src/app/server.ts';
import type { Config } from '../src/config.ts';
import { maintenanceDb } from '../src/platform/control-plane.ts';
import { clientConfig } from '../src/platform/postgres/connection.ts';
import { suspendTenant } from '../src/platform/tenants/lifecycle.ts';
import { call, makeTenant, startHttpTest, type HttpTest, type TestTenant } from './helpers/http-server.ts';

const TENANT_COUNT = 10;

let h: HttpTest;
let tenants: TestTenant[];
let admin: pg.Client;

before(async () => {
  h = await startHttpTest({ 'pools.maxConnections': 3, 'pools.perTenantMax': 2 });
  tenants = [];
  for (let i = 0; i < TENANT_COUNT; i++) tenants.push(await makeTenant(h.tp, `pool-${i}`));
  admin = new pg.Client(clientConfig(h.tp.platform.target, maintenanceDb(h.tp.platform.target)));
  await admin.connect();
});
after(async () => {
  await admin.end();
  await h.cleanup();
});

/** Connections PostgreSQL has open for tenant login roles (optionally one role). */
async function tenantBackends(loginRole?: string): Promise<number> {
  const res = await admin.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename LIKE 'tenant\\_%\\_app' AND ($1::text IS NULL OR usename = $1)",
    [loginRole ?? null],
  );
  return res.rows[0]?.n ?? 0;
}

/** A server on the same platform with other pool settings. */
async function serverWith(pools: Partial<Config['pools']>): Promise<FastifyInstance> {
  const config: Config = { ...h.tp.config, pools: { ...h.tp.config.pools, ...pools } };
  return buildServer({ platform: { ...h.tp.platform, config } });
}

describe('the global connection cap', () => {
  test('is never exceeded while ten tenants are served in turn and all at once', async () => {
    const cap = h.tp.config.pools.maxConnections;
    const pools = serverInternals(h.app).pools;
    let maxSeen = 0;
    let maxCounted = 0;
    const state = { sampling: true };
    const sampler = (async () => {
      while (state.sampling) {
        maxSeen = Math.max(maxSeen, await tenantBackends());
        maxCounted = Math.max(maxCounted, pools.stats().openConnections);
        await sleep(2);
      }
    })();
    try {
      for (let round = 0; round < 3; round++) {
        for (const t of tenants) {
          const res = await call(h.app, t, '/api/projects');
          assert.equal(res.statusCode, 200, `${t.tenant.slug}: ${res.body}`);
        }
      }
      const burst = await Promise.all(
        Array.from({ length: 60 }, (_, i) => {
          const t = tenants[i % TENANT_COUNT]!;
          return i % 2 === 0 ? call(h.app, t, '/api/projects') : call(h.app, t, '/api/projects', { method: 'POST', body: { key: `K${i}`, name: 'burst' } });
        }),
      );
      assert.deepEqual([...new Set(burst.map((r) => r.statusCode))].sort(), [200, 201]);
    } finally {
      state.sampling = false;
      await sampler;
    }
    assert.ok(maxSeen <= cap, `PostgreSQL saw ${maxSeen} tenant connections; the cap is ${cap}`);
    assert.ok(maxCounted <= cap, `the pools counted ${maxCounted} open connections; the cap is ${cap}`);
    assert.ok(maxSeen > 0, 'the sampler saw the connections at all');
    assert.ok((await tenantBackends()) <= cap);
    assert.ok(pools.stats().pools <= TENANT_COUNT);
    assert.equal(pools.stats().leased, 0);
  });

  test('when every connection stays busy, a request waits acquireTimeoutMs and gets 503 server-busy', async () => {
    const app = await serverWith({ maxConnections: 1, acquireTimeoutMs: 200 });
    try {
      const pools = serverInternals(app).pools;
      const [a, b] = [tenants[0]!, tenants[1]!];
      let letGo = () => {};
      const held = pools.withTenantClient(a.tenant, () => new Promise<void>((resolve) => (letGo = resolve)));
      await sleep(50);
      const busy = await call(app, b, '/api/projects');
      assert.equal(busy.statusCode, 503, busy.body);
      assert.equal(busy.json<{ code: string }>().code, 'server-busy');
      assert.equal(busy.headers['retry-after'], String(h.tp.config.server.retryAfterSeconds));
      letGo();
      await held;
      // The idle connection of tenant a is evicted to make room for tenant b.
      assert.equal((await call(app, b, '/api/projects')).statusCode, 200);
      assert.equal(pools.stats().openConnections, 1);
    } finally {
      await app.close();
    }
  });
});

describe('pool lifecycle', () => {
  test('pools idle past idleMs close their connections and are swept away', async () => {
    const app = await serverWith({ idleMs: 100 });
    try {
      const pools = serverInternals(app).pools;
      const t = tenants[2]!;
      assert.equal((await call(app, t, '/api/projects')).statusCode, 200);
      assert.equal(pools.stats().pools, 1);
      await sleep(300);
      pools.sweep();
      assert.deepEqual(pools.stats(), { pools: 0, openConnections: 0, leased: 0 });
    } finally {
      await app.close();
    }
  });

  test("a suspended tenant's pool is dropped and its connections closed", async () => {
    const app = await serverWith({});
    try {
      const pools = serverInternals(app).pools;
      const t = await makeTenant(h.tp, 'pool-suspend');
      assert.equal((await call(app, t, '/api/projects')).statusCode, 200);
      assert.equal(await tenantBackends(t.tenant.loginRole), 1);
      await suspendTenant({ platform: h.tp.platform, tenant: t.tenant, actor: 'test' });
      const deadline = Date.now() + 5_000;
      while ((await tenantBackends(t.tenant.loginRole)) > 0 && Date.now() < deadline) await sleep(20);
      assert.equal(await tenantBackends(t.tenant.loginRole), 0);
      assert.equal(pools.stats().pools, 0);
    } finally {
      await app.close();
    }
  });

  test('dropping a pool while requests use it never breaks them', async () => {
    const app = await serverWith({ maxConnections: 4 });
    const pools = serverInternals(app).pools;
    try {
      const t = tenants[3]!;
      const state = { dropping: true };
      const dropper = (async () => {
        while (state.dropping) {
          pools.drop(t.tenant.id);
          await sleep(1);
        }
      })();
      const results = await Promise.all(
        Array.from({ length: 40 }, () => pools.withTenantClient(t.tenant, async (client) => (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one)),
      );
      state.dropping = false;
      await dropper;
      assert.deepEqual(new Set(results), new Set([1]));
      assert.equal(pools.stats().leased, 0);
    } finally {
      await app.close();
    }
    assert.deepEqual(pools.stats(), { pools: 0, openConnections: 0, leased: 0 }, 'closing the server closed every connection');
  });
});
