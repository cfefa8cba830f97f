import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../config.ts';
import { siteOf } from './context.ts';

test('replication settings have defaults, and each node may name its site', () => {
  const defaults = loadConfig({ env: {}, overrides: { dataDir: '/tmp/x' } });
  assert.deepEqual(defaults.replication, { nodes: {}, defaultSite: 'local', switchoverMaxLagBytes: 16_777_216, catchUpTimeoutSeconds: 60 });
  const sited = loadConfig({ env: {}, overrides: { dataDir: '/tmp/x', 'replication.nodes': { main: { site: 'site-a' }, b: { site: 'site-b' } } } });
  assert.equal(siteOf(sited, 'main'), 'site-a');
  assert.equal(siteOf(sited, 'c'), 'local');
});

test('a bad node name or site is named in the error', () => {
  assert.throws(
    () => loadConfig({ env: {}, overrides: { dataDir: '/tmp/x', 'replication.nodes': { 'Site-B': { site: 'b' } } } }),
    (err: unknown) => err instanceof ConfigError && /replication\.nodes\.Site-B: not a node name/.test(err.message),
  );
  assert.throws(
    () => loadConfig({ env: {}, overrides: { dataDir: '/tmp/x', 'replication.nodes': { b: { site: 'two words' } } } }),
    (err: unknown) => err instanceof ConfigError && /replication\.nodes\.b\.site/.test(err.message),
  );
  assert.throws(
    () => loadConfig({ env: {}, overrides: { dataDir: '/tmp/x', 'replication.switchoverMaxLagBytes': -1 } }),
    (err: unknown) => err instanceof ConfigError && /replication\.switchoverMaxLagBytes/.test(err.message),
  );
});
