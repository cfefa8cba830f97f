/**
 * The server around outages and shutdown: readiness follows the database, the tenant-change
 * listener reconnects after PostgreSQL restarts, and closing the server finishes in-flight requests.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildServer, serverInternals } from '../src/app/server.ts';
import { suspendTenant } from '../src/platform/tenants/lifecycle.ts';
import { call, makeTenant, startHttpTest, type HttpTest, type TestTenant } from './helpers/http-server.ts';
import { seedProject } from './helpers/work.ts';

let h: HttpTest;
let acme: TestTenant;

before(async () => {
  h = await startHttpTest({ 'tenants.cacheTtlMs': 600_000 });
  acme = await makeTenant(h.tp, 'acme');
});
after(async () => {
  await h.cleanup();
});

/** Waits until `check` holds, for at most `ms`. */
async function until(check: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(50);
  }
  return check();
}

describe('when PostgreSQL goes away', () => {
  test('/readyz and tenant requests answer 503 problems; after a restart everything recovers, NOTIFY included', async () => {
    const cluster = h.tp.platform.cluster;
    assert.ok(cluster, 'the test platform manages its cluster');
    assert.equal((await call(h.app, acme, '/api/projects')).statusCode, 200);

    await cluster.stop();
    const ready = await h.app.inject({ url: '/readyz' });
    assert.equal(ready.statusCode, 503);
    assert.match(String(ready.headers['content-type']), /^application\/problem\+json/);
    assert.equal(ready.json<{ code: string }>().code, 'database-unavailable');
    assert.equal(ready.headers['retry-after'], String(h.tp.config.server.retryAfterSeconds));
    const api = await call(h.app, acme, '/api/projects');
    assert.equal(api.statusCode, 503, api.body);
    // Every connection goes to the primary, so a lost one means no primary: retry within seconds.
    assert.equal(api.json<{ code: string }>().code, 'primary-unavailable');
    assert.equal(api.headers['retry-after'], String(h.tp.config.postgres.primary.retryAfterSeconds));
    assert.equal((await h.app.inject({ url: '/healthz' })).statusCode, 200, 'the process itself is alive');

    await cluster.start();
    assert.ok(await until(async () => (await h.app.inject({ url: '/readyz' })).statusCode === 200, 10_000), 'ready again');
    const resolver = serverInternals(h.app).resolver;
    assert.ok(await until(() => resolver.listening, 20_000), 'the tenant-change listener reconnected');
    assert.equal((await call(h.app, acme, '/api/projects')).statusCode, 200);

    // With a ten-minute TTL, only a working LISTEN connection can make this visible.
    await suspendTenant({ platform: h.tp.platform, tenant: acme.tenant, actor: 'test' });
    assert.ok(await until(async () => (await call(h.app, acme, '/api/projects')).statusCode === 503, 5_000), 'suspension seen through NOTIFY');
  });
});

describe('graceful shutdown', () => {
  test('close() lets an in-flight request finish, then releases every connection', async () => {
    const other = await makeTenant(h.tp, 'globex');
    const project = await seedProject(h.tp, other, 'SHUT');
    const app = await buildServer({ platform: h.tp.platform });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const body = JSON.stringify({ title: 'sent while the server closes' });

    const req = httpRequest({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: `/api/projects/${project.id}/tasks`,
      headers: { host: other.host, authorization: `Bearer ${other.token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: text });
        });
      });
      req.on('error', reject);
    });
    req.write(body.slice(0, 10));
    await sleep(100);

    let closed = false;
    const closing = app.close().then(() => {
      closed = true;
    });
    await sleep(100);
    assert.equal(closed, false, 'close() waits for the request');
    req.end(body.slice(10));

    const res = await response;
    assert.equal(res.status, 201, res.body);
    await closing;
    assert.deepEqual(serverInternals(app).pools.stats(), { pools: 0, openConnections: 0, leased: 0 });
    const tasks = await call(h.app, other, `/api/tasks?projectId=${project.id}`);
    assert.ok(tasks.json<{ items: { title: string }[] }>().items.some((t) => t.title === 'sent while the server closes'), 'the request was carried out');
  });
});
