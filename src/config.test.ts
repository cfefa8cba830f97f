import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from './config.ts';

test('defaults make a complete configuration', () => {
  const config = loadConfig({ env: {} });
  assert.equal(config.server.port, 8080);
  assert.equal(config.server.host, '127.0.0.1');
  assert.equal(config.server.baseDomain, 'localhost');
  assert.equal(config.pools.maxConnections, 40);
  assert.equal(config.mode, 'saas');
  assert.ok(config.dataDir.endsWith('.taskflow'));
});

test('environment beats the file, flags beat the environment', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tf-config-'));
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ server: { port: 9000, baseDomain: 'example.com' } }));
    const config = loadConfig({ env: { TASKFLOW_DATA_DIR: dir, TASKFLOW_PORT: '9100' }, overrides: { 'server.host': '::1' } });
    assert.equal(config.server.port, 9100);
    assert.equal(config.server.baseDomain, 'example.com');
    assert.equal(config.server.host, '::1');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a bad value names the key and its source', () => {
  assert.throws(() => loadConfig({ env: { TASKFLOW_MAX_CONNECTIONS: '0' } }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /pools\.maxConnections \(from environment variable TASKFLOW_MAX_CONNECTIONS\): must be >= 1/);
    return true;
  });
  assert.throws(() => loadConfig({ env: { TASKFLOW_BASE_DOMAIN: 'Example.COM' } }), /server\.baseDomain/);
  assert.throws(() => loadConfig({ env: { TASKFLOW_MODE: 'cloud' } }), /mode/);
  assert.throws(() => loadConfig({ env: { TASKFLOW_DATABASE_URL: 'mysql://x' } }), /databaseUrl/);
});

test('unknown keys in a file are refused by name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tf-config-'));
  try {
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ pools: { maxConections: 5 } }));
    assert.throws(() => loadConfig({ env: {}, configFile: file }), /pools\.maxConections \(from config file .*c\.json\): unknown key/);
    writeFileSync(file, '[1,2]');
    assert.throws(() => loadConfig({ env: {}, configFile: file }), /must hold a JSON object/);
    assert.throws(() => loadConfig({ env: {}, configFile: join(dir, 'missing.json') }), /cannot read config file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
