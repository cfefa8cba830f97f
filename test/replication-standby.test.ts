/**
 * A standby of the managed cluster, on real PostgreSQL: it streams over TLS as the replication
 * role, `cluster status` shows real numbers, and sync mode makes commits wait for it, switchable
 * back to async without a rebuild.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { resolveRunAs } from '../src/platform/postgres/tools.ts';
import { eventually, nodeIn, startReplicatedCluster, type ReplicatedCluster } from './helpers/replication.ts';

const PSQL = join(process.env.TASKFLOW_PG_BINDIR ?? '/usr/lib/postgresql/15/bin', 'psql');

describe('a standby', { timeout: 480_000 }, () => {
  let rc: ReplicatedCluster;
  before(async () => {
    rc = await startReplicatedCluster();
    await rc.sql('main', 'CREATE TABLE ha_rows (id int PRIMARY KEY, note text)');
  });
  after(async () => {
    await rc.cleanup();
  });

  test('standby add builds a standby with pg_basebackup and a slot, and it streams', async (t) => {
    const started = performance.now();
    const r = await rc.cli('cluster', 'standby', 'add', 'b', '--json');
    assert.equal(r.code, 0, r.stderr);
    t.diagnostic(`standby add took ${Math.round(performance.now() - started)} ms (CLI included)`);
    const added = JSON.parse(r.stdout) as { name: string; port: number; pgData: string; upstream: string };
    assert.equal(added.upstream, 'main');
    assert.equal(added.pgData, rc.pgData('b'));
    assert.notEqual(added.port, rc.port('main'));

    await rc.sql('main', "INSERT INTO ha_rows VALUES (1, 'written on the primary')");
    const rows = await eventually('the row on the standby', async () => {
      const found = await rc.sql<{ note: string }>('b', 'SELECT note FROM ha_rows WHERE id = 1');
      return found.length > 0 ? found : undefined;
    });
    assert.equal(rows[0]?.note, 'written on the primary');
    const [recovery] = await rc.sql<{ r: boolean }>('b', 'SELECT pg_is_in_recovery() AS r');
    assert.equal(recovery?.r, true, 'the standby is read-only');
    const slots = await rc.sql<{ slot_name: string; active: boolean }>('main', "SELECT slot_name, active FROM pg_replication_slots WHERE slot_type = 'physical'");
    assert.deepEqual(slots, [{ slot_name: 'taskflow_b', active: true }]);
  });

  test('replication runs over TLS as the replication role; its password is on no command line and in no config file', async () => {
    const [sender] = await rc.sql<{ usename: string; ssl: boolean; version: string }>(
      'main',
      "SELECT r.usename, s.ssl, s.version FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE r.application_name = 'b'",
    );
    assert.ok(sender, 'b streams from main');
    assert.equal(sender.usename, 'taskflow_replicator');
    assert.equal(sender.ssl, true);
    assert.match(sender.version, /^TLSv1\.[23]$/);

    const dir = join(rc.dataDir, 'postgres', 'replication');
    const autoConf = readFileSync(join(rc.pgData('b'), 'postgresql.auto.conf'), 'utf8');
    assert.match(autoConf, /primary_conninfo = '.*sslmode=verify-full.*passfile=|primary_conninfo = '.*passfile=.*sslmode=verify-full/);
    const pgpass = readFileSync(join(dir, 'replicator.pgpass'), 'utf8');
    const password = pgpass.trim().split(':').pop() ?? '';
    assert.ok(password.length >= 32);
    assert.equal(autoConf.includes(password), false, 'no password in postgresql.auto.conf');
    for (const file of ['replicator.pgpass', 'replicator.key', 'server.key']) assert.equal(statSync(join(dir, file)).mode & 0o777, 0o600, `${file} is 0600`);
    const ps = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    assert.equal(ps.stdout.includes(password), false, 'no password on any command line');
    assert.equal(readFileSync(join(rc.dataDir, 'replication.json'), 'utf8').includes(password), false);

    // As the PostgreSQL OS user (libpq insists the client key is its own), try to get in other ways.
    const runAs = resolveRunAs('postgres');
    const tryConnect = (conninfo: string) =>
      spawnSync(PSQL, [conninfo, '-c', 'IDENTIFY_SYSTEM'], {
        encoding: 'utf8',
        cwd: '/',
        env: { PATH: process.env.PATH, PGPASSFILE: join(dir, 'replicator.pgpass') },
        ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
      });
    const base = `host=127.0.0.1 port=${rc.port('main')} user=taskflow_replicator replication=true`;
    const tls = `sslrootcert=${dir}/ca.crt sslcert=${dir}/replicator.crt sslkey=${dir}/replicator.key`;
    const ok = tryConnect(`${base} sslmode=verify-full ${tls}`);
    assert.equal(ok.status, 0, `the standby's own way in works: ${ok.stderr}`);
    const plain = tryConnect(`${base} sslmode=disable`);
    assert.notEqual(plain.status, 0);
    assert.match(plain.stderr, /pg_hba\.conf rejects replication connection/);
    const noCert = tryConnect(`${base} sslmode=require sslcert=/nonexistent sslkey=/nonexistent`);
    assert.notEqual(noCert.status, 0, 'TLS without the client certificate is refused');
    const otherDb = tryConnect(`host=127.0.0.1 port=${rc.port('main')} user=taskflow_replicator dbname=postgres sslmode=verify-full ${tls}`);
    assert.notEqual(otherDb.status, 0, 'the replication role reaches no database');
  });

  test('status numbers are real: lag 0 after catch-up, lag > 0 while replay is paused', async () => {
    const caughtUp = await eventually('lag 0', async () => {
      const s = await rc.status();
      const b = nodeIn(s, 'b');
      return b.lagBytes === 0 && b.slot?.active ? s : undefined;
    });
    const b = nodeIn(caughtUp, 'b');
    const main = nodeIn(caughtUp, 'main');
    assert.deepEqual([main.role, main.actual, b.role, b.actual], ['primary', 'primary', 'standby', 'standby']);
    assert.equal(b.lagSeconds, 0);
    assert.equal(b.receiver, 'streaming');
    assert.equal(b.timeline, 1);
    assert.equal(main.timeline, 1);
    assert.equal(b.syncState, 'async');
    assert.equal(b.slot?.name, 'taskflow_b');
    assert.match(b.slot.restartLsn ?? '', /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.equal(typeof b.slot.walRetainedBytes, 'number');
    assert.equal(caughtUp.mode, 'async');
    assert.deepEqual(caughtUp.problems, []);
    assert.equal(main.site, 'local');

    await rc.sql('b', 'SELECT pg_wal_replay_pause()');
    await new Promise((r) => setTimeout(r, 1100));
    await rc.sql('main', "INSERT INTO ha_rows SELECT g, 'while paused' FROM generate_series(100, 199) g");
    const lagging = await eventually('lag while paused', async () => {
      const s = await rc.status();
      const node = nodeIn(s, 'b');
      return node.lagBytes !== null && node.lagBytes > 0 && node.lagSeconds !== null && node.lagSeconds > 0 ? s : undefined;
    });
    const paused = nodeIn(lagging, 'b');
    assert.equal(paused.replayPaused, true);
    assert.ok(lagging.problems.some((p) => /replay paused/.test(p)), lagging.problems.join('\n'));
    const text = await rc.cli('cluster', 'status');
    assert.match(text.stdout, /standby \(paused\)/);

    await rc.sql('b', 'SELECT pg_wal_replay_resume()');
    await eventually('lag 0 after resume', async () => ((await rc.status()).nodes.find((n) => n.name === 'b')?.lagBytes === 0 ? true : undefined));
  });

  test('sync mode: a commit waits for the standby; back to async without a rebuild', async () => {
    const inode = statSync(rc.pgData('b')).ino;
    const sync = await rc.cli('cluster', 'mode', 'sync', '--json');
    assert.equal(sync.code, 0, sync.stderr);
    assert.equal((JSON.parse(sync.stdout) as { synchronousStandbyNames: string }).synchronousStandbyNames, 'ANY 1 ("b")');
    const status = await eventually('the standby counted for synchronous commit', async () => {
      const s = await rc.status();
      return nodeIn(s, 'b').syncState === 'quorum' ? s : undefined;
    });
    assert.equal(status.mode, 'sync');
    const [setting] = await rc.sql<{ v: string }>('main', "SELECT current_setting('synchronous_commit') AS v");
    assert.equal(setting?.v, 'on');

    assert.equal((await rc.cli('cluster', 'stop', 'b')).code, 0);
    const writer = await rc.connect('main');
    let committed = false;
    const insert = writer.query("INSERT INTO ha_rows VALUES (2, 'waits for the standby')").then(() => {
      committed = true;
    });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(committed, false, 'the commit waits while the standby is down');
    const waiting = await rc.sql<{ wait_event: string }>('main', "SELECT wait_event FROM pg_stat_activity WHERE query LIKE 'INSERT INTO ha_rows VALUES (2%'");
    assert.equal(waiting[0]?.wait_event, 'SyncRep');

    const refused = await rc.cli('cluster', 'mode', 'sync');
    assert.equal(refused.code, 4, 'sync with no standby streaming is refused without --force');
    assert.match(refused.stderr, /no standby is streaming now/);

    assert.equal((await rc.cli('cluster', 'start', 'b')).code, 0);
    await insert;
    assert.equal(committed, true, 'the commit completed once the standby was back');
    await writer.end();
    const onStandby = await eventually('the waited-for row on the standby', async () => {
      const rows = await rc.sql('b', 'SELECT 1 FROM ha_rows WHERE id = 2');
      return rows.length === 1 ? rows : undefined;
    });
    assert.equal(onStandby.length, 1);

    const async = await rc.cli('cluster', 'mode', 'async');
    assert.equal(async.code, 0, async.stderr);
    assert.equal((await rc.status()).synchronousStandbyNames, '');
    assert.equal((await rc.cli('cluster', 'stop', 'b')).code, 0);
    const quick = await rc.connect('main');
    await quick.query('SET statement_timeout = 5000');
    await quick.query("INSERT INTO ha_rows VALUES (3, 'async: no wait')");
    await quick.end();
    assert.equal((await rc.cli('cluster', 'start', 'b')).code, 0);
    assert.equal(statSync(rc.pgData('b')).ino, inode, 'the standby was not rebuilt');
    await eventually('the async row on the standby', async () => ((await rc.sql('b', 'SELECT 1 FROM ha_rows WHERE id = 3')).length === 1 ? true : undefined));
  });

  test('other commands start the standbys with the primary and stop them after, so sync-mode writes do not hang', async () => {
    assert.equal((await rc.cli('cluster', 'mode', 'sync')).code, 0);
    assert.equal((await rc.cli('cluster', 'stop')).code, 0);
    const down = await rc.status();
    assert.deepEqual(down.nodes.map((n) => n.actual), ['down', 'down']);
    // A tenant create commits in the control database: in sync mode it needs the standby up.
    const created = await rc.cli('tenant', 'create', 'acme');
    assert.equal(created.code, 0, created.stderr);
    const after = await rc.status();
    assert.deepEqual(after.nodes.map((n) => n.actual), ['down', 'down'], 'what the command started, it stopped');
    assert.equal((await rc.cli('cluster', 'start')).code, 0);
    const [tenant] = await rc.sql<{ n: string }>('b', "SELECT count(*) AS n FROM pg_database WHERE datname LIKE 'tenant_acme%'");
    assert.equal(tenant?.n, '1', 'the tenant database reached the standby');
    assert.equal((await rc.cli('cluster', 'mode', 'async')).code, 0);
  });

  test('bad input is refused with a reason and an exit code', async () => {
    const mode = await rc.cli('cluster', 'mode', 'sometimes');
    assert.equal(mode.code, 2);
    assert.match(mode.stderr, /mode must be sync or async/);
    const again = await rc.cli('cluster', 'standby', 'add', 'b');
    assert.equal(again.code, 4);
    assert.match(again.stderr, /node b already exists/);
    const badName = await rc.cli('cluster', 'standby', 'add', 'Site-B');
    assert.equal(badName.code, 2);
    assert.match(badName.stderr, /not a valid node name/);
    const badPort = await rc.cli('cluster', 'standby', 'add', 'c', '--port', 'eighty');
    assert.equal(badPort.code, 2);
    const unknown = await rc.cli('cluster', 'failover', '--to', 'nowhere');
    assert.equal(unknown.code, 3);
    assert.match(unknown.stderr, /there is no node 'nowhere' \(nodes: main, b\)/);
    const noTarget = await rc.cli('cluster', 'failover');
    assert.equal(noTarget.code, 2);
    const toPrimary = await rc.cli('cluster', 'failover', '--to', 'main');
    assert.equal(toPrimary.code, 4);
    assert.match(toPrimary.stderr, /already the primary/);
    const removeUnconfirmed = await rc.cli('cluster', 'standby', 'remove', 'b');
    assert.equal(removeUnconfirmed.code, 2);
    const external = await rc.cli('cluster', 'status');
    assert.equal(external.code, 0);
    const withUrl = await (await import('./helpers/cli.ts')).runCli(['cluster', 'status', '--data-dir', rc.dataDir], { env: { TASKFLOW_DATABASE_URL: 'postgres://admin:x@127.0.0.1:1/postgres' } });
    assert.equal(withUrl.code, 2);
    assert.match(withUrl.stderr, /external cluster .* its own HA engine/);
  });
});
