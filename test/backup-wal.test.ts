/**
 * The continuous WAL archive against a real PostgreSQL 15: archive_command installed by TaskFlow,
 * segments pushed through the pipeline into the repository and recorded in the catalog, fetched
 * back byte for byte by restore_command, idempotent retries, and a failing archive detected and
 * alerted while PostgreSQL keeps the WAL until it succeeds.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chownSync, createWriteStream, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { listAlerts } from '../src/platform/alerts/alerts.ts';
import { listObjects } from '../src/platform/backup/catalog.ts';
import { readManifest } from '../src/platform/backup/manifest.ts';
import { readBackupObject } from '../src/platform/backup/pipeline.ts';
import { FilesystemRepository } from '../src/platform/backup/fs-repository.ts';
import { checkWalArchive, walArchiveDir, walArchiveStatus } from '../src/platform/backup/physical/wal-archive.ts';
import { walObjectName } from '../src/platform/backup/physical/wal-names.ts';
import { FETCH_SETTINGS_FORMAT, type FetchSettings } from '../src/platform/backup/physical/wal-settings.ts';
import { clusterIdentifier } from '../src/platform/backup/service.ts';
import { poll } from '../src/platform/replication/probe.ts';
import { startPhysicalPlatform, switchAndWaitArchived, type PhysicalTestPlatform } from './backup-physical-fixtures.ts';
import { runCli, runProcess, TASKFLOW_BIN } from './helpers/cli.ts';
import { tempDir } from './helpers/platform.ts';

let tp: PhysicalTestPlatform;
let sysid: string;

before(async () => {
  tp = await startPhysicalPlatform({ archiveTimeoutSeconds: 60 });
  sysid = await clusterIdentifier(tp.platform);
});

after(async () => {
  await tp.cleanup();
});

test('archive_command is TaskFlow\'s, with the configured archive_timeout and no secret in it', async () => {
  // A reload reaches each session when it next handles the signal: give this one a moment.
  const read = () => tp.platform.control.query<{ cmd: string; timeout: string }>(`SELECT current_setting('archive_command') AS cmd, (SELECT setting FROM pg_settings WHERE name = 'archive_timeout') AS timeout`);
  let res = await read();
  for (let tries = 0; tries < 50 && res.rows[0]?.cmd === '/bin/true'; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    res = await read();
  }
  const cmd = res.rows[0]?.cmd ?? '';
  assert.match(cmd, /wal-entry\.ts' archive --settings '.*settings\.json' %p %f$/);
  assert.equal(res.rows[0]?.timeout, '60');
  assert.ok(!cmd.includes(tp.platform.target.password) && !cmd.includes(tp.identity), 'no password or key on the command line');
  const settings = readFileSync(join(walArchiveDir(tp.platform), 'settings.json'), 'utf8');
  assert.ok(!settings.includes('AGE-SECRET-KEY'), 'the archiver holds only recipients');
});

test('a closed segment is archived through the pipeline, recorded as kind wal, and restores byte for byte', async () => {
  await tp.platform.control.query(`CREATE TABLE IF NOT EXISTS wal_probe (n int); INSERT INTO wal_probe SELECT generate_series(1, 1000)`);
  const file = await switchAndWaitArchived(tp.platform);
  const name = walObjectName(sysid, file);
  const repo = new FilesystemRepository({ name: 'local', region: 'fra1', jurisdiction: 'DE', path: tp.repositoryDir });
  const manifest = await readManifest(repo, name);
  assert.equal(manifest.kind, 'wal');
  assert.equal(manifest.source.file, file);
  assert.equal(manifest.sizes.raw, 16 * 1024 * 1024);
  const rows = await listObjects(tp.platform.control, { kind: 'wal', state: 'complete' });
  const row = rows.find((r) => r.name === name);
  assert.ok(row, 'the segment is in the catalog');
  assert.equal(row.cluster, sysid);
  assert.equal(row.timeline, 1);
  assert.ok(row.dataAt, 'data_at: when the segment was last written');
  assert.deepEqual(row.locations.map((l) => l.repository), ['local']);

  // restore_command's side, as PostgreSQL runs it: as the postgres OS user, from a data directory.
  const dir = tempDir('fetch');
  const runAs = tp.platform.cluster?.runAs;
  if (runAs) chownSync(dir, runAs.uid, runAs.gid);
  const identityCopy = join(dir, 'identity');
  writeFileSync(identityCopy, tp.identity, { mode: 0o600 });
  if (runAs) chownSync(identityCopy, runAs.uid, runAs.gid);
  const settings: FetchSettings = { format: FETCH_SETTINGS_FORMAT, systemIdentifier: sysid, repository: tp.repositoryConfig, identityFile: identityCopy };
  const settingsFile = join(dir, 'settings.json');
  writeFileSync(settingsFile, JSON.stringify(settings), { mode: 0o600 });
  if (runAs) chownSync(settingsFile, runAs.uid, runAs.gid);
  const asPostgres = runAs ? { uid: runAs.uid, gid: runAs.gid } : {};
  const fetched = await runCli(['wal', 'fetch', '--settings', settingsFile, file, join(dir, 'RECOVERYXLOG')], asPostgres);
  assert.equal(fetched.code, 0, fetched.stderr);
  assert.equal(createHash('sha256').update(readFileSync(join(dir, 'RECOVERYXLOG'))).digest('hex'), manifest.source.rawSha256);
  const missing = await runCli(['wal', 'fetch', '--settings', settingsFile, '0000000900000000000000AA', join(dir, 'X')], asPostgres);
  assert.equal(missing.code, 1, 'a file not in the archive: PostgreSQL takes exit 1 as "not there"');
  assert.equal(missing.stderr, '');
  // A corrupted object must stop a recovery (exit above 125), never look like the end of the archive.
  const stored = join(tp.repositoryDir, name);
  const bytes = readFileSync(stored);
  bytes[bytes.length - 100] = (bytes[bytes.length - 100] ?? 0) ^ 0xff;
  const saved = `${stored}.orig`;
  renameSync(stored, saved);
  writeFileSync(stored, bytes);
  const corrupted = await runCli(['wal', 'fetch', '--settings', settingsFile, file, join(dir, 'Y')], asPostgres);
  renameSync(saved, stored);
  assert.equal(corrupted.code, 126, corrupted.stderr);
  assert.match(corrupted.stderr, /checksum|SHA-256/);
  rmSync(dir, { recursive: true, force: true });
});

test('archiving the same file again succeeds without rewriting it; other contents under its name are refused', async () => {
  const file = await switchAndWaitArchived(tp.platform);
  const name = walObjectName(sysid, file);
  const before = readFileSync(join(tp.repositoryDir, name));
  const pgData = tp.platform.cluster!.pgData;
  const work = tempDir('retry');
  const runAs = tp.platform.cluster?.runAs;
  const fetchedCopy = join(work, file);
  // The segment as archived (pg_wal may have recycled it): decrypted from the repository.
  const settings = join(walArchiveDir(tp.platform), 'settings.json');
  const repo = new FilesystemRepository({ name: 'local', region: 'fra1', jurisdiction: 'DE', path: tp.repositoryDir });
  await readBackupObject({ repository: repo, name, identities: tp.identities, destination: createWriteStream(fetchedCopy) });
  if (runAs) {
    chownSync(work, runAs.uid, runAs.gid);
    chownSync(fetchedCopy, runAs.uid, runAs.gid);
  }
  const asPostgres = runAs ? { uid: runAs.uid, gid: runAs.gid } : {};
  const again = await runCliIn(pgData, ['wal', 'archive', '--settings', settings, fetchedCopy, file], asPostgres);
  assert.equal(again.code, 0, again.stderr);
  assert.ok(readFileSync(join(tp.repositoryDir, name)).equals(before), 'not rewritten');
  const tampered = readFileSync(fetchedCopy);
  tampered[100] = (tampered[100] ?? 0) ^ 1;
  writeFileSync(fetchedCopy, tampered);
  const refused = await runCliIn(pgData, ['wal', 'archive', '--settings', settings, fetchedCopy, file], asPostgres);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /already archived .* with different contents/);
  rmSync(work, { recursive: true, force: true });
});

test('an unreachable repository: archiving fails and is retried, alerts are raised, and it catches up once the repository is back', async () => {
  const moved = `${tp.repositoryDir}.away`;
  renameSync(tp.repositoryDir, moved);
  try {
    await tp.platform.control.query(`INSERT INTO wal_probe SELECT generate_series(1, 100)`);
    const res = await tp.platform.control.query<{ file: string }>(`SELECT pg_walfile_name(pg_switch_wal()) AS file`);
    const file = res.rows[0]!.file;
    const failing = await poll(async () => ((await walArchiveStatus(tp.platform)).failing ? true : undefined), 20_000, 200);
    assert.ok(failing, 'pg_stat_archiver reports the failure');
    const status = await checkWalArchive(tp.platform);
    assert.equal(status.lastFailedWal, file);
    const open = await listAlerts(tp.platform.control);
    assert.ok(open.some((a) => a.code === 'backup.repository-unreachable' && a.key === 'backup.repository-unreachable:local'), 'the archiver raised the repository alert');
    assert.ok(open.some((a) => a.key === 'backup.failed:wal'), 'the status check raised backup.failed');
  } finally {
    renameSync(moved, tp.repositoryDir);
  }
  // PostgreSQL kept the segment and retries it; a newly closed segment wakes the archiver at once.
  await tp.platform.control.query(`SELECT pg_stat_reset_shared('archiver')`);
  await tp.platform.control.query(`INSERT INTO wal_probe VALUES (1); SELECT pg_switch_wal()`);
  const caughtUp = await poll(async () => {
    const s = await walArchiveStatus(tp.platform);
    return s.archivedCount > 0 && !s.failing ? s : undefined;
  }, 30_000, 200);
  assert.ok(caughtUp, 'the waiting segment was archived once the repository was back');
  const open = await listAlerts(tp.platform.control);
  assert.ok(!open.some((a) => a.key === 'backup.repository-unreachable:local'), 'a later success resolves the repository alert');
});

/** runCli with another working directory (archive_command runs in the data directory). */
function runCliIn(cwd: string, args: string[], options: { uid?: number; gid?: number }) {
  return runProcess(process.execPath, [TASKFLOW_BIN, ...args], { cwd, ...options });
}

