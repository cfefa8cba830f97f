/**
 * TaskFlow's own connections to a managed node off loopback verify the node's certificate against
 * the cluster's CA (verify-full): a real PostgreSQL 15 on 127.0.0.2 with TLS, serving in turn a
 * certificate from another CA, one from the cluster's CA naming 127.0.0.2, and one from the
 * cluster's CA naming other addresses. Plus the ssl options and libpq environment that carry it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generate } from 'selfsigned';
import { toolEnvironment } from '../src/platform/backup/physical/tool-stream.ts';
import { clientConfig, connectionUrl, withAdminClient, type ConnectionTarget } from '../src/platform/postgres/connection.ts';
import { freePort, LocalCluster } from '../src/platform/postgres/local-cluster.ts';
import { findPgTools, resolveRunAs } from '../src/platform/postgres/tools.ts';
import { probeNode } from '../src/platform/replication/probe.ts';
import { RemoteCluster } from '../src/platform/replication/remote-cluster.ts';
import { makeAuthority, makeSelfSigned } from '../src/platform/tls/certificates.ts';
import { tempDir } from './helpers/platform.ts';

const HOST = '127.0.0.2';
const PASSWORD = 'tls-verify-test-password';

/** A server certificate from `issuer` whose only address is 127.0.0.2 (as nodeServerCertificate makes for a node). */
async function certificateFor127002(issuer: { cert: string; key: string }): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: 'commonName', value: 'taskflow-replication-127.0.0.2' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: HOST }] },
    ],
    ca: issuer,
  });
  return { cert: pems.cert, key: pems.private };
}

let root = '';
let cluster: LocalCluster;
let clusterCa: { cert: string; key: string };
let caFile = '';

/** Puts `pair` in place as the server's certificate files. */
function place(pair: { cert: string; key: string }): void {
  for (const [name, content] of [['server.crt', pair.cert], ['server.key', pair.key]] as const) {
    const path = join(cluster.pgData, name);
    writeFileSync(path, content, { mode: 0o600 });
    if (cluster.runAs) chownSync(path, cluster.runAs.uid, cluster.runAs.gid);
  }
}

/** Serves `pair` from now on (the SSL files are re-read on a reload). */
async function serve(pair: { cert: string; key: string }): Promise<void> {
  place(pair);
  // Encrypted, unverified: the way in whatever the server presents.
  await withAdminClient({ ...cluster.target(), ssl: true }, 'postgres', (c) => c.query('SELECT pg_reload_conf()'));
}

/** The outcome of a verified connection: 'ok', or the error's message. */
async function attempt(target: ConnectionTarget): Promise<string> {
  try {
    return await withAdminClient(target, 'postgres', async (c) => ((await c.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0]?.ssl ? 'ok' : 'no tls'));
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * psql (libpq) through the URL `taskflow db url` prints for the target, the password in the
 * environment rather than the command line: whether TLS was used, or psql's error.
 */
function psqlThroughUrl(target: ConnectionTarget): string {
  const url = connectionUrl(target, 'postgres', { user: target.user, password: '' });
  const r = spawnSync(cluster.tools.path('psql'), ['-At', '-c', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()', url], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, PGPASSWORD: PASSWORD, PGCONNECT_TIMEOUT: '10' },
  });
  return r.status === 0 ? r.stdout.trim() : r.stderr.trim();
}

/** Tries until `until` holds for the outcome (a reload takes effect shortly after it is asked for). */
async function attemptUntil(target: ConnectionTarget, until: (outcome: string) => boolean): Promise<string> {
  let outcome = '';
  for (let i = 0; i < 50; i++) {
    outcome = await attempt(target);
    if (until(outcome)) return outcome;
    await new Promise((r) => setTimeout(r, 100));
  }
  return outcome;
}

before(async () => {
  root = tempDir('tls-verify');
  const tools = findPgTools(process.env.TASKFLOW_PG_BINDIR);
  cluster = new LocalCluster({ pgData: join(root, 'pg'), port: await freePort(), tools, runAs: resolveRunAs('postgres'), superuserPassword: PASSWORD, listenAddress: HOST });
  await cluster.init();
  clusterCa = await makeAuthority('replication');
  caFile = join(root, 'ca.crt');
  writeFileSync(caFile, clusterCa.cert, { mode: 0o644 });
  appendFileSync(join(cluster.pgData, 'postgresql.conf'), "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
  cluster.writeHbaBlock('tls-test', [`hostssl all all ${HOST}/32 scram-sha-256`]);
  // To begin with, a certificate for 127.0.0.2 from another authority: what a machine posing as the node could present.
  const other = await makeAuthority('someone else');
  place(await certificateFor127002(other));
  await cluster.start();
});

after(async () => {
  // `cluster` is unset when `before` failed early.
  await Promise.resolve()
    .then(() => cluster.stop('immediate'))
    .catch(() => undefined);
  if (root) rmSync(root, { recursive: true, force: true });
});

test('a node whose certificate is not from the cluster CA is refused with a clear error; unverified TLS still gets in', async () => {
  const outcome = await attempt({ ...cluster.target(), ssl: true, ca: caFile });
  assert.match(outcome, /^refusing PostgreSQL at 127\.0\.0\.2:\d+: its certificate is not from the cluster's certificate authority \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\); another server may be posing as the node/);
  // PEM text works as the file does.
  assert.match(await attempt({ ...cluster.target(), ssl: true, ca: clusterCa.cert }), /not from the cluster's certificate authority/);
  // An external target (no ca) keeps today's behaviour: encrypted, certificate not checked.
  assert.equal(await attempt({ ...cluster.target(), ssl: true }), 'ok');
});

test("a certificate from the cluster CA naming the node's address is accepted", async () => {
  // Before: the foreign certificate is refused by libpq through the printed URL as by node-postgres.
  assert.match(psqlThroughUrl({ ...cluster.target(), ssl: true, ca: caFile }), /certificate verify failed/);
  await serve(await certificateFor127002(clusterCa));
  assert.equal(await attemptUntil({ ...cluster.target(), ssl: true, ca: caFile }, (o) => o === 'ok'), 'ok');
  // `taskflow db url` for such a node: verify-full against the CA file, which libpq honours.
  const url = new URL(connectionUrl({ ...cluster.target(), ssl: true, ca: caFile }, 'postgres'));
  assert.deepEqual([url.searchParams.get('sslmode'), url.searchParams.get('sslrootcert')], ['verify-full', caFile]);
  assert.equal(psqlThroughUrl({ ...cluster.target(), ssl: true, ca: caFile }), 't');
  // An external target that asks for TLS gets it without verification; a local one, no parameters.
  assert.equal(new URL(connectionUrl({ ...cluster.target(), ssl: true }, 'postgres')).search, '?sslmode=require');
  assert.equal(new URL(connectionUrl(cluster.target(), 'postgres')).search, '');
});

test('a certificate from the cluster CA naming other addresses is refused (identity check)', async () => {
  // DNS node.example, IP 127.0.0.1 and ::1: right authority, wrong node.
  await serve(await makeSelfSigned(['node.example'], clusterCa));
  const outcome = await attemptUntil({ ...cluster.target(), ssl: true, ca: caFile }, (o) => o !== 'ok');
  assert.match(outcome, /^refusing PostgreSQL at 127\.0\.0\.2:\d+: its certificate is from the cluster's certificate authority but does not name 127\.0\.0\.2 \(.*127\.0\.0\.2 is not in the cert's list: 127\.0\.0\.1, ::1\)/);
  assert.match(psqlThroughUrl({ ...cluster.target(), ssl: true, ca: caFile }), /does not match host name "127\.0\.0\.2"/);
  // `cluster status` probes the node the same way and says why in the same words.
  class VerifiedHandle extends LocalCluster {
    override target(): ConnectionTarget {
      return { ...super.target(), ssl: true, ca: caFile };
    }
  }
  const handle = new VerifiedHandle({ pgData: cluster.pgData, port: cluster.target().port, tools: cluster.tools, runAs: cluster.runAs, superuserPassword: PASSWORD, listenAddress: HOST });
  const probe = await probeNode(handle);
  assert.equal(probe.reachable, false);
  assert.match(probe.error ?? '', /^refusing PostgreSQL at 127\.0\.0\.2:\d+: its certificate is from the cluster's certificate authority but does not name 127\.0\.0\.2/);
});

test('clientConfig: verify-full with a ca, checked against the target host; unverified TLS without one', () => {
  const target: ConnectionTarget = { host: '10.0.0.5', port: 5432, user: 'u', password: 'p', ssl: true, ca: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n' };
  const ssl = clientConfig(target, 'postgres').ssl;
  assert.ok(ssl && typeof ssl === 'object');
  assert.equal(ssl.ca, target.ca);
  assert.equal(ssl.rejectUnauthorized, true);
  const named = (san: string) => ({ subject: { CN: 'n' }, subjectaltname: san }) as unknown as import('node:tls').PeerCertificate;
  // node-postgres gives no servername for an address; the check uses the target's host whatever it is handed.
  assert.equal(ssl.checkServerIdentity?.('localhost', named('IP Address:10.0.0.5')), undefined);
  assert.match(String(ssl.checkServerIdentity?.('10.0.0.5', named('IP Address:127.0.0.1, DNS:localhost'))), /IP: 10\.0\.0\.5 is not in the cert's list/);
  assert.deepEqual(clientConfig({ ...target, ca: undefined }, 'postgres').ssl, { rejectUnauthorized: false });
  assert.equal(clientConfig({ ...target, ca: undefined, ssl: false }, 'postgres').ssl, undefined);
  assert.throws(() => clientConfig({ ...target, ca: join(root, 'missing-ca.crt') }, 'postgres'), /cannot read the cluster's CA certificate .*missing-ca\.crt to verify PostgreSQL at 10\.0\.0\.5/);
});

test("a remote node's target carries the cluster CA off loopback, and libpq tools get verify-full", () => {
  const remote = { user: 'postgres', host: '10.0.2.7', sshPort: 22, identityFile: '', knownHostsFile: '', dataDir: '/srv/c', pgBin: '/b' };
  const options = { port: 5432, tools: cluster.tools, runAs: null, superuserPassword: 'p' };
  const far = new RemoteCluster({ ...options, ca: '/data/postgres/replication/ca.crt' }, remote).target();
  assert.deepEqual([far.ssl, far.ca], [true, '/data/postgres/replication/ca.crt']);
  // On loopback (a "remote" node that is this machine) no TLS is asked for, as before.
  assert.equal(new RemoteCluster({ ...options, ca: '/x' }, { ...remote, host: HOST }).target().ca, undefined);
  const env = toolEnvironment('/pw', 'app', far);
  assert.deepEqual([env.PGSSLMODE, env.PGSSLROOTCERT], ['verify-full', '/data/postgres/replication/ca.crt']);
  const external = toolEnvironment('/pw', 'app', { ...far, ca: undefined });
  assert.deepEqual([external.PGSSLMODE, external.PGSSLROOTCERT], ['require', undefined]);
});
