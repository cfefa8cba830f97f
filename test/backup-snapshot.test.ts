/**
 * Cluster snapshots against a real PostgreSQL 15 and real repositories: a base backup over a
 * replication connection, compressed by the server, streamed through the pipeline, its facts in the catalog and in the manifest (what a restore needs without
 * the catalog), row counts at one WAL position, verified copies in a secondary repository, and a
 * snapshot killed half way: marked failed on the next run, nothing left in the repository, an
 * alert raised, the live data untouched; a base backup stream dropped half way ends the backup on
 * the server.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { listAlerts } from '../src/platform/alerts/alerts.ts';
import { getObject, listObjects } from '../src/platform/backup/catalog.ts';
import { FilesystemRepository } from '../src/platform/backup/fs-repository.ts';
import { readManifest } from '../src/platform/backup/manifest.ts';
import { readBackupObject } from '../src/platform/backup/pipeline.ts';
import { startBaseBackup } from '../src/platform/backup/physical/basebackup-protocol.ts';
import { takeSnapshot, type SnapshotDetails } from '../src/platform/backup/physical/snapshot.ts';
import { clusterIdentifier } from '../src/platform/backup/service.ts';
import type { Tenant } from '../src/platform/tenants/registry.ts';
import { fsRepository } from './backup-export-fixtures.ts';
import { startPhysicalPlatform, taskTitles, tenantWithTasks, type PhysicalTestPlatform } from './backup-physical-fixtures.ts';

const CHILD = fileURLToPath(new URL('./helpers/snapshot-child.ts', import.meta.url));

let tp: PhysicalTestPlatform;
let acme: Tenant;

before(async () => {
  tp = await startPhysicalPlatform({
    extra: (root) => {
      const dir = join(root, 'second');
      mkdirSync(dir);
      chmodSync(dir, 0o711);
      return [fsRepository('second', dir)];
    },
  });
  tp.writeConfigFile();
  acme = await tenantWithTasks(tp.platform, 'acme', 25, 'Acme');
});

after(async () => {
  await tp.cleanup();
});

test('a snapshot streams a server-compressed base backup into the repository and records what a restore needs', async () => {
  const progress: number[] = [];
  const entry = await takeSnapshot(tp.platform, { onProgress: (bytes) => progress.push(bytes) });
  const sysid = await clusterIdentifier(tp.platform);
  assert.equal(entry.state, 'complete');
  assert.equal(entry.kind, 'snapshot');
  assert.equal(entry.cluster, sysid, 'the catalog cluster column is the system identifier');
  assert.ok(entry.name.startsWith(`snapshots/${sysid}/`));
  assert.match(entry.name.slice(`snapshots/${sysid}/`.length), /^\d{8}T\d{6}\.\d{3}Z\.tar$/);
  const d = entry.details as unknown as SnapshotDetails;
  assert.equal(d.timeline, 1);
  assert.match(d.startLsn, /^[0-9A-F]+\/[0-9A-F]+$/);
  assert.match(d.stopLsn, /^[0-9A-F]+\/[0-9A-F]+$/);
  assert.ok(BigInt(`0x${d.stopLsn.replace('/', '')}`) > 0n);
  // The server compressed the archive: the plain size is not measured here.
  assert.equal(entry.rawBytes, null);
  assert.equal(entry.dataAt, new Date(d.stopTime).toISOString().replace('Z', '000Z'));
  // Row counts of the control database and every tenant database, at one WAL position after the backup.
  assert.ok(d.rowCounts, d.rowCountsError);
  assert.equal(d.rowCounts.databases[acme.databaseName]?.['app.tasks'], 25);
  assert.ok((d.rowCounts.databases.taskflow_control?.['public.tenants'] ?? 0) >= 1);
  assert.ok(BigInt(`0x${d.rowCounts.lsn.replace('/', '')}`) >= BigInt(`0x${d.stopLsn.split('/')[0]!.padStart(8, '0')}${d.stopLsn.split('/')[1]!.padStart(8, '0')}`));
  // Progress came from the server while it streamed, never going back, up to the cluster's size.
  assert.ok(progress.length >= 1);
  assert.ok(progress.every((bytes, i) => i === 0 || bytes >= (progress[i - 1] ?? 0)));
  assert.ok((progress.at(-1) ?? 0) > 1_000_000, `${progress.at(-1)} bytes reported`);
  // Copied to the secondary and verified there.
  assert.deepEqual(entry.locations.map((l) => l.repository), ['local', 'second']);
  assert.ok(entry.locations.every((l) => l.verifiedAt !== null || l.repository === 'local'));

  // The manifest alone says what a restore needs; the object is the base backup's tar, then a tar
  // of its backup_manifest (GNU tar reads both with --ignore-zeros).
  const repo = new FilesystemRepository({ name: 'local', region: 'fra1', jurisdiction: 'DE', path: tp.repositoryDir });
  const manifest = await readManifest(repo, entry.name);
  assert.deepEqual(
    [manifest.source.systemIdentifier, manifest.source.timeline, manifest.source.startLsn, manifest.source.stopLsn, manifest.source.stopTime, manifest.sizes.raw],
    [sysid, 1, d.startLsn, d.stopLsn, d.stopTime, null],
  );
  const listing = new PassThrough();
  const tar = spawn('tar', ['--list', '--ignore-zeros', '--file', '-'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let names = '';
  tar.stdout.on('data', (b: Buffer) => (names += b.toString()));
  listing.pipe(tar.stdin);
  await readBackupObject({ repository: repo, name: entry.name, identities: tp.identities, destination: listing });
  await new Promise((r) => tar.on('close', r));
  for (const member of ['backup_label', 'backup_manifest', 'PG_VERSION', 'global/pg_control']) assert.ok(names.split('\n').includes(member), member);
  assert.ok(names.split('\n').some((n) => /pg_wal\/[0-9A-F]{24}$/.test(n)), 'the WAL it needs is inside (-X fetch)');
});

test('backup.rowCountTenants caps the tenant databases a snapshot counts (two connections each): 0 counts the control database only', async () => {
  const backup = tp.platform.config.backup;
  const was = backup.rowCountTenants;
  backup.rowCountTenants = 0;
  try {
    const entry = await takeSnapshot(tp.platform);
    const d = entry.details as unknown as SnapshotDetails;
    assert.ok(d.rowCounts, d.rowCountsError);
    assert.deepEqual(Object.keys(d.rowCounts.databases), ['taskflow_control']);
  } finally {
    backup.rowCountTenants = was;
  }
  assert.equal(was, 25, 'the default');
});

test('a snapshot killed half way: the next run marks it failed and alerts; nothing of it stays in the repository; the live data is untouched', async () => {
  const child = spawn(process.execPath, [CHILD, tp.dataDir, '1M'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const last = /progress (\d+)\n$/.exec(out);
      if (last && Number(last[1]) > 2_000_000) resolve();
    });
    child.on('close', (code) => {
      reject(new Error(`the snapshot process ended (${code}) before it was killed: ${err}`));
    });
  });
  const [running] = await listObjects(tp.platform.control, { kind: 'snapshot', state: 'running' });
  assert.ok(running, 'its catalog row is running while it writes');
  child.kill('SIGKILL');
  await new Promise((r) => child.on('close', r));

  const entry = await takeSnapshot(tp.platform);
  assert.equal(entry.state, 'complete');
  const killed = await getObject(tp.platform.control, running.id);
  assert.ok(killed);
  assert.equal(killed.state, 'failed');
  assert.match(killed.error ?? '', /interrupted/);
  assert.ok(!existsSync(join(tp.repositoryDir, killed.name)), 'no object');
  assert.ok(!existsSync(join(tp.repositoryDir, `${killed.name}.manifest.json`)), 'no manifest');
  // Raised for the operator, and resolved by the good snapshot that followed.
  const alerts = await listAlerts(tp.platform.control, { code: 'backup.interrupted', all: true });
  assert.equal(alerts[0]?.key, 'backup.interrupted:snapshot');
  assert.match(alerts[0].summary, /was interrupted/);
  assert.equal((await taskTitles(tp.platform, acme.databaseName)).length, 25);
  // No base backup of the killed process is left running on the primary.
  const left = await tp.platform.control.query(`SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender' AND strpos(query, $1) > 0`, [killed.name]);
  assert.equal(left.rowCount, 0);
});

test("a base backup stream dropped half way ends the backup on the server; an unreachable server fails the stream naming it; the server's refusal keeps its message and SQLSTATE", async () => {
  const label = `taskflow dropped ${Date.now()}`;
  const stream = startBaseBackup(tp.platform.target, { label, compressionLevel: 1, workers: 0, maxRate: '1M' });
  const active = `SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'walsender' AND strpos(query, $1) > 0`;
  await new Promise<void>((resolve, reject) => {
    stream.once('data', () => {
      resolve();
    });
    stream.once('error', reject);
  });
  assert.equal((await tp.platform.control.query<{ n: number }>(active, [label])).rows[0]?.n, 1, 'the walsender runs the backup');
  stream.destroy();
  let n = 1;
  for (let i = 0; i < 100 && n > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    n = (await tp.platform.control.query<{ n: number }>(active, [label])).rows[0]?.n ?? 0;
  }
  assert.equal(n, 0, 'the server ended the backup once the connection closed');
  // A snapshot after it works as usual.
  assert.equal((await takeSnapshot(tp.platform)).state, 'complete');

  const nowhere = startBaseBackup({ ...tp.platform.target, port: 1 }, { label: 'x', compressionLevel: 1, workers: 0 });
  const err = await new Promise<Error>((resolve) => {
    nowhere.on('error', resolve);
    nowhere.resume();
  });
  assert.match(err.message, /could not open a replication connection to .*:1: /);

  // The server refusing BASE_BACKUP itself: its ErrorResponse fails the stream, message and SQLSTATE kept.
  const refused = startBaseBackup(tp.platform.target, { label: 'x', compressionLevel: 99, workers: 0 });
  const serverErr = await new Promise<Error & { code?: string }>((resolve) => {
    refused.on('error', resolve);
    refused.resume();
  });
  assert.match(serverErr.message, /invalid compression specification/);
  assert.equal(serverErr.code, '42601');
});
