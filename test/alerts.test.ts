/** The alert interface against a real control database, and `taskflow alerts`. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ControlDbAlerts, listAlerts } from '../src/platform/alerts/alerts.ts';
import { createLogger } from '../src/platform/log.ts';
import { runCli } from './helpers/cli.ts';
import { startTestPlatform, type TestPlatform } from './helpers/platform.ts';

describe('alerts', () => {
  let tp: TestPlatform;
  let alerts: ControlDbAlerts;
  before(async () => {
    tp = await startTestPlatform();
    alerts = new ControlDbAlerts(tp.platform.control, createLogger({ level: 'silent' }));
  });
  after(async () => {
    await tp.cleanup();
  });

  test('a repeated problem folds into one open alert, counted; after resolution it opens a new one', async () => {
    const input = { code: 'backup.repository-unreachable', severity: 'critical', key: 'backup.repository-unreachable:offsite', summary: 'repository offsite unreachable' } as const;
    await alerts.raise(input);
    await alerts.raise({ ...input, summary: 'repository offsite unreachable (again)', details: { attempt: 2, password: 'hunter2' } });
    let open = await listAlerts(tp.platform.control, { code: 'backup.repository-unreachable' });
    assert.equal(open.length, 1);
    assert.equal(open[0]?.occurrences, 2);
    assert.equal(open[0].summary, 'repository offsite unreachable (again)');
    assert.deepEqual(open[0].details, { attempt: 2 }, 'secret-looking details are dropped');

    assert.equal(await alerts.resolve(input.key, 'network restored'), true);
    assert.equal(await alerts.resolve(input.key, 'twice'), false, 'nothing left open to resolve');
    assert.equal((await listAlerts(tp.platform.control, { code: 'backup.repository-unreachable' })).length, 0);
    await alerts.raise(input);
    const all = await listAlerts(tp.platform.control, { all: true, code: 'backup.repository-unreachable' });
    assert.equal(all.length, 2);
    assert.equal(all.filter((a) => a.resolvedAt === null).length, 1);
    assert.equal(all.find((a) => a.resolvedAt !== null)?.resolution, 'network restored');
    open = await listAlerts(tp.platform.control);
    assert.equal(open.length, 1);
  });

  test('raising never throws, even when the store is gone', async () => {
    const broken = new ControlDbAlerts({ query: () => Promise.reject(new Error('connection refused')) } as never, createLogger({ level: 'silent' }));
    await broken.raise({ code: 'backup.failed', severity: 'critical', summary: 'x' });
  });

  test('taskflow alerts list and resolve', async () => {
    const env = { TASKFLOW_DATA_DIR: tp.dataDir };
    await alerts.raise({ code: 'replication.lagging', severity: 'warning', key: 'replication.lagging:standby-1', summary: 'standby-1 is 40 s behind' });
    const listed = await runCli(['alerts', 'list', '--json'], { env });
    assert.equal(listed.code, 0, listed.stderr);
    const rows = JSON.parse(listed.stdout) as { key: string }[];
    assert.ok(rows.some((r) => r.key === 'replication.lagging:standby-1'));
    const text = await runCli(['alerts', 'list'], { env });
    assert.match(text.stdout, /standby-1 is 40 s behind/);

    const bad = await runCli(['alerts', 'list', '--code', 'nonsense'], { env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown alert code/);
    const missing = await runCli(['alerts', 'resolve', 'no-such-key', '--reason', 'x'], { env });
    assert.equal(missing.code, 3);
    const resolved = await runCli(['alerts', 'resolve', 'replication.lagging:standby-1', '--reason', 'standby rebuilt'], { env });
    assert.equal(resolved.code, 0, resolved.stderr);
    const after = JSON.parse((await runCli(['alerts', 'list', '--json', '--code', 'replication.lagging'], { env })).stdout) as unknown[];
    assert.equal(after.length, 0);
  });
});
