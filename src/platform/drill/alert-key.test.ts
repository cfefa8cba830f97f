import assert from 'node:assert/strict';
import { test } from 'node:test';
import { drillAlertKey } from './session.ts';

test('drill.failed has one key per drill kind, and the Patroni failover drill its own', () => {
  assert.equal(drillAlertKey('failover', { engine: 'manual', mode: 'sync' }), 'drill.failed:failover');
  assert.equal(drillAlertKey('failover', { engine: 'patroni', mode: 'sync' }), 'drill.failed:failover:patroni');
  assert.equal(drillAlertKey('site-loss', { mode: 'async' }), 'drill.failed:site-loss');
});
