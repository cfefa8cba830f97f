/**
 * The cap on WAL a replication slot keeps (replication.maxSlotWalKeepSizeMb, PostgreSQL's
 * max_slot_wal_keep_size), on real PostgreSQL: the platform gives the primary the configured value,
 * and a standby that stayed away past it is reported by `cluster status` as needing a rebuild, and by
 * the running process with a `replication.standby-down` alert that it resolves once the standby is
 * rebuilt.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../src/config.ts';
import { listAlerts } from '../src/platform/alerts/alerts.ts';
import { openPlatform, type Platform } from '../src/platform/platform.ts';
import { eventually, nodeIn, startReplicatedCluster, type ReplicatedCluster } from './helpers/replication.ts';

describe('the slot WAL cap', { timeout: 300_000 }, () => {
  let rc: ReplicatedCluster;
  let platform: Platform;

  before(async () => {
    rc = await startReplicatedCluster();
    const added = await rc.cli('cluster', 'standby', 'add', 'b');
    assert.equal(added.code, 0, added.stderr);
  });
  after(async () => {
    await platform.close();
    await rc.cleanup();
  });

  test('a new cluster caps slots at the default; the platform applies the configured value without a restart', async () => {
    const [before] = await rc.sql<{ v: string }>('main', "SELECT current_setting('max_slot_wal_keep_size') AS v");
    assert.equal(before?.v, '4GB');
    // 1 MB is less than a WAL segment: a slot not in use is given up at the next checkpoint.
    const config = loadConfig({ env: {}, overrides: { dataDir: rc.dataDir, 'replication.maxSlotWalKeepSizeMb': 1, 'replication.statusCheckSeconds': 1 } });
    platform = await openPlatform(config, { log: pino({ level: 'silent' }) });
    const [after] = await rc.sql<{ v: string }>('main', "SELECT current_setting('max_slot_wal_keep_size') AS v");
    assert.equal(after?.v, '1MB');
  });

  test('a standby that stayed away past the cap is a problem and an alert until it is rebuilt', async () => {
    assert.equal((await rc.cli('cluster', 'stop', 'b')).code, 0);
    // wal_keep_size (512 MB) would otherwise keep the WAL anyway; the test makes it keep none.
    await rc.sql('main', 'ALTER SYSTEM SET wal_keep_size = 0');
    await rc.sql('main', 'SELECT pg_reload_conf()');
    await rc.sql('main', 'CREATE TABLE slot_filler (n int)');
    for (let i = 0; i < 3; i++) {
      await rc.sql('main', 'INSERT INTO slot_filler VALUES ($1)', [i]);
      await rc.sql('main', 'SELECT pg_switch_wal()');
    }
    await rc.sql('main', 'CHECKPOINT');

    const status = await rc.status();
    assert.equal(nodeIn(status, 'b').slot?.walStatus, 'lost');
    assert.ok(
      status.problems.some((p) => /standby b fell further behind than replication\.maxSlotWalKeepSizeMb allows and its slot taskflow_b was invalidated.*'taskflow cluster rebuild b'/.test(p)),
      status.problems.join('\n'),
    );
    // The watch may have seen b down (a warning) before its slot went; it says so when it does.
    const alert = await eventually('the critical alert', async () => (await listAlerts(platform.control, { code: 'replication.standby-down' })).find((a) => a.severity === 'critical'));
    assert.equal(alert.severity, 'critical');
    assert.equal(alert.key, 'replication.standby-down:b');
    assert.match(alert.summary, /was invalidated/);

    const rebuilt = await rc.cli('cluster', 'rebuild', 'b', '--fresh');
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    const healed = await rc.status();
    assert.equal(nodeIn(healed, 'b').slot?.active, true);
    await eventually('the alert resolved', async () => ((await listAlerts(platform.control, { code: 'replication.standby-down' })).length === 0 ? true : undefined));
    const [resolved] = await listAlerts(platform.control, { all: true, code: 'replication.standby-down' });
    assert.match(resolved?.resolution ?? '', /standby b is up and its slot is valid/);
  });
});
