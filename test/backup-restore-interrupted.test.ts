/**
 * Restores killed mid-way, against a real PostgreSQL 15 and real processes: what they leave (the
 * copy of the private age identity, a PostgreSQL they started) is cleaned up without waiting for
 * another restore of the same kind: by `taskflow start` (startBackupJobs) for a tenant restore, and
 * by the next `restore cluster` on the machine for a cluster restore (which has no data directory
 * to keep state in). A restore's target directory is never removed.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { listAlerts } from '../src/platform/alerts/alerts.ts';
import { scratchRoot } from '../src/platform/backup/physical/scratch-cluster.ts';
import { startBackupJobs } from '../src/platform/backup/schedule.ts';
import type { Tenant } from '../src/platform/tenants/registry.ts';
import { withBackupConfig } from './backup-export-fixtures.ts';
import { serverNow, startInterruptiblePlatform, switchAndWaitArchived, withDb, type PhysicalTestPlatform } from './backup-physical-fixtures.ts';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/platform.ts';
import { killCliWhen, running } from './helpers/restore-processes.ts';
import { postmasterPid } from './helpers/taskflow-process.ts';

let tp: PhysicalTestPlatform;
let acme: Tenant;
let work: string;
/** Servers the killed restores started, stopped in `after` should a failing test leave them running. */
const started: number[] = [];

before(async () => {
  ({ tp, acme } = await startInterruptiblePlatform());
  work = tempDir('interrupted');
});

after(async () => {
  for (const pid of started.filter(running)) process.kill(pid, 'SIGQUIT');
  await tp.cleanup();
  rmSync(work, { recursive: true, force: true });
});

test('a tenant restore killed while it loads: taskflow start removes the identity copy and the scratch server, and alerts', async () => {
  const at = await serverNow(tp.platform);
  const loading = async () => (await tp.platform.control.query(`SELECT 1 FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE 'taskflow:restore-incoming:%'`)).rowCount === 1;
  await killCliWhen(['restore', 'tenant', 'acme', '--at', at.toISOString(), '--data-dir', tp.dataDir], { TASKFLOW_BACKUP_IDENTITY_FILE: tp.identityFile }, loading);

  const [job] = readdirSync(scratchRoot(tp.platform.dir)).filter((n) => !n.startsWith('.'));
  assert.ok(job, 'the killed restore left its scratch job');
  const identityCopy = join(scratchRoot(tp.platform.dir), job, 'work', 'identity');
  assert.ok(existsSync(identityCopy), 'the identity copy is left behind');
  const scratchPid = postmasterPid(join(scratchRoot(tp.platform.dir), job, 'pgdata')) ?? 0;
  started.push(scratchPid);
  assert.ok(running(scratchPid), 'the scratch server is left running');

  // What `taskflow start` runs, on a configuration without schedules or WAL watch: nothing else happens.
  const jobs = await startBackupJobs(withBackupConfig(tp.platform, { schedule: { timeZone: 'UTC', snapshot: 'off', export: 'off', prune: 'off', drill: 'off' } }), { walWatch: null, takeSnapshot: null });
  await jobs?.stop();

  assert.ok(!existsSync(identityCopy), 'the identity copy is removed');
  assert.ok(!running(scratchPid), 'the scratch server is stopped');
  assert.deepEqual(readdirSync(scratchRoot(tp.platform.dir)), [], 'the scratch job is removed');
  const [alert] = await listAlerts(tp.platform.control, { code: 'restore.interrupted' });
  assert.match(alert?.summary ?? '', /a restore of tenant acme started .* was interrupted/);
});

test('a cluster restore killed while it replays WAL: the next restore cluster removes the identity copy and stops its server, keeping its directory; a restore into that directory starts over', async () => {
  // Several segments to replay after the snapshot: `taskflow wal fetch` per segment keeps recovery busy a while.
  for (let i = 0; i < 4; i++) {
    await withDb(tp.platform, acme.databaseName, (c) => c.query(`UPDATE app.comments SET body = body || $1`, [String(i)]));
    await switchAndWaitArchived(tp.platform);
  }
  const at = await serverNow(tp.platform);
  await new Promise((r) => setTimeout(r, 1100));
  await withDb(tp.platform, acme.databaseName, (c) => c.query(`UPDATE app.tasks SET title = title || '.'`));
  await switchAndWaitArchived(tp.platform);
  // The disaster-recovery machine: the backup section only, no data directory, its own temporary directory.
  const configFile = join(work, 'config.json');
  writeFileSync(configFile, JSON.stringify({ backup: tp.backup }));
  const tmp = join(work, 'tmp');
  mkdirSync(tmp, { mode: 0o711 });
  const env = { TMPDIR: tmp, TASKFLOW_BACKUP_IDENTITY: tp.identity };
  const args = (to: string) => ['restore', 'cluster', '--config', configFile, '--data-dir', join(work, 'no-data-dir'), '--at', at.toISOString(), '--to', to];
  const first = join(work, 'first');
  const workDirs = () => readdirSync(tmp).filter((n) => n.startsWith('taskflow-restore-'));
  await killCliWhen(args(first), env, () => existsSync(join(first, 'postmaster.pid')) && workDirs().some((d) => existsSync(join(tmp, d, 'identity'))));

  const [left] = workDirs();
  assert.ok(left && existsSync(join(tmp, left, 'identity')), 'the identity copy is left behind');
  const pid = postmasterPid(first) ?? 0;
  started.push(pid);
  assert.ok(running(pid), 'the restored server is left running');

  const second = await runCli(args(join(work, 'second')), { env, timeoutMs: 180_000 });
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(workDirs(), [], 'no work directory, and so no identity copy, is left');
  assert.ok(!running(pid), 'the first restore\'s server is stopped');
  assert.ok(existsSync(join(first, 'PG_VERSION')), 'the directory the first restore went into is kept');
  assert.ok(second.stderr.includes(`removed what an interrupted restore into ${first} (started `) && second.stderr.includes(' left, and stopped its server'), second.stderr);
  assert.equal(existsSync(join(work, 'second', 'taskflow-restore-incomplete.json')), false, 'the complete restore carries no marker');
  assert.ok(existsSync(join(first, 'taskflow-restore-incomplete.json')), 'the first restore\'s directory says it is partial');

  // Restoring into the partial directory again starts it over, and completes it.
  const third = await runCli(args(first), { env, timeoutMs: 180_000 });
  assert.equal(third.code, 0, third.stderr);
  assert.match(third.stderr, /holds a partial restore of snapshots\/\S+ that an interrupted run \(started \S+\) left: removing it to restore again/);
  assert.equal(existsSync(join(first, 'taskflow-restore-incomplete.json')), false);
  assert.ok(existsSync(join(first, 'PG_VERSION')));
});
