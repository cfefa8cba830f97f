/**
 * The whole story against a real PostgreSQL 15 and a real repository: write data, take a snapshot,
 * write more at a known time T, lose a tenant's data, and `taskflow restore tenant --at T` brings
 * exactly what was committed until T back, while the other tenant keeps everything it wrote.
 * Then: restoring as a new tenant beside the original, refusing a tenant in use, and the records
 * a restore leaves (audit log, tenant events, the snapshot's proof, the database set aside).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { listObjects } from '../src/platform/backup/catalog.ts';
import { loadRestoreIdentity } from '../src/platform/backup/physical/identity.ts';
import { restoreTenant } from '../src/platform/backup/physical/restore-tenant.ts';
import { takeSnapshot } from '../src/platform/backup/physical/snapshot.ts';
import { listAside } from '../src/platform/backup/physical/tenant-swap.ts';
import { pruneBackups } from '../src/platform/backup/prune.ts';
import { listAuditEvents } from '../src/platform/audit/control-store.ts';
import { clientConfig } from '../src/platform/postgres/connection.ts';
import { findTenantBySlug, type Tenant } from '../src/platform/tenants/registry.ts';
import { addTask as addTaskWith, serverNow, startPhysicalPlatform, taskTitles, tenantWithTasks, withDb, type PhysicalTestPlatform } from './backup-physical-fixtures.ts';
import { withBackupConfig } from './backup-export-fixtures.ts';
import { runCli } from './helpers/cli.ts';

let tp: PhysicalTestPlatform;
let acme: Tenant;
let globex: Tenant;
let T: Date;

before(async () => {
  tp = await startPhysicalPlatform();
  tp.writeConfigFile();
  acme = await tenantWithTasks(tp.platform, 'acme', 5, 'Acme');
  globex = await tenantWithTasks(tp.platform, 'globex', 3, 'Globex');
});

after(async () => {
  await tp.cleanup();
});

function addTask(tenant: Tenant, title: string): Promise<void> {
  return withDb(tp.platform, tenant.databaseName, (client) => addTaskWith(client, title));
}

test('back up, lose a tenant\'s data, and get it back to the second with taskflow restore tenant', async () => {
  await takeSnapshot(tp.platform);
  await addTask(acme, 'Acme written before T');
  await addTask(globex, 'Globex written before T');
  T = await serverNow(tp.platform);
  await new Promise((r) => setTimeout(r, 1100));
  await addTask(acme, 'Acme written after T');
  await addTask(globex, 'Globex written after T');
  // The accident: every task of acme gone.
  await withDb(tp.platform, acme.databaseName, (client) => client.query('DELETE FROM app.tasks'));
  assert.deepEqual(await taskTitles(tp.platform, acme.databaseName), []);

  const res = await runCli(['restore', 'tenant', 'acme', '--at', T.toISOString(), '--data-dir', tp.dataDir, '--json'], {
    env: { TASKFLOW_BACKUP_IDENTITY_FILE: tp.identityFile },
    timeoutMs: 180_000,
  });
  assert.equal(res.code, 0, res.stderr);
  const result = JSON.parse(res.stdout) as { tenant: string; at: string; asideDatabase: string; reached: { lastTransactionAt: string; stoppedBeforeCommitAt: string | null }; timings: Record<string, number> };
  assert.equal(result.at, T.toISOString());
  assert.ok(new Date(result.reached.lastTransactionAt) <= T, 'the last transaction kept is at or before T');
  assert.ok(result.reached.stoppedBeforeCommitAt === null || new Date(result.reached.stoppedBeforeCommitAt) > T);

  assert.deepEqual(await taskTitles(tp.platform, acme.databaseName), ['Acme 1', 'Acme 2', 'Acme 3', 'Acme 4', 'Acme 5', 'Acme written before T'], 'exactly what was committed until T');
  assert.deepEqual(await taskTitles(tp.platform, globex.databaseName), ['Globex 1', 'Globex 2', 'Globex 3', 'Globex written before T', 'Globex written after T'], 'the other tenant is untouched');
  await assert.rejects(withDb(tp.platform, result.asideDatabase, () => Promise.resolve()), /not currently accepting connections/, 'nobody uses the replaced database by mistake');
  await tp.platform.control.query(`ALTER DATABASE ${result.asideDatabase} WITH ALLOW_CONNECTIONS true`);
  assert.deepEqual(await taskTitles(tp.platform, result.asideDatabase), [], 'the replaced database is kept aside as it was');
  await tp.platform.control.query(`ALTER DATABASE ${result.asideDatabase} WITH ALLOW_CONNECTIONS false`);

  // The tenant serves again as its own login role, with its own password.
  const { tenantDbPassword } = await import('../src/platform/tenants/credentials.ts');
  const login = new pg.Client(clientConfig(tp.platform.target, acme.databaseName, { user: acme.loginRole, password: tenantDbPassword(tp.platform.masterKey, acme.id, acme.credentialVersion) }));
  await login.connect();
  const count = await login.query<{ n: string }>('SELECT count(*)::text AS n FROM app.tasks');
  await login.end();
  assert.equal(count.rows[0]?.n, '6');
  assert.deepEqual((await listAside(tp.platform.target)).map((a) => [a.database, a.tenantId]), [[result.asideDatabase, acme.id]]);

  const audit = await listAuditEvents(tp.platform.control, { tenantId: acme.id, action: 'tenant.restored' });
  assert.equal(audit.length, 1);
  const [event] = audit;
  assert.equal(event?.outcome, 'success');
  assert.match(event.actorLabel ?? '', /^cli:/);
  assert.equal(event.details.at, T.toISOString());
  const events = await tp.platform.control.query<{ event: string }>(`SELECT event FROM tenant_events WHERE tenant_id = $1 ORDER BY id`, [acme.id]);
  assert.ok(events.rows.some((e) => e.event === 'restored'));
  const [snapshot] = await listObjects(tp.platform.control, { kind: 'snapshot', state: 'complete' });
  assert.ok(snapshot?.provenAt, 'the snapshot carries the proof of this restore');
  assert.equal(snapshot.proof?.kind, 'tenant-restore');
});

test('--as restores beside the original into a new tenant; the original is not touched', async () => {
  const before = await taskTitles(tp.platform, acme.databaseName);
  await addTask(acme, 'Acme written after the restore');
  const result = await restoreTenant({ platform: tp.platform, slug: 'acme', at: T, asSlug: 'acme-copy', identity: loadRestoreIdentity({ file: tp.identityFile }), actor: 'test' });
  const copy = await findTenantBySlug(tp.platform.control, 'acme-copy');
  assert.ok(copy && copy.status === 'active');
  assert.equal(result.restoredInto, 'acme-copy');
  assert.ok(result.apiToken?.startsWith('tf_'));
  assert.equal(result.asideDatabase, null);
  assert.deepEqual(await taskTitles(tp.platform, copy.databaseName), before);
  assert.deepEqual(await taskTitles(tp.platform, acme.databaseName), [...before, 'Acme written after the restore']);
  // The copy belongs to the new tenant's roles: its login role reads it, the original's cannot connect.
  const owner = await withDb(tp.platform, copy.databaseName, async (c) => (await c.query<{ owner: string }>(`SELECT tableowner AS owner FROM pg_tables WHERE schemaname = 'app' AND tablename = 'tasks'`)).rows[0]?.owner);
  assert.equal(owner, copy.ownerRole);
  const sessions = await withDb(tp.platform, copy.databaseName, async (c) => (await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM app.sessions WHERE ended_at IS NULL`)).rows[0]?.n);
  assert.equal(sessions, '0');
});

test('a tenant in use is refused unless --force, which disconnects it', async () => {
  const holder = new pg.Client(clientConfig(tp.platform.target, globex.databaseName));
  holder.on('error', () => undefined);
  await holder.connect();
  try {
    const refused = await runCli(['restore', 'tenant', 'globex', '--at', T.toISOString(), '--data-dir', tp.dataDir], { env: { TASKFLOW_BACKUP_IDENTITY_FILE: tp.identityFile } });
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /tenant 'globex' is in use: 1 connection\(s\) to tenant_globex .*--force/);
    assert.deepEqual((await taskTitles(tp.platform, globex.databaseName)).length, 5, 'nothing changed');
    const forced = await restoreTenant({ platform: tp.platform, slug: 'globex', at: T, force: true, identity: loadRestoreIdentity({ file: tp.identityFile }), actor: 'test' });
    assert.ok(forced.asideDatabase);
    assert.deepEqual(await taskTitles(tp.platform, globex.databaseName), ['Globex 1', 'Globex 2', 'Globex 3', 'Globex written before T']);
    await assert.rejects(holder.query('SELECT 1'), 'the connection was ended');
  } finally {
    await holder.end().catch(() => undefined);
  }
});

test('prune drops the databases restores set aside once they are older than backup.retention.asideDays, not before', async () => {
  const aside = await listAside(tp.platform.target);
  assert.ok(aside.length >= 2, 'the restores above set databases aside');
  const newest = Math.max(...aside.map((a) => Date.parse(a.setAsideAt)));
  const early = await pruneBackups(tp.platform, { dryRun: true, now: new Date(newest + 6 * 86_400_000) });
  assert.deepEqual(early.aside, [], 'six days on, none is due yet');
  const later = new Date(newest + 7 * 86_400_000 + 1000);
  const dry = await pruneBackups(tp.platform, { dryRun: true, now: later });
  assert.deepEqual(dry.aside.map((a) => [a.database, a.dropped]).sort(), aside.map((a) => [a.database, false]).sort());
  assert.equal((await listAside(tp.platform.target)).length, aside.length, 'a dry run drops nothing');
  const kept = await pruneBackups(withBackupConfig(tp.platform, { retention: { ...tp.platform.config.backup.retention, asideDays: 0 } }), { now: later });
  assert.deepEqual(kept.aside, [], 'asideDays 0 keeps them');
  const real = await pruneBackups(tp.platform, { now: later });
  assert.deepEqual(real.aside.map((a) => a.dropped), aside.map(() => true));
  assert.deepEqual(await listAside(tp.platform.target), []);
  for (const { database } of aside) {
    const exists = await tp.platform.control.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    assert.equal(exists.rowCount, 0, `${database} is gone`);
  }
});
