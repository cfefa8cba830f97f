/**
 * Per-tenant pools under the global connection cap, against a real cluster: the cap holds (also as
 * PostgreSQL counts connections), every request is still served, a full server answers 503
 * server-busy, idle and suspended tenants' pools go away, and dropping a pool in use is safe. Under
 * the cap, connections are reused rather than reopened: handed from request to request of a tenant,
 * kept within each tenant's fair share, and made room for by evicting the least recently used idle
 * one. Which connection served a request is told by its backend (pid and start time).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { buildServer, serverInternals } from '../src/app/server.ts';
import type { Config } from '../src/config.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import { maintenanceDb } from '../src/platform/control-plane.ts';
import { clientConfig } from '../src/platform/postgres/connection.ts';
import { suspendTenant } from '../src/platform/tenants/lifecycle.ts';
import { TENANT_CONNECTION_LIMIT } from '../src/platform/tenants/provision.ts';
import { call, makeTenant, startHttpTest, type HttpTest, type TestTenant } from './helpers/http-server.ts';
import { seedProject } from './helpers/work.ts';

const TENANT_COUNT = 10;

let h: HttpTest;
let tenants: TestTenant[];
/** Each tenant's project, which the burst below writes tasks into. */
const projectOf = new Map<TestTenant, string>();
let admin: pg.Client;

before(async () => {
  h = await startHttpTest({ 'pools.maxConnections': 3, 'pools.perTenantMax': 2 });
  tenants = [];
  for (let i = 0; i < TENANT_COUNT; i++) tenants.push(await makeTenant(h.tp, `pool-${i}`));
  for (const t of tenants) projectOf.set(t, (await seedProject(h.tp, t, 'POOL')).id);
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
          return i % 2 === 0 ? call(h.app, t, '/api/projects') : call(h.app, t, `/api/projects/${projectOf.get(t) ?? ''}/tasks`, { method: 'POST', body: { title: `burst ${i}` } });
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

/** The backend serving `client`, as pid@start: unique even if PostgreSQL reuses a pid. */
async function backendOf(client: Pick<pg.ClientBase, 'query'>): Promise<string> {
  const res = await client.query<{ id: string }>("SELECT pid || '@' || backend_start AS id FROM pg_stat_activity WHERE pid = pg_backend_pid()");
  return res.rows[0]?.id ?? 'unknown';
}

/** A promise with its resolve function, to hold a connection until the test lets go. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = () => {};
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** Waits (up to 5 s) until PostgreSQL has `n` tenant connections open (of one role, if given). */
async function untilBackends(n: number, loginRole?: string): Promise<number> {
  const deadline = Date.now() + 5_000;
  let seen = await tenantBackends(loginRole);
  while (seen !== n && Date.now() < deadline) {
    await sleep(10);
    seen = await tenantBackends(loginRole);
  }
  return seen;
}

describe('reuse under the cap', () => {
  before(async () => {
    // Counted from PostgreSQL's side, the connections here must be only those of each test's server.
    serverInternals(h.app).pools.drop('*');
    assert.equal(await untilBackends(0), 0);
  });

  test('a released connection goes to a waiting request of the same tenant without a new connection', async () => {
    // perTenantMax 2 under a cap of 1: the waiting request could have a second connection if a slot freed up.
    const app = await serverWith({ maxConnections: 1, perTenantMax: 2 });
    try {
      const pools = serverInternals(app).pools;
      const t = tenants[4]!.tenant;
      const held = gate();
      let first = '';
      const holding = pools.withTenantClient(t, async (client) => {
        first = await backendOf(client);
        await held.opened;
      });
      while (first === '') await sleep(5);
      // The cap is full, so this request waits; the slot is wanted, yet the connection must not be closed.
      const waiting = pools.withTenantClient(t, (client) => backendOf(client));
      await sleep(20);
      held.open();
      await holding;
      assert.equal(await waiting, first, 'the waiting request ran on the connection the first one handed back');
      assert.equal(await tenantBackends(t.loginRole), 1);
      assert.equal(pools.stats().openConnections, 1);
    } finally {
      await app.close();
    }
  });

  test('over-cap demand closes the least recently used idle connection of another tenant, and the others stay warm', async () => {
    const app = await serverWith({ maxConnections: 3 });
    try {
      const pools = serverInternals(app).pools;
      const [a, b, c, d] = [tenants[5]!.tenant, tenants[6]!.tenant, tenants[7]!.tenant, tenants[8]!.tenant];
      // Used in the order a, b, c: a's connection is the least recently used.
      const before = new Map<string, string>();
      for (const t of [a, b, c]) before.set(t.id, await pools.withTenantClient(t, (client) => backendOf(client)));
      assert.equal(await untilBackends(3), 3);
      // d needs a fourth connection: a's idle one makes room.
      await pools.withTenantClient(d, (client) => backendOf(client));
      assert.equal(await untilBackends(0, a.loginRole), 0, "a's connection was the one closed");
      assert.equal(await tenantBackends(), 3);
      // b and c are served on the connections they had, without a handshake.
      for (const t of [b, c]) assert.equal(await pools.withTenantClient(t, (client) => backendOf(client)), before.get(t.id));
      assert.ok(pools.stats().openConnections <= 3);
    } finally {
      await app.close();
    }
  });

  test("a tenant without a connection evicts another tenant's idle one at once, even while that tenant is busy, rather than waiting for a release", async () => {
    const app = await serverWith({ maxConnections: 3, perTenantMax: 2, acquireTimeoutMs: 2_000 });
    try {
      const pools = serverInternals(app).pools;
      const [a, b, d] = [tenants[0]!.tenant, tenants[1]!.tenant, tenants[2]!.tenant];
      // a holds two connections, one of them busy until the end; b holds one, busy too.
      const aBusy = gate();
      const bBusy = gate();
      const aHeld = pools.withTenantClient(a, () => aBusy.opened);
      await pools.withTenantClient(a, (client) => client.query('SELECT 1'));
      let bFirst = '';
      const bHeld = pools.withTenantClient(b, async (client) => {
        bFirst = await backendOf(client);
        await bBusy.opened;
      });
      while (bFirst === '') await sleep(5);
      assert.equal(await untilBackends(3), 3);
      // Every slot is taken; d is served on the slot of a's idle connection while a and b stay busy.
      await pools.withTenantClient(d, (client) => client.query('SELECT 1'));
      assert.equal(await tenantBackends(a.loginRole), 1, "a's idle connection made room");
      bBusy.open();
      await bHeld;
      assert.equal(await pools.withTenantClient(b, (client) => backendOf(client)), bFirst, "the connection b handed back stayed open and warm");
      aBusy.open();
      await aHeld;
      assert.ok(pools.stats().openConnections <= 3);
    } finally {
      await app.close();
    }
  });

  test('tenants busy beyond the cap each keep their fair share and reuse it: no connection is reopened', async () => {
    const app = await serverWith({ maxConnections: 4, perTenantMax: 4, acquireTimeoutMs: 10_000 });
    try {
      const pools = serverInternals(app).pools;
      const [a, b] = [tenants[0]!.tenant, tenants[1]!.tenant];
      const backends = new Map<string, Set<string>>([
        [a.id, new Set()],
        [b.id, new Set()],
      ]);
      let maxOpen = 0;
      // 40 requests, alternating between the two tenants, ten times what the cap holds.
      await Promise.all(
        Array.from({ length: 40 }, (_, i) => {
          const t = i % 2 === 0 ? a : b;
          return pools.withTenantClient(t, async (client) => {
            backends.get(t.id)!.add(await backendOf(client));
            await client.query('SELECT pg_sleep(0.01)');
            maxOpen = Math.max(maxOpen, pools.stats().openConnections);
          });
        }),
      );
      // Each tenant got its share of two connections and kept them; nothing was closed to be reopened.
      assert.deepEqual([...backends.values()].map((set) => set.size), [2, 2]);
      assert.ok(maxOpen <= 4);
      assert.equal(await tenantBackends(), 4);
    } finally {
      await app.close();
    }
  });

  test('a tenant above its fair share gives a released connection to a tenant that has none', async () => {
    const app = await serverWith({ maxConnections: 2, perTenantMax: 2, acquireTimeoutMs: 10_000 });
    try {
      const pools = serverInternals(app).pools;
      const [a, b] = [tenants[2]!.tenant, tenants[3]!.tenant];
      const order: string[] = [];
      // a takes both slots (nobody else wants one yet) and queues more requests behind them.
      const aRequests = Array.from({ length: 6 }, (_, i) =>
        pools.withTenantClient(a, async (client) => {
          await client.query('SELECT pg_sleep(0.05)');
          order.push(`a${i}`);
        }),
      );
      await sleep(20);
      const bRequest = pools.withTenantClient(b, async (client) => {
        await client.query('SELECT 1');
        order.push('b');
      });
      await Promise.all([...aRequests, bRequest]);
      // b was served as soon as a handed a connection back, not after a's queue had drained.
      assert.ok(order.indexOf('b') < order.length - 2, order.join(' '));
      assert.ok(pools.stats().openConnections <= 2);
    } finally {
      await app.close();
    }
  });

  test('a connection that cannot be opened fails its request with the reason at once and frees its slot', async () => {
    const app = await serverWith({ maxConnections: 1, acquireTimeoutMs: 10_000 });
    try {
      const pools = serverInternals(app).pools;
      const t = tenants[9]!.tenant;
      // Credentials the role does not have: PostgreSQL refuses the login.
      const wrong = { ...t, credentialVersion: t.credentialVersion + 1 };
      await assert.rejects(
        pools.withTenantClient(wrong, () => Promise.resolve()),
        (err: unknown) => (err as { code?: string }).code === '28P01',
      );
      assert.equal(pools.stats().openConnections, 0);
      assert.equal(await pools.withTenantClient(t, async (client) => (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one), 1);
    } finally {
      await app.close();
    }
  });

  test('an idle connection the server ended is let go, and the next request gets a new one', async () => {
    const app = await serverWith({});
    try {
      const pools = serverInternals(app).pools;
      const t = tenants[4]!.tenant;
      const first = await pools.withTenantClient(t, (client) => backendOf(client));
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [t.loginRole]);
      assert.equal(await untilBackends(0, t.loginRole), 0);
      const deadline = Date.now() + 5_000;
      while (pools.stats().openConnections > 0 && Date.now() < deadline) await sleep(10);
      assert.equal(pools.stats().openConnections, 0, 'its slot came back');
      const second = await pools.withTenantClient(t, (client) => backendOf(client));
      assert.notEqual(second, first);
    } finally {
      await app.close();
    }
  });
});

describe('pools configuration', () => {
  test("pools.perTenantMax above the tenant login role's CONNECTION LIMIT is refused at load, naming the key", () => {
    const dataDir = h.tp.dataDir;
    assert.throws(
      () => loadConfig({ env: {}, overrides: { dataDir, 'pools.perTenantMax': TENANT_CONNECTION_LIMIT + 1 } }),
      (err: unknown) => err instanceof ConfigError && /pools\.perTenantMax/.test(err.message) && /CONNECTION LIMIT/.test(err.message),
    );
    assert.equal(loadConfig({ env: {}, overrides: { dataDir, 'pools.perTenantMax': TENANT_CONNECTION_LIMIT } }).pools.perTenantMax, TENANT_CONNECTION_LIMIT);
  });
});
