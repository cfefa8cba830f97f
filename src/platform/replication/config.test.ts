import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../config.ts';
import { siteOf } from './context.ts';

test('replication settings have defaults, and each node may name its site', () => {
  const defaults = loadConfig({ env: {}, overrides: { dataDir: '/tmp/x' } });
  assert.deepEqual(defaults.replication, { nodes: {}, defaultSite: 'local', sites: {}, allowedJurisdictions: [], switchoverMaxLagBytes: 16_777_216, catchUpTimeoutSeconds: 60, maxSlotWalKeepSizeMb: 4096, statusCheckSeconds: 30 });
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

test('sites carry a region and a jurisdiction, and a node outside the allowed jurisdictions is refused (P3)', () => {
  const base = { dataDir: '/tmp/x', 'replication.allowedJurisdictions': ['DE'], 'replication.defaultSite': 'fra' };
  const sites = { fra: { region: 'eu-central', jurisdiction: 'DE' }, ber: { region: 'eu-central-2', jurisdiction: 'DE' } };
  const ok = loadConfig({ env: {}, overrides: { ...base, 'replication.sites': sites, 'replication.nodes': { b: { site: 'ber' } } } });
  assert.equal(ok.replication.sites.ber?.jurisdiction, 'DE');

  const abroad = { ...sites, zrh: { region: 'ch-north', jurisdiction: 'CH' } };
  assert.throws(
    () => loadConfig({ env: {}, overrides: { ...base, 'replication.sites': abroad, 'replication.nodes': { b: { site: 'zrh' } } } }),
    (err: unknown) => err instanceof ConfigError && /replication\.sites\.zrh\.jurisdiction: site 'zrh' is in CH, outside replication\.allowedJurisdictions \(DE\)/.test(err.message),
  );
  assert.throws(
    () => loadConfig({ env: {}, overrides: { ...base, 'replication.sites': sites, 'replication.nodes': { b: { site: 'paris' } } } }),
    (err: unknown) => err instanceof ConfigError && /replication\.nodes\.b\.site: site 'paris' is not described/.test(err.message),
  );
  assert.throws(
    () => loadConfig({ env: {}, overrides: { dataDir: '/tmp/x', 'replication.defaultSite': 'fra', 'replication.sites': sites } }),
    (err: unknown) => err instanceof ConfigError && /replication\.allowedJurisdictions: list the jurisdictions/.test(err.message),
  );
  assert.throws(
    () => loadConfig({ env: {}, overrides: { ...base, 'replication.sites': { fra: { region: 'x', jurisdiction: 'Germany' } } } }),
    (err: unknown) => err instanceof ConfigError && /replication\.sites\.fra\.jurisdiction/.test(err.message),
  );
});

test('a site in a subdivision of an allowed country is inside it; an allowed subdivision admits neither its country nor a sibling', () => {
  const base = { dataDir: '/tmp/x', 'replication.defaultSite': 'muc' };
  const sites = { muc: { region: 'eu-central', jurisdiction: 'DE-BY' }, ber: { region: 'eu-central-2', jurisdiction: 'DE-BE' } };
  const ok = loadConfig({ env: {}, overrides: { ...base, 'replication.allowedJurisdictions': ['DE'], 'replication.sites': sites } });
  assert.equal(ok.replication.sites.muc?.jurisdiction, 'DE-BY');
  assert.throws(
    () => loadConfig({ env: {}, overrides: { ...base, 'replication.allowedJurisdictions': ['DE-BY'], 'replication.sites': sites } }),
    (err: unknown) => err instanceof ConfigError && /replication\.sites\.ber\.jurisdiction: site 'ber' is in DE-BE, outside replication\.allowedJurisdictions \(DE-BY\)/.test(err.message) && !/sites\.muc\./.test(err.message),
  );
  assert.throws(
    () => loadConfig({ env: {}, overrides: { ...base, 'replication.allowedJurisdictions': ['DE-BY'], 'replication.sites': { ...sites, ber: { region: 'eu-central-2', jurisdiction: 'DE' } } } }),
    (err: unknown) => err instanceof ConfigError && /site 'ber' is in DE, outside/.test(err.message),
  );
});
