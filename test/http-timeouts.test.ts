/**
 * A request that runs past `server.requestTimeoutMs` is answered 503 request-timeout, and what it
 * was changing is rolled back rather than committed after the answer. The slowness is a trigger that
 * sleeps in PostgreSQL, so the statement is really running when the deadline strikes.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { serverInternals } from '../src/app/server.ts';
import { withAdminClient } from '../src/platform/postgres/connection.ts';
import { request } from './helpers/http.ts';
import { call, makeTenant, startHttpTest, type HttpTest, type TestTenant } from './helpers/http-server.ts';
import { seedProject } from './helpers/work.ts';

const TIMEOUT_MS = 1000;
/** Longer than the timeout, so only a rollback keeps the change out. */
const SLEEP_SECONDS = 3;

let h: HttpTest;
let acme: TestTenant;
let port: number;
/** The project the tasks below are written to: `/api/projects/<id>/tasks`. */
let tasksPath: string;

before(async () => {
  h = await startHttpTest({ 'server.requestTimeoutMs': TIMEOUT_MS });
  acme = await makeTenant(h.tp, 'acme');
  await withAdminClient(h.tp.platform.target, acme.tenant.databaseName, async (admin) => {
    await admin.query(`CREATE FUNCTION app.sleep_first() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(${SLEEP_SECONDS}); RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END; END $$`);
    await admin.query(`CREATE TRIGGER slow_insert BEFORE INSERT ON app.tasks FOR EACH ROW WHEN (NEW.description = 'slow') EXECUTE FUNCTION app.sleep_first()`);
    await admin.query(`CREATE TRIGGER slow_delete BEFORE DELETE ON app.tasks FOR EACH ROW WHEN (OLD.title = 'slow') EXECUTE FUNCTION app.sleep_first()`);
  });
  tasksPath = `/api/projects/${(await seedProject(h.tp, acme, 'WORK')).id}/tasks`;
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  port = (h.app.server.address() as AddressInfo).port;
});
after(async () => {
  await h.cleanup();
});

async function taskTitles(): Promise<string[]> {
  const res = await call(h.app, acme, '/api/tasks?limit=100');
  return res.json<{ items: { title: string }[] }>().items.map((t) => t.title);
}

/** Waits until the sleeping statement would have finished, had nothing cut it off. */
async function pastTheSleep(startedAt: number): Promise<void> {
  await sleep(Math.max(0, startedAt + SLEEP_SECONDS * 1000 + 500 - performance.now()));
}

describe('a request that runs out of time', () => {
  test('a POST with a body over real HTTP is answered 503 at its deadline, and its insert is rolled back', async () => {
    const started = performance.now();
    const res = await request({
      port,
      host: acme.host,
      method: 'POST',
      path: tasksPath,
      headers: { authorization: `Bearer ${acme.token}` },
      body: { title: 'SLOWHTTP', description: 'slow' },
    });
    const took = performance.now() - started;
    assert.equal(res.status, 503, res.text);
    assert.equal((res.json() as { code: string }).code, 'request-timeout');
    assert.ok(took < TIMEOUT_MS + 800, `answered at the deadline, not when the statement ended (${Math.round(took)} ms)`);
    await pastTheSleep(started);
    assert.ok(!(await taskTitles()).includes('SLOWHTTP'), 'nothing was committed after the 503');
  });

  test('the same through inject', async () => {
    const started = performance.now();
    const res = await call(h.app, acme, tasksPath, { method: 'POST', body: { title: 'SLOWINJ', description: 'slow' } });
    assert.equal(res.statusCode, 503, res.body);
    assert.equal(res.json<{ code: string }>().code, 'request-timeout');
    await pastTheSleep(started);
    assert.ok(!(await taskTitles()).includes('SLOWINJ'));
  });

  test('a DELETE without a body: 503, and the task is still there', async () => {
    const task = (await call(h.app, acme, tasksPath, { method: 'POST', body: { title: 'slow' } })).json<{ id: string }>();
    const started = performance.now();
    const res = await request({ port, host: acme.host, method: 'DELETE', path: `/api/tasks/${task.id}`, headers: { authorization: `Bearer ${acme.token}` } });
    assert.equal(res.status, 503, res.text);
    assert.equal((res.json() as { code: string }).code, 'request-timeout');
    await pastTheSleep(started);
    assert.equal((await call(h.app, acme, `/api/tasks/${task.id}`)).statusCode, 200, 'the delete was rolled back');
  });

  test('the slow statement is cut off at the deadline, so the connection is free again long before it would have ended', async () => {
    const started = performance.now();
    const res = await call(h.app, acme, tasksPath, { method: 'POST', body: { title: 'SLOWCONN', description: 'slow' } });
    assert.equal(res.statusCode, 503);
    const pools = serverInternals(h.app).pools;
    while (pools.stats().leased > 0 && performance.now() - started < SLEEP_SECONDS * 1000) await sleep(20);
    assert.equal(pools.stats().leased, 0);
    assert.ok(performance.now() - started < TIMEOUT_MS + 1000, `released after ${Math.round(performance.now() - started)} ms`);
  });

  test('requests within their time are not affected, before or after a timeout', async () => {
    const res = await request({
      port,
      host: acme.host,
      method: 'POST',
      path: tasksPath,
      headers: { authorization: `Bearer ${acme.token}` },
      body: { title: 'QUICK' },
    });
    assert.equal(res.status, 201, res.text);
    assert.ok((await taskTitles()).includes('QUICK'));
  });
});
