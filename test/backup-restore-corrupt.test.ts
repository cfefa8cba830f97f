/**
 * Restores from a snapshot whose stored bytes were damaged in the repository, through the real
 * CLI against a real PostgreSQL: `restore cluster`, `backup verify --restore` and `restore tenant`
 * fail naming the object and its checksum, start no server, leave no partial directory, scratch
 * cluster or half-loaded database, record no proof, raise their alerts; the live tenant is not
 * touched, and a later good restore resolves the alert. And a `backup verify --restore` killed
 * while its scratch server runs: `taskflow start` stops that server and removes the identity copy.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { listAlerts } from '../src/platform/alerts/alerts.ts';
import { getObject, type CatalogEntry } from '../src/platform/backup/catalog.ts';
import { scratchRoot } from '../src/platform/backup/physical/scratch-cluster.ts';
import { takeSnapshot } from '../src/platform/backup/physical/snapshot.ts';
import { listAside } from '../src/platform/backup/physical/tenant-swap.ts';
import { startBackupJobs } from '../src/platform/backup/schedule.ts';
import type { Tenant } from '../src/platform/tenants/registry.ts';
import { withBackupConfig } from './backup-export-fixtures.ts';
import { addTask, serverNow, startPhysicalPlatform, switchAndWaitArchived, taskTitles, tenantWithTasks, withDb, type PhysicalTestPlatform } from './backup-physical-fixtures.ts';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/platform.ts';
import { killCliWhen, postmastersUnder, running } from './helpers/restore-processes.ts';
import { postmasterPid } from './helpers/taskflow-process.ts';

let tp: PhysicalTestPlatform;
let acme: Tenant;
let snapshot: CatalogEntry;
let objectPath: string;
let work: string;
/** A time after the snapshot that the archive reaches. */
let T: Date;
/** Servers a killed verification started, stopped in `after` should a failing test leave them running. */
const started: number[] = [];

before(async () => {
  tp = await startPhysicalPlatform();
  tp.writeConfigFile();
  acme = await tenantWithTasks(tp.platform, 'acme', 3, 'Acme');
  snapshot = await takeSnapshot(tp.platform);
  objectPath = join(tp.repositoryDir, snapshot.name);
  await withDb(tp.platform, acme.databaseName, (c) => addTask(c, 'Acme before T'));
  T = await serverNow(tp.platform);
  await new Promise((r) => setTimeout(r, 1100));
  await withDb(tp.platform, acme.databaseName, (c) => addTask(c, 'Acme after T'));
  await switchAndWaitArchived(tp.platform);
  work = tempDir('corrupt');
});

after(async () => {
  for (const pid of started.filter(running)) process.kill(pid, 'SIGQUIT');
  await tp.cleanup();
  rmSync(work, { recursive: true, force: true });
});

/** Runs `fn` with 16 bytes in the middle of the stored snapshot object flipped (its manifest untouched), then puts them back. */
async function withCorruptSnapshot(fn: () => Promise<void>): Promise<void> {
  const good = readFileSync(objectPath);
  const bad = Buffer.from(good);
  const middle = Math.floor(bad.length / 2);
  for (let i = middle; i < middle + 16; i++) bad[i] = (bad[i] ?? 0) ^ 0xff;
  writeFileSync(objectPath, bad);
  try {
    await fn();
  } finally {
    writeFileSync(objectPath, good);
  }
}

/** What every failed read of the damaged object says: which object, and that its stored bytes changed. */
function namesCorruptObject(text: string): boolean {
  return text.includes(`object ${snapshot.name} in repository local: SHA-256 of the stored bytes is `) && text.includes(`the manifest says ${snapshot.sha256 ?? '?'}`);
}

const withIdentityFile = () => ({ env: { TASKFLOW_BACKUP_IDENTITY_FILE: tp.identityFile }, timeoutMs: 180_000 });

function scratchJobs(): string[] {
  const root = scratchRoot(tp.platform.dir);
  return existsSync(root) ? readdirSync(root) : [];
}

test('restore cluster from a damaged snapshot: fails naming the object, starts no server, removes what it extracted but never the directory it was given', async () => {
  const configFile = join(work, 'config.json');
  writeFileSync(configFile, JSON.stringify({ backup: tp.backup }));
  const tmp = join(work, 'tmp');
  mkdirSync(tmp, { mode: 0o711 });
  const restore = (to: string) =>
    runCli(['restore', 'cluster', '--config', configFile, '--data-dir', join(work, 'no-data-dir'), '--at', T.toISOString(), '--to', to], { env: { TMPDIR: tmp, TASKFLOW_BACKUP_IDENTITY: tp.identity }, timeoutMs: 180_000 });
  const fresh = join(work, 'fresh');
  const given = join(work, 'given');
  mkdirSync(given);
  await withCorruptSnapshot(async () => {
    const res = await restore(fresh);
    assert.equal(res.code, 1, res.stderr);
    assert.ok(namesCorruptObject(res.stderr), res.stderr);
    assert.deepEqual(postmastersUnder(work), [], 'no PostgreSQL was started');
    assert.ok(!existsSync(fresh), 'the directory the restore made is removed with what was extracted');
    assert.deepEqual(readdirSync(tmp), [], 'no work directory, and so no identity copy, is left');

    const res2 = await restore(given);
    assert.equal(res2.code, 1, res2.stderr);
    assert.ok(namesCorruptObject(res2.stderr), res2.stderr);
    assert.ok(existsSync(given), 'the empty directory the operator gave is kept');
    assert.deepEqual(readdirSync(given), [], '... and left empty, ready for the next attempt');
  });
  const res = await restore(given);
  assert.equal(res.code, 0, res.stderr);
  assert.ok(existsSync(join(given, 'PG_VERSION')));
});

test('backup verify --restore of a damaged snapshot: the proof fails naming the object, backup.verify-failed, no scratch left, no proof stored', async () => {
  const before = await getObject(tp.platform.control, snapshot.id);
  await withCorruptSnapshot(async () => {
    const res = await runCli(['backup', 'verify', '--restore', '--snapshot', snapshot.id, '--data-dir', tp.dataDir], withIdentityFile());
    assert.equal(res.code, 1, res.stderr);
    assert.ok(res.stdout.startsWith(`# Restore verification of ${snapshot.name}: FAILED`), res.stdout);
    assert.ok(namesCorruptObject(res.stdout), res.stdout);
  });
  const [alert] = await listAlerts(tp.platform.control, { code: 'backup.verify-failed' });
  assert.equal(alert?.key, 'backup.verify-failed');
  assert.equal(alert.severity, 'critical');
  assert.ok(alert.summary.startsWith(`restoring snapshot ${snapshot.name} did not verify: `) && namesCorruptObject(alert.summary), alert.summary);
  assert.deepEqual(scratchJobs(), [], 'no scratch directory is left');
  assert.deepEqual(postmastersUnder(scratchRoot(tp.platform.dir)), [], 'no scratch server is left');
  const after = await getObject(tp.platform.control, snapshot.id);
  assert.equal(after?.provenAt, before?.provenAt, 'no proof is recorded');
  assert.equal(after?.provenAt, null);
});

test('restore tenant from a damaged snapshot: restore.failed, the live tenant untouched and writable, nothing half-loaded; a later good restore resolves the alert', async () => {
  const titles = await taskTitles(tp.platform, acme.databaseName);
  const at = await serverNow(tp.platform);
  await withCorruptSnapshot(async () => {
    const res = await runCli(['restore', 'tenant', 'acme', '--at', at.toISOString(), '--data-dir', tp.dataDir], withIdentityFile());
    assert.equal(res.code, 1, res.stderr);
    assert.ok(namesCorruptObject(res.stderr), res.stderr);
  });
  const alerts = await listAlerts(tp.platform.control, { code: 'restore.failed' });
  assert.equal(alerts.length, 1);
  const [alert] = alerts;
  assert.equal(alert?.key, `restore.failed:${acme.id}`);
  assert.equal(alert.severity, 'critical');
  assert.equal(alert.tenantId, acme.id);
  assert.ok(alert.summary.startsWith(`restore of tenant acme to ${at.toISOString()} failed: `) && namesCorruptObject(alert.summary), alert.summary);

  assert.deepEqual(await taskTitles(tp.platform, acme.databaseName), titles, 'the live tenant is untouched');
  await withDb(tp.platform, acme.databaseName, (c) => addTask(c, 'Acme still writable'));
  assert.deepEqual(await taskTitles(tp.platform, acme.databaseName), [...titles, 'Acme still writable']);
  const leftovers = await tp.platform.control.query<{ datname: string }>(
    `SELECT datname FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE 'taskflow:restore-incoming:%' OR datname LIKE $1`,
    [`${acme.databaseName}\\_in%`],
  );
  assert.deepEqual(leftovers.rows, [], 'no incoming database is left');
  assert.deepEqual(await listAside(tp.platform.target), [], 'nothing was swapped');
  assert.deepEqual(scratchJobs(), [], 'no scratch directory is left');
  assert.deepEqual(postmastersUnder(scratchRoot(tp.platform.dir)), [], 'no scratch server is left');

  // The good bytes back: the next restore works and clears the alert.
  const good = await runCli(['restore', 'tenant', 'acme', '--at', (await serverNow(tp.platform)).toISOString(), '--data-dir', tp.dataDir], withIdentityFile());
  assert.equal(good.code, 0, good.stderr);
  assert.deepEqual(await taskTitles(tp.platform, acme.databaseName), [...titles, 'Acme still writable']);
  assert.deepEqual(await listAlerts(tp.platform.control, { code: 'restore.failed' }), [], 'no restore.failed alert is open');
  const [resolved] = await listAlerts(tp.platform.control, { code: 'restore.failed', all: true });
  assert.ok(resolved?.resolvedAt, 'it was resolved');
  assert.match(resolved.resolution ?? '', /^tenant acme restored to /);
});

test('backup verify --restore killed while its scratch server runs: taskflow start stops it and removes the identity copy; no proof for the killed run', async () => {
  const before = await getObject(tp.platform.control, snapshot.id);
  const root = scratchRoot(tp.platform.dir);
  const serverUp = () => scratchJobs().some((job) => existsSync(join(root, job, 'pgdata', 'postmaster.pid')));
  await killCliWhen(['backup', 'verify', '--restore', '--snapshot', snapshot.id, '--data-dir', tp.dataDir], { TASKFLOW_BACKUP_IDENTITY_FILE: tp.identityFile }, serverUp);

  const [job] = scratchJobs().filter((n) => !n.startsWith('.'));
  assert.match(job ?? '', /^verify-/, 'the killed verification left its scratch job');
  const identityCopy = join(root, job!, 'work', 'identity');
  assert.ok(existsSync(identityCopy), 'the identity copy is left behind');
  const pid = postmasterPid(join(root, job!, 'pgdata'));
  assert.ok(pid !== null && running(pid), 'the scratch server is left running');
  started.push(pid);
  assert.deepEqual(postmastersUnder(root), [pid]);

  // What `taskflow start` runs, on a configuration without schedules or WAL watch: nothing else happens.
  const jobs = await startBackupJobs(withBackupConfig(tp.platform, { schedule: { timeZone: 'UTC', snapshot: 'off', export: 'off', prune: 'off', drill: 'off' } }), { walWatch: null, takeSnapshot: null });
  await jobs?.stop();

  assert.ok(!existsSync(identityCopy), 'the identity copy is removed');
  assert.ok(!running(pid), 'the scratch server is stopped');
  assert.deepEqual(postmastersUnder(root), []);
  assert.deepEqual(scratchJobs(), [], 'the scratch directory is removed');
  const interrupted = (await listAlerts(tp.platform.control, { code: 'restore.interrupted' })).find((a) => a.key === `restore.interrupted:${job!}`);
  assert.match(interrupted?.summary ?? '', /^a backup verification started .* was interrupted \(its process stopped\); its scratch cluster was removed/);
  const after = await getObject(tp.platform.control, snapshot.id);
  assert.equal(after?.provenAt, before?.provenAt, 'no proof is recorded for the killed run');
  assert.equal(after?.proof?.kind, 'tenant-restore', 'the proof is still the tenant restore\'s');

  // Nothing the killed run left stands in the way of the next verification, which clears the earlier failure.
  const next = await runCli(['backup', 'verify', '--restore', '--snapshot', snapshot.id, '--data-dir', tp.dataDir], withIdentityFile());
  assert.equal(next.code, 0, next.stdout + next.stderr);
  assert.match(next.stdout, /: PASSED/);
  assert.equal((await getObject(tp.platform.control, snapshot.id))?.proof?.kind, 'verify-restore');
  assert.deepEqual(await listAlerts(tp.platform.control, { code: 'backup.verify-failed' }), [], 'backup.verify-failed is resolved');
});
