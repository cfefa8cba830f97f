/**
 * A drill that fails half way, on real PostgreSQL: the standby is stopped right after the primary
 * is killed, so the failover cannot happen. The drill must record itself as failed, raise
 * `drill.failed`, and leave the cluster with one primary (the old one, started again). A drill
 * whose process died is marked failed by the next one; a drill that passes resolves the alert.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { runFailoverDrill } from '../src/platform/drill/failover-drill.ts';
import { createLogger } from '../src/platform/log.ts';
import { openReplication } from '../src/platform/replication/context.ts';
import { queryDatabase } from './helpers/drill.ts';
import { eventually, nodeIn, startReplicatedCluster, type ReplicatedCluster } from './helpers/replication.ts';

/** A pid no process has now. */
function deadPid(): number {
  for (let pid = 4_000_000; ; pid--) {
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return pid;
    }
  }
}

describe('a drill that fails half way', { timeout: 300_000 }, () => {
  let rc: ReplicatedCluster;
  let failedId: string;
  const interruptedId = randomUUID();
  before(async () => {
    rc = await startReplicatedCluster();
    const added = await rc.cli('cluster', 'standby', 'add', 'b');
    assert.equal(added.code, 0, added.stderr);
    // What a drill whose process was killed leaves behind.
    await queryDatabase(
      rc,
      'main',
      'taskflow_control',
      `INSERT INTO drills (id, kind, started_at, outcome, cluster, parameters, operator) VALUES ($1, 'failover', now() - interval '1 hour', 'running', 'x', $2, 'cli:test')`,
      [interruptedId, JSON.stringify({ pid: deadPid(), host: hostname() })],
    );
  });
  after(async () => {
    await rc.cleanup();
  });

  test('the standby dies after the kill: the drill is recorded failed, alerts, and main is the one primary again', async () => {
    const ctx = openReplication(loadConfig({ env: {}, overrides: { dataDir: rc.dataDir } }), createLogger({ level: 'silent' }));
    const report = await runFailoverDrill(ctx, {
      writers: 2,
      durationSeconds: 1,
      yesThisIsProduction: false,
      operator: 'test',
      hooks: {
        afterKill: async () => {
          await rc.pgCtl('b', 'stop', '--mode', 'immediate', '--wait');
        },
      },
    });
    failedId = report.id;
    assert.equal(report.outcome, 'failed');
    assert.equal(report.storeError, null);
    const failure = report.figures.failure as { stage: string; error: string; recovery: string[] };
    assert.equal(failure.stage, 'failover');
    assert.match(failure.error, /node b is not reachable/);
    assert.ok(failure.recovery.includes('started the primary main again; it recovered from the crash'), failure.recovery.join('\n'));
    assert.ok(failure.recovery.includes('started the standby b again'), failure.recovery.join('\n'));
    assert.ok(failure.recovery.includes('one primary: main'), failure.recovery.join('\n'));
    assert.match(report.reportMarkdown, /^# Failover drill, async mode, .*: failed/);
    assert.match(report.reportMarkdown, /## Recovery after the failure/);

    const status = await rc.status();
    assert.equal(status.splitBrain, false);
    assert.equal(status.primary, 'main');
    assert.equal(nodeIn(status, 'main').actual, 'primary');
    await eventually('b streams from main again', async () => (nodeIn(await rc.status(), 'b').receiver === 'streaming' ? true : undefined));
  });

  test('the evidence: the failed drill, the interrupted one marked failed, and the drill.failed alert', async () => {
    const list = JSON.parse((await rc.cli('drill', 'list', '--json')).stdout) as { id: string; outcome: string; figures: { failure?: { stage: string } } }[];
    assert.deepEqual(
      list.map((d) => [d.id, d.outcome, d.figures.failure?.stage]),
      [
        [failedId, 'failed', 'failover'],
        [interruptedId, 'failed', 'interrupted'],
      ],
    );
    const alerts = await rc.cli('alerts', 'list', '--json', '--code', 'drill.failed');
    assert.equal(alerts.code, 0, alerts.stderr);
    const open = JSON.parse(alerts.stdout) as { key: string; severity: string; summary: string }[];
    assert.deepEqual(
      open.map((a) => [a.key, a.severity, a.summary.startsWith(`failover drill ${failedId} failed: failover: node b is not reachable`)]),
      [['drill.failed:failover', 'critical', true]],
    );
  });

  test('the next drill passes and resolves the alert', async () => {
    const r = await rc.cli('drill', 'failover', '--writers', '1', '--duration', '1', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { outcome: string }).outcome, 'passed');
    const open = JSON.parse((await rc.cli('alerts', 'list', '--json', '--code', 'drill.failed')).stdout) as unknown[];
    assert.deepEqual(open, []);
  });
});
