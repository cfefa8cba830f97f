/**
 * Remote nodes after a failover: `taskflow start` with a remote primary, and `cluster rebuild` of a
 * remote node over SSH (pg_rewind there, or a fresh base backup), also at the end of a switchover
 * away from it and after a crash of it as the primary. (The password rotation is in
 * replication-remote.test.ts.) The "other machine" is this one through a real sshd on a loopback
 * port logging in as the PostgreSQL OS user, as in replication-remote.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../src/platform/postgres/local-cluster.ts';
import { resolveRunAs, runTool } from '../src/platform/postgres/tools.ts';
import { sshdUnavailable } from './backup-fixtures.ts';
import { TASKFLOW_BIN } from './helpers/cli.ts';
import { addRemoteStandby, eventually, killPostmasterIn, nodeIn, startPostgresSshd, startReplicatedCluster, withRecordedRemote, type PostgresSshd, type ReplicatedCluster } from './helpers/replication.ts';

const BIN_DIR = process.env.TASKFLOW_PG_BINDIR ?? '/usr/lib/postgresql/15/bin';
const skip = process.getuid?.() !== 0 ? 'needs root (sshd logs in as the postgres OS user)' : sshdUnavailable();

describe('remote nodes: a remote primary, rebuilds over SSH', { timeout: 240_000, skip: skip ?? false }, () => {
  let rc: ReplicatedCluster;
  let sshd: PostgresSshd;
  const remoteDir = () => join(sshd.workDir, 'c');
  /** c's machine "unreachable": its SSH port is one nobody listens on. */
  const withUnreachableC = async <T>(fn: () => Promise<T>): Promise<T> => withRecordedRemote(rc.dataDir, 'c', { sshPort: await freePort() }, fn);
  const walSenderPid = async (primary: string, name: string) =>
    (await rc.sql<{ pid: number }>(primary, "SELECT pid FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'", [name]))[0]?.pid;
  const readsRow = (node: string, id: number) =>
    eventually(`row ${id} on ${node}`, async () => ((await rc.sql(node, 'SELECT 1 FROM remote_rows WHERE id = $1', [id])).length > 0 ? true : undefined));
  /** c is recorded and runs as main's standby, streaming, with no problem listed, and replays row `id` written on main. */
  const assertCStreamsFromMain = async (id: number) => {
    const status = await rc.status();
    const c = nodeIn(status, 'c');
    assert.deepEqual([status.primary, c.role, c.actual, c.receiver, c.upstream], ['main', 'standby', 'standby', 'streaming', 'main']);
    assert.deepEqual(status.problems, []);
    await rc.sql('main', 'INSERT INTO remote_rows VALUES ($1)', [id]);
    await readsRow('c', id);
  };
  const adminPassword = () => readFileSync(join(rc.dataDir, 'secrets', 'pg-superuser.password'), 'utf8').trim();
  /** `taskflow ARGS`, its wall time (CLI start included) kept for the diagnostics. */
  const timings: string[] = [];
  const cli = async (...args: string[]) => {
    const started = performance.now();
    const r = await rc.cli(...args);
    timings.push(`${args.join(' ')}: ${Math.round(performance.now() - started)} ms (exit ${r.code}) ${r.stderr.replaceAll('\n', ' | ').slice(0, 600)}`);
    return r;
  };
  /** pg_ctl on c's data directory, as its machine's PostgreSQL user would run it there. */
  const pgCtlC = (...args: string[]) => runTool(join(BIN_DIR, 'pg_ctl'), [...args, '--pgdata', remoteDir(), '--silent'], { runAs: resolveRunAs('postgres'), timeoutMs: 60_000 });

  before(async () => {
    rc = await startReplicatedCluster();
    sshd = await startPostgresSshd();
    await rc.sql('main', 'CREATE TABLE remote_rows (id int PRIMARY KEY)');
    await addRemoteStandby(rc, sshd, remoteDir());
  });
  after(async () => {
    for (const line of timings) process.stdout.write(`# ${line}\n`);
    killPostmasterIn(remoteDir());
    await rc.cleanup();
    await sshd.cleanup();
  });

  test('failover to the remote node; taskflow start serves from that remote primary, and refuses clearly when it does not answer', async () => {
    await rc.kill('main');
    const failover = await cli('cluster', 'failover', '--to', 'c', '--force');
    assert.equal(failover.code, 0, failover.stderr);

    // The server starts on the remote primary, serves (readiness reads the control database there),
    // and on Ctrl-C leaves the remote primary running.
    const httpPort = await freePort();
    const server = spawn(process.execPath, [TASKFLOW_BIN, 'start', '--tls', 'off', '--port', String(httpPort), '--data-dir', rc.dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    server.stdout.setEncoding('utf8').on('data', (t: string) => (output += t));
    server.stderr.setEncoding('utf8').on('data', (t: string) => (output += t));
    const exited = new Promise<number | null>((resolve) => server.once('exit', resolve));
    await eventually('taskflow start running', () => {
      if (server.exitCode !== null) throw new Error(`taskflow start exited ${server.exitCode}: ${output}`);
      return Promise.resolve(output.includes('Press Ctrl-C to stop.') ? true : undefined);
    }, 60_000);
    const ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
    assert.equal(ready.status, 200, `${await ready.text()}\n${output}`);
    server.kill('SIGINT');
    assert.equal(await exited, 0, output);
    assert.equal((await rc.sql<{ r: boolean }>('c', 'SELECT pg_is_in_recovery() AS r'))[0]?.r, false, 'the remote primary still runs');

    // The remote primary stopped: refused, saying where and what to do.
    await pgCtlC('stop', '--mode', 'fast', '--wait');
    const refused = await cli('tenant', 'list');
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /the primary c runs on another machine and does not answer at 127\.0\.0\.1:\d+ \(postgres@127\.0\.0\.1:\d+\).*taskflow cluster start c/);
    await pgCtlC('start', '--wait', '--log', join(remoteDir(), 'log', 'startup.log'));
  });

  test('the old local primary rebuilds as a standby of the remote one; a switchover back rejoins the remote node over SSH', async () => {
    const rebuilt = await cli('cluster', 'rebuild', 'main', '--json');
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    assert.ok(await walSenderPid('c', 'main'), 'main streams from c');
    // Its own certificate files, not the remote primary's paths that came with the copy.
    assert.ok(readFileSync(join(rc.pgData('main'), 'postgresql.auto.conf'), 'utf8').includes(`ssl_cert_file = '${rc.dataDir}/postgres/replication/server.crt'`));

    const r = await cli('cluster', 'switchover', '--to', 'main', '--json');
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { to: string; rejoined: boolean };
    assert.deepEqual([result.to, result.rejoined], ['main', true]);
    await assertCStreamsFromMain(2);
  });

  test('cluster rebuild of a remote node: --fresh a new base backup there, a failed copy undone; the primary, a slot in use and an unreachable node are refused', async () => {
    const primary = await cli('cluster', 'rebuild', 'main');
    assert.equal(primary.code, 4);
    assert.match(primary.stderr, /node main is the primary/);

    // Another server streams through c's slot while c is down: refused, nothing changed.
    writeFileSync(join(remoteDir(), 'taskflow-test-marker'), 'the old directory');
    await pgCtlC('stop', '--mode', 'fast', '--wait');
    const receiver = spawn(join(BIN_DIR, 'pg_receivewal'), ['--dbname', `host=127.0.0.1 port=${rc.port('main')} user=taskflow_admin`, '--slot', 'taskflow_c', '--directory', mkdtempSync(join(sshd.workDir, 'receivewal-')), '--no-password'], {
      env: { ...process.env, PGPASSWORD: adminPassword() },
      stdio: 'ignore',
    });
    try {
      await eventually('another server on the slot', async () => ((await rc.sql('main', "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'taskflow_c' AND active")).length > 0 ? true : undefined));
      const inUse = await cli('cluster', 'rebuild', 'c');
      assert.equal(inUse.code, 4, inUse.stderr);
      assert.match(inUse.stderr, /the replication slot taskflow_c on main is in use by another server although node c \(postgres@127\.0\.0\.1:\d+:.*\) is stopped/);
    } finally {
      receiver.kill('SIGKILL');
    }
    assert.equal(readFileSync(join(remoteDir(), 'taskflow-test-marker'), 'utf8'), 'the old directory');
    await pgCtlC('start', '--wait', '--log', join(remoteDir(), 'log', 'startup.log'));
    await eventually('c streaming again', async () => await walSenderPid('main', 'c'));

    const unreachable = await withUnreachableC(() => cli('cluster', 'rebuild', 'c'));
    assert.equal(unreachable.code, 4, unreachable.stderr);
    assert.match(unreachable.stderr, /node c cannot be rebuilt: ssh postgres@127\.0\.0\.1:\d+: cannot reach the server.*nothing was changed/);
    assert.ok(await walSenderPid('main', 'c'), 'c was left alone');

    // A base backup that fails there (a stand-in pg_basebackup) leaves c as it was: its old
    // directory back, recorded and running as a standby, nothing moved aside left over.
    const failingBin = join(sshd.workDir, 'failing-bin');
    mkdirSync(failingBin);
    for (const tool of ['pg_ctl', 'pg_controldata', 'pg_rewind', 'postgres']) symlinkSync(join(BIN_DIR, tool), join(failingBin, tool));
    writeFileSync(join(remoteDir(), 'taskflow-test-marker'), 'the old directory');
    writeFileSync(join(failingBin, 'pg_basebackup'), '#!/bin/sh\necho "pg_basebackup: error: the stand-in fails" >&2\nexit 1\n', { mode: 0o755 });
    const failed = await withRecordedRemote(rc.dataDir, 'c', { pgBin: failingBin }, () => cli('cluster', 'rebuild', 'c', '--fresh'));
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, /the base backup of node c on postgres@127\.0\.0\.1:\d+ failed: .*the stand-in fails/);
    assert.equal(readFileSync(join(remoteDir(), 'taskflow-test-marker'), 'utf8'), 'the old directory');
    assert.deepEqual(readdirSync(sshd.workDir).filter((f) => f.includes('.replaced-')), []);
    assert.equal(rc.topology().nodes.c?.role, 'standby');
    await eventually('c streaming again', async () => await walSenderPid('main', 'c'));

    const fresh = await cli('cluster', 'rebuild', 'c', '--fresh', '--json');
    assert.equal(fresh.code, 0, fresh.stderr);
    const copy = JSON.parse(fresh.stdout) as { method: string; tookMs: number };
    assert.equal(copy.method, 'base-backup');
    timings.push(`remote rebuild by a base backup, its own work: ${copy.tookMs} ms`);
    assert.deepEqual(readdirSync(sshd.workDir).filter((f) => f.includes('.replaced-')), [], 'the old copy was removed');
    assert.equal(existsSync(join(remoteDir(), 'taskflow-test-marker')), false, 'a new copy');
    const status = await rc.status();
    assert.deepEqual([nodeIn(status, 'c').receiver, nodeIn(status, 'c').slot?.active], ['streaming', true]);
    assert.deepEqual(status.problems, []);
    await rc.sql('main', 'INSERT INTO remote_rows VALUES (3)');
    await readsRow('c', 3);
    assert.deepEqual((await rc.sql<{ id: number }>('c', 'SELECT id FROM remote_rows ORDER BY id')).map((row) => row.id), [2, 3]);
  });

  test('a remote primary that crashed, failed over away from, is rebuilt there as a standby (pg_rewind recovers it first)', async () => {
    const moved = await cli('cluster', 'switchover', '--to', 'c');
    assert.equal(moved.code, 0, moved.stderr);
    await rc.sql('c', 'INSERT INTO remote_rows VALUES (4)');
    await readsRow('main', 4);
    killPostmasterIn(remoteDir());
    const failover = await cli('cluster', 'failover', '--to', 'main', '--force');
    assert.equal(failover.code, 0, failover.stderr);
    assert.equal(rc.topology().nodes.c?.role, 'fenced');

    const rebuilt = await cli('cluster', 'rebuild', 'c', '--json');
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    const rewind = JSON.parse(rebuilt.stdout) as { method: string; upstream: string; keptLogs: string | null; tookMs: number };
    assert.deepEqual([rewind.method, rewind.upstream], ['rewind', 'main'], rebuilt.stderr);
    timings.push(`remote rebuild of a crashed old primary by pg_rewind, its own work: ${rewind.tookMs} ms`);
    assert.ok(rewind.keptLogs && existsSync(rewind.keptLogs), 'its earlier logs are kept there');
    assert.deepEqual(readdirSync(`${remoteDir()}.replication`).filter((f) => f.startsWith('rewind-')), [], "the administrator's passfile for pg_rewind is gone");
    await assertCStreamsFromMain(5);
  });
});
