/**
 * The managed cluster on the network: postgres.listenAddresses, postgres.allowedNetworks and the
 * server certificate follow the configuration at every start, and a standby on "another machine"
 * reaches the primary through an address that is not 127.0.0.1, with sslmode=verify-full, and
 * again at that address (recorded from --primary-host) when it is rebuilt.
 *
 * Loopback holds all of 127.0.0.0/8 on Linux, so 127.0.0.2 … 127.0.0.6 stand in for this machine's
 * and other machines' addresses without any set-up. A connection to 127.0.0.2 comes *from*
 * 127.0.0.1 unless the client binds another source address, which libpq cannot do but Node can:
 * pg_hba is checked with clients bound to 127.0.0.3 (a standby's network), 127.0.0.4 (an app host's)
 * and 127.0.0.5 (neither).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { ConfigError, loadConfig } from '../src/config.ts';
import { freePort } from '../src/platform/postgres/local-cluster.ts';
import { explainUnreachable } from '../src/platform/replication/reachability.ts';
import { sshdUnavailable } from './backup-fixtures.ts';
import { eventually, nodeIn, startPostgresSshd, startReplicatedCluster, type PostgresSshd, type ReplicatedCluster } from './helpers/replication.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (sshd logs in as the postgres OS user)' : sshdUnavailable();

const NETWORK = { listenAddresses: ['127.0.0.1', '127.0.0.2'], allowedNetworks: { replication: ['127.0.0.3/32'], clients: ['127.0.0.4'] } };

/** A TCP socket whose connections leave from `source`, as a client on another machine's address would. */
function boundSocket(source: string): () => Socket {
  return () => {
    const socket = new Socket();
    const connect = socket.connect.bind(socket) as (options: { port: number; host: string; localAddress: string }) => Socket;
    // node-postgres calls connect(port, host); the source address goes in here.
    Object.assign(socket, { connect: (port: number, host: string) => connect({ port, host, localAddress: source }) });
    return socket;
  };
}

describe('the managed cluster on the network', { timeout: 150_000, skip: skip ?? false }, () => {
  let rc: ReplicatedCluster;
  let sshd: PostgresSshd;
  const replicationDir = () => join(rc.dataDir, 'postgres', 'replication');
  const writeConfig = (postgres: object) => {
    writeFileSync(join(rc.dataDir, 'config.json'), JSON.stringify({ postgres }));
  };
  const pid = () => Number(readFileSync(join(rc.pgData('main'), 'postmaster.pid'), 'utf8').split('\n')[0]);
  const hbaBlock = () => {
    const hba = readFileSync(join(rc.pgData('main'), 'pg_hba.conf'), 'utf8');
    return hba.slice(hba.indexOf('# TaskFlow replication (begin)'), hba.indexOf('# TaskFlow replication (end)')).split('\n').slice(1, -1);
  };
  const password = () => readFileSync(join(rc.dataDir, 'secrets', 'pg-superuser.password'), 'utf8').trim();
  /** Opens and closes one connection to the primary at 127.0.0.2 from `source`; the error's message, or 'ok' with the TLS state. */
  const tryConnect = async (source: string, as: 'admin' | 'replicator', options: { tls?: boolean; replication?: boolean } = {}): Promise<string> => {
    const files = replicationDir();
    const tls = options.tls ?? true;
    const ssl = tls
      ? { ca: readFileSync(join(files, 'ca.crt'), 'utf8'), rejectUnauthorized: true, ...(as === 'replicator' ? { cert: readFileSync(join(files, 'replicator.crt'), 'utf8'), key: readFileSync(join(files, 'replicator.key'), 'utf8') } : {}) }
      : false;
    const user = as === 'admin' ? { user: 'taskflow_admin', password: password() } : { user: 'taskflow_replicator', password: readFileSync(join(files, 'replicator.pgpass'), 'utf8').trim().split(':').pop() ?? '' };
    const client = new pg.Client({ host: '127.0.0.2', port: rc.port('main'), database: 'postgres', ...user, ssl, stream: boundSocket(source), connectionTimeoutMillis: 5000, ...(options.replication ? { replication: 'true' } : {}) });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const r = await client.query<{ systemid?: string }>(options.replication ? 'IDENTIFY_SYSTEM' : 'SELECT 1 AS one');
      return r.rows.length === 1 ? 'ok' : 'no row';
    } catch (err) {
      return (err as Error).message;
    } finally {
      await client.end().catch(() => undefined);
    }
  };

  before(async () => {
    rc = await startReplicatedCluster();
    sshd = await startPostgresSshd();
    await rc.sql('main', 'CREATE TABLE net_rows (id int PRIMARY KEY)');
  });
  after(async () => {
    try {
      const standby = Number(readFileSync(join(sshd.workDir, 'far', 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (standby > 0) process.kill(-standby, 'SIGKILL');
    } catch {
      /* not running */
    }
    await rc.cleanup();
    await sshd.cleanup();
  });

  test('bad addresses and networks are refused when the configuration loads, naming the key', async () => {
    const refused = (postgres: object): string => {
      try {
        loadConfig({ env: {}, overrides: { dataDir: rc.dataDir }, configFile: writeBad(postgres) });
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return err.message;
      }
      assert.fail(`accepted ${JSON.stringify(postgres)}`);
    };
    const badFile = join(rc.dataDir, '..', 'bad-config.json');
    const writeBad = (postgres: object) => {
      writeFileSync(badFile, JSON.stringify({ postgres }));
      return badFile;
    };
    assert.match(refused({ allowedNetworks: { replication: ['10.0.0.0/33'] } }), /postgres\.allowedNetworks\.replication \(from config file .*\): '10\.0\.0\.0\/33': the prefix of an IPv4 network is 0 to 32/);
    assert.match(refused({ allowedNetworks: { clients: ['10.1.2.3/16'] } }), /'10\.1\.2\.3\/16' has address bits set past its \/16 prefix: the network is 10\.1\.0\.0\/16/);
    assert.match(refused({ allowedNetworks: { clients: ['office'] } }), /'office' is not an IP network/);
    assert.match(refused({ allowedNetworks: { replication: ['0.0.0.0/0'] } }), /lets every address on the internet try the replication login; .*allowEverywhere/);
    assert.match(refused({ listenAddresses: ['*'] }), /postgres\.listenAddresses .*'\*' would listen on every interface/);
    assert.match(refused({ listenAddresses: ['10.0.0.0/8'] }), /'10\.0\.0\.0\/8' is not an IP address of this machine/);
    assert.match(refused({ hostNames: ['*.example.net'] }), /postgres\.hostNames .*is not a DNS name/);
    // With the explicit flag, everywhere is allowed (a firewall in front is then the operator's word).
    loadConfig({ env: {}, overrides: { dataDir: rc.dataDir }, configFile: writeBad({ allowedNetworks: { replication: ['0.0.0.0/0'], allowEverywhere: true } }) });

    // Through the CLI: exit 2, the message on stderr, nothing started.
    const cli = await rc.cli('tenant', 'list', '--config', writeBad({ allowedNetworks: { replication: ['fd00::1/64'] } }));
    assert.equal(cli.code, 2, cli.stderr);
    assert.match(cli.stderr, /'fd00::1\/64' has address bits set past its \/64 prefix: the network is fd00::\/64/);
  });

  test('a start applies the settings: a restart for listen_addresses (said on stderr), a reload for pg_hba, a certificate naming the addresses', async (t) => {
    const timed = async (what: string) => {
      const started = performance.now();
      const r = await rc.cli('tenant', 'list', '--json');
      t.diagnostic(`tenant list (${what}): ${Math.round(performance.now() - started)} ms`);
      return r;
    };
    const before = pid();
    writeConfig(NETWORK);
    const first = await timed('listen_addresses changed: restart');
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /listen_addresses changed from '127\.0\.0\.1' to '127\.0\.0\.1,127\.0\.0\.2': PostgreSQL was restarted/);
    assert.notEqual(pid(), before, 'restarted');
    assert.deepEqual(await rc.sql('main', "SELECT current_setting('listen_addresses') AS l, current_setting('ssl') AS s"), [{ l: '127.0.0.1,127.0.0.2', s: 'on' }]);
    assert.deepEqual(hbaBlock(), [
      'hostssl replication taskflow_replicator 127.0.0.1/32 scram-sha-256 clientcert=verify-full',
      'hostssl replication taskflow_replicator ::1/128      scram-sha-256 clientcert=verify-full',
      'hostssl replication taskflow_replicator 127.0.0.3/32 scram-sha-256 clientcert=verify-full',
      'host    replication taskflow_replicator all          reject',
      'host    all         taskflow_replicator all          reject',
      'hostssl all         all         127.0.0.4/32 scram-sha-256',
    ]);
    const hba = readFileSync(join(rc.pgData('main'), 'pg_hba.conf'), 'utf8');
    assert.match(hba, /^host {4}all {13}all {13}127\.0\.0\.1\/32 {12}scram-sha-256$/m, 'the loopback lines are kept');
    const san = new X509Certificate(readFileSync(join(replicationDir(), 'server.crt'))).subjectAltName ?? '';
    assert.match(san, /IP Address:127\.0\.0\.2/);

    // The same settings again: nothing to do, no restart.
    const again = await timed('nothing changed');
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /restarted/);
    const steady = pid();

    // Another app host and a DNS name: pg_hba and the certificate change, a reload is enough.
    writeConfig({ ...NETWORK, hostNames: ['db1.taskflow.test'], allowedNetworks: { ...NETWORK.allowedNetworks, clients: ['127.0.0.4', '127.0.0.6/32'] } });
    const reloaded = await timed('pg_hba and certificate changed: reload');
    assert.equal(reloaded.code, 0, reloaded.stderr);
    assert.doesNotMatch(reloaded.stderr, /restarted/);
    assert.equal(pid(), steady, 'not restarted');
    assert.equal(hbaBlock().at(-1), 'hostssl all         all         127.0.0.6/32 scram-sha-256');
    assert.match(new X509Certificate(readFileSync(join(replicationDir(), 'server.crt'))).subjectAltName ?? '', /DNS:db1\.taskflow\.test/);
    assert.equal(await tryConnect('127.0.0.6', 'admin'), 'ok', 'the new line is in force without a restart');
  });

  test('a standby on "another machine" streams from the primary through 127.0.0.2 with verify-full', async () => {
    const r = await rc.cli(
      'cluster', 'standby', 'add', 'far',
      '--remote', `postgres@127.0.0.1:${sshd.port}`, '--ssh-key', sshd.identityFile, '--known-hosts', sshd.knownHostsFile,
      '--pgdata', join(sshd.workDir, 'far'), '--port', String(await freePort()), '--site', 'site-b', '--primary-host', '127.0.0.2', '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const autoConf = readFileSync(join(sshd.workDir, 'far', 'postgresql.auto.conf'), 'utf8');
    assert.match(autoConf, /primary_conninfo = 'host=127\.0\.0\.2 port=\d+ user=taskflow_replicator .*sslmode=verify-full/);
    const far = nodeIn(await rc.status(), 'far');
    assert.deepEqual([far.actual, far.receiver], ['standby', 'streaming']);
    assert.match(far.tls ?? '', /^TLSv1\.[23]$/);
    await rc.sql('main', 'INSERT INTO net_rows VALUES (1)');
    await eventually('the row on the standby', async () => ((await rc.sql('far', 'SELECT id FROM net_rows')).length === 1 ? true : undefined));

    // --primary-host is recorded as the address main is reached at, and used again when far is rebuilt
    // (the default would be postgres.hostNames' db1.taskflow.test, which does not resolve).
    assert.equal(rc.topology().nodes.main?.connectHost, '127.0.0.2');
    const rebuilt = await rc.cli('cluster', 'rebuild', 'far', '--json');
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    assert.match(readFileSync(join(sshd.workDir, 'far', 'postgresql.auto.conf'), 'utf8'), /primary_conninfo = 'host=127\.0\.0\.2 port=/);
    await eventually('far streams again', async () => (nodeIn(await rc.status(), 'far').receiver === 'streaming' ? true : undefined));
  });

  test('pg_hba lets each source through to exactly what it is allowed, over TLS only', async () => {
    // The replication role exists since the standby was added.
    // An app host (127.0.0.4): logins to databases over TLS, verifying the certificate for 127.0.0.2.
    assert.equal(await tryConnect('127.0.0.4', 'admin'), 'ok');
    assert.match(await tryConnect('127.0.0.4', 'admin', { tls: false }), /no pg_hba\.conf entry for host "127\.0\.0\.4", user "taskflow_admin", database "postgres", no encryption/);
    // Nobody else: neither 127.0.0.5 nor a standby's address logs in to databases.
    assert.match(await tryConnect('127.0.0.5', 'admin'), /no pg_hba\.conf entry for host "127\.0\.0\.5"/);
    assert.match(await tryConnect('127.0.0.3', 'admin'), /no pg_hba\.conf entry for host "127\.0\.0\.3"/);
    // A standby's network (127.0.0.3): the replicator streams, with its certificate; never from elsewhere, never into a database.
    assert.equal(await tryConnect('127.0.0.3', 'replicator', { replication: true }), 'ok');
    const refused = await tryConnect('127.0.0.4', 'replicator', { replication: true });
    assert.match(refused, /pg_hba\.conf rejects replication connection for host "127\.0\.0\.4", user "taskflow_replicator"/);
    assert.match(await tryConnect('127.0.0.3', 'replicator'), /pg_hba\.conf rejects connection for host "127\.0\.0\.3", user "taskflow_replicator"/);
  });

  test('standby add --remote says why the primary cannot be reached from there', async () => {
    const add = (host: string) =>
      rc.cli(
        'cluster', 'standby', 'add', 'nope',
        '--remote', `postgres@127.0.0.1:${sshd.port}`, '--ssh-key', sshd.identityFile, '--known-hosts', sshd.knownHostsFile,
        '--pgdata', join(sshd.workDir, 'nope'), '--port', '5999', '--site', 'site-b', '--primary-host', host,
      );
    const unknown = await add('127.0.0.9');
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /--primary-host 127\.0\.0\.9 is not an address or name the primary serves at \(postgres\.listenAddresses 127\.0\.0\.1, 127\.0\.0\.2; .*its certificate does not name it/);

    // Configured, but PostgreSQL still listens on the old addresses (no start since the change).
    writeConfig({ ...NETWORK, listenAddresses: [...NETWORK.listenAddresses, '127.0.0.5'] });
    const notListening = await add('127.0.0.5');
    assert.equal(notListening.code, 4, notListening.stderr);
    assert.match(notListening.stderr, /the primary listens on 127\.0\.0\.1, 127\.0\.0\.2 only, not on 127\.0\.0\.5.*postgres\.listenAddresses lists it, but PostgreSQL was not restarted since; run 'taskflow start'/);
    writeConfig(NETWORK);
    assert.deepEqual(Object.keys(rc.topology().nodes).sort(), ['far', 'main']);

    // After a failed base backup, what the primary said to the standby's side is turned into what to do.
    const rejection = await tryConnect('127.0.0.5', 'replicator', { replication: true });
    const explained = explainUnreachable(`pg_basebackup: error: connection to server at "127.0.0.2", port 5432 failed: FATAL:  ${rejection}`, {
      name: 'c', node: { user: 'postgres', host: '10.0.0.6', sshPort: 22, identityFile: '', knownHostsFile: '', dataDir: '/d', pgBin: '/b' }, host: '127.0.0.2', port: 5432,
    });
    assert.match(explained?.message ?? rejection, /does not allow replication from 127\.0\.0\.5, the address standby c connects from as the primary sees it: add 127\.0\.0\.5 \(or its network\) to postgres\.allowedNetworks\.replication/);
  });
});
