/**
 * `taskflow cluster status --metrics` against a real primary and a local standby: the Prometheus
 * text parses line by line, and its gauges follow the standby as it streams, lags and stops.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseExposition, type Exposition } from './helpers/prometheus.ts';
import { eventually, nodeIn, startReplicatedCluster, type ReplicatedCluster } from './helpers/replication.ts';

describe('cluster status --metrics', { timeout: 240_000 }, () => {
  let rc: ReplicatedCluster;
  const metrics = async (): Promise<Exposition> => {
    const r = await rc.cli('cluster', 'status', '--metrics');
    assert.equal(r.code, 0, r.stderr);
    return parseExposition(r.stdout);
  };

  before(async () => {
    rc = await startReplicatedCluster();
    await rc.sql('main', 'CREATE TABLE metric_rows (id int PRIMARY KEY, note text)');
    const added = await rc.cli('cluster', 'standby', 'add', 'b');
    assert.equal(added.code, 0, added.stderr);
  });
  after(async () => {
    await rc.cleanup();
  });

  test('--json and --metrics together are refused', async () => {
    const r = await rc.cli('cluster', 'status', '--json', '--metrics');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--json and --metrics .* choose one/);
    assert.equal(r.stdout, '');
  });

  test('a streaming standby: both nodes up, caught up, its slot active and reserved; the same numbers as --json', async () => {
    const m = await eventually('the standby caught up', async () => {
      const found = await metrics();
      return found.value('taskflow_replication_lag_bytes', { node: 'b' }) === 0 && found.value('taskflow_replication_slot_active', { node: 'b' }) === 1 ? found : undefined;
    });
    assert.equal(m.type.get('taskflow_replication_lag_bytes'), 'gauge');
    assert.deepEqual(
      m.select('taskflow_replication_node_up').map((s) => [s.labels, s.value]),
      [
        [{ node: 'main', site: 'local', role: 'primary' }, 1],
        [{ node: 'b', site: 'local', role: 'standby' }, 1],
      ],
    );
    assert.equal(m.value('taskflow_replication_is_primary', { node: 'main' }), 1);
    assert.equal(m.value('taskflow_replication_is_primary', { node: 'b' }), 0);
    assert.equal(m.value('taskflow_replication_lag_seconds', { node: 'b' }), 0);
    assert.equal(m.value('taskflow_replication_replay_paused', { node: 'b' }), 0);
    assert.equal(m.value('taskflow_replication_sync_state', { node: 'b', sync_state: 'async' }), 1);
    assert.equal(m.value('taskflow_replication_slot_wal_status', { node: 'b', slot: 'taskflow_b', wal_status: 'reserved' }), 1);
    assert.ok((m.value('taskflow_replication_slot_retained_wal_bytes', { node: 'b', slot: 'taskflow_b' }) ?? -1) >= 0);
    assert.equal(m.value('taskflow_replication_sync_mode'), 0);
    assert.equal(m.value('taskflow_replication_split_brain'), 0);
    assert.equal(m.value('taskflow_replication_problems'), 0);

    const status = await rc.status();
    for (const node of ['main', 'b']) assert.equal(m.value('taskflow_replication_timeline', { node }), nodeIn(status, node).timeline, `timeline of ${node}`);
    const expires = m.value('taskflow_replication_certificate_expiry_timestamp_seconds');
    assert.equal(expires, Date.parse(status.certificatesExpireAt ?? '') / 1000);
  });

  test('while replay is paused, the lag in bytes and seconds grows', async () => {
    // Lag in seconds is the age of the last transaction b replayed, so it needs one replayed first.
    await rc.sql('main', "INSERT INTO metric_rows VALUES (0, 'replayed before the pause')");
    await eventually('the row on the standby', async () => ((await rc.sql('b', 'SELECT 1 FROM metric_rows WHERE id = 0')).length === 1 ? true : undefined));
    await rc.sql('b', 'SELECT pg_wal_replay_pause()');
    await new Promise((r) => setTimeout(r, 1100));
    await rc.sql('main', "INSERT INTO metric_rows SELECT g, 'while paused' FROM generate_series(1, 100) g");
    const m = await eventually('lag while paused', async () => {
      const found = await metrics();
      const bytes = found.value('taskflow_replication_lag_bytes', { node: 'b' }) ?? 0;
      const seconds = found.value('taskflow_replication_lag_seconds', { node: 'b' }) ?? 0;
      return bytes > 0 && seconds > 0 ? found : undefined;
    });
    assert.equal(m.value('taskflow_replication_replay_paused', { node: 'b' }), 1);
    assert.equal(m.value('taskflow_replication_node_up', { node: 'b' }), 1);
    assert.ok((m.value('taskflow_replication_problems') ?? 0) >= 1, 'a paused replay is a problem');

    await rc.sql('b', 'SELECT pg_wal_replay_resume()');
    await eventually('lag 0 after resume', async () => ((await metrics()).value('taskflow_replication_lag_bytes', { node: 'b' }) === 0 ? true : undefined));
  });

  test('a stopped standby shows up 0, its slot inactive and keeping WAL, and no lag sample', async () => {
    assert.equal((await rc.cli('cluster', 'stop', 'b')).code, 0);
    await rc.sql('main', "INSERT INTO metric_rows SELECT g, 'while b is down' FROM generate_series(1001, 2000) g");
    const m = await metrics();
    assert.equal(m.value('taskflow_replication_node_up', { node: 'b', role: 'standby' }), 0);
    assert.equal(m.value('taskflow_replication_node_up', { node: 'main' }), 1);
    assert.equal(m.value('taskflow_replication_is_primary', { node: 'b' }), 0);
    assert.equal(m.value('taskflow_replication_slot_active', { node: 'b', slot: 'taskflow_b' }), 0);
    assert.ok((m.value('taskflow_replication_slot_retained_wal_bytes', { node: 'b' }) ?? 0) > 0, 'the slot keeps the WAL b has not received');
    assert.equal(m.value('taskflow_replication_slot_wal_status', { node: 'b', wal_status: 'reserved' }), 1);
    for (const name of ['taskflow_replication_lag_bytes', 'taskflow_replication_lag_seconds', 'taskflow_replication_timeline']) {
      assert.equal(m.value(name, { node: 'b' }), undefined, `no ${name} for a node that is down`);
    }
    assert.ok((m.value('taskflow_replication_problems') ?? 0) >= 1, 'a standby that is down is a problem');
  });
});
