/**
 * Tenants over HTTP: which host reaches which tenant, that no tenant can reach another's rows, and
 * that lifecycle changes (suspend, resume, rename, token rotation) take effect through NOTIFY.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildServer, serverInternals } from '../src/app/server.ts';
import { createLogger } from '../src/platform/log.ts';
import { issueApiToken, renameTenant, resumeTenant, suspendTenant } from '../src/platform/tenants/lifecycle.ts';
import { call, makeTenant, startHttpTest, type HttpTest, type TestTenant } from './helpers/http-server.ts';
import { seedProject } from './helpers/work.ts';

let h: HttpTest;
let acme: TestTenant;
let globex: TestTenant;

before(async () => {
  // A TTL far longer than any test: whatever changes below, changes through NOTIFY.
  h = await startHttpTest({ 'tenants.cacheTtlMs': 600_000 });
  acme = await makeTenant(h.tp, 'acme');
  globex = await makeTenant(h.tp, 'globex');
});
after(async () => {
  await h.cleanup();
});

/** Repeats `probe` until `done` says yes, for at most `ms`; returns the last response. */
async function eventually(probe: () => Promise<LightMyRequestResponse>, done: (res: LightMyRequestResponse) => boolean, ms = 5_000): Promise<LightMyRequestResponse> {
  const deadline = Date.now() + ms;
  let res = await probe();
  while (!done(res) && Date.now() < deadline) {
    await sleep(20);
    res = await probe();
  }
  return res;
}

function problemCode(res: LightMyRequestResponse): string {
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  return res.json<{ code: string }>().code;
}

describe('host names', () => {
  test('a port, upper case and a trailing dot still reach the tenant', async () => {
    for (const host of ['acme.taskflow.test', 'acme.taskflow.test:8080', 'ACME.TaskFlow.TEST', 'acme.taskflow.test.', 'Acme.taskflow.test.:443']) {
      const res = await call(h.app, acme, '/api/projects', { host });
      assert.equal(res.statusCode, 200, `${host}: ${res.body}`);
    }
  });

  test('extra labels, unknown tenants, the bare domain and IP addresses are 404 tenant-not-found', async () => {
    for (const host of ['www.acme.taskflow.test', 'nope.taskflow.test', 'taskflow.test', 'acme.other.test', '127.0.0.1:8080', '[::1]:8080', 'ac_me.taskflow.test']) {
      const res = await call(h.app, acme, '/api/projects', { host });
      assert.equal(res.statusCode, 404, host);
      assert.equal(problemCode(res), 'tenant-not-found', host);
    }
  });

  test('a port outside 1–65535 names no tenant', async () => {
    for (const host of ['acme.taskflow.test:99999', 'acme.taskflow.test:65536', 'acme.taskflow.test:0']) {
      const res = await call(h.app, acme, '/api/projects', { host });
      assert.equal(res.statusCode, 404, host);
      assert.equal(problemCode(res), 'tenant-not-found', host);
    }
    assert.equal((await call(h.app, acme, '/api/projects', { host: 'acme.taskflow.test:65535' })).statusCode, 200);
  });

  test('an unknown tenant is told apart from an unknown route only after the host resolves', async () => {
    const res = await call(h.app, acme, '/api/nothing', { host: 'nope.taskflow.test' });
    assert.equal(problemCode(res), 'tenant-not-found');
  });
});

describe('more than one Host header', () => {
  let app: FastifyInstance;
  let port: number;

  before(async () => {
    app = await buildServer({ platform: h.tp.platform });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as AddressInfo).port;
  });
  after(async () => {
    await app.close();
  });

  /** Sends raw header lines (Node's HTTP client cannot repeat Host) and returns the status line and body. */
  async function rawRequest(lines: string[]): Promise<{ status: number; body: string }> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(`${lines.join('\r\n')}\r\nConnection: close\r\n\r\n`);
    let text = '';
    socket.setEncoding('utf8');
    for await (const chunk of socket) text += String(chunk);
    const [head = '', body = ''] = text.split('\r\n\r\n');
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), body };
  }

  test('is a 400 bad-request, on tenant routes and on routes served on any host', async () => {
    for (const [path, hosts] of [
      ['/api/projects', [acme.host, globex.host]],
      ['/api/projects', [acme.host, acme.host]],
      ['/healthz', ['localhost', acme.host]],
    ] as const) {
      const res = await rawRequest([`GET ${path} HTTP/1.1`, ...hosts.map((host) => `Host: ${host}`), `Authorization: Bearer ${acme.token}`]);
      assert.equal(res.status, 400, `${path} ${hosts.join(' + ')}`);
      assert.equal((JSON.parse(res.body) as { code: string }).code, 'bad-request');
    }
    const single = await rawRequest(['GET /api/projects HTTP/1.1', `Host: ${acme.host}`, `Authorization: Bearer ${acme.token}`]);
    assert.equal(single.status, 200, single.body);
  });
});

describe('isolation between tenants', () => {
  test("a tenant never sees another's rows, even by id, and cannot change them", async () => {
    const project = await seedProject(h.tp, globex, 'SECRET', 'Globex secret');
    const task = (await call(h.app, globex, `/api/projects/${project.id}/tasks`, { method: 'POST', body: { title: 'classified' } })).json<{ id: string; status: { id: string } }>();

    const list = (await call(h.app, acme, '/api/projects')).json<{ items: { key: string }[] }>();
    assert.ok(!list.items.some((p) => p.key === 'SECRET'));
    assert.equal((await call(h.app, acme, `/api/tasks?projectId=${project.id}`)).json<{ items: unknown[] }>().items.length, 0);
    for (const [method, url, body] of [
      ['GET', `/api/projects/${project.id}`, undefined],
      ['GET', `/api/projects/${project.id}/workflow`, undefined],
      ['POST', `/api/projects/${project.id}/tasks`, { title: 'planted' }],
      ['POST', `/api/tasks/${task.id}/move`, { toStatusId: task.status.id }],
      ['POST', `/api/tasks/${task.id}/comments`, { body: 'planted' }],
      ['GET', `/api/tasks/${task.id}`, undefined],
      ['PATCH', `/api/tasks/${task.id}`, { title: 'pwned' }],
      ['DELETE', `/api/tasks/${task.id}`, undefined],
    ] as const) {
      const res = await call(h.app, acme, url, { method, body });
      assert.equal(res.statusCode, 404, `${method} ${url}`);
    }
    const still = (await call(h.app, globex, `/api/projects/${project.id}`)).json<{ name: string }>();
    assert.equal(still.name, 'Globex secret');
    const tasks = (await call(h.app, globex, `/api/tasks?projectId=${project.id}`)).json<{ items: { title: string }[] }>();
    assert.deepEqual(tasks.items.map((t) => t.title), ['classified']);
  });

  test("another tenant's token is 401 with WWW-Authenticate", async () => {
    const res = await call(h.app, acme, '/api/projects', { token: globex.token });
    assert.equal(res.statusCode, 401);
    assert.equal(problemCode(res), 'unauthenticated');
    assert.match(String(res.headers['www-authenticate']), /^Bearer/);
  });

  test('no token, a malformed header or a made-up token is 401', async () => {
    for (const headers of [{}, { authorization: acme.token }, { authorization: `Basic ${acme.token}` }, { authorization: `Bearer tf_${'A'.repeat(43)}` }, { authorization: 'Bearer ' }]) {
      const res = await h.app.inject({ url: '/api/projects', headers: { host: acme.host, ...headers } });
      assert.equal(res.statusCode, 401, JSON.stringify(headers));
      assert.equal(problemCode(res), 'unauthenticated');
      assert.match(String(res.headers['www-authenticate']), /^Bearer/);
    }
  });
});

describe('tenant lifecycle through NOTIFY', () => {
  before(() => {
    // Otherwise nothing would be cached and these tests would prove nothing about invalidation.
    assert.equal(serverInternals(h.app).resolver.listening, true);
  });

  test('suspended answers 503 tenant-suspended with Retry-After; resumed serves again', async () => {
    const t = await makeTenant(h.tp, 'initech');
    assert.equal((await call(h.app, t, '/api/projects')).statusCode, 200, 'cached as active');
    await suspendTenant({ platform: h.tp.platform, tenant: t.tenant, reason: 'unpaid', actor: 'test' });
    const suspended = await eventually(() => call(h.app, t, '/api/projects'), (r) => r.statusCode === 503);
    assert.equal(suspended.statusCode, 503);
    assert.equal(problemCode(suspended), 'tenant-suspended');
    // Suspension lasts until an operator resumes: an hour, not the few minutes of a transient 503.
    assert.equal(suspended.headers['retry-after'], '3600');
    assert.doesNotMatch(suspended.body, /unpaid/, 'the operator reason stays internal');

    await resumeTenant({ platform: h.tp.platform, tenant: t.tenant, actor: 'test' });
    const resumed = await eventually(() => call(h.app, t, '/api/projects'), (r) => r.statusCode === 200);
    assert.equal(resumed.statusCode, 200);
  });

  test('a renamed tenant serves on its new name and, during the grace period, its old one', async () => {
    const t = await makeTenant(h.tp, 'hooli');
    assert.equal((await call(h.app, t, '/api/projects')).statusCode, 200);
    await renameTenant({ platform: h.tp.platform, tenant: t.tenant, newSlug: 'hooli-xyz', actor: 'test' });
    const renamed = await eventually(() => call(h.app, t, '/api/projects', { host: 'hooli-xyz.taskflow.test' }), (r) => r.statusCode === 200);
    assert.equal(renamed.statusCode, 200);
    assert.equal((await call(h.app, t, '/api/projects', { host: 'hooli.taskflow.test' })).statusCode, 200);
  });

  test('a rotated token stops working at once', async () => {
    const t = await makeTenant(h.tp, 'umbrella');
    assert.equal((await call(h.app, t, '/api/projects')).statusCode, 200, 'the old token is cached as good');
    const fresh = await issueApiToken({ platform: h.tp.platform, tenant: t.tenant, label: 'rotated', revokeOthers: true, actor: 'test' });
    const old = await eventually(() => call(h.app, t, '/api/projects'), (r) => r.statusCode === 401);
    assert.equal(old.statusCode, 401);
    assert.equal((await call(h.app, t, '/api/projects', { token: fresh })).statusCode, 200);
  });
});

describe('request logs', () => {
  let logged: Record<string, unknown>[];
  let app: FastifyInstance;

  before(async () => {
    logged = [];
    const log = createLogger({ level: 'info', destination: { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) } });
    app = await buildServer({ platform: { ...h.tp.platform, log } });
  });
  after(async () => {
    await app.close();
  });

  test('one line per response, naming the tenant, without the query string or the token', async () => {
    logged.length = 0;
    await call(app, acme, '/api/tasks?cursor=c2VjcmV0&limit=3');
    await call(app, acme, '/api/projects', { host: 'nope.taskflow.test' });
    const lines = logged.filter((l) => l.msg === 'response');
    assert.equal(lines.length, 2);
    assert.deepEqual(
      lines.map((l) => [l.tenant, l.method, l.url, l.status]),
      [
        ['acme', 'GET', '/api/tasks', 400],
        [null, 'GET', '/api/projects', 404],
      ],
    );
    assert.equal(typeof lines[0]?.ms, 'number');
    const text = JSON.stringify(logged);
    assert.ok(!text.includes(acme.token), 'the token is never logged');
    assert.ok(!text.includes('c2VjcmV0'), 'the query string is never logged');
  });
});
