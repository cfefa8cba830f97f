/**
 * The continuous WAL archive with an S3-compatible primary (the real s3rver in its own process):
 * PostgreSQL's archiver, running as the postgres OS user without TaskFlow's environment, signs with
 * a 0600 copy of the repository's credentials that TaskFlow writes on every install (so rotated
 * keys reach it), and no secret is ever in postgresql.auto.conf or the archive_command;
 * restore_command fetches from S3 the same way, and `restore cluster --at T` and
 * `backup verify --restore` replay WAL from S3.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { listAlerts } from '../src/platform/alerts/alerts.ts';
import { listObjects } from '../src/platform/backup/catalog.ts';
import type { RepositoryConfig } from '../src/platform/backup/config.ts';
import { loadRestoreIdentity } from '../src/platform/backup/physical/identity.ts';
import { takeSnapshot } from '../src/platform/backup/physical/snapshot.ts';
import { verifyRestore } from '../src/platform/backup/physical/verify-restore.ts';
import { ensureWalArchiving, walArchiveDir } from '../src/platform/backup/physical/wal-archive.ts';
import { walObjectName } from '../src/platform/backup/physical/wal-names.ts';
import { FETCH_SETTINGS_FORMAT, makeOwnedDir, repositoryForOsUser, WAL_ENTRY, writeOwnedFile, type ArchiveSettings, type FetchSettings } from '../src/platform/backup/physical/wal-settings.ts';
import { clusterIdentifier } from '../src/platform/backup/service.ts';
import { LocalCluster } from '../src/platform/postgres/local-cluster.ts';
import { poll } from '../src/platform/replication/probe.ts';
import type { Tenant } from '../src/platform/tenants/registry.ts';
import { addTask, serverNow, startPhysicalPlatform, switchAndWaitArchived, taskTitles, tenantWithTasks, withDb, type PhysicalTestPlatform } from './backup-physical-fixtures.ts';
import { s3rverUnavailable, S3RVER_KEY, startS3rver, type TestS3 } from './backup-s3-fixtures.ts';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/platform.ts';

const skip = s3rverUnavailable();
/** s3rver checks the key id only; the secret is ours, so the tests can look for it where it must not be. */
const SECRET = `wal-s3-secret-${randomBytes(8).toString('hex')}`;
const PREFIX = 'cluster-a';
let s3: TestS3 | undefined;
let tp: PhysicalTestPlatform | undefined;
let acme: Tenant;
let work = '';
let operatorCredentials = '';
let primary: RepositoryConfig;

function credentialsText(keyId: string, secret: string, extra = ''): string {
  return `[default]\naws_access_key_id = ${keyId}\naws_secret_access_key = ${secret}\n${extra}`;
}

before(async () => {
  if (skip) return;
  delete process.env.AWS_ACCESS_KEY_ID;
  delete process.env.AWS_SECRET_ACCESS_KEY;
  delete process.env.AWS_SESSION_TOKEN;
  s3 = await startS3rver('taskflow-wal');
  work = tempDir('wal-s3');
  // The operator's file: root's, 0600, so the postgres OS user cannot read it.
  operatorCredentials = join(work, 'operator-credentials');
  writeFileSync(operatorCredentials, credentialsText(S3RVER_KEY, SECRET), { mode: 0o600 });
  primary = {
    name: 'bucket', kind: 's3', region: 'us-east-1', jurisdiction: 'DE', bucket: s3.bucket, path: `/${PREFIX}/`, endpoint: s3.endpoint, credentialsFile: operatorCredentials, connectTimeoutSeconds: 5,
  };
  tp = await startPhysicalPlatform({ primary });
  acme = await tenantWithTasks(tp.platform, 'acme', 3, 'Acme');
});

after(async () => {
  await tp?.cleanup();
  await s3?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

function platformOf(): PhysicalTestPlatform {
  if (!tp) throw new Error('no platform');
  return tp;
}

/** The archiver's copy of the credentials. */
function credentialsCopy(): string {
  return join(walArchiveDir(platformOf().platform), `${primary.name}.s3_credentials`);
}

/** Whether the object is stored in the bucket (read from s3rver's files). */
function inBucket(name: string): boolean {
  return s3?.storedBytes(`${PREFIX}/${name}`) != null;
}

test('the archiver signs with a 0600 copy of the credentials owned by postgres; segment, manifest and catalog row land in S3; no secret in the settings', { skip: skip ?? false }, async () => {
  const { platform } = platformOf();
  const runAs = platform.cluster?.runAs;
  assert.ok(runAs, 'the cluster runs as the postgres OS user');
  const copy = statSync(credentialsCopy());
  assert.equal(copy.mode & 0o777, 0o600);
  assert.deepEqual([copy.uid, copy.gid], [runAs.uid, runAs.gid]);
  const settingsText = readFileSync(join(walArchiveDir(platform), 'settings.json'), 'utf8');
  const settings = JSON.parse(settingsText) as ArchiveSettings;
  assert.equal(settings.repository.credentialsFile, credentialsCopy());
  assert.ok(!settingsText.includes(SECRET));

  const sysid = await clusterIdentifier(platform);
  await withDb(platform, acme.databaseName, (c) => addTask(c, 'Acme archived'));
  const file = await switchAndWaitArchived(platform);
  assert.ok(inBucket(walObjectName(sysid, file)), 'the segment is in the bucket');
  assert.ok(inBucket(`${walObjectName(sysid, file)}.manifest.json`), 'with its manifest');
  const [wal] = await listObjects(platform.control, { kind: 'wal', state: 'complete', limit: 1 });
  assert.ok(wal, 'a complete wal object in the catalog');
  assert.equal(wal.name, walObjectName(sysid, file));
  assert.deepEqual(wal.locations.map((l) => l.repository), ['bucket']);

  const archiveCommand = (await platform.control.query<{ cmd: string }>(`SELECT current_setting('archive_command') AS cmd`)).rows[0]?.cmd ?? '';
  assert.match(archiveCommand, / archive --settings /);
  const pgData = platform.cluster?.pgData ?? '';
  for (const [what, text] of [
    ['archive_command', archiveCommand],
    ['postgresql.auto.conf', readFileSync(join(pgData, 'postgresql.auto.conf'), 'utf8')],
    ['postgresql.conf', readFileSync(join(pgData, 'postgresql.conf'), 'utf8')],
  ] as const) {
    assert.ok(!text.includes(SECRET), `no secret access key in ${what}`);
    assert.ok(!text.includes(S3RVER_KEY), `no access key id in ${what}`);
  }
});

test('rotated credentials reach the archiver when archiving is reinstalled; a rejected key fails archiving meanwhile', { skip: skip ?? false }, async () => {
  const { platform } = platformOf();
  const before = (await platform.control.query<{ failed: string }>('SELECT failed_count::text AS failed FROM pg_stat_archiver')).rows[0]?.failed ?? '0';
  writeFileSync(operatorCredentials, credentialsText('REVOKED', SECRET), { mode: 0o600 });
  await ensureWalArchiving(platform);
  assert.match(readFileSync(credentialsCopy(), 'utf8'), /aws_access_key_id = REVOKED/);
  await withDb(platform, acme.databaseName, (c) => addTask(c, 'Acme during the bad key'));
  await platform.control.query('SELECT pg_switch_wal()');
  const failed = await poll(async () => {
    const r = await platform.control.query<{ failed: string }>('SELECT failed_count::text AS failed FROM pg_stat_archiver');
    return Number(r.rows[0]?.failed) > Number(before) ? true : undefined;
  }, 30_000, 200);
  assert.ok(failed, 'archiving fails with the rejected key');
  const openAlert = async () => (await listAlerts(platform.control, { code: 'backup.repository-unreachable' })).find((a) => a.key === 'backup.repository-unreachable:bucket');
  const alert = await openAlert();
  assert.match(alert?.summary ?? '', /access denied \(InvalidAccessKeyId\)/);
  assert.ok(!JSON.stringify(alert).includes(SECRET));

  const rotated = `${SECRET}-rotated`;
  writeFileSync(operatorCredentials, credentialsText(S3RVER_KEY, rotated), { mode: 0o600 });
  const state = await ensureWalArchiving(platform);
  assert.equal(state.changed, false, 'the archive_command stays the same; only the copy changes');
  assert.ok(readFileSync(credentialsCopy(), 'utf8').includes(`aws_secret_access_key = ${rotated}\n`), 'the copy holds the rotated key');
  await withDb(platform, acme.databaseName, (c) => addTask(c, 'Acme after rotation'));
  await switchAndWaitArchived(platform, 90_000);
  assert.equal(await openAlert(), undefined, 'resolved by the next archived segment');
});

test('refused at install: temporary credentials (a session token) and no credentials at all, the working copy kept; a former primary\'s copy removed', { skip: skip ?? false }, async () => {
  const { platform } = platformOf();
  const withRepository = (repository: RepositoryConfig) => ({ ...platform, config: { ...platform.config, backup: { ...platform.config.backup, repositories: [repository] } } });
  const tokenFile = join(work, 'temporary-credentials');
  writeFileSync(tokenFile, credentialsText(S3RVER_KEY, SECRET, 'aws_session_token = FwoGZXIvYXdzE\n'), { mode: 0o600 });
  await assert.rejects(ensureWalArchiving(withRepository({ ...primary, credentialsFile: tokenFile })), /repository bucket: its credentials are temporary .*give the repository long-lived access keys/);
  const { credentialsFile: _, ...withoutFile } = primary;
  await assert.rejects(ensureWalArchiving(withRepository(withoutFile)), /repository bucket: no credentials: set credentialsFile in its configuration, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
  assert.ok(!readFileSync(credentialsCopy(), 'utf8').includes('aws_session_token'), 'the copy in use is untouched');

  // Another primary: the former one's copy goes; back again, it returns.
  await ensureWalArchiving(withRepository({ ...primary, name: 'other' }));
  assert.deepEqual(readdirSync(walArchiveDir(platform)).filter((f) => f.endsWith('.s3_credentials')), ['other.s3_credentials']);
  await ensureWalArchiving(platform);
  assert.deepEqual(readdirSync(walArchiveDir(platform)).filter((f) => f.endsWith('.s3_credentials')), ['bucket.s3_credentials']);
});

/** Runs restore_command's `wal fetch` as the postgres OS user, with nothing but PATH in its environment. */
function fetchAsPostgres(settingsFile: string, file: string, destination: string, cwd: string): Promise<{ code: number | null; stderr: string }> {
  const runAs = platformOf().platform.cluster?.runAs;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WAL_ENTRY, 'fetch', '--settings', settingsFile, file, destination], {
      cwd, env: { PATH: process.env.PATH }, stdio: ['ignore', 'ignore', 'pipe'], ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => {
      stderr += t;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stderr });
    });
  });
}

test('restore_command fetches from S3 as the postgres user without any AWS environment; missing is exit 1, a rejected key aborts (126)', { skip: skip ?? false }, async () => {
  const { platform, identity } = platformOf();
  const runAs = platform.cluster?.runAs ?? null;
  const [wal] = await listObjects(platform.control, { kind: 'wal', state: 'complete', limit: 1 });
  assert.ok(wal);
  const file = wal.name.split('/').pop() ?? '';
  const fetchDir = join(work, 'fetch');
  makeOwnedDir(fetchDir, runAs);
  const identityFile = join(fetchDir, 'identity');
  writeOwnedFile(identityFile, `${identity}\n`, runAs);
  // Credentials from the restoring process's environment this time, as on a disaster-recovery machine.
  const { credentialsFile: _, ...fromEnv } = primary;
  const repository = repositoryForOsUser(fromEnv, fetchDir, runAs, { env: { AWS_ACCESS_KEY_ID: S3RVER_KEY, AWS_SECRET_ACCESS_KEY: SECRET } });
  const settings: FetchSettings = { format: FETCH_SETTINGS_FORMAT, systemIdentifier: await clusterIdentifier(platform), repository, identityFile };
  const settingsFile = join(fetchDir, 'fetch.json');
  writeOwnedFile(settingsFile, JSON.stringify(settings), runAs);
  assert.ok(!readFileSync(settingsFile, 'utf8').includes(SECRET));

  const fetched = await fetchAsPostgres(settingsFile, file, 'segment', fetchDir);
  assert.equal(fetched.code, 0, fetched.stderr);
  const raw = readFileSync(join(fetchDir, 'segment'));
  assert.equal(createHash('sha256').update(raw).digest('hex'), (wal.details as { rawSha256?: string }).rawSha256, 'the archived bytes');

  const missing = await fetchAsPostgres(settingsFile, '0000000100000000000000FE', 'absent', fetchDir);
  assert.equal(missing.code, 1, missing.stderr);

  writeOwnedFile(repository.credentialsFile ?? '', credentialsText('REVOKED', SECRET), runAs);
  const rejected = await fetchAsPostgres(settingsFile, file, 'again', fetchDir);
  assert.equal(rejected.code, 126);
  assert.match(rejected.stderr, /access denied/);
  assert.ok(!rejected.stderr.includes(SECRET));
});

/** Every file under `dir` whose bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if (readFileSync(path).includes(needle)) found.push(path);
  }
  return found;
}

test('restore cluster --at T from the S3 repository alone (credentials from the environment): WAL replayed from S3 to the second', { skip: skip ?? false }, async () => {
  const { platform, backup, identity } = platformOf();
  await takeSnapshot(platform);
  await withDb(platform, acme.databaseName, (c) => addTask(c, 'Acme before T'));
  const T = await serverNow(platform);
  await new Promise((r) => setTimeout(r, 1100));
  await withDb(platform, acme.databaseName, (c) => addTask(c, 'Acme after T'));
  await switchAndWaitArchived(platform);

  // The disaster-recovery machine: the backup section without the credentials file; keys in its environment.
  const { credentialsFile: _, ...fromEnv } = primary;
  const configFile = join(work, 'dr-config.json');
  writeFileSync(configFile, JSON.stringify({ backup: { ...backup, repositories: [fromEnv] } }));
  const to = join(work, 'restored');
  const res = await runCli(['restore', 'cluster', '--config', configFile, '--data-dir', join(work, 'no-data-dir'), '--at', T.toISOString(), '--to', to, '--json'], {
    env: { TASKFLOW_BACKUP_IDENTITY: identity, AWS_ACCESS_KEY_ID: S3RVER_KEY, AWS_SECRET_ACCESS_KEY: `${SECRET}-rotated` },
    timeoutMs: 180_000,
  });
  assert.equal(res.code, 0, res.stderr);
  const result = JSON.parse(res.stdout) as { port: number; reached: { lastTransactionAt: string; timeline: number } };
  assert.equal(result.reached.timeline, 2);
  assert.ok(new Date(result.reached.lastTransactionAt) <= T);
  assert.deepEqual(filesContaining(to, SECRET), [], 'no copy of the credentials is left in the restored cluster');

  const restored = new LocalCluster({ pgData: to, port: result.port, tools: platform.tools, runAs: platform.cluster?.runAs ?? null, superuserPassword: platform.target.password });
  await restored.start();
  try {
    const titles = await taskTitles({ ...platform, target: restored.target() }, acme.databaseName);
    assert.deepEqual(titles.slice(-2), ['Acme after rotation', 'Acme before T']);
    assert.ok(!titles.includes('Acme after T'));
  } finally {
    await restored.stop();
  }
});

test('backup verify --restore restores the S3 snapshot into a scratch cluster, its WAL fetched from S3', { skip: skip ?? false }, async () => {
  const { platform, identityFile } = platformOf();
  const report = await verifyRestore(platform, { identity: loadRestoreIdentity({ file: identityFile }) });
  assert.equal(report.ok, true, report.problem ?? '');
  assert.equal(report.snapshot.repository, 'bucket');
  assert.ok((report.rowCounts?.tables ?? 0) > 0);
});
