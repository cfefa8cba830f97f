/** The `taskflow` command as an operator uses it: exit codes, messages, --json, and bad input. */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from './helpers/cli.ts';
import { startTestPlatform, tempDir, type TestPlatform } from './helpers/platform.ts';

describe('with no usable data directory', () => {
  const root = tempDir('cli-bad');
  after(() => {
    rmSync(root, { recursive: true, force: true });
  });

  test('a command before the first start says to run start', async () => {
    const r = await runCli(['tenant', 'list', '--data-dir', join(root, 'fresh')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is not initialised; run 'taskflow start' first/);
  });

  test('a bad configuration value names the key and where it came from, exit 2', async () => {
    const r = await runCli(['tenant', 'list', '--data-dir', join(root, 'x')], { env: { TASKFLOW_PORT: 'eighty' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /server\.port \(from environment variable TASKFLOW_PORT\)/);
  });

  test('an unknown key in the config file is named, exit 2', async () => {
    const file = join(root, 'config.json');
    writeFileSync(file, JSON.stringify({ server: { prot: 8080 } }));
    const r = await runCli(['tenant', 'list', '--config', file, '--data-dir', join(root, 'y')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /server\.prot .*unknown key/);
  });

  test('a config file that is not JSON is named, exit 2', async () => {
    const file = join(root, 'broken.json');
    writeFileSync(file, '{ "server": ');
    const r = await runCli(['tenant', 'list', '--config', file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /broken\.json is not valid JSON/);
  });

  test('a directory holding something else is refused', async () => {
    const dir = join(root, 'someone-elses');
    mkdirSync(dir);
    writeFileSync(join(dir, 'thesis.tex'), '\\documentclass{article}');
    const r = await runCli(['start', '--data-dir', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not empty and is not a TaskFlow data directory \(found thesis\.tex\)/);
  });

  test('a damaged data directory (cluster missing) is reported, not re-created', async () => {
    const dir = join(root, 'damaged');
    mkdirSync(join(dir, 'secrets'), { recursive: true });
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ version: 1, initialised: true, createdAt: '2026-01-01', managed: { port: 5999, pgMajor: 15 } }));
    const r = await runCli(['start', '--data-dir', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is damaged: its PostgreSQL cluster .* is missing/);
  });

  test('a data directory that belongs to another user is refused', { skip: process.getuid?.() !== 0 && 'needs root to act as another user' }, async () => {
    const dir = join(root, 'roots');
    mkdirSync(dir, { mode: 0o755 });
    const r = await runCli(['tenant', 'list', '--data-dir', dir], { uid: 65534, gid: 65534, env: { HOME: '/tmp' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /belongs to another user/);
  });

  test('a password in --database-url is refused (command lines are visible to everyone)', async () => {
    const r = await runCli(['tenant', 'list', '--database-url', 'postgres://admin:hunter2@127.0.0.1:5432/postgres']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /must not contain a password/);
    assert.doesNotMatch(r.stderr, /hunter2/);
  });

  test('PostgreSQL not running at the given URL is a clear error', async () => {
    const r = await runCli(['tenant', 'list', '--data-dir', join(root, 'ext')], { env: { TASKFLOW_DATABASE_URL: 'postgres://admin:hunter2@127.0.0.1:1/postgres' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /PostgreSQL is not running at 127\.0\.0\.1:1 \(connection refused\)/);
    assert.doesNotMatch(r.stderr, /hunter2/);
  });

  test('unknown commands and options are usage errors, exit 2', async () => {
    assert.equal((await runCli(['tenant', 'frobnicate'])).code, 2);
    assert.equal((await runCli(['tenant', 'list', '--frobnicate'])).code, 2);
  });

  test('every command has --help', async () => {
    for (const args of [[], ['start'], ['tenant'], ['tenant', 'create'], ['tenant', 'migrate'], ['tenant', 'delete'], ['db', 'psql'], ['db', 'url']]) {
      const r = await runCli([...args, '--help']);
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /Usage: taskflow/);
    }
  });
});

describe('managing tenants from the command line', () => {
  let tp: TestPlatform;
  let env: Record<string, string>;
  before(async () => {
    tp = await startTestPlatform();
    env = { TASKFLOW_DATA_DIR: tp.dataDir };
  });
  after(async () => {
    await tp.cleanup();
  });

  test('create, list, show, suspend, resume, rename and delete', async () => {
    const created = await runCli(['tenant', 'create', 'acme', '--name', 'Acme Ltd', '--json'], { env });
    assert.equal(created.code, 0, created.stderr);
    const tenant = JSON.parse(created.stdout) as { slug: string; apiToken: string; url: string; database: string };
    assert.equal(tenant.slug, 'acme');
    assert.equal(tenant.database, 'tenant_acme');
    assert.equal(tenant.url, 'https://acme.localhost:8443/');
    assert.match(tenant.apiToken, /^tf_/);

    const list = await runCli(['tenant', 'list', '--json'], { env });
    assert.deepEqual((JSON.parse(list.stdout) as { slug: string }[]).map((t) => t.slug), ['acme']);
    const table = await runCli(['tenant', 'list'], { env });
    assert.match(table.stdout, /^SLUG\s+STATUS/m);
    assert.match(table.stdout, /^acme\s+active/m);

    assert.equal((await runCli(['tenant', 'suspend', 'acme', '--reason', 'maintenance'], { env })).code, 0);
    const shown = JSON.parse((await runCli(['tenant', 'show', 'acme', '--json'], { env })).stdout) as { status: string; statusReason: string };
    assert.deepEqual([shown.status, shown.statusReason], ['suspended', 'maintenance']);
    assert.equal((await runCli(['tenant', 'resume', 'acme'], { env })).code, 0);

    const renamed = await runCli(['tenant', 'rename', 'acme', 'acme-corp', '--json'], { env });
    assert.equal(renamed.code, 0, renamed.stderr);
    assert.deepEqual((JSON.parse(renamed.stdout) as { aliases: { slug: string }[] }).aliases.map((a) => a.slug), ['acme']);

    const noYes = await runCli(['tenant', 'delete', 'acme-corp'], { env });
    assert.equal(noYes.code, 2);
    assert.match(noYes.stderr, /add --yes/);
    assert.equal((await runCli(['tenant', 'show', 'acme-corp'], { env })).code, 0, 'still there without --yes');
    assert.equal((await runCli(['tenant', 'delete', 'acme-corp', '--yes'], { env })).code, 0);
    const gone = await runCli(['tenant', 'show', 'acme-corp'], { env });
    assert.equal(gone.code, 3);
    assert.match(gone.stderr, /no tenant 'acme-corp'/);
  });

  test('bad slugs exit 2, duplicates exit 4', async () => {
    const bad = await runCli(['tenant', 'create', 'Bad_Slug'], { env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /invalid slug 'Bad_Slug'/);
    const reserved = await runCli(['tenant', 'create', 'www'], { env });
    assert.equal(reserved.code, 2);
    assert.match(reserved.stderr, /reserved/);
    assert.equal((await runCli(['tenant', 'create', 'twice'], { env })).code, 0);
    const dup = await runCli(['tenant', 'create', 'twice'], { env });
    assert.equal(dup.code, 4);
    assert.match(dup.stderr, /already exists/);
  });

  test('the first owner gets a setup link by mail, never on the terminal', async () => {
    const created = await runCli(['tenant', 'create', 'owned', '--owner-email', 'Boss@Owned.example'], { env });
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stderr, /setup link for the first owner sent to Boss@Owned\.example/);
    assert.doesNotMatch(created.stdout + created.stderr, /token=/, 'the link is not printed');
    const mail = await runCli(['mail', 'show', 'latest', '--json'], { env });
    assert.equal(mail.code, 0, mail.stderr);
    const message = JSON.parse(mail.stdout) as { to: string; subject: string; text: string };
    assert.equal(message.to, 'boss@owned.example');
    assert.match(message.text, /https:\/\/owned\.localhost:8443\/invitation#token=[A-Za-z0-9_-]{43}/);

    const again = await runCli(['tenant', 'setup-link', 'owned', '--email', 'boss@owned.example', '--json'], { env });
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { role: string; status: string }).role, 'owner');
    const bad = await runCli(['tenant', 'setup-link', 'owned', '--email', 'not-an-address'], { env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /not valid/);
    const badCreate = await runCli(['tenant', 'create', 'never', '--owner-email', 'bоss@owned.example'], { env });
    assert.equal(badCreate.code, 2, 'a look-alike address is refused before anything is made');
    assert.equal((await runCli(['tenant', 'show', 'never'], { env })).code, 3);
  });

  test('migrate reports every tenant, as a table or JSON', async () => {
    const r = await runCli(['tenant', 'migrate', '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { failed: number; results: { slug: string; outcome: string }[] };
    assert.equal(report.failed, 0);
    assert.deepEqual(report.results.map((x) => [x.slug, x.outcome]).sort(), [['owned', 'up-to-date'], ['twice', 'up-to-date']]);
    const dry = await runCli(['tenant', 'migrate', '--dry-run', '--concurrency', '0'], { env });
    assert.equal(dry.code, 2);
    assert.match(dry.stderr, /--concurrency must be a whole number/);
  });

  test('db url and db psql reach the cluster as admin or as one tenant', async () => {
    const url = await runCli(['db', 'url'], { env });
    assert.match(url.stdout, /^postgresql:\/\/taskflow_admin:[^@]+@127\.0\.0\.1:\d+\/taskflow_control\n$/);
    const admin = await runCli(['db', 'psql', '--', '-At', '-c', 'SELECT current_user, current_database()'], { env });
    assert.equal(admin.code, 0, admin.stderr);
    assert.equal(admin.stdout.trim(), 'taskflow_admin|taskflow_control');
    const asTenant = await runCli(['db', 'psql', '--tenant', 'twice', '--', '-At', '-c', 'SELECT current_user, current_database()'], { env });
    assert.equal(asTenant.stdout.trim(), 'tenant_twice_app|tenant_twice');
  });
});
