/**
 * Remote standbys: a standby on "another machine", reached over SSH. The machine is this one
 * through a real sshd on a loopback port that lets a throwaway key log in as the PostgreSQL OS
 * user; TaskFlow uses the system ssh client, so everything it does there goes through SSH as it
 * would to another host: the version check, the secrets, pg_basebackup, pg_ctl, the cleanup.
 */
import assert from 'node:assert/strict';
import { chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { freePort } from '../src/platform/postgres/local-cluster.ts';
import { resolveRunAs } from '../src/platform/postgres/tools.ts';
import { replicationPassword } from '../src/platform/replication/access.ts';
import { sshdUnavailable } from './backup-fixtures.ts';
import { eventually, killPostmasterIn, nodeIn, startPostgresSshd, startReplicatedCluster, withRecordedRemote, type PostgresSshd, type ReplicatedCluster } from './helpers/replication.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (sshd logs in as the postgres OS user)' : sshdUnavailable();

describe('a remote standby over SSH', { timeout: 240_000, skip: skip ?? false }, () => {
  let rc: ReplicatedCluster;
  let sshd: PostgresSshd;
  const runAs = resolveRunAs('postgres');
  const remoteDir = (name: string) => join(sshd.workDir, name);
  const add = async (name: string, extra: Record<string, string> = {}) => {
    const flags: Record<string, string> = {
      '--remote': `postgres@127.0.0.1:${sshd.port}`,
      '--port': String(await freePort()),
      '--ssh-key': sshd.identityFile,
      '--known-hosts': sshd.knownHostsFile,
      '--pgdata': remoteDir(name),
      '--site': 'site-b',
      ...extra,
    };
    return rc.cli('cluster', 'standby', 'add', name, ...Object.entries(flags).flat(), '--json');
  };
  const slots = async () => (await rc.sql<{ slot_name: string }>(rc.topology().primary, 'SELECT slot_name FROM pg_replication_slots ORDER BY 1')).map((r) => r.slot_name);

  const passfile = () => readFileSync(join(`${remoteDir('c')}.replication`, 'replicator.pgpass'), 'utf8');
  /** c's machine "unreachable": its SSH port is one nobody listens on. */
  const withUnreachableC = async <T>(fn: () => Promise<T>): Promise<T> => withRecordedRemote(rc.dataDir, 'c', { sshPort: await freePort() }, fn);
  const walSenderPid = async (primary: string, name: string) =>
    (await rc.sql<{ pid: number }>(primary, "SELECT pid FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'", [name]))[0]?.pid;
  /** A query on the primary's control database (where alerts are kept). */
  const queryControl = async <R extends pg.QueryResultRow>(text: string): Promise<R[]> => {
    const password = readFileSync(join(rc.dataDir, 'secrets', 'pg-superuser.password'), 'utf8').trim();
    const control = new pg.Client({ host: '127.0.0.1', port: rc.port(rc.topology().primary), user: 'taskflow_admin', password, database: 'taskflow_control' });
    await control.connect();
    try {
      return (await control.query<R>(text)).rows;
    } finally {
      await control.end();
    }
  };

  before(async () => {
    rc = await startReplicatedCluster();
    sshd = await startPostgresSshd();
    await rc.sql('main', 'CREATE TABLE remote_rows (id int PRIMARY KEY, note text)');
  });
  after(async () => {
    for (const name of ['c', 'r', 'busy']) killPostmasterIn(remoteDir(name));
    await rc.cleanup();
    await sshd.cleanup();
  });

  test('bad input is refused clearly and leaves nothing behind', async () => {
    const unknownKey = await add('c', { '--known-hosts': sshd.emptyKnownHostsFile });
    assert.equal(unknownKey.code, 4, unknownKey.stderr);
    assert.match(unknownKey.stderr, /host key is not in the configured known_hosts/);

    const unreachable = await add('c', { '--remote': `postgres@127.0.0.1:${await freePort()}` });
    assert.equal(unreachable.code, 4, unreachable.stderr);
    assert.match(unreachable.stderr, /cannot reach the server/);

    // Only PostgreSQL 15 is installed: another major version is stood in for by what its server says.
    const otherBin = join(sshd.workDir, 'pg14-bin');
    mkdirSync(otherBin);
    writeFileSync(join(otherBin, 'postgres'), '#!/bin/sh\necho "postgres (PostgreSQL) 14.13"\n', { mode: 0o755 });
    const wrongVersion = await add('c', { '--pg-bin': otherBin });
    assert.equal(wrongVersion.code, 4, wrongVersion.stderr);
    assert.match(wrongVersion.stderr, /has PostgreSQL 14\.13 .*the primary runs 15/);

    const used = remoteDir('used');
    mkdirSync(used);
    writeFileSync(join(used, 'keep-me'), 'data');
    chownSync(used, runAs?.uid ?? 0, runAs?.gid ?? 0);
    const notEmpty = await add('c', { '--pgdata': used });
    assert.equal(notEmpty.code, 4, notEmpty.stderr);
    assert.match(notEmpty.stderr, /is not empty/);
    assert.equal(readFileSync(join(used, 'keep-me'), 'utf8'), 'data', 'a directory that was not ours is left alone');

    // A failure half way (the port is taken there, so the copied standby cannot start) is undone:
    // the slot is dropped, and the directory made for it and the secrets sent are removed.
    const halfway = await add('busy', { '--port': String(sshd.port) });
    assert.equal(halfway.code, 1, halfway.stderr);
    assert.match(halfway.stderr, /did not start/);
    assert.equal(existsSync(remoteDir('busy')), false);
    assert.equal(existsSync(`${remoteDir('busy')}.replication`), false);

    assert.deepEqual(Object.keys(rc.topology().nodes), ['main']);
    assert.deepEqual(await slots(), []);
    assert.equal(existsSync(remoteDir('c')), false);
  });

  test('standby add --remote builds it over SSH; status shows it streaming; a write on the primary reads there', async (t) => {
    const port = await freePort();
    const started = performance.now();
    const r = await add('c', { '--port': String(port) });
    assert.equal(r.code, 0, r.stderr);
    t.diagnostic(`remote standby add took ${Math.round(performance.now() - started)} ms (CLI included)`);
    const added = JSON.parse(r.stdout) as { remote: string; site: string; pgData: string; port: number };
    assert.deepEqual([added.remote, added.site, added.pgData, added.port], [`postgres@127.0.0.1:${sshd.port}`, 'site-b', remoteDir('c'), port]);

    const record = rc.topology().nodes.c;
    assert.ok(record);
    assert.equal(record.remote?.host, '127.0.0.1');
    assert.equal(record.site, 'site-b');
    const status = await rc.status();
    const c = nodeIn(status, 'c');
    assert.deepEqual([c.role, c.actual, c.receiver, c.site, c.remote, c.slot?.active], ['standby', 'standby', 'streaming', 'site-b', `postgres@127.0.0.1:${sshd.port}`, true]);
    assert.match(c.tls ?? '', /^TLSv1\.[23]$/);
    assert.deepEqual(status.problems, []);

    await rc.sql('main', "INSERT INTO remote_rows VALUES (1, 'written on the primary')");
    const rows = await eventually('the row on the remote standby', async () => {
      const found = await rc.sql<{ note: string }>('c', 'SELECT note FROM remote_rows WHERE id = 1');
      return found.length > 0 ? found : undefined;
    });
    assert.equal(rows[0]?.note, 'written on the primary');

    // The secrets went over the channel into 0600 files of the PostgreSQL user; the copy names them.
    const secrets = `${remoteDir('c')}.replication`;
    for (const file of ['replicator.pgpass', 'replicator.key', 'server.key', 'ca.crt']) {
      const st = statSync(join(secrets, file));
      assert.equal(st.mode & 0o777, 0o600, `${file} is 0600`);
      assert.equal(st.uid, runAs?.uid ?? process.getuid?.());
    }
    const autoConf = readFileSync(join(remoteDir('c'), 'postgresql.auto.conf'), 'utf8');
    assert.ok(autoConf.includes(`ssl_cert_file = '${secrets}/server.crt'`), autoConf);
    assert.ok(autoConf.includes(`passfile=${secrets}/replicator.pgpass`), autoConf);
  });

  test('cluster stop and start reach the remote node over SSH', async () => {
    assert.equal((await rc.cli('cluster', 'stop', 'c')).code, 0);
    assert.equal(nodeIn(await rc.status(), 'c').actual, 'down');
    const started = await rc.cli('cluster', 'start', 'c');
    assert.equal(started.code, 0, started.stderr);
    await eventually('c streaming again', async () => (nodeIn(await rc.status(), 'c').receiver === 'streaming' ? true : undefined));
  });

  test('rotate-password reaches the local and the remote passfile and each standby reconnects with it; an unreachable node is reported and alerted', async (t) => {
    // A local standby for the rotation, removed at the end of this test.
    assert.equal((await rc.cli('cluster', 'standby', 'add', 'b')).code, 0);
    const localPassfile = () => readFileSync(join(rc.dataDir, 'postgres', 'replication', 'replicator.pgpass'), 'utf8');
    const masterKey = readFileSync(join(rc.dataDir, 'secrets', 'master.key'), 'utf8').trim();
    const expected = (version: number) => `*:*:*:taskflow_replicator:${replicationPassword(masterKey, version)}\n`;
    assert.equal(passfile(), expected(1));

    // c's machine cannot be reached: the rotation goes ahead for the others and says what to do.
    const partial = await withUnreachableC(() => rc.cli('cluster', 'rotate-password', '--json'));
    assert.equal(partial.code, 1, partial.stderr);
    assert.match(partial.stderr, /rotated \(version 2\).*c \(unreachable: ssh postgres@127\.0\.0\.1:\d+: cannot reach the server.*rotate-password' again/s);
    const outcomes = (JSON.parse(partial.stdout) as { nodes: { name: string; outcome: string }[] }).nodes;
    assert.deepEqual(Object.fromEntries(outcomes.map((n) => [n.name, n.outcome])), { main: 'written', b: 'reconnected', c: 'unreachable' });
    assert.equal(localPassfile(), expected(2));
    assert.equal(passfile(), expected(1), 'c still has the old password');
    const alert = () => queryControl<{ open: boolean }>("SELECT resolved_at IS NULL AS open FROM alerts WHERE key = 'replication.credential-undelivered:c'");
    assert.deepEqual(await alert(), [{ open: true }]);
    assert.ok(await walSenderPid('main', 'c'), 'its current connection goes on');

    // Reachable again: the next rotation delivers, c reconnects with the new password, the alert is resolved.
    const before = await walSenderPid('main', 'c');
    const serverCert = () => new X509Certificate(readFileSync(join(`${remoteDir('c')}.replication`, 'server.crt')));
    const certBefore = serverCert();
    const full = await rc.cli('cluster', 'rotate-password', '--json');
    assert.equal(full.code, 0, full.stderr);
    const result = JSON.parse(full.stdout) as { credentialVersion: number; tookMs: number; nodes: { name: string; outcome: string }[] };
    assert.equal(result.credentialVersion, 3);
    t.diagnostic(`rotation's own work: ${result.tookMs} ms`);
    assert.deepEqual(Object.fromEntries(result.nodes.map((n) => [n.name, n.outcome])), { main: 'written', b: 'reconnected', c: 'reconnected' });
    assert.equal(passfile(), expected(3));
    assert.equal(localPassfile(), expected(3));
    assert.notEqual(await walSenderPid('main', 'c'), before, 'c streams on a new connection');
    // The rotation also re-issued c's own server certificate (nothing else renews it short of a rebuild).
    const certAfter = serverCert();
    assert.notEqual(certAfter.serialNumber, certBefore.serialNumber);
    assert.ok(Date.parse(certAfter.validTo) >= Date.parse(certBefore.validTo));
    assert.deepEqual(await alert(), [{ open: false }]);

    // Its WAL receiver cut off again (as a network blip would): it comes back with the new password.
    const pid = await walSenderPid('main', 'c');
    await rc.sql('main', 'SELECT pg_terminate_backend($1)', [pid]);
    await eventually('c streaming on a new connection', async () => {
      const now = await walSenderPid('main', 'c');
      return now !== undefined && now !== pid ? true : undefined;
    });
    await rc.sql('main', 'CREATE TABLE rotation_rows (id int PRIMARY KEY)');
    await rc.sql('main', 'INSERT INTO rotation_rows VALUES (1)');
    for (const node of ['b', 'c']) await eventually(`the row on ${node}`, async () => ((await rc.sql(node, 'SELECT 1 FROM rotation_rows')).length > 0 ? true : undefined));
    assert.equal((await rc.cli('cluster', 'standby', 'remove', 'b', '--yes')).code, 0);
  });


  test('standby remove deletes a remote standby there and drops its slot', async () => {
    const r = await add('r');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await slots(), ['taskflow_c', 'taskflow_r']);
    const removed = await rc.cli('cluster', 'standby', 'remove', 'r', '--yes');
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual(await slots(), ['taskflow_c']);
    assert.equal(existsSync(remoteDir('r')), false);
    assert.equal(existsSync(`${remoteDir('r')}.replication`), false);
    assert.equal(rc.topology().nodes.r, undefined);
  });

  test('failover --to the remote standby promotes it and fences the old primary, which rebuilds as its standby', async () => {
    await rc.sql('main', "INSERT INTO remote_rows VALUES (2, 'just before the crash')");
    // Asynchronous replication: the row is on c once it arrives there, and only then does main die
    // (killed before, on a loaded machine, c lacked it and the failover rightly refused).
    await eventually('the row on c', async () => ((await rc.sql('c', 'SELECT 1 FROM remote_rows WHERE id = 2')).length > 0 ? true : undefined));
    await rc.kill('main');
    const r = await rc.cli('cluster', 'failover', '--to', 'c', '--json');
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { to: string; timeline: number; gap: { known: boolean; missingCommits: number } };
    assert.equal(result.to, 'c');
    assert.equal(result.timeline, 2);
    assert.equal(result.gap.missingCommits, 0);

    const status = await rc.status();
    assert.equal(status.primary, 'c');
    assert.equal(nodeIn(status, 'c').actual, 'primary');
    assert.equal(nodeIn(status, 'main').role, 'fenced');
    assert.equal(existsSync(join(rc.pgData('main'), 'TASKFLOW_FENCED')), true);
    await rc.sql('c', "INSERT INTO remote_rows VALUES (3, 'written on the new primary')");
    const rows = await rc.sql<{ id: number }>('c', 'SELECT id FROM remote_rows ORDER BY id');
    assert.deepEqual(rows.map((row) => row.id), [1, 2, 3]);
    const refused = await rc.cli('cluster', 'start', 'main');
    assert.equal(refused.code, 4);

    // The old primary comes back as a standby of the remote one (pg_rewind here against its address).
    const rebuilt = await rc.cli('cluster', 'rebuild', 'main', '--json');
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    const after = await rc.status();
    const main = nodeIn(after, 'main');
    assert.deepEqual([main.role, main.actual, main.receiver, main.upstream, main.slot?.active], ['standby', 'standby', 'streaming', 'c', true]);
    assert.deepEqual(after.problems, []);
  });
});
