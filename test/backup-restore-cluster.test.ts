/**
 * Disaster recovery with `taskflow restore cluster --at TIME --to DIR`: from the repository and the
 * identity alone (a configuration holding only the backup section, no data directory, the live
 * cluster stopped), to the second; and its refusals: a directory that is not empty, a time before
 * the oldest snapshot, a time after the newest archived WAL.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { takeSnapshot, type SnapshotDetails } from '../src/platform/backup/physical/snapshot.ts';
import { LocalCluster } from '../src/platform/postgres/local-cluster.ts';
import type { Tenant } from '../src/platform/tenants/registry.ts';
import { addTask, serverNow, startPhysicalPlatform, switchAndWaitArchived, taskTitles, tenantWithTasks, withDb, type PhysicalTestPlatform } from './backup-physical-fixtures.ts';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/platform.ts';

let tp: PhysicalTestPlatform;
let acme: Tenant;
let work: string;
let configFile: string;
let snapshotEnd: Date;
let T: Date;

before(async () => {
  tp = await startPhysicalPlatform();
  acme = await tenantWithTasks(tp.platform, 'acme', 4, 'Acme');
  const entry = await takeSnapshot(tp.platform);
  snapshotEnd = new Date((entry.details as unknown as SnapshotDetails).stopTime);
  await withDb(tp.platform, acme.databaseName, (c) => addTask(c, 'Acme before T'));
  T = await serverNow(tp.platform);
  await new Promise((r) => setTimeout(r, 1100));
  await withDb(tp.platform, acme.databaseName, (c) => addTask(c, 'Acme after T'));
  await switchAndWaitArchived(tp.platform);
  // The disaster-recovery machine's configuration: the backup section, nothing else.
  work = tempDir('dr');
  configFile = join(work, 'config.json');
  writeFileSync(configFile, JSON.stringify({ backup: tp.backup }));
});

after(async () => {
  await tp.cleanup();
  rmSync(work, { recursive: true, force: true });
});

function restore(args: string[]) {
  return runCli(['restore', 'cluster', '--config', configFile, '--data-dir', join(work, 'no-data-dir'), ...args], { env: { TASKFLOW_BACKUP_IDENTITY: tp.identity }, timeoutMs: 180_000 });
}

test('refusals: a directory that is not empty (or holds a restore still under way), a time before the oldest snapshot, a time after the newest archived WAL', async () => {
  const full = join(work, 'full');
  mkdirSync(full);
  writeFileSync(join(full, 'something'), 'x');
  const notEmpty = await restore(['--at', T.toISOString(), '--to', full]);
  assert.equal(notEmpty.code, 4);
  assert.match(notEmpty.stderr, /is not empty; a restore goes into a new or empty directory/);
  // A partial restore whose process still runs (this one) is not taken over.
  const busy = join(work, 'busy');
  mkdirSync(busy);
  const marker = { pid: process.pid, processStart: null, startedAt: '2026-11-24T00:00:00.000Z', snapshot: 'snapshots/x.tar' };
  writeFileSync(join(busy, 'taskflow-restore-incomplete.json'), JSON.stringify(marker));
  const underWay = await restore(['--at', T.toISOString(), '--to', busy]);
  assert.equal(underWay.code, 4);
  assert.match(underWay.stderr, /is not empty: a restore into it is under way \(pid \d+, started 2026-11-24T00:00:00\.000Z\)/);
  assert.ok(existsSync(join(busy, 'taskflow-restore-incomplete.json')), 'left as it was');

  const early = new Date(snapshotEnd.getTime() - 3_600_000);
  const tooEarly = await restore(['--at', early.toISOString(), '--to', join(work, 'a')]);
  assert.equal(tooEarly.code, 2);
  assert.match(tooEarly.stderr, /is before the oldest snapshot in repository local, which ended at .*; that is the earliest time it can restore to/);

  const tooLate = await restore(['--at', new Date().toISOString(), '--to', join(work, 'b')]);
  assert.equal(tooLate.code, 2);
  assert.match(tooLate.stderr, /is after the newest archived WAL in repository local, which was written until .* \(0000000100000000000000[0-9A-F]{2}\)/);

  const noZone = await restore(['--at', '2026-11-23 14:05:07', '--to', join(work, 'c')]);
  assert.equal(noZone.code, 2);
  assert.match(noZone.stderr, /with its zone/);
});

test('restore cluster --at T, with the live cluster gone: every transaction until T, none after, a new timeline', async () => {
  await tp.platform.close({ stopCluster: true });
  const to = join(work, 'restored');
  const res = await restore(['--at', T.toISOString(), '--to', to, '--json']);
  assert.equal(res.code, 0, res.stderr);
  const result = JSON.parse(res.stdout) as { port: number; running: boolean; reached: { lastTransactionAt: string; timeline: number }; snapshot: string };
  assert.equal(result.running, false, 'stopped cleanly');
  assert.equal(result.reached.timeline, 2);
  assert.ok(new Date(result.reached.lastTransactionAt) <= T);
  assert.equal(existsSync(join(to, 'taskflow-restore-incomplete.json')), false, 'a complete restore carries no partial-restore marker');
  const restored = new LocalCluster({ pgData: to, port: result.port, tools: tp.platform.tools, runAs: tp.platform.cluster!.runAs, superuserPassword: tp.platform.target.password });
  await restored.start();
  try {
    const platform = { ...tp.platform, target: restored.target() };
    assert.deepEqual(await taskTitles(platform, acme.databaseName), ['Acme 1', 'Acme 2', 'Acme 3', 'Acme 4', 'Acme before T']);
    const settings = await withDb(platform, 'postgres', async (c) => (await c.query<{ cmd: string; restore: string }>(`SELECT current_setting('archive_command') AS cmd, current_setting('restore_command') AS restore`)).rows[0]);
    assert.deepEqual(settings, { cmd: '', restore: '' }, 'no restore settings left; WAL kept until TaskFlow installs the archive');
  } finally {
    await restored.stop();
  }
});
