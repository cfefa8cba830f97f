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

test('mail: a sender by default, no SMTP (the local mailbox) until a host is given', () => {
  const config = loadConfig({ env: {} });
  assert.equal(config.mail.from, 'TaskFlow <no-reply@localhost>');
  assert.equal(config.mail.smtp, undefined);
  const smtp = loadConfig({ env: { TASKFLOW_SMTP_HOST: 'smtp.example.com', TASKFLOW_SMTP_USER: 'mailer', TASKFLOW_MAIL_FROM: 'Acme <tasks@acme.example>' } });
  assert.deepEqual(smtp.mail.smtp, { host: 'smtp.example.com', port: 587, secure: false, requireTLS: false, user: 'mailer', rejectUnauthorized: true });
  assert.equal(smtp.mail.from, 'Acme <tasks@acme.example>');
  assert.equal(loadConfig({ env: { TASKFLOW_SMTP_HOST: '10.0.0.5', TASKFLOW_SMTP_PORT: '465' } }).mail.smtp?.port, 465);
});

test('mail: bad values are named with their source', () => {
  assert.throws(() => loadConfig({ env: { TASKFLOW_SMTP_HOST: 'smtp.example.com', TASKFLOW_SMTP_PORT: '70000' } }), /mail\.smtp\.port \(from environment variable TASKFLOW_SMTP_PORT\): must be <= 65535/);
  assert.throws(() => loadConfig({ env: { TASKFLOW_SMTP_HOST: 'smtp.example.com', TASKFLOW_SMTP_PORT: 'smtp' } }), /mail\.smtp\.port \(from environment variable TASKFLOW_SMTP_PORT\)/);
  assert.throws(() => loadConfig({ env: { TASKFLOW_SMTP_PORT: '25' } }), /mail\.smtp\.host/);
  assert.throws(() => loadConfig({ env: { TASKFLOW_SMTP_HOST: 'smtp://smtp.example.com:25' } }), /mail\.smtp\.host \(from environment variable TASKFLOW_SMTP_HOST\)/);
  assert.throws(() => loadConfig({ env: { TASKFLOW_MAIL_FROM: 'TaskFlow' } }), /mail\.from \(from environment variable TASKFLOW_MAIL_FROM\)/);
  assert.throws(() => loadConfig({ env: { TASKFLOW_MAIL_FROM: 'a@b.c\nBcc: d@e.f' } }), /mail\.from/);
});

test('mail: an SMTP password as a plain value is refused without repeating it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tf-config-'));
  try {
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ mail: { smtp: { host: 'smtp.example.com', user: 'mailer', password: 'hunter2' } } }));
    assert.throws(() => loadConfig({ env: {}, configFile: file }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /mail\.smtp\.password \(from config file .*c\.json\): passwords are not configuration values; set TASKFLOW_SMTP_PASSWORD or name a file in mail\.smtp\.passwordFile/);
      assert.doesNotMatch(err.message, /hunter2/);
      return true;
    });
    writeFileSync(file, JSON.stringify({ mail: { smtp: { host: 'smtp.example.com', user: 'mailer', passwordFile: '/run/secrets/smtp', secure: true, port: 465 }, sender: 'x' } }));
    assert.throws(() => loadConfig({ env: {}, configFile: file }), /mail\.sender .*unknown key/);
    writeFileSync(file, JSON.stringify({ mail: { smtp: { host: 'smtp.example.com', user: 'mailer', passwordFile: '/run/secrets/smtp', secure: true, port: 465 } } }));
    assert.equal(loadConfig({ env: {}, configFile: file }).mail.smtp?.passwordFile, '/run/secrets/smtp');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
