/**
 * Continuous WAL archiving while the managed cluster's primary is a remote node (added with
 * `standby add --remote`, then made primary by a switchover). That machine has PostgreSQL and an
 * SSH login, not TaskFlow: its archive_command is a shell command spooling WAL beside its PGDATA,
 * and this host pulls the spool over SSH (`taskflow wal pull`, and every
 * backup.remoteWalPullSeconds from the backup jobs of `taskflow start`) through the same pipeline
 * and catalog as `taskflow wal archive`. The "other machine" is this one through a real sshd on a
 * loopback port (test/helpers/replication.ts), so the assertions are those the old archive_command
 * (`taskflow wal archive` with this machine's paths) would fail: the command's text, and every file
 * passing through the spool and the pull.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { listAlerts } from '../src/platform/alerts/alerts.ts';
import { listObjects } from '../src/platform/backup/catalog.ts';
import { takeSnapshot } from '../src/platform/backup/physical/snapshot.ts';
import { walObjectName } from '../src/platform/backup/physical/wal-names.ts';
import { WalArchiveWatch } from '../src/platform/backup/physical/wal-health.ts';
import type { NodePullReport } from '../src/platform/backup/physical/wal-pull.ts';
import { spoolArchiveCommand } from '../src/platform/backup/physical/wal-spool.ts';
import { startBackupJobs } from '../src/platform/backup/schedule.ts';
import { clusterIdentifier } from '../src/platform/backup/service.ts';
import { createLogger } from '../src/platform/log.ts';
import { openPlatform, type Platform } from '../src/platform/platform.ts';
import { clientConfig } from '../src/platform/postgres/connection.ts';
import { LocalCluster } from '../src/platform/postgres/local-cluster.ts';
import { sshdUnavailable } from './backup-fixtures.ts';
import { runCli } from './helpers/cli.ts';
import { addRemoteStandby, eventually, killPostmasterIn, nodeIn, startPostgresSshd, writeBackupConfig, startReplicatedCluster, type PostgresSshd, type ReplicatedCluster } from './helpers/replication.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (sshd logs in as the postgres OS user)' : sshdUnavailable();

describe('WAL archiving from a remote primary', { timeout: 300_000, skip: skip ?? false }, () => {
  let rc: ReplicatedCluster;
  let sshd: PostgresSshd;
  let platform: Platform | undefined;
  let repositoryDir = '';
  let sysid = '';
  let identity = '';
  let restored = '';
  const remoteDir = () => join(sshd.workDir, 'c');
  const spoolDir = () => `${remoteDir()}.walspool`;
  const spooled = () => (existsSync(spoolDir()) ? readdirSync(spoolDir()).filter((f) => !f.startsWith('.')).sort() : []);
  const setting = async (node: string, name: string) => (await rc.sql<{ v: string }>(node, 'SELECT setting AS v FROM pg_settings WHERE name = $1', [name]))[0]?.v;
  /** Closes c's current segment and waits until its archive_command has put it in the spool. */
  const switchOnC = async (): Promise<string> => {
    const [row] = await rc.sql<{ file: string }>('c', 'SELECT pg_walfile_name(pg_switch_wal()) AS file');
    const file = row?.file ?? '';
    await eventually(`${file} spooled on c`, async () => ((await rc.sql<{ last: string | null }>('c', 'SELECT last_archived_wal AS last FROM pg_stat_archiver'))[0]?.last ?? '') >= file ? true : undefined);
    return file;
  };
  const archived = async (): Promise<Set<string>> => new Set((await listObjects(platform!.control, { kind: 'wal', state: 'complete' })).map((o) => o.name));

  before(async () => {
    rc = await startReplicatedCluster();
    sshd = await startPostgresSshd();
    ({ repositoryDir, identity } = writeBackupConfig(rc, { walArchiveTimeoutSeconds: 60, remoteWalPullSeconds: 2 }));
    const installed = await rc.cli('wal', 'status', '--install');
    assert.equal(installed.code, 0, installed.stderr);
    await rc.sql('main', 'CREATE TABLE remote_rows (n int, at timestamptz DEFAULT clock_timestamp())');
    await addRemoteStandby(rc, sshd, remoteDir());
    // The snapshot point-in-time recovery starts from, taken while main (this machine) is the primary.
    const onMain = await openPlatform(loadConfig({ env: {}, overrides: { dataDir: rc.dataDir } }), { log: createLogger({ level: 'silent' }) });
    try {
      await takeSnapshot(onMain);
    } finally {
      await onMain.close({ stopCluster: false });
    }
  });
  after(async () => {
    await platform?.close({ stopCluster: false });
    if (restored) killPostmasterIn(restored);
    killPostmasterIn(remoteDir());
    await rc.cleanup();
    await sshd.cleanup();
  });

  test("the remote standby's archive_command spools beside its PGDATA; archive_timeout leaves room for the pull", async () => {
    const command = await setting('c', 'archive_command');
    assert.equal(command, spoolArchiveCommand(spoolDir()));
    assert.ok(!command.includes('wal-entry') && !command.includes(rc.dataDir), "no TaskFlow and no path of this machine's");
    assert.match((await setting('main', 'archive_command')) ?? '', /wal-entry\.ts' archive --settings /, 'the local primary keeps taskflow wal archive');
    assert.equal(await setting('c', 'archive_timeout'), '58', 'walArchiveTimeoutSeconds 60 minus remoteWalPullSeconds 2');

    // A remote standby that predates the backup configuration (its copy of the primary's command):
    // installing the archive sets the spool command there too, over SSH.
    await rc.sql('c', `ALTER SYSTEM SET archive_command = '/bin/false'`);
    await rc.sql('c', 'SELECT pg_reload_conf()');
    await eventually('c reloaded', async () => ((await setting('c', 'archive_command')) === '/bin/false' ? true : undefined));
    const installed = await rc.cli('wal', 'status', '--install');
    assert.equal(installed.code, 0, installed.stderr);
    await eventually('the spool command back on c', async () => ((await setting('c', 'archive_command')) === spoolArchiveCommand(spoolDir()) ? true : undefined), 10_000);
  });

  test('after a switchover to it, its segments and the new timeline\'s history go through the spool and `wal pull` into the repository and catalog', async (t) => {
    const moved = await rc.cli('cluster', 'switchover', '--to', 'c');
    assert.equal(moved.code, 0, moved.stderr);
    await eventually('main streaming from c', async () => (nodeIn(await rc.status(), 'main').receiver === 'streaming' ? true : undefined));
    platform = await openPlatform(loadConfig({ env: {}, overrides: { dataDir: rc.dataDir } }), { log: createLogger({ level: 'silent' }) });
    assert.equal(platform.primary.current()?.name, 'c');
    sysid = await clusterIdentifier(platform);

    await rc.sql('c', 'INSERT INTO remote_rows (n) SELECT generate_series(1, 1000)');
    const file = await switchOnC();
    const inSpool = spooled();
    assert.ok(inSpool.includes(file), `${file} is in the spool (${inSpool.join(', ')})`);
    assert.ok(inSpool.includes('00000002.history'), 'the new timeline\'s history file is in the spool');
    assert.ok(!(await archived()).has(walObjectName(sysid, file)), 'spooled is not archived yet');
    // A copy of a spooled file, to put back later as an interrupted pull would leave it.
    const copy = join(repositoryDir, '..', 'spooled-copy');
    copyFileSync(join(spoolDir(), file), copy);

    const started = performance.now();
    const pulled = await rc.cli('wal', 'pull', '--json');
    t.diagnostic(`wal pull of ${inSpool.length} spooled file(s) over SSH (loopback, CLI included): ${Math.round(performance.now() - started)} ms`);
    assert.equal(pulled.code, 0, pulled.stderr);
    const reports = JSON.parse(pulled.stdout) as NodePullReport[];
    const c = reports.find((r) => r.node === 'c');
    assert.ok(c?.primary);
    assert.equal(c.error, undefined);
    assert.ok(c.archived >= 2, JSON.stringify(c));
    assert.deepEqual(spooled(), [], 'the spool is empty once everything is stored and recorded');
    const names = await archived();
    for (const name of [walObjectName(sysid, file), walObjectName(sysid, '00000002.history')]) {
      assert.ok(names.has(name), `${name} is in the catalog`);
      assert.ok(existsSync(join(repositoryDir, name)) && existsSync(join(repositoryDir, `${name}.manifest.json`)), `${name} is in the repository`);
    }
    const [row] = await listObjects(platform.control, { kind: 'wal', state: 'complete' }).then((rows) => rows.filter((r) => r.name === walObjectName(sysid, file)));
    assert.equal(row?.timeline, 2);
    assert.ok(row.dataAt, 'data_at: when the segment was last written (its mtime, kept by the spool)');

    // Interrupted after storing, before removing: the file is back in the spool; the next pull records it again and removes it.
    copyFileSync(copy, join(spoolDir(), file));
    const again = await rc.cli('wal', 'pull', '--json');
    assert.equal(again.code, 0, again.stderr);
    const second = (JSON.parse(again.stdout) as NodePullReport[]).find((r) => r.node === 'c');
    assert.equal(second?.archived, 0);
    assert.equal(second.alreadyArchived, 1);
    assert.deepEqual(spooled(), []);

    // Other contents under an archived name (another cluster writing into this spool?): refused, and it and
    // everything after it stay in the spool, nothing overwritten; once it is gone the next pull goes on.
    const altered = readFileSync(copy);
    altered.writeUInt8((altered.at(-1) ?? 0) ^ 0xff, altered.length - 1);
    writeFileSync(join(spoolDir(), file), altered);
    const after = await switchOnC();
    const refused = await rc.cli('wal', 'pull', '--json');
    assert.notEqual(refused.code, 0);
    const third = (JSON.parse(refused.stdout) as NodePullReport[]).find((r) => r.node === 'c');
    assert.ok(third?.error?.startsWith(`${file}: `), third?.error);
    assert.match(third?.error ?? '', /already archived .* with different contents/);
    assert.deepEqual(third?.left.filter((f) => f === file || f === after), [file, after]);
    assert.ok(spooled().includes(file) && spooled().includes(after), 'both stay in the spool');
    assert.ok(!(await archived()).has(walObjectName(sysid, after)), 'nothing after the refused file was stored');
    rmSync(join(spoolDir(), file));
    const resumed = await rc.cli('wal', 'pull', '--json');
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.ok((await archived()).has(walObjectName(sysid, after)));
    assert.deepEqual(spooled(), []);
  });

  test('the backup jobs of taskflow start pull by themselves; a spool nobody drains raises backup.wal-archive-stale naming it', async () => {
    assert.ok(platform);
    const jobs = await startBackupJobs(platform, { takeSnapshot: null });
    assert.ok(jobs?.spoolPuller);
    let file = '';
    try {
      await rc.sql('c', 'INSERT INTO remote_rows (n) SELECT generate_series(1, 100)');
      file = await switchOnC();
      await eventually(`${file} pulled by the backup jobs`, async () => ((await archived()).has(walObjectName(sysid, file)) && !spooled().includes(file) ? true : undefined), 30_000);
      // Each run lists c's spool over SSH, on the connection the runs share: no new login.
      const puller = jobs.spoolPuller;
      const [runs, logins] = [puller.runs, sshd.acceptedLogins()];
      await eventually('three more pull runs', () => Promise.resolve(puller.runs >= runs + 3 ? true : undefined), 30_000);
      assert.equal(sshd.acceptedLogins(), logins, 'the periodic pulls share one SSH connection');
    } finally {
      await jobs.stop();
    }

    // Nobody pulls now: the watch sees the spool's backlog.
    await rc.sql('c', 'INSERT INTO remote_rows (n) SELECT generate_series(1, 100)');
    const waiting = await switchOnC();
    await new Promise((r) => setTimeout(r, 1500));
    const report = await new WalArchiveWatch(platform, { staleAfterSeconds: 0 }).run();
    assert.equal(report.installed, true);
    assert.ok(report.spool);
    assert.equal(report.spool.node, 'c');
    assert.ok(report.spool.files >= 1);
    assert.equal(report.stale, true);
    const [alert] = await listAlerts(platform.control, { code: 'backup.wal-archive-stale' });
    assert.match(alert?.summary ?? '', /wait in the spool of the remote primary c, the oldest written \d+ s ago; nothing drains it/);

    const pulled = await rc.cli('wal', 'pull', '--primary-only');
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.ok((await archived()).has(walObjectName(sysid, waiting)));
    const healthy = await new WalArchiveWatch(platform).run();
    assert.equal(healthy.stale, false);
    assert.equal(healthy.spool?.files, 0);
    assert.deepEqual(await listAlerts(platform.control, { code: 'backup.wal-archive-stale' }), [], 'resolved once the spool is drained');
    // main's last segment, closed as it stopped for the switchover, was archived then (its catalog was shutting down) and is recorded now.
    const stored = (readdirSync(join(repositoryDir, 'wal'), { recursive: true }) as string[]).filter((f) => /[0-9A-F]{8}(\.history|[0-9A-F]{16}(\.partial)?)$/.test(f));
    const recorded = await archived();
    assert.deepEqual(stored.map((f) => `wal/${f}`).filter((n) => !recorded.has(n)), [], 'every WAL object in the repository is in the catalog');
  });

  test('point-in-time recovery across the switchover: the snapshot from main, WAL of both timelines, to a moment on the remote primary', async () => {
    assert.ok(platform);
    await rc.sql('c', `INSERT INTO remote_rows (n) VALUES (-1)`);
    const [{ at } = { at: new Date() }] = await rc.sql<{ at: Date }>('c', 'SELECT clock_timestamp() AS at');
    await new Promise((r) => setTimeout(r, 1100));
    await rc.sql('c', `INSERT INTO remote_rows (n) VALUES (-2)`);
    await switchOnC();
    const pulled = await rc.cli('wal', 'pull');
    assert.equal(pulled.code, 0, pulled.stderr);
    const [expected] = await rc.sql<{ n: string }>('c', 'SELECT count(*)::text AS n FROM remote_rows WHERE n <> -2');

    const root = join(rc.dataDir, '..');
    const configFile = join(root, 'dr-config.json');
    writeFileSync(configFile, JSON.stringify({ backup: (JSON.parse(readFileSync(join(rc.dataDir, 'config.json'), 'utf8')) as { backup: unknown }).backup }));
    restored = join(root, 'restored');
    const res = await runCli(['restore', 'cluster', '--config', configFile, '--data-dir', join(root, 'no-data-dir'), '--at', at.toISOString(), '--to', restored, '--json'], {
      env: { TASKFLOW_BACKUP_IDENTITY: identity },
      timeoutMs: 240_000,
    });
    assert.equal(res.code, 0, res.stderr);
    const result = JSON.parse(res.stdout) as { port: number; reached: { lastTransactionAt: string; timeline: number } };
    assert.equal(result.reached.timeline, 3, 'a new timeline after the switchover\'s 2');
    const cluster = new LocalCluster({ pgData: restored, port: result.port, tools: platform.tools, runAs: platform.cluster!.runAs, superuserPassword: platform.target.password });
    await cluster.start();
    try {
      const client = new pg.Client(clientConfig(cluster.target(), 'postgres'));
      await client.connect();
      try {
        const rows = await client.query<{ n: string; marker: boolean; late: boolean }>(`SELECT count(*)::text AS n, bool_or(n = -1) AS marker, bool_or(n = -2) AS late FROM remote_rows`);
        assert.deepEqual(rows.rows[0], { n: expected?.n, marker: true, late: false }, 'every row committed on c until T, none after');
      } finally {
        await client.end();
      }
    } finally {
      await cluster.stop();
    }
  });

  test("failing back to main: c keeps the spool command as a standby, main gets taskflow wal archive again, and c's last files are pulled", async () => {
    assert.ok(platform);
    const back = await rc.cli('cluster', 'switchover', '--to', 'main');
    assert.equal(back.code, 0, back.stderr);
    await eventually('c streaming from main', async () => (nodeIn(await rc.status(), 'c').receiver === 'streaming' ? true : undefined), 60_000);
    assert.equal(await setting('c', 'archive_command'), spoolArchiveCommand(spoolDir()), 'the rejoined remote node keeps its spool command');
    // What c archived as it stopped (its last segment) is in its spool; the pull of every remote node drains it.
    const left = spooled();
    assert.ok(left.length >= 1, 'c closed and spooled its last segment as it stopped');
    const pulled = await rc.cli('wal', 'pull', '--json');
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.deepEqual(spooled(), []);
    const names = await eventually('the catalog on main', async () => archived());
    for (const file of left) assert.ok(names.has(walObjectName(sysid, file)), `${file}, left in c's spool, is archived`);
    // main was rewound from c and may carry c's command: the watch puts taskflow wal archive back.
    await eventually('the watch on main', async () => (await new WalArchiveWatch(platform!).run()).installed || undefined);
    assert.match((await setting('main', 'archive_command')) ?? '', /wal-entry\.ts' archive --settings /);
    assert.equal(await setting('main', 'archive_timeout'), '60');
  });
});
