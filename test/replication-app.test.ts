/**
 * The running app through a failover, on real PostgreSQL: one server process with a live HTTP
 * listener and a writer creating tasks without pause; kill -9 of the primary; `taskflow cluster
 * failover --to b` from another process. Requests are refused fast with 503 `primary-unavailable`
 * and Retry-After during the gap, succeed again through the same process as soon as b takes
 * writes, and every write answered 2xx (synchronous mode) is on b; the mail worker delivers again.
 * Also: a COMMIT that no standby confirmed is 503 `commit-unconfirmed`, never 2xx; an old primary
 * that comes back as a primary stops all writes until it is gone (`replication.split-brain`); a
 * switchover under load moves the app too, losing nothing.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { pino } from 'pino';
import { buildServer } from '../src/app/server.ts';
import { loadConfig } from '../src/config.ts';
import { listAlerts } from '../src/platform/alerts/alerts.ts';
import { enqueueMail, startMail, type MailService } from '../src/platform/mail/index.ts';
import { openPlatform, type Platform } from '../src/platform/platform.ts';
import { BASE_DOMAIN, call, makeTenant, type TestTenant } from './helpers/http-server.ts';
import { failoverFigures, startHttpWriter, type HttpWriter, type WriteOutcome } from './helpers/http-writer.ts';
import { eventually, nodeIn, startReplicatedCluster, type ReplicatedCluster } from './helpers/replication.ts';
import { assertProblem, seedProject, type Project } from './helpers/work.ts';

const OVERRIDES = {
  'server.baseDomain': BASE_DOMAIN,
  // Short enough that a commit waiting for a stopped standby is cut off within the test.
  'server.requestTimeoutMs': 2000,
  'rateLimits.perIpPerMinute': 1_000_000,
  'rateLimits.perTenantPerMinute': 10_000_000,
  'postgres.primary.splitBrainCheckMs': 300,
};

describe('the app through a failover', { timeout: 400_000 }, () => {
  let rc: ReplicatedCluster;
  let platform: Platform;
  let app: FastifyInstance;
  let port: number;
  let acme: TestTenant;
  let project: Project;
  let mail: MailService;

  const writer = (prefix: string): HttpWriter => startHttpWriter({ port, host: acme.host, token: acme.token, projectId: project.id, concurrency: 2, prefix });
  before(async () => {
    rc = await startReplicatedCluster();
    for (const args of [['cluster', 'standby', 'add', 'b'], ['cluster', 'mode', 'sync']]) {
      const r = await rc.cli(...args);
      assert.equal(r.code, 0, r.stderr);
    }
    const config = loadConfig({ env: {}, overrides: { dataDir: rc.dataDir, ...OVERRIDES } });
    platform = await openPlatform(config, { log: pino({ level: process.env.TASKFLOW_TEST_LOG_LEVEL ?? 'silent' }) });
    const tp = { platform, config, dataDir: rc.dataDir, cleanup: () => Promise.resolve() };
    acme = await makeTenant(tp, 'acme');
    project = await seedProject(tp, acme, 'HA');
    app = await buildServer({ platform });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as AddressInfo).port;
    mail = await startMail(platform, { pollIntervalMs: 200 });
  });
  after(async () => {
    await mail.close();
    await app.close();
    await platform.close();
    await rc.cleanup();
  });

  /** Which of `titles` are tasks in acme's database on `node`. */
  async function tasksOn(node: string, titles: string[]): Promise<Set<string>> {
    const password = readFileSync(join(rc.dataDir, 'secrets', 'pg-superuser.password'), 'utf8').trim();
    const client = new pg.Client({ host: '127.0.0.1', port: rc.port(node), user: 'taskflow_admin', password, database: acme.tenant.databaseName });
    await client.connect();
    try {
      const res = await client.query<{ title: string }>('SELECT title FROM app.tasks WHERE title = ANY($1)', [titles]);
      return new Set(res.rows.map((r) => r.title));
    } finally {
      await client.end();
    }
  }

  test('a write whose COMMIT no standby confirmed is answered 503 commit-unconfirmed, never 2xx', async () => {
    assert.equal((await rc.cli('cluster', 'stop', 'b')).code, 0);
    const res = await call(app, acme, `/api/projects/${project.id}/tasks`, { method: 'POST', body: { title: 'no standby saw this' } });
    const problem = assertProblem(res, 'commit-unconfirmed');
    assert.match(problem.detail, /no standby confirmed it/);
    assert.equal(res.headers['retry-after'], String(platform.config.postgres.primary.retryAfterSeconds));
    // What the answer warns about: the primary has it, no standby does yet.
    assert.deepEqual([...(await tasksOn('main', ['no standby saw this']))], ['no standby saw this']);
    assert.equal((await rc.cli('cluster', 'start', 'b')).code, 0);
    await eventually('b streaming again', async () => (nodeIn(await rc.status(), 'b').receiver === 'streaming' ? true : undefined));
  });

  test('kill -9 of the primary and a failover: fast 503s, then writes again through the same process, none acknowledged lost', async (t) => {
    const w = writer('failover');
    let killedAt: number;
    let failoverAt: number;
    let failoverDoneAt: number;
    let result: { gap: { missingCommits: number } };
    try {
      await w.waitForAcknowledged(20, 0, 30_000);
      killedAt = performance.now();
      await rc.kill('main');
      // While nobody has failed over yet, every request is refused at once.
      await new Promise((r) => setTimeout(r, 1000));
      failoverAt = performance.now();
      // b is the one synchronous standby: a commit it lacks was still waiting for it when main died,
      // so nobody was told it succeeded. The failover counts such commits and wants --force to drop
      // them; the check below is what matters, that no acknowledged write is missing.
      const r = await rc.cli('cluster', 'failover', '--to', 'b', '--force', '--json');
      failoverDoneAt = performance.now();
      assert.equal(r.code, 0, r.stderr);
      result = JSON.parse(r.stdout) as typeof result;
      await w.waitForAcknowledged(20, failoverDoneAt, 30_000);
    } finally {
      await w.stop();
    }

    const figures = failoverFigures(w.outcomes, killedAt);
    t.diagnostic(
      `HTTP writes: last 2xx ${figures.lastAckBeforeMs} ms before the kill, first 2xx ${figures.firstAckAfterMs} ms after it (gap ${figures.gapMs} ms); ` +
        `failover command ${Math.round(failoverDoneAt - failoverAt)} ms (started ${Math.round(failoverAt - killedAt)} ms after the kill); ` +
        `first 2xx ${Math.round(figures.firstAckAfterMs - (failoverDoneAt - killedAt))} ms after it returned; ${figures.refused} refusals, the slowest ${figures.slowestRefusalMs} ms; ` +
        `${w.acknowledged().length} writes acknowledged; commits main had that b lacked (never acknowledged): ${result.gap.missingCommits}`,
    );
    assertRefusalsFast(w.outcomes.filter((o) => o.sentAt >= killedAt - 1000));
    assert.ok(figures.refused > 0, 'requests during the gap were refused');
    assert.equal(platform.primary.current()?.name, 'b');

    const acknowledged = w.acknowledged();
    const onB = await tasksOn('b', acknowledged);
    assert.deepEqual(acknowledged.filter((title) => !onB.has(title)), [], 'every acknowledged write is on the new primary');
  });

  test('the mail worker delivers again after the failover', async () => {
    const id = await enqueueMail(platform.control, { kind: 'password-reset', to: 'someone@acme.example', subject: 'after the failover', text: 'hello' });
    await eventually(
      'the message sent',
      async () => ((await platform.control.query<{ status: string }>('SELECT status FROM mail_outbox WHERE id = $1', [id])).rows[0]?.status === 'sent' ? true : undefined),
      20_000,
    );
  });

  test('an old primary that comes back as a primary stops every write until it is gone, with a split-brain alert', async () => {
    // As a site that was cut off during the failover would come back: without the fence.
    rmSync(join(rc.pgData('main'), 'standby.signal'));
    rmSync(join(rc.pgData('main'), 'TASKFLOW_FENCED'));
    await rc.pgCtl('main', 'start', '--wait');
    const refused = await eventually('writes refused', async () => {
      const res = await call(app, acme, `/api/projects/${project.id}/tasks`, { method: 'POST', body: { title: 'during the split' } });
      return res.statusCode === 503 ? res : undefined;
    });
    assertProblem(refused, 'primary-unavailable');
    assert.equal(platform.primary.current(), null);
    assert.match(platform.primary.state.reason ?? '', /b \(timeline 2\) and main \(timeline 1\) both accept writes/);

    await rc.pgCtl('main', 'stop', '--wait', '--mode', 'fast');
    await eventually('writes accepted again', async () => {
      const res = await call(app, acme, `/api/projects/${project.id}/tasks`, { method: 'POST', body: { title: 'after the split' } });
      return res.statusCode === 201 ? true : undefined;
    });
    const [alert] = await listAlerts(platform.control, { all: true, code: 'replication.split-brain' });
    assert.ok(alert, 'the split brain was recorded');
    assert.match(alert.summary, /both accept writes/);
    assert.match(alert.resolution ?? '', /only b accepts writes now/);
  });

  test('a switchover under load moves the app to the new primary, losing nothing', async (t) => {
    const rebuilt = await rc.cli('cluster', 'rebuild', 'main');
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    const w = writer('switchover');
    let startedAt: number;
    let doneAt: number;
    try {
      await w.waitForAcknowledged(20, 0, 30_000);
      startedAt = performance.now();
      const r = await rc.cli('cluster', 'switchover', '--to', 'main', '--json');
      doneAt = performance.now();
      assert.equal(r.code, 0, r.stderr);
      await w.waitForAcknowledged(20, doneAt, 30_000);
    } finally {
      await w.stop();
    }
    const figures = failoverFigures(w.outcomes, startedAt);
    t.diagnostic(
      `switchover: command ${Math.round(doneAt - startedAt)} ms; HTTP writes paused at most ${figures.longestPauseMs} ms; ${figures.refused} refusals, the slowest ${figures.slowestRefusalMs} ms; ${w.acknowledged().length} writes acknowledged`,
    );
    assertRefusalsFast(w.outcomes.filter((o) => o.sentAt >= startedAt));
    assert.equal(platform.primary.current()?.name, 'main');
    const acknowledged = w.acknowledged();
    const onMain = await tasksOn('main', acknowledged);
    assert.deepEqual(acknowledged.filter((title) => !onMain.has(title)), []);
  });
});

/** Every answer that was not a success is a fast 503 problem with Retry-After: no hang, no 500. */
function assertRefusalsFast(outcomes: WriteOutcome[]): void {
  for (const o of outcomes) {
    if (o.status >= 200 && o.status < 300) continue;
    assert.equal(o.error, null, `a request failed without an answer: ${o.error ?? ''}`);
    assert.equal(o.status, 503, `${o.title}: ${o.status} ${o.code ?? ''}`);
    assert.match(o.contentType ?? '', /^application\/problem\+json/);
    assert.ok(['primary-unavailable', 'commit-unconfirmed'].includes(o.code ?? ''), `${o.title}: ${o.code ?? ''}`);
    assert.ok(o.retryAfter !== null && Number(o.retryAfter) <= 5, `Retry-After ${o.retryAfter ?? 'missing'}`);
    assert.ok(o.doneAt - o.sentAt < 5_000, `${o.title} took ${Math.round(o.doneAt - o.sentAt)} ms to be refused`);
  }
}
