import assert from 'node:assert/strict';
import { test } from 'node:test';
import { register } from 'prom-client';
import { parseExposition } from '../../../test/helpers/prometheus.ts';
import { replicationMetrics } from './metrics.ts';
import type { ClusterStatus, NodeStatus } from './status.ts';

function node(name: string, fields: Partial<NodeStatus>): NodeStatus {
  return {
    name,
    role: 'standby',
    actual: 'standby',
    site: 'local',
    port: 5432,
    pgData: `/data/${name}`,
    error: null,
    timeline: 1,
    lsn: '0/3000000',
    upstream: 'main',
    receiver: 'streaming',
    lagBytes: 0,
    lagSeconds: 0,
    replayPaused: false,
    syncState: 'async',
    tls: 'TLSv1.3',
    slot: { name: `taskflow_${name}`, active: true, restartLsn: '0/3000000', walStatus: 'reserved', walRetainedBytes: 0 },
    fence: null,
    ...fields,
  };
}

function status(fields: Partial<ClusterStatus> = {}): ClusterStatus {
  return {
    primary: 'main',
    mode: 'sync',
    synchronousStandbyNames: 'ANY 1 ("b", "c")',
    pending: null,
    lastChange: null,
    certificatesExpireAt: '2027-11-23T10:00:00.000Z',
    splitBrain: false,
    problems: ["standby c is down (connection refused): 'taskflow cluster start c'"],
    nodes: [
      node('main', { role: 'primary', actual: 'primary', timeline: 2, upstream: null, receiver: null, lagBytes: null, lagSeconds: null, syncState: null, tls: null, slot: null }),
      node('b', { site: 'site-b', timeline: 2, lagBytes: 24_576, lagSeconds: 3.5, replayPaused: true, syncState: 'quorum', slot: { name: 'taskflow_b', active: true, restartLsn: '0/2FFA000', walStatus: 'extended', walRetainedBytes: 1_048_576 } }),
      node('c', { actual: 'down', error: 'connection refused', timeline: null, lsn: null, receiver: null, lagBytes: null, lagSeconds: null, syncState: null, tls: null, slot: { name: 'taskflow_c', active: false, restartLsn: '0/1000000', walStatus: 'lost', walRetainedBytes: null } }),
      node('old', { role: 'fenced', actual: 'down', timeline: null, lsn: null, upstream: null, receiver: null, lagBytes: null, lagSeconds: null, syncState: null, tls: null, slot: null }),
    ],
    ...fields,
  };
}

test('every family is a taskflow_replication_ gauge with help, in base units', async () => {
  const { text, contentType } = await replicationMetrics(status());
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);
  const m = parseExposition(text);
  const families = [...m.type.keys()];
  assert.deepEqual(families.sort(), [
    'taskflow_replication_certificate_expiry_timestamp_seconds',
    'taskflow_replication_is_primary',
    'taskflow_replication_lag_bytes',
    'taskflow_replication_lag_seconds',
    'taskflow_replication_node_up',
    'taskflow_replication_problems',
    'taskflow_replication_replay_paused',
    'taskflow_replication_slot_active',
    'taskflow_replication_slot_retained_wal_bytes',
    'taskflow_replication_slot_wal_status',
    'taskflow_replication_split_brain',
    'taskflow_replication_sync_mode',
    'taskflow_replication_sync_state',
    'taskflow_replication_timeline',
  ]);
  for (const name of families) {
    assert.equal(m.type.get(name), 'gauge', name);
    assert.ok((m.help.get(name) ?? '').length > 20, `${name} has a help text`);
  }
  for (const sample of m.samples) assert.ok(m.type.has(sample.name), `${sample.name} belongs to a family`);
});

test('nodes: up, primary and timeline; the recorded role and site are labels of node_up', async () => {
  const m = parseExposition((await replicationMetrics(status())).text);
  assert.deepEqual(
    m.select('taskflow_replication_node_up').map((s) => [s.labels, s.value]),
    [
      [{ node: 'main', site: 'local', role: 'primary' }, 1],
      [{ node: 'b', site: 'site-b', role: 'standby' }, 1],
      [{ node: 'c', site: 'local', role: 'standby' }, 0],
      [{ node: 'old', site: 'local', role: 'fenced' }, 0],
    ],
  );
  assert.deepEqual(
    m.select('taskflow_replication_is_primary').map((s) => [s.labels.node, s.value]),
    [['main', 1], ['b', 0], ['c', 0], ['old', 0]],
  );
  assert.equal(m.value('taskflow_replication_timeline', { node: 'main' }), 2);
  assert.equal(m.value('taskflow_replication_timeline', { node: 'b' }), 2);
  assert.equal(m.value('taskflow_replication_timeline', { node: 'c' }), undefined, 'no timeline for a node that is down');
  assert.equal(m.value('taskflow_replication_sync_mode'), 1);
  assert.equal(m.value('taskflow_replication_split_brain'), 0);
  assert.equal(m.value('taskflow_replication_problems'), 1);
  assert.equal(m.value('taskflow_replication_certificate_expiry_timestamp_seconds'), Date.UTC(2027, 10, 23, 10) / 1000);
});

test("standbys: lag in bytes and seconds, paused replay, sync state; unknown values have no sample, not a 0", async () => {
  const m = parseExposition((await replicationMetrics(status())).text);
  assert.equal(m.value('taskflow_replication_lag_bytes', { node: 'b' }), 24_576);
  assert.equal(m.value('taskflow_replication_lag_seconds', { node: 'b' }), 3.5);
  assert.equal(m.value('taskflow_replication_replay_paused', { node: 'b' }), 1);
  for (const name of ['taskflow_replication_lag_bytes', 'taskflow_replication_lag_seconds', 'taskflow_replication_replay_paused']) {
    assert.deepEqual(m.select(name).map((s) => s.labels.node), ['b'], `${name}: only the standby that answers`);
  }
  assert.deepEqual(
    m.select('taskflow_replication_sync_state', { node: 'b' }).map((s) => [s.labels.sync_state, s.value]),
    [['async', 0], ['potential', 0], ['sync', 0], ['quorum', 1]],
  );
  assert.deepEqual(m.select('taskflow_replication_sync_state', { node: 'c' }), []);
});

test('slots: active, WAL kept and wal_status as one series per state', async () => {
  const m = parseExposition((await replicationMetrics(status())).text);
  assert.equal(m.value('taskflow_replication_slot_active', { node: 'b', slot: 'taskflow_b' }), 1);
  assert.equal(m.value('taskflow_replication_slot_active', { node: 'c', slot: 'taskflow_c' }), 0);
  assert.equal(m.value('taskflow_replication_slot_retained_wal_bytes', { node: 'b' }), 1_048_576);
  assert.equal(m.value('taskflow_replication_slot_retained_wal_bytes', { node: 'c' }), undefined, 'a lost slot keeps no WAL to count');
  const states = (n: string) => m.select('taskflow_replication_slot_wal_status', { node: n }).map((s) => [s.labels.wal_status, s.value]);
  assert.deepEqual(states('b'), [['reserved', 0], ['extended', 1], ['unreserved', 0], ['lost', 0]]);
  assert.deepEqual(states('c'), [['reserved', 0], ['extended', 0], ['unreserved', 0], ['lost', 1]]);
  assert.deepEqual(states('main'), [], 'the primary has no slot of its own');
});

test('a state PostgreSQL adds later still shows, as one more series', async () => {
  const b = node('b', { slot: { name: 'taskflow_b', active: true, restartLsn: null, walStatus: 'someday', walRetainedBytes: 0 } });
  const m = parseExposition((await replicationMetrics(status({ nodes: [b] }))).text);
  assert.equal(m.value('taskflow_replication_slot_wal_status', { node: 'b', wal_status: 'someday' }), 1);
  assert.equal(m.select('taskflow_replication_slot_wal_status', { node: 'b' }).length, 5);
});

test('label values are escaped; each call has its own registry and the global one stays empty', async () => {
  const odd = node('b', { site: 'rack "7"\\north' });
  const first = parseExposition((await replicationMetrics(status({ mode: 'async', splitBrain: true, certificatesExpireAt: null, nodes: [odd] }))).text);
  assert.equal(first.select('taskflow_replication_node_up')[0]?.labels.site, 'rack "7"\\north');
  assert.equal(first.value('taskflow_replication_sync_mode'), 0);
  assert.equal(first.value('taskflow_replication_split_brain'), 1);
  assert.equal(first.type.has('taskflow_replication_certificate_expiry_timestamp_seconds'), false);

  const second = parseExposition((await replicationMetrics(status())).text);
  assert.deepEqual(second.select('taskflow_replication_node_up').map((s) => s.labels.node), ['main', 'b', 'c', 'old'], 'nothing left over from the first call');
  assert.equal((await register.metrics()).includes('taskflow_'), false);
});
