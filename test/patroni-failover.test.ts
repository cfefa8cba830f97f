/**
 * Automatic failover through Patroni with etcd, on real components: one etcd member, two Patroni
 * nodes with their own PostgreSQL 15, TaskFlow set up through its normal path (databaseUrl) and told
 * the Patroni endpoints. A writer creates tasks over HTTP without pause; the leader's Patroni and
 * PostgreSQL are killed with SIGKILL; Patroni promotes the other node and the same TaskFlow process
 * writes through it, with fast 503s in between and no acknowledged write lost (synchronous_mode).
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { buildServer } from '../src/app/server.ts';
import { BASE_DOMAIN, makeTenant, type TestTenant } from './helpers/http-server.ts';
import { failoverFigures, startHttpWriter } from './helpers/http-writer.ts';
import { startPatroniCluster, type PatroniCluster } from './helpers/patroni.ts';
import { startTestPlatform, type TestPlatform } from './helpers/platform.ts';
import { seedProject, type Project } from './helpers/work.ts';

describe('TaskFlow on a Patroni cluster', { timeout: 240_000 }, () => {
  let patroni: PatroniCluster;
  let tp: TestPlatform;
  let app: FastifyInstance;
  let port: number;
  let acme: TestTenant;
  let project: Project;

  before(async () => {
    patroni = await startPatroniCluster();
    await patroni.waitForSyncStandby(90_000);
    tp = await startTestPlatform({
      overrides: {
        databaseUrl: patroni.databaseUrl,
        'postgres.patroni.endpoints': patroni.endpoints,
        'postgres.primary.checkIntervalMs': 250,
        'server.baseDomain': BASE_DOMAIN,
        'rateLimits.perIpPerMinute': 1_000_000,
        'rateLimits.perTenantPerMinute': 10_000_000,
      },
    });
    acme = await makeTenant(tp, 'acme');
    project = await seedProject(tp, acme, 'PAT');
    app = await buildServer({ platform: tp.platform });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as AddressInfo).port;
  });
  after(async () => {
    await app.close();
    await tp.cleanup();
    await patroni.cleanup();
  });

  test('the platform was set up on the leader Patroni names', async () => {
    const leader = await patroni.waitForLeader(10_000);
    assert.equal(tp.platform.primary.current()?.name, leader);
    assert.equal(tp.platform.primary.state.source, 'patroni');
    assert.equal(tp.platform.target.port, patroni.node(leader).pgPort);
  });

  test('SIGKILL of the leader: Patroni promotes the other node and TaskFlow writes through it, losing nothing acknowledged', async (t) => {
    const old = await patroni.waitForLeader(10_000);
    const w = startHttpWriter({ port, host: acme.host, token: acme.token, projectId: project.id, concurrency: 2, prefix: 'patroni' });
    let killedAt: number;
    let next: string;
    try {
      await w.waitForAcknowledged(20, 0, 30_000);
      killedAt = performance.now();
      patroni.kill(old);
      await w.waitForAcknowledged(1, killedAt, 90_000);
      next = await patroni.waitForLeader(10_000, old);
      await w.waitForAcknowledged(20, performance.now(), 30_000);
    } finally {
      await w.stop();
    }
    const figures = failoverFigures(w.outcomes, killedAt);
    t.diagnostic(
      `Patroni: SIGKILL of ${old} (Patroni and PostgreSQL) to the first acknowledged HTTP write through ${next}: ${figures.firstAckAfterMs} ms ` +
        `(gap ${figures.gapMs} ms; ${figures.refused} refusals, the slowest ${figures.slowestRefusalMs} ms; ${w.acknowledged().length} writes acknowledged)`,
    );
    assert.notEqual(next, old);
    assert.equal(tp.platform.primary.current()?.name, next);
    assert.ok(figures.firstAckAfterMs < 60_000, `writes resumed ${figures.firstAckAfterMs} ms after the kill`);
    for (const o of w.outcomes.filter((x) => x.sentAt >= killedAt && (x.status < 200 || x.status >= 300))) {
      assert.equal(o.status, 503, `${o.title}: ${o.status} ${o.code ?? o.error ?? ''}`);
      assert.equal(o.code, 'primary-unavailable');
      assert.ok(o.retryAfter !== null, 'Retry-After');
      assert.ok(o.doneAt - o.sentAt < 5_000, `${o.title} took ${Math.round(o.doneAt - o.sentAt)} ms to be refused`);
    }

    const acknowledged = w.acknowledged();
    const node = patroni.node(next);
    const url = new URL(patroni.databaseUrl);
    const client = new pg.Client({ host: '127.0.0.1', port: node.pgPort, user: 'postgres', password: decodeURIComponent(url.password), database: acme.tenant.databaseName });
    await client.connect();
    try {
      const res = await client.query<{ title: string }>('SELECT title FROM app.tasks WHERE title = ANY($1)', [acknowledged]);
      const present = new Set(res.rows.map((r) => r.title));
      assert.deepEqual(acknowledged.filter((title) => !present.has(title)), [], 'every acknowledged write is on the new leader');
    } finally {
      await client.end();
    }
  });
});
