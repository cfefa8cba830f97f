/**
 * How standbys reach their upstream: the replication role, TLS both ways, and pg_hba lines.
 *
 * - Role `taskflow_replicator` (LOGIN REPLICATION, nothing else); its password is derived from the
 *   master key like tenant passwords and sent to PostgreSQL only as a SCRAM verifier.
 * - Standbys read the password from a passfile (0600, owned by the PostgreSQL OS user) named in
 *   primary_conninfo, so it is on no command line and in no configuration file that backups copy.
 * - A certificate authority of this installation (its key in secrets/, never readable by
 *   PostgreSQL) signs the server certificate every node presents and the replicator's client
 *   certificate. Standbys connect with sslmode=verify-full: the chain must lead to our authority
 *   and the address must be in the certificate, so another server on the port cannot pose as the
 *   primary. The primary requires the client certificate (clientcert=verify-full, CN = role name)
 *   as well as the password: a key pair and a secret.
 * - pg_hba: replication as the replicator only over TLS from loopback and the networks in
 *   postgres.allowedNetworks.replication; any other connection by it is rejected. Logins to
 *   databases from postgres.allowedNetworks.clients (TaskFlow's app hosts) over TLS with SCRAM.
 * - The server certificate names loopback, postgres.listenAddresses and postgres.hostNames, and is
 *   made again when that list changes.
 */
import { X509Certificate } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { generate } from 'selfsigned';
import { UserError } from '../../errors.ts';
import { deriveKey } from '../accounts/secrets.ts';
import { scramVerifier, scramVerifierMatches } from './scram.ts';
import { clientConfig, escapeIdentifier, escapeLiteral } from '../postgres/connection.ts';
import type { LocalCluster } from '../postgres/local-cluster.ts';
import { hbaAddress, isLoopback, listenAddressesOf, parseNetwork, type NetworkConfig } from '../postgres/network.ts';
import { makeAuthority } from '../tls/certificates.ts';
import { altNamesFor, namesExactly, type AltName } from '../tls/subject-names.ts';
import { RemoteCluster } from './remote-cluster.ts';
import type { ReplicationContext } from './context.ts';
import { poll, withNodeClient } from './probe.ts';
import type { NodeRecord, Topology } from './topology.ts';

export const REPLICATION_ROLE = 'taskflow_replicator';

const DAY = 86_400_000;
const RENEW_BEFORE_DAYS = 30;

/** The replication role's password, recomputed from the master key whenever needed. */
export function replicationPassword(masterKey: string, credentialVersion: number): string {
  return deriveKey(masterKey, `replication-login:${credentialVersion}`).toString('base64url');
}

export interface ReplicationFiles {
  /** `<dataDir>/postgres/replication`, 0700, owned by the PostgreSQL OS user. */
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  passfile: string;
}

export function replicationFiles(ctx: Pick<ReplicationContext, 'dir'>): ReplicationFiles {
  return filesIn(join(ctx.dir.root, 'postgres', 'replication'));
}

/** The replication files as a node sees them: ours, or their copies beside a remote node's PGDATA (`<dir>.replication`). */
export function nodeReplicationFiles(ctx: ReplicationContext, node: Pick<NodeRecord, 'remote'> | undefined): ReplicationFiles {
  return node?.remote ? filesIn(`${node.remote.dataDir}.replication`) : replicationFiles(ctx);
}

/**
 * The address standbys on other machines reach this machine's nodes at (the default of
 * `standby add --remote --primary-host`): the first listen address that is not loopback, else the
 * first of postgres.hostNames, else 127.0.0.1 (which only works for a "remote" machine that is this one).
 */
export function defaultPrimaryHost(network: NetworkConfig): string {
  return listenAddressesOf(network).find((a) => !isLoopback(a)) ?? network.hostNames[0] ?? '127.0.0.1';
}

/**
 * The address a node serves replication at, for standby `from`: for a remote standby the address
 * recorded for the node (`connectHost`, from --primary-host) when there is one; a remote node's
 * machine; a local node's loopback, or for a remote standby the address this machine is reached at.
 */
function nodeHost(ctx: ReplicationContext, node: NodeRecord | undefined, from: NodeRecord | undefined): string {
  if (from?.remote && node?.connectHost) return node.connectHost;
  if (node?.remote) return node.remote.host;
  return from?.remote ? defaultPrimaryHost(ctx.config.postgres) : '127.0.0.1';
}

/** The primary_conninfo of standby `name` streaming from node `upstream` of the topology. */
export function standbyConninfo(ctx: ReplicationContext, topology: Topology, name: string, upstream: string): string {
  const up = topology.nodes[upstream];
  const standby = topology.nodes[name];
  return upstreamConninfo(nodeReplicationFiles(ctx, standby), up?.port ?? 0, name, nodeHost(ctx, up, standby));
}

function filesIn(dir: string): ReplicationFiles {
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'replicator.crt'),
    clientKey: join(dir, 'replicator.key'),
    passfile: join(dir, 'replicator.pgpass'),
  };
}

function writeOwned(ctx: Pick<ReplicationContext, 'runAs'>, path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content, { mode: 0o600 });
  if (ctx.runAs) chownSync(`${path}.tmp`, ctx.runAs.uid, ctx.runAs.gid);
  renameSync(`${path}.tmp`, path);
}

function expiresSoon(certPath: string): boolean {
  if (!existsSync(certPath)) return true;
  const notAfter = new Date(new X509Certificate(readFileSync(certPath)).validTo).getTime();
  return notAfter - Date.now() < RENEW_BEFORE_DAYS * DAY;
}

/** Whether the server certificate is there, not due for renewal, and names exactly what serverHosts says. */
export function serverCertificateCurrent(ctx: FilesContext): boolean {
  const { serverCert } = replicationFiles(ctx);
  return !expiresSoon(serverCert) && namesExactly(readFileSync(serverCert, 'utf8'), serverHosts(ctx.config.postgres));
}

/** When the first of the replication certificates expires (shown by `cluster status`). */
export function certificatesExpireAt(ctx: ReplicationContext): string | null {
  const files = replicationFiles(ctx);
  const dates = [files.caCert, files.serverCert, files.clientCert]
    .filter((path) => existsSync(path))
    .map((path) => new Date(new X509Certificate(readFileSync(path)).validTo).getTime());
  return dates.length === 0 ? null : new Date(Math.min(...dates)).toISOString();
}

const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '::1'];
const LOOPBACK_NAMES = altNamesFor(LOOPBACK_HOSTS);

/** What the cluster's server certificate names: loopback, every listen address and every configured DNS name. */
export function serverHosts(network: NetworkConfig): string[] {
  return [...LOOPBACK_HOSTS, ...listenAddressesOf(network), ...network.hostNames];
}

/** What ensureReplicationFiles needs: the data directory, the OS user, the master key and the network settings. */
export type FilesContext = Pick<ReplicationContext, 'config' | 'dir' | 'runAs' | 'masterKey'>;

async function makeLeaf(
  issuer: { cert: string; key: string },
  commonName: string,
  usage: 'server' | 'client',
  altNames: AltName[] = LOOPBACK_NAMES,
): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 365 * DAY),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      usage === 'server' ? { name: 'extKeyUsage', serverAuth: true } : { name: 'extKeyUsage', clientAuth: true },
      ...(usage === 'server'
        ? [{ name: 'subjectAltName' as const, altNames }]
        : []),
    ],
    ca: issuer,
  });
  return { cert: pems.cert, key: pems.private };
}

/**
 * Makes what replication connections need, once, and renews certificates 30 days before they
 * expire: the authority (key in secrets/), the server and client certificates, and the passfile.
 */
export async function ensureReplicationFiles(ctx: FilesContext, credentialVersion: number): Promise<ReplicationFiles> {
  const files = replicationFiles(ctx);
  mkdirSync(files.dir, { recursive: true, mode: 0o700 });
  chmodSync(files.dir, 0o700);
  if (ctx.runAs) chownSync(files.dir, ctx.runAs.uid, ctx.runAs.gid);

  const caKeyPath = join(ctx.dir.secretsDir, 'replication-ca.key');
  let ca: { cert: string; key: string } | null =
    existsSync(caKeyPath) && !expiresSoon(files.caCert) ? { cert: readFileSync(files.caCert, 'utf8'), key: readFileSync(caKeyPath, 'utf8') } : null;
  let renewLeaves = false;
  if (!ca) {
    ca = await makeAuthority('replication');
    writeFileSync(caKeyPath, ca.key, { mode: 0o600 });
    writeOwned(ctx, files.caCert, ca.cert);
    renewLeaves = true;
  }
  const hosts = serverHosts(ctx.config.postgres);
  if (renewLeaves || expiresSoon(files.serverCert) || !namesExactly(readFileSync(files.serverCert, 'utf8'), hosts)) {
    const server = await makeLeaf(ca, 'taskflow-replication-server', 'server', altNamesFor(hosts));
    writeOwned(ctx, files.serverKey, server.key);
    writeOwned(ctx, files.serverCert, server.cert);
  }
  if (renewLeaves || expiresSoon(files.clientCert)) {
    const client = await makeLeaf(ca, REPLICATION_ROLE, 'client');
    writeOwned(ctx, files.clientKey, client.key);
    writeOwned(ctx, files.clientCert, client.cert);
  }
  // libpq's passfile format; `*` for host, port and database (replication connections match "replication").
  writeOwned(ctx, files.passfile, `*:*:*:${REPLICATION_ROLE}:${replicationPassword(ctx.masterKey, credentialVersion)}\n`);
  return files;
}

/**
 * A server certificate of its own for a node on another machine, naming its address (and loopback),
 * so that standbys connecting to it with verify-full accept it and no other node can pose as it.
 */
export async function nodeServerCertificate(ctx: ReplicationContext, host: string): Promise<{ cert: string; key: string }> {
  const files = replicationFiles(ctx);
  const ca = { cert: readFileSync(files.caCert, 'utf8'), key: readFileSync(join(ctx.dir.secretsDir, 'replication-ca.key'), 'utf8') };
  const own = isIP(host) ? { type: 7 as const, ip: host } : { type: 2 as const, value: host };
  return makeLeaf(ca, `taskflow-replication-${host}`, 'server', [own, ...LOOPBACK_NAMES.filter((n) => JSON.stringify(n) !== JSON.stringify(own))]);
}

/**
 * pg_hba lines: the replicator streams over TLS with password and certificate from loopback and the
 * replication networks, nothing else; then logins to databases over TLS with SCRAM from the client
 * networks (below the rejections, so never the replicator's). The general lines after the block
 * keep loopback open as before.
 */
export function replicationHbaLines(network: NetworkConfig = { listenAddresses: [], hostNames: [], allowedNetworks: { replication: [], clients: [], allowEverywhere: false } }): string[] {
  const cidrs = (list: string[]) => list.map((text) => hbaAddress(parseNetwork(text)));
  return [
    `hostssl replication ${REPLICATION_ROLE} 127.0.0.1/32 scram-sha-256 clientcert=verify-full`,
    `hostssl replication ${REPLICATION_ROLE} ::1/128      scram-sha-256 clientcert=verify-full`,
    ...cidrs(network.allowedNetworks.replication).map((cidr) => `hostssl replication ${REPLICATION_ROLE} ${cidr} scram-sha-256 clientcert=verify-full`),
    `host    replication ${REPLICATION_ROLE} all          reject`,
    `host    all         ${REPLICATION_ROLE} all          reject`,
    ...cidrs(network.allowedNetworks.clients).map((cidr) => `hostssl all         all         ${cidr} scram-sha-256`),
  ];
}

/**
 * Prepares a primary to serve standbys: the role with the current password, TLS on with our
 * certificates (ALTER SYSTEM, so every copy of the cluster carries it), the pg_hba lines, then a
 * reload, confirmed by a TLS connection that verifies the certificate.
 */
export async function ensureReplicationAccess(ctx: ReplicationContext, primary: LocalCluster, credentialVersion: number): Promise<ReplicationFiles> {
  const files = await ensureReplicationFiles(ctx, credentialVersion);
  // A primary on another machine serves its own certificate, from the copies sent there.
  const served = primary instanceof RemoteCluster ? nodeReplicationFiles(ctx, { remote: primary.remote }) : files;
  primary.writeHbaBlock('replication', replicationHbaLines(ctx.config.postgres));
  const password = replicationPassword(ctx.masterKey, credentialVersion);
  await withNodeClient(primary, async (client) => {
    const existing = await client.query<{ verifier: string | null; ok: boolean }>(
      'SELECT rolpassword AS verifier, rolcanlogin AND rolreplication AND NOT rolsuper AS ok FROM pg_authid WHERE rolname = $1',
      [REPLICATION_ROLE],
    );
    const role = escapeIdentifier(REPLICATION_ROLE);
    const current = existing.rows[0];
    // Changed only when it must be: in sync mode a role change is a commit that waits for a standby.
    if (!current) await client.query(`CREATE ROLE ${role} WITH LOGIN REPLICATION PASSWORD ${escapeLiteral(scramVerifier(password))}`);
    else if (!current.ok || !current.verifier || !scramVerifierMatches(current.verifier, password)) {
      await client.query(`ALTER ROLE ${role} WITH LOGIN REPLICATION NOSUPERUSER PASSWORD ${escapeLiteral(scramVerifier(password))}`);
    }
    await setTlsSettings(client, served);
    await client.query('SELECT pg_reload_conf()');
  });
  await assertTlsWorks(primary, files);
  return files;
}

/** TLS on with our certificate files (ALTER SYSTEM: postgresql.auto.conf, no WAL, so it never waits for a standby); takes effect on a reload. */
export async function setTlsSettings(client: pg.ClientBase, served: ReplicationFiles): Promise<void> {
  for (const [name, value] of [
    ['ssl', 'on'],
    ['ssl_cert_file', served.serverCert],
    ['ssl_key_file', served.serverKey],
    ['ssl_ca_file', served.caCert],
    ['ssl_min_protocol_version', 'TLSv1.2'],
    // A standby whose upstream is gone retries every this often; a promotion requested during the
    // wait (PostgreSQL 15) waits it out, so the default 5 s would add up to 5 s to every failover.
    ['wal_retrieve_retry_interval', '500ms'],
  ] as const) {
    await client.query(`ALTER SYSTEM SET ${name} = ${escapeLiteral(value)}`);
  }
}

/** Waits until the node answers over TLS with a certificate from our authority, or refuses naming its log. */
export async function assertTlsWorks(cluster: LocalCluster, files: ReplicationFiles): Promise<void> {
  const ca = readFileSync(files.caCert, 'utf8');
  const verified = await poll(async () => ((await tlsWorks(cluster, ca)) ? true : undefined), 10_000);
  if (!verified) throw new UserError(`PostgreSQL on port ${cluster.port} did not turn TLS on with the replication certificate; see ${cluster.pgData}/log`);
}

/** Whether the node answers over TLS with a certificate from our authority for 127.0.0.1. */
async function tlsWorks(cluster: LocalCluster, ca: string): Promise<boolean> {
  const client = new pg.Client({ ...clientConfig(cluster.target(), 'postgres'), ssl: { ca, rejectUnauthorized: true }, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const r = await client.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    return r.rows[0]?.ssl === true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A libpq keyword value, quoted when it must be. */
function conninfoValue(value: string): string {
  return /^[A-Za-z0-9_./:-]+$/.test(value) ? value : `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/** The connection string a standby named `name` uses to stream from the node on `upstreamHost`:`upstreamPort`. */
export function upstreamConninfo(files: ReplicationFiles, upstreamPort: number, name: string, upstreamHost = '127.0.0.1'): string {
  const parts: [string, string][] = [
    ['host', upstreamHost],
    ['port', String(upstreamPort)],
    ['user', REPLICATION_ROLE],
    ['passfile', files.passfile],
    ['sslmode', 'verify-full'],
    ['sslrootcert', files.caCert],
    ['sslcert', files.clientCert],
    ['sslkey', files.clientKey],
    ['application_name', name],
    ['connect_timeout', '5'],
  ];
  return parts.map(([k, v]) => `${k}=${conninfoValue(v)}`).join(' ');
}
