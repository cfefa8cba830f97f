/**
 * Restores that go wrong, against a real PostgreSQL 15: the process killed in the middle of a
 * tenant restore (the live tenant untouched, the scratch cluster and the half-loaded database
 * removed by the next run, an alert raised), and a WAL segment missing from the repository (the
 * gap reported before anything is restored, nothing live touched, an alert raised).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { listAlerts } from '../src/platform/alerts/alerts.ts';
import { loadRestoreIdentity } from '../src/platform/backup/physical/identity.ts';
import { restoreTenant } from '../src/platform/backup/physical/restore-tenant.ts';
import { scratchRoot } from '../src/platform/backup/physical/scratch-cluster.ts';
import { sweepInterruptedRestores } from '../src/platform/backup/physical/scratch-restore.ts';
import { listAside } from '../src/platform/backup/physical/tenant-swap.ts';
import { walObjectName } from '../src/platform/backup/physical/wal-names.ts';
import { clusterIdentifier } from '../src/platform/backup/service.ts';
import { poll } from '../src/platform/replication/probe.ts';
import type { Tenant } from '../src/platform/tenants/registry.ts';
import { serverNow, startInterruptiblePlatform, switchAndWaitArchived, taskTitles, withDb, type PhysicalTestPlatform } from './backup-physical-fixtures.ts';
import { TASKFLOW_BIN } from './helpers/cli.ts';

let tp: PhysicalTestPlatform;
let acme: Tenant;

before(async () => {
  ({ tp, acme } = await startInterruptiblePlatform());
});

after(async () => {
  await tp.cleanup();
});

async function incomingDatabases(): Promise<string[]> {
  const res = await tp.platform.control.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE 'taskflow:restore-incoming:%'`);
  return res.rows.map((r) => r.datname);
}

test('a tenant restore killed while it loads: the live tenant is untouched; the next run removes what it left and alerts', async () => {
  const before = await taskTitles(tp.platform, acme.databaseName);
  const at = await serverNow(tp.platform);
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, TASKFLOW_BACKUP_IDENTITY_FILE: tp.identityFile };
  const child = spawn(process.execPath, [TASKFLOW_BIN, 'restore', 'tenant', 'acme', '--at', at.toISOString(), '--data-dir', tp.dataDir], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise((r) => child.on('close', r));
  const loading = await poll(async () => ((await incomingDatabases()).length > 0 ? true : undefined), 120_000, 20);
  assert.ok(loading, `the restore never began loading: ${stderr}`);
  child.kill('SIGKILL');
  await exited;

  assert.deepEqual(await taskTitles(tp.platform, acme.databaseName), before, 'the live tenant is untouched');
  assert.deepEqual(await listAside(tp.platform.target), [], 'nothing was swapped');
  const jobs = readdirSync(scratchRoot(tp.platform.dir)).filter((n) => !n.startsWith('.'));
  assert.equal(jobs.length, 1, 'the scratch cluster is left behind');
  const scratchPid = Number(readFileSync(join(scratchRoot(tp.platform.dir), jobs[0]!, 'pgdata', 'postmaster.pid'), 'utf8').split('\n')[0]);

  assert.equal(await sweepInterruptedRestores(tp.platform), 1);
  assert.deepEqual(await incomingDatabases(), [], 'the half-loaded database is dropped');
  assert.ok(!existsSync(join(scratchRoot(tp.platform.dir), jobs[0]!)), 'the scratch directory is removed');
  assert.ok(!existsSync(`/proc/${scratchPid}`) || / Z /.test(readFileSync(`/proc/${scratchPid}/stat`, 'utf8')), 'the scratch server is stopped');
  const [alert] = await listAlerts(tp.platform.control, { code: 'restore.interrupted' });
  assert.match(alert?.summary ?? '', /a restore of tenant acme started .* was interrupted .*; the live tenant was not changed/);
});

test('a WAL segment missing from the repository: the restore reports the gap before restoring anything', async () => {
  const sysid = await clusterIdentifier(tp.platform);
  const segments: string[] = [];
  for (let i = 0; i < 3; i++) {
    await withDb(tp.platform, acme.databaseName, (c) => c.query(`UPDATE app.tasks SET title = title || '.'`));
    segments.push(await switchAndWaitArchived(tp.platform));
  }
  const lost = segments[1]!;
  rmSync(join(tp.repositoryDir, walObjectName(sysid, lost)));
  rmSync(join(tp.repositoryDir, `${walObjectName(sysid, lost)}.manifest.json`));
  const before = await taskTitles(tp.platform, acme.databaseName);

  const at = await serverNow(tp.platform);
  await assert.rejects(restoreTenant({ platform: tp.platform, slug: 'acme', at, identity: loadRestoreIdentity({ file: tp.identityFile }), actor: 'test' }), (err: Error) => {
    assert.ok(err.message.startsWith(`WAL segment ${lost} is missing from repository local: the archive after snapshot `), err.message);
    // Continuous up to the segment before the lost one (segments[0], unless PostgreSQL switched one more in between).
    const previous = `${lost.slice(0, 16)}${(Number.parseInt(lost.slice(16), 16) - 1).toString(16).toUpperCase().padStart(8, '0')}`;
    assert.ok(err.message.includes('is continuous only up to ') && err.message.includes(`(${previous})`), err.message);
    return true;
  });

  assert.deepEqual(await taskTitles(tp.platform, acme.databaseName), before, 'nothing live touched');
  assert.deepEqual(readdirSync(scratchRoot(tp.platform.dir)), [], 'nothing was restored');
  const [alert] = await listAlerts(tp.platform.control, { code: 'backup.wal-missing' });
  assert.ok(alert?.summary.includes(`failed: WAL segment ${lost} is missing`), alert?.summary);
});
