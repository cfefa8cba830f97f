/**
 * Standbys on another machine, reached over SSH: `cluster standby add NAME --remote USER@HOST`.
 *
 * TaskFlow logs in with the system ssh client (key only, the host key checked against the given
 * known_hosts), checks that the PostgreSQL there has the primary's major version and that the data
 * directory is new or empty, sends the replication secrets (passfile, client certificate and key,
 * the authority's certificate, and a server certificate of the node's own) over the channel into
 * 0600 files beside the data directory, runs pg_basebackup there through a slot, configures and
 * starts the standby, and records it only once it streams. A refusal or failure on the way leaves
 * nothing behind: the slot is dropped and what was made there is removed.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../../errors.ts';
import { remoteArchiveSettings } from '../backup/physical/wal-spool.ts';
import type { LocalCluster } from '../postgres/local-cluster.ts';
import { ensureReplicationAccess, nodeReplicationFiles, nodeServerCertificate, replicationFiles, replicationPassword, REPLICATION_ROLE, upstreamConninfo } from './access.ts';
import { assertSinglePrimary, loadTopology, siteOf, type ReplicationContext } from './context.ts';
import { dropSlot, ensureSlot } from './copy.ts';
import { applySynchronousNames } from './mode.ts';
import { withNodeClient } from './probe.ts';
import { explainUnreachable, primaryHostFor, recordedConnectHost, remoteUpstreamHost } from './reachability.ts';
import { RemoteCluster } from './remote-cluster.ts';
import { describeRemote, mustRunRemote, parseRemote, runRemote, shellQuote, writeFilesScript, type RemoteNode } from './remote-shell.ts';
import { waitStreaming, writablePrimary, type AddedStandby } from './standby.ts';
import { assertNoPendingChange, assertNodeName, slotName, withTopologyLock, writeTopology, type Topology } from './topology.ts';

export interface RemoteStandbyOptions {
  name: string;
  /** `USER@HOST[:SSH_PORT]`. */
  remote: string;
  sshKey: string;
  knownHosts: string;
  /** PGDATA on the remote machine: absent or empty. */
  dataDir: string;
  port: number;
  site: string;
  /** The PostgreSQL server tools there (default: the same directory as here). */
  pgBin?: string;
  /** The address the standby reaches the primary at (default: reachability.ts, remoteUpstreamHost). */
  primaryHost?: string;
}

export interface AddedRemoteStandby extends AddedStandby {
  remote: string;
  site: string;
}

/** The `cluster standby add` flags of a remote standby, as given. */
export interface RemoteStandbyFlags {
  remote?: string;
  sshKey?: string;
  knownHosts?: string;
  pgdata?: string;
  site?: string;
  pgBin?: string;
  primaryHost?: string;
}

/** The options of a remote standby from its flags; a missing one is a usage error (exit 2). */
export function remoteStandbyOptions(name: string, port: number | undefined, flags: RemoteStandbyFlags): RemoteStandbyOptions {
  const { remote, sshKey, knownHosts, pgdata, site } = flags;
  if (!remote || !sshKey || !knownHosts || !pgdata || !site || port === undefined) {
    throw new UserError('a remote standby needs --remote USER@HOST[:PORT], --ssh-key FILE, --known-hosts FILE, --pgdata DIR, --port N and --site SITE', 2);
  }
  return { name, remote, sshKey, knownHosts, dataDir: pgdata, port, site, ...(flags.pgBin ? { pgBin: flags.pgBin } : {}), ...(flags.primaryHost ? { primaryHost: flags.primaryHost } : {}) };
}

/** Refuses options that cannot work before anything is touched (exit 2). */
function remoteNodeFrom(ctx: ReplicationContext, options: RemoteStandbyOptions): RemoteNode {
  assertNodeName(options.name);
  const target = parseRemote(options.remote);
  for (const [flag, path] of [['--ssh-key', options.sshKey], ['--known-hosts', options.knownHosts]] as const) {
    if (!existsSync(path) || !statSync(path).isFile()) throw new UserError(`${flag} ${path}: no such file`, 2);
  }
  for (const [flag, path] of [['--data-dir', options.dataDir], ['--pg-bin', options.pgBin ?? '/']] as const) {
    if (!isAbsolute(path) || path.includes('\n')) throw new UserError(`${flag} must be an absolute path on the remote machine, not '${path}'`, 2);
  }
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) throw new UserError('--port must be a port number from 1 to 65535', 2);
  const sites = ctx.config.replication.sites;
  if (Object.keys(sites).length > 0 && !(options.site in sites)) {
    throw new UserError(`site '${options.site}' is not described in replication.sites (described: ${Object.keys(sites).join(', ')}); databases may only run at described sites`, 2);
  }
  const configured = ctx.config.replication.nodes[options.name]?.site;
  if (configured !== undefined && configured !== options.site) {
    throw new UserError(`replication.nodes.${options.name}.site says '${configured}', not '${options.site}'; make them agree`, 2);
  }
  return {
    ...target,
    identityFile: resolve(options.sshKey),
    knownHostsFile: resolve(options.knownHosts),
    dataDir: options.dataDir.replace(/\/+$/, ''),
    pgBin: options.pgBin ?? ctx.tools.binDir,
  };
}

/** Refuses (exit 4) when the remote PostgreSQL is missing or of another major version than the primary. */
async function assertSameVersion(node: RemoteNode, primary: LocalCluster): Promise<string> {
  const r = await runRemote(node, `${shellQuote(join(node.pgBin, 'postgres'))} --version`);
  const remote = /\(PostgreSQL\) (\d+)\.?(\d*)/.exec(r.stdout);
  if (r.status !== 0 || !remote?.[1]) {
    throw new UserError(`there is no PostgreSQL server in ${node.pgBin} on ${describeRemote(node)} (${(r.stderr || r.stdout).trim() || `exit ${r.status}`}); install it or give --pg-bin`, 4);
  }
  const primaryVersion = await withNodeClient(primary, async (c) => (await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v ?? '0');
  const primaryMajor = Math.floor(Number(primaryVersion) / 10000);
  if (Number(remote[1]) !== primaryMajor) {
    throw new UserError(
      `${describeRemote(node)} has PostgreSQL ${remote[1]}${remote[2] ? `.${remote[2]}` : ''} in ${node.pgBin}, the primary runs ${primaryMajor}: a standby needs the same major version (install PostgreSQL ${primaryMajor} there, or give its --pg-bin)`,
      4,
    );
  }
  return `${remote[1]}.${remote[2] ?? '0'}`;
}

/** Makes sure the data directory there is new or empty; returns whether this command created it. */
async function claimDataDir(node: RemoteNode): Promise<boolean> {
  const dir = shellQuote(node.dataDir);
  const out = await mustRunRemote(
    node,
    'checking the data directory',
    `if [ -e ${dir} ]; then if [ ! -d ${dir} ] || [ -n "$(ls -A ${dir} 2>&1)" ]; then echo not-empty; exit 0; fi; chmod 700 ${dir} && echo empty; else mkdir -p ${dir} && chmod 700 ${dir} && echo created; fi`,
  );
  if (out.trim() === 'not-empty') throw new UserError(`${node.dataDir} on ${describeRemote(node)} is not empty; give a new or empty --data-dir, or empty it first`, 4);
  return out.trim() === 'created';
}

/** Removes what an unfinished add made there: the data directory's contents (and the directory if it was made), the secrets. */
async function cleanRemote(node: RemoteNode, createdDir: boolean): Promise<void> {
  const dir = shellQuote(node.dataDir);
  const secrets = shellQuote(`${node.dataDir}.replication`);
  await runRemote(node, createdDir ? `rm -rf ${dir} ${secrets}` : `rm -rf ${secrets}; find ${dir} -mindepth 1 -delete`);
}

/** Sends the replication secrets over the SSH channel (stdin) into 0600 files in a 0700 directory beside PGDATA. */
export async function sendSecrets(ctx: ReplicationContext, node: RemoteNode, credentialVersion: number): Promise<void> {
  const local = replicationFiles(ctx);
  const remote = nodeReplicationFiles(ctx, { remote: node });
  const server = await nodeServerCertificate(ctx, node.host);
  const contents: [string, string][] = [
    [remote.caCert, readFileSync(local.caCert, 'utf8')],
    [remote.clientCert, readFileSync(local.clientCert, 'utf8')],
    [remote.clientKey, readFileSync(local.clientKey, 'utf8')],
    [remote.passfile, `*:*:*:${REPLICATION_ROLE}:${replicationPassword(ctx.masterKey, credentialVersion)}\n`],
    [remote.serverCert, server.cert],
    [remote.serverKey, server.key],
  ];
  const dir = shellQuote(remote.dir);
  await mustRunRemote(node, 'sending the replication secrets', `umask 077\nmkdir -p ${dir} && chmod 700 ${dir} || exit 1\n${writeFilesScript(contents)}`);
}

/** pg_basebackup run there into the (empty) data directory, over TLS to the primary (at `primaryHost`) through the slot. */
export async function remoteBaseBackup(ctx: ReplicationContext, node: RemoteNode, primary: LocalCluster, name: string, primaryHost = remoteUpstreamHost(ctx, primary)): Promise<void> {
  const files = nodeReplicationFiles(ctx, { remote: node });
  const conninfo = upstreamConninfo(files, primary.port, name, primaryHost);
  const r = await runRemote(
    node,
    `PGPASSFILE=${shellQuote(files.passfile)} ${shellQuote(join(node.pgBin, 'pg_basebackup'))} --pgdata ${shellQuote(node.dataDir)} --dbname ${shellQuote(conninfo)} --wal-method stream --slot ${slotName(name)} --checkpoint fast --no-password`,
    { timeoutMs: 3_600_000 },
  );
  if (r.status !== 0) throw explainUnreachable(r.stderr, { name, node, host: primaryHost, port: primary.port }) ?? new UserError(`the base backup of node ${name} on ${describeRemote(node)} failed: ${r.stderr.trim().split('\n').slice(-3).join('; ')}`);
}

/** Builds a standby of the primary on another machine over SSH, starts it there and waits until it streams. */
export async function addRemoteStandby(ctx: ReplicationContext, options: RemoteStandbyOptions): Promise<AddedRemoteStandby> {
  const node = remoteNodeFrom(ctx, options);
  const { name } = options;
  return withTopologyLock(ctx.dir, async () => {
    const started = performance.now();
    const topology = loadTopology(ctx);
    assertNoPendingChange(topology);
    if (topology.nodes[name]) throw new UserError(`node ${name} already exists (a ${topology.nodes[name].role}); choose another name`, 4);
    const clash = Object.entries(topology.nodes).find(([, n]) => n.port === options.port && (n.remote?.host ?? '127.0.0.1') === node.host);
    if (clash) throw new UserError(`port ${options.port} on ${node.host} belongs to node ${clash[0]}`, 4);
    await assertSinglePrimary(ctx, topology);
    const primary = await writablePrimary(ctx, topology);
    const primaryHost = await primaryHostFor(ctx, primary, node, name, options.primaryHost ?? topology.nodes[topology.primary]?.connectHost);
    await assertSameVersion(node, primary);
    const createdDir = await claimDataDir(node);
    const standby = new RemoteCluster({ port: options.port, tools: ctx.tools, runAs: ctx.runAs, superuserPassword: ctx.superuserPassword, maxSlotWalKeepSizeMb: ctx.config.replication.maxSlotWalKeepSizeMb, ca: replicationFiles(ctx).caCert }, node);
    let slotMade = false;
    try {
      await ensureReplicationAccess(ctx, primary, topology.credentialVersion);
      await ensureSlot(primary, name);
      slotMade = true;
      await sendSecrets(ctx, node, topology.credentialVersion);
      await remoteBaseBackup(ctx, node, primary, name, primaryHost);
      const files = nodeReplicationFiles(ctx, { remote: node });
      // The copy names the primary's certificate files, which are not on that machine: its own instead.
      standby.configureCopy(
        { primaryConninfo: upstreamConninfo(files, primary.port, name, primaryHost), slotName: slotName(name) },
        // With backups configured, WAL archiving through the node's spool (wal-spool.ts): right already when it is promoted.
        { ssl_cert_file: files.serverCert, ssl_key_file: files.serverKey, ssl_ca_file: files.caCert, ...remoteArchiveSettings(ctx.config, node) },
      );
      await standby.start();
      await waitStreaming(primary, standby, name);
    } catch (err) {
      await standby.stop('immediate').catch(() => undefined);
      if (slotMade) await dropSlot(primary, name).catch(() => undefined);
      await cleanRemote(node, createdDir).catch(() => undefined);
      throw err;
    }
    const site = siteOf(ctx.config, name, options.site);
    const next: Topology = {
      ...topology,
      nodes: { ...topology.nodes, ...recordedConnectHost(topology, options.primaryHost), [name]: { port: options.port, role: 'standby', upstream: topology.primary, addedAt: new Date().toISOString(), remote: node, site } },
    };
    writeTopology(ctx.dir, next);
    await applySynchronousNames(primary, next);
    ctx.log.info({ node: name, remote: describeRemote(node), port: options.port }, 'remote standby added');
    return { name, port: options.port, pgData: node.dataDir, upstream: topology.primary, remote: describeRemote(node), site, tookMs: Math.round(performance.now() - started) };
  });
}
