/**
 * `taskflow restore tenant` and a tenant in use, against a real PostgreSQL and a real repository:
 * a signed-in session seen in the last five minutes, or a connection, refuses the restore (exit 4)
 * saying what uses the tenant and what to do, and changes nothing; `--force` through the real CLI
 * restores anyway, ends the connection and every session, and the audit log and tenant events say
 * who forced it and whom it disconnected.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { createSession } from '../src/app/accounts/sessions.ts';
import { listAuditEvents } from '../src/platform/audit/control-store.ts';
import { takeSnapshot } from '../src/platform/backup/physical/snapshot.ts';
import { listAside, tenantUse } from '../src/platform/backup/physical/tenant-swap.ts';
import { clientConfig } from '../src/platform/postgres/connection.ts';
import { resumeTenant, suspendTenant } from '../src/platform/tenants/lifecycle.ts';
import { findTenantBySlug, type Tenant } from '../src/platform/tenants/registry.ts';
import { addTask as addTaskWith, serverNow, startPhysicalPlatform, taskTitles, tenantWithTasks, withDb, type PhysicalTestPlatform } from './backup-physical-fixtures.ts';
import { runCli } from './helpers/cli.ts';

let tp: PhysicalTestPlatform;
let acme: Tenant;
let sessionId: string;
let T: Date;

before(async () => {
  tp = await startPhysicalPlatform();
  tp.writeConfigFile();
  acme = await tenantWithTasks(tp.platform, 'acme', 3, 'Acme');
  // A signed-in user, as the sign-in route leaves one: a user row and an active session.
  sessionId = await withDb(tp.platform, acme.databaseName, async (db) => {
    const user = await db.query<{ id: string }>(`INSERT INTO app.users (email, display_name, role, password_hash) VALUES ('ada@acme.test', 'Ada', 'owner', 'x') RETURNING id`);
    const session = await createSession({ db, userId: user.rows[0]?.id ?? '', stage: 'active', ip: null, userAgent: 'test', timeouts: { sessionIdleMinutes: 60, sessionAbsoluteHours: 12 } });
    return session.id;
  });
  await takeSnapshot(tp.platform);
  await withDb(tp.platform, acme.databaseName, (db) => addTaskWith(db, 'Acme before T'));
  T = await serverNow(tp.platform);
  await new Promise((r) => setTimeout(r, 1100));
  await withDb(tp.platform, acme.databaseName, (db) => addTaskWith(db, 'Acme after T'));
});

after(async () => {
  await tp.cleanup();
});

const ALL_TASKS = ['Acme 1', 'Acme 2', 'Acme 3', 'Acme before T', 'Acme after T'];

function restoreCli(extra: string[] = []) {
  return runCli(['restore', 'tenant', 'acme', '--at', T.toISOString(), '--data-dir', tp.dataDir, ...extra], {
    env: { TASKFLOW_BACKUP_IDENTITY_FILE: tp.identityFile },
    timeoutMs: 180_000,
  });
}

function setLastSeen(minutesAgo: number): Promise<unknown> {
  return withDb(tp.platform, acme.databaseName, (db) => db.query(`UPDATE app.sessions SET last_seen_at = now() - make_interval(mins => $2) WHERE id = $1`, [sessionId, minutesAgo]));
}

async function openSessions(database: string): Promise<number> {
  return withDb(tp.platform, database, async (db) => Number((await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM app.sessions WHERE ended_at IS NULL`)).rows[0]?.n));
}

/** What a refused restore must not have changed: the data, the databases, the tenant, its events. */
async function assertNothingChanged(): Promise<void> {
  assert.deepEqual(await taskTitles(tp.platform, acme.databaseName), ALL_TASKS, 'the tenant keeps everything');
  assert.deepEqual(await listAside(tp.platform.target), [], 'no database set aside');
  const incoming = await tp.platform.control.query(`SELECT datname FROM pg_database WHERE datname LIKE 'tenant_acme_%'`);
  assert.deepEqual(incoming.rows, [], 'no restored copy loaded beside it');
  assert.equal((await findTenantBySlug(tp.platform.control, 'acme'))?.status, 'active');
  const events = await tp.platform.control.query(`SELECT 1 FROM tenant_events WHERE tenant_id = $1 AND event = 'restored'`, [acme.id]);
  assert.equal(events.rowCount, 0, 'no restored event');
  assert.equal(await openSessions(acme.databaseName), 1, 'the signed-in user stays signed in');
}

test('a session seen in the last five minutes refuses the restore, saying when it was seen and to pass --force', async () => {
  await setLastSeen(2);
  const seen = await withDb(tp.platform, acme.databaseName, async (db) => (await db.query<{ at: Date }>('SELECT last_seen_at AS at FROM app.sessions WHERE id = $1', [sessionId])).rows[0]?.at);
  const refused = await restoreCli();
  assert.equal(refused.code, 4, refused.stderr);
  assert.match(refused.stderr, /tenant 'acme' is in use: 1 session\(s\) seen in the last 5 minutes, last seen at (\S+)\. .*taskflow tenant suspend acme.*--force/);
  assert.equal(/last seen at (\S+)\./.exec(refused.stderr)?.[1], seen?.toISOString(), 'the message says when the session was last seen');
  assert.doesNotMatch(refused.stderr, /connection/, 'no connection is blamed: none was open');
  await assertNothingChanged();
  const [attempt] = await listAuditEvents(tp.platform.control, { tenantId: acme.id, action: 'tenant.restored' });
  assert.equal(attempt?.outcome, 'failure', 'the refused attempt is in the audit log');
  assert.match(attempt.actorLabel ?? '', /^cli:./, 'with who tried');
  assert.equal(attempt.details.refused, 'in-use');
  assert.match(String(attempt.details.error), /last seen at/);
});

test('a session last seen six minutes ago, or any session of a suspended tenant, does not make it in use', async () => {
  await setLastSeen(6);
  assert.deepEqual(await tenantUse(tp.platform.target, acme), { connections: 0, applications: [], recentSessions: 0, lastSessionSeenAt: null });
  await setLastSeen(4);
  assert.equal((await tenantUse(tp.platform.target, acme)).recentSessions, 1);
  const suspended = await suspendTenant({ platform: tp.platform, tenant: acme, actor: 'test' });
  try {
    assert.equal((await tenantUse(tp.platform.target, suspended)).recentSessions, 0, 'a suspended tenant\'s users cannot act: their sessions do not count');
  } finally {
    await resumeTenant({ platform: tp.platform, tenant: suspended, actor: 'test' });
  }
});

test('an open connection refuses the restore, naming the database and the program connected', async () => {
  await setLastSeen(1);
  const holder = new pg.Client({ ...clientConfig(tp.platform.target, acme.databaseName), application_name: 'report-export' });
  holder.on('error', () => undefined);
  await holder.connect();
  try {
    const refused = await restoreCli(['--json']);
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /tenant 'acme' is in use: 1 connection\(s\) to tenant_acme \(report-export\); 1 session\(s\) seen in the last 5 minutes, last seen at .*--force to disconnect them/);
    assert.equal(refused.stdout, '', 'no result printed');
    assert.deepEqual((await holder.query<{ n: number }>('SELECT 1 AS n')).rows, [{ n: 1 }], 'the connection was left alone');
    await assertNothingChanged();
  } finally {
    await holder.end().catch(() => undefined);
  }
});

test('--force through the CLI restores, disconnects the connection, ends every session, and the records say who forced it', async () => {
  await setLastSeen(1);
  const holder = new pg.Client({ ...clientConfig(tp.platform.target, acme.databaseName), application_name: 'report-export' });
  let holderError: Error | null = null;
  holder.on('error', (err) => (holderError = err));
  await holder.connect();
  try {
    const forced = await restoreCli(['--force', '--json']);
    assert.equal(forced.code, 0, forced.stderr);
    const result = JSON.parse(forced.stdout) as { tenant: string; asideDatabase: string };
    assert.equal(result.tenant, 'acme');
    assert.deepEqual(await taskTitles(tp.platform, acme.databaseName), ['Acme 1', 'Acme 2', 'Acme 3', 'Acme before T'], 'restored to T');
    await assert.rejects(holder.query('SELECT 1'), 'the connection was ended');
    assert.ok(holderError, 'the connection saw its end');
    // The session existed at T, so the restored copy has it; it is ended: everyone signs in again.
    const session = await withDb(tp.platform, acme.databaseName, async (db) => (await db.query<{ ended: Date | null; reason: string | null }>('SELECT ended_at AS ended, end_reason AS reason FROM app.sessions WHERE id = $1', [sessionId])).rows[0]);
    assert.ok(session?.ended, 'the session is ended in the restored database');
    assert.equal(session.reason, 'restored');
    assert.equal(await openSessions(acme.databaseName), 0);
  } finally {
    await holder.end().catch(() => undefined);
  }

  const entries = await listAuditEvents(tp.platform.control, { tenantId: acme.id, action: 'tenant.restored' });
  const [audit, ...more] = entries.filter((e) => e.outcome === 'success');
  assert.equal(more.length, 0, 'the refusals above restored nothing');
  assert.equal(audit?.outcome, 'success');
  assert.match(audit.actorLabel ?? '', /^cli:./, 'who ran it');
  assert.equal(audit.details.force, true, 'that --force overrode the in-use check');
  const inUse = audit.details.inUse as { atStart: { connections: number; applications: string[]; recentSessions: number } };
  assert.deepEqual(
    { connections: inUse.atStart.connections, applications: inUse.atStart.applications, recentSessions: inUse.atStart.recentSessions },
    { connections: 1, applications: ['report-export'], recentSessions: 1 },
    'whom it disconnected',
  );
  const events = await tp.platform.control.query<{ actor: string; detail: { force: boolean } }>(`SELECT actor, detail FROM tenant_events WHERE tenant_id = $1 AND event = 'restored'`, [acme.id]);
  const [event, ...others] = events.rows;
  assert.equal(others.length, 0);
  assert.equal(event?.actor, audit.actorLabel);
  assert.equal(event.detail.force, true);
});
