/**
 * A snapshot of the managed cluster while its primary is a remote node (added with `standby add
 * --remote`, then made primary by a switchover): the base backup and the row counts come from that
 * node, over TLS verify-full as the replication role with its client certificate, and the snapshot
 * is complete on its own. The "other machine" is this one through a real sshd on a loopback port
 * (test/helpers/replication.ts), so:
 * - the local standby `main` has its replay paused while rows are written on the remote primary:
 *   a snapshot (or counts) taken from `main` would lack them, and its backup_label would say
 *   "BACKUP FROM: standby";
 * - the remote primary's pg_hba gets the one line a real network implies: the administrator's
 *   replication connections are not admitted (its general lines admit loopback only, and TaskFlow's
 *   host is not loopback there), which is what made snapshots of a remote primary fail.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { listAlerts } from '../src/platform/alerts/alerts.ts';
import { parseIdentity } from '../src/platform/backup/age-keys.ts';
import { FilesystemRepository } from '../src/platform/backup/fs-repository.ts';
import { readBackupObject } from '../src/platform/backup/pipeline.ts';
import { configureRecovery, extractSnapshot, recover, restoredCluster, verifyExtracted } from '../src/platform/backup/physical/restored-cluster.ts';
import { createScratch, removeScratch } from '../src/platform/backup/physical/scratch-cluster.ts';
import { takeSnapshot, type SnapshotDetails } from '../src/platform/backup/physical/snapshot.ts';
import { clusterIdentifier } from '../src/platform/backup/service.ts';
import { withAdminClient } from '../src/platform/postgres/connection.ts';
import { createLogger } from '../src/platform/log.ts';
import { openPlatform, type Platform } from '../src/platform/platform.ts';
import { sshdUnavailable } from './backup-fixtures.ts';
import { addRemoteStandby, killPostmasterIn, startPostgresSshd, switchoverTo, writeBackupConfig, startReplicatedCluster, type PostgresSshd, type ReplicatedCluster } from './helpers/replication.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (sshd logs in as the postgres OS user)' : sshdUnavailable();

describe('snapshots of a remote primary', { timeout: 300_000, skip: skip ?? false }, () => {
  let rc: ReplicatedCluster;
  let sshd: PostgresSshd;
  let platform: Platform;
  let repositoryDir = '';
  let identity = '';
  const remoteDir = () => join(sshd.workDir, 'c');
  const hbaPath = () => join(remoteDir(), 'pg_hba.conf');
  let savedHba = '';

  /** Puts `lines` first in the remote node's pg_hba.conf (first match wins) and reloads it. */
  const denyOnRemote = async (lines: string[]) => {
    writeFileSync(hbaPath(), `${lines.join('\n')}\n${savedHba}`);
    await rc.sql('c', 'SELECT pg_reload_conf()');
  };
  const restoreRemoteHba = async () => {
    writeFileSync(hbaPath(), savedHba);
    await rc.sql('c', 'SELECT pg_reload_conf()');
  };
  const onNode = async <R extends pg.QueryResultRow>(node: string, database: string, text: string): Promise<R[]> => {
    const password = readFileSync(join(rc.dataDir, 'secrets', 'pg-superuser.password'), 'utf8').trim();
    const client = new pg.Client({ host: '127.0.0.1', port: rc.port(node), user: 'taskflow_admin', password, database, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      return (await client.query<R>(text)).rows;
    } finally {
      await client.end();
    }
  };
  const projects = async (node: string) => Number((await onNode<{ n: string }>(node, 'tenant_acme', 'SELECT count(*)::text AS n FROM app.projects'))[0]?.n);

  before(async () => {
    rc = await startReplicatedCluster();
    sshd = await startPostgresSshd();
    ({ repositoryDir, identity } = writeBackupConfig(rc, { walArchiveTimeoutSeconds: 1 }));
    assert.equal((await rc.cli('tenant', 'create', 'acme')).code, 0);
    await onNode('main', 'tenant_acme', "INSERT INTO app.projects (key, name) VALUES ('OPS', 'Operations')");
    await addRemoteStandby(rc, sshd, remoteDir());
    await switchoverTo(rc, 'c');
    savedHba = readFileSync(hbaPath(), 'utf8');
    platform = await openPlatform(loadConfig({ env: {}, overrides: { dataDir: rc.dataDir } }), { log: createLogger({ level: 'silent' }) });
    assert.equal(platform.primary.current()?.name, 'c');
  });
  after(async () => {
    // Each may be unset when `before` failed early.
    const quietly = (fn: () => unknown) => Promise.resolve().then(fn).catch(() => undefined);
    await quietly(() => platform.close({ stopCluster: false }));
    await quietly(() => {
      killPostmasterIn(remoteDir());
    });
    await quietly(() => rc.cleanup());
    await quietly(() => sshd.cleanup());
  });

  test('the snapshot and its row counts come from the remote primary, as the replication role over verified TLS', async (t) => {
    // As on a real network: the remote primary does not admit the administrator's replication connections.
    await denyOnRemote(['host replication taskflow_admin all reject']);
    t.after(restoreRemoteHba);
    // Rows that only the remote primary has: the local standby's replay is paused.
    await onNode('main', 'postgres', 'SELECT pg_wal_replay_pause()');
    t.after(() => onNode('main', 'postgres', 'SELECT pg_wal_replay_resume()'));
    await onNode('c', 'tenant_acme', "INSERT INTO app.projects (key, name) VALUES ('AFT', 'After the switchover'), ('LTR', 'Later')");
    const onC = await projects('c');
    assert.equal(onC, 3);
    assert.equal(await projects('main'), 1, 'the local standby lacks the rows written on c');

    const started = performance.now();
    const entry = await takeSnapshot(platform);
    t.diagnostic(`snapshot of the remote primary (loopback): ${Math.round(performance.now() - started)} ms, ${entry.storedBytes} bytes stored`);
    assert.equal(entry.state, 'complete');
    const d = entry.details as unknown as SnapshotDetails;
    const [cFacts] = await onNode<{ tli: number; lsn: string }>('c', 'postgres', 'SELECT timeline_id AS tli, pg_current_wal_lsn()::text AS lsn FROM pg_control_checkpoint()');
    assert.equal(d.timeline, cFacts?.tli, "the snapshot's timeline is the remote primary's");
    assert.equal(d.timeline, 2, 'the switchover started timeline 2');
    assert.deepEqual(d.node, { name: 'c', host: '127.0.0.1', port: rc.port('c'), remote: true });
    assert.ok(d.rowCounts, d.rowCountsError);
    assert.equal(d.rowCounts.databases.tenant_acme?.['app.projects'], onC, 'the recorded counts are those of the remote primary');

    // The archive itself: a backup of a primary (a standby's says "BACKUP FROM: standby"), holding its WAL.
    const repo = new FilesystemRepository({ name: 'local', region: 'fra1', jurisdiction: 'DE', path: repositoryDir });
    const plain = new PassThrough();
    const tar = spawn('tar', ['--extract', '--to-stdout', '--ignore-zeros', '--file', '-', 'backup_label'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let label = '';
    tar.stdout.on('data', (b: Buffer) => (label += b.toString()));
    plain.pipe(tar.stdin);
    await readBackupObject({ repository: repo, name: entry.name, identities: [parseIdentity(identity)], destination: plain });
    await new Promise((r) => tar.on('close', r));
    assert.match(label, /^BACKUP FROM: primary$/m);
    assert.match(label, /^START TIMELINE: 2$/m);
    assert.ok(label.split('\n').some((line) => line.startsWith(`START WAL LOCATION: ${d.startLsn} `)), label);

    // Restorable on its own, whatever the WAL archive of the remote primary holds: recovered only
    // to its consistent point (the WAL inside it), it has the rows only the remote primary had.
    const tools = { tools: platform.tools, runAs: platform.cluster?.runAs ?? null };
    const job = await createScratch({ ...tools, dir: platform.dir, purpose: 'verify', facts: { snapshot: entry.name } });
    t.after(() => removeScratch(job, tools));
    await extractSnapshot({ ...tools, repository: repo, name: entry.name, identities: [parseIdentity(identity)], pgData: job.pgData });
    assert.equal((await verifyExtracted({ ...tools, pgData: job.pgData })).ok, true, 'pg_verifybackup accepts it');
    const setup = {
      ...tools,
      pgData: job.pgData,
      port: job.port,
      workDir: job.workDir,
      systemIdentifier: await clusterIdentifier(platform),
      repository: platform.config.backup.repositories[0]!,
      identityText: identity,
      target: 'immediate' as const,
      purpose: 'scratch' as const,
      superuserPassword: platform.target.password,
    };
    configureRecovery(setup);
    const run = await recover(setup, false);
    assert.ok(run.started, run.logTail);
    const restored = await withAdminClient(restoredCluster(setup).target(), 'tenant_acme', async (c) => (await c.query<{ key: string }>('SELECT key FROM app.projects ORDER BY key')).rows.map((r) => r.key));
    assert.deepEqual(restored, ['AFT', 'LTR', 'OPS']);

  });

  test('the remote primary refuses the replication role: the snapshot fails naming its host and port, and alerts', async (t) => {
    await denyOnRemote(['host replication taskflow_replicator all reject']);
    t.after(restoreRemoteHba);
    await assert.rejects(takeSnapshot(platform), (err: Error) => {
      assert.match(err.message, /^PostgreSQL at 127\.0\.0\.1:(\d+) does not admit replication connections of taskflow_replicator from this machine \(.*pg_hba\.conf rejects.*\): add this machine's address to postgres\.allowedNetworks\.replication/);
      assert.ok(err.message.startsWith(`PostgreSQL at 127.0.0.1:${rc.port('c')} `), err.message);
      return true;
    });
    const alerts = await listAlerts(platform.control, { code: 'backup.failed' });
    assert.ok(alerts.some((a) => /snapshot of the cluster failed: .*127\.0\.0\.1:\d+/.test(a.summary)), JSON.stringify(alerts.map((a) => a.summary)));
  });

  test('the remote primary is down: the snapshot fails naming it and its address', async () => {
    // Its control database is gone with it, so the alert is only logged (alerts.ts); the message is what tells.
    killPostmasterIn(remoteDir());
    await assert.rejects(takeSnapshot(platform), (err: Error) => {
      assert.match(err.message, /^the primary c runs on another machine and does not answer at 127\.0\.0\.1:\d+ \(.*\); start it there \('taskflow cluster start c'\)/);
      assert.ok(err.message.includes(`127.0.0.1:${rc.port('c')} `), err.message);
      return true;
    });
  });
});
