/**
 * Rebuilding a node on another machine as a standby of the primary, over SSH: `cluster rebuild c`,
 * and the old primary's rejoin at the end of a switchover away from a remote node.
 *
 * 1. The machine must answer over SSH and its data directory must be a PostgreSQL cluster, empty
 *    or missing (anything else is refused: it is not ours to replace).
 * 2. The node is stopped; its slot on the primary must then be free (another server streaming as
 *    that node is refused, and the node is started again as it was).
 * 3. The replication secrets are sent again (the passfile with the current password, certificates).
 * 4. pg_rewind runs there against the primary (at the address standbys there reach it at), as the
 *    administrator through a passfile that exists only for the run (sent on stdin, removed by the
 *    same script). Every managed cluster has data checksums and wal_log_hints, which pg_rewind needs.
 *    The administrator's login from that machine needs its address in the primary's client
 *    networks; without it pg_rewind fails and the base backup below (a replication connection) is made.
 * 5. If that fails, or with `fresh`, a new base backup is made there: the old directory is moved
 *    aside and comes back if the copy fails, so a failed rebuild leaves the node as it was (fenced
 *    again when it was fenced).
 * 6. The copy gets its own port, address and certificate files, a slot, starts, and must stream.
 */
import { join } from 'node:path';
import { UserError } from '../../errors.ts';
import { remoteArchiveSettings } from '../backup/physical/wal-spool.ts';
import { SUPERUSER, type LocalCluster } from '../postgres/local-cluster.ts';
import { ensureReplicationAccess, nodeReplicationFiles, upstreamConninfo } from './access.ts';
import type { ReplicationContext } from './context.ts';
import { ensureSlot } from './copy.ts';
import { poll, withNodeClient } from './probe.ts';
import { remoteUpstreamHost } from './reachability.ts';
import type { RemoteCluster } from './remote-cluster.ts';
import { describeRemote, mustRunRemote, runRemote, shellQuote, writeFilesScript } from './remote-shell.ts';
import { remoteBaseBackup, sendSecrets } from './remote-standby.ts';
import { waitStreaming } from './standby.ts';
import { slotName, type Topology } from './topology.ts';

type DataDirState = 'cluster' | 'empty' | 'missing';

/** How long the slot may stay in use after the node stopped (its WAL sender noticing) before another server is assumed. */
const SLOT_RELEASE_MS = 5_000;

/**
 * One SSH login: what the data directory holds and whether PostgreSQL runs in it. Refuses (exit 4)
 * an unreachable machine, or a data directory that holds something other than a cluster.
 */
async function inspect(name: string, node: RemoteCluster): Promise<{ state: DataDirState; running: boolean }> {
  const dir = shellQuote(node.pgData);
  let out: string;
  try {
    out = await mustRunRemote(
      node.remote,
      'checking the data directory',
      [
        `if [ ! -e ${dir} ]; then s=missing; elif [ -f ${shellQuote(join(node.pgData, 'PG_VERSION'))} ]; then s=cluster; elif [ -d ${dir} ] && [ -z "$(ls -A ${dir} 2>&1)" ]; then s=empty; else s=other; fi`,
        `r=stopped; [ $s = cluster ] && ${shellQuote(join(node.remote.pgBin, 'pg_ctl'))} status --pgdata ${dir} >/dev/null 2>&1 && r=running`,
        'echo "$s $r"',
      ].join('\n'),
    );
  } catch (err) {
    throw new UserError(`node ${name} cannot be rebuilt: ${(err as Error).message}; nothing was changed`, 4);
  }
  const [state, running] = out.trim().split(' ');
  if (state === 'other') {
    throw new UserError(`${node.describe()} holds something that is not a PostgreSQL cluster; node ${name} is not rebuilt over it (move it away there, then run the rebuild again)`, 4);
  }
  return { state: state as DataDirState, running: running === 'running' };
}

/** Whether the slot of `name` on the primary is in use (a WAL sender streams through it). */
async function slotActive(primary: LocalCluster, name: string): Promise<boolean> {
  return withNodeClient(primary, async (c) => (await c.query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slotName(name)])).rows[0]?.active === true);
}

/** pg_rewind run there against the primary; the administrator's password goes in a passfile the same script removes. */
async function remoteRewind(ctx: ReplicationContext, node: RemoteCluster, primary: LocalCluster, upstreamHost: string): Promise<'rewound' | 'not-needed'> {
  const files = nodeReplicationFiles(ctx, { remote: node.remote });
  const passfile = join(files.dir, `rewind-${process.pid}-${Date.now()}.pgpass`);
  const source = `host=${upstreamHost} port=${primary.port} user=${SUPERUSER} dbname=postgres connect_timeout=5 sslmode=verify-full sslrootcert=${files.caCert}`;
  const out = await mustRunRemote(
    node.remote,
    'pg_rewind',
    [
      // A crashed node is brought to a clean state by pg_rewind itself, in single-user mode, which refuses standby.signal.
      `rm -f ${shellQuote(join(node.pgData, 'TASKFLOW_FENCED'))} ${shellQuote(join(node.pgData, 'standby.signal'))}`,
      // The passfile goes whatever happens: at exit, on a signal, and left over from a run cut off before.
      `rm -f ${shellQuote(files.dir)}/rewind-*.pgpass`,
      `trap 'rm -f ${shellQuote(passfile)}' EXIT`,
      "trap 'exit 1' HUP INT TERM",
      writeFilesScript([[passfile, `*:*:*:${SUPERUSER}:${ctx.superuserPassword}`]]),
      `PGPASSFILE=${shellQuote(passfile)} ${shellQuote(join(node.remote.pgBin, 'pg_rewind'))} --target-pgdata ${shellQuote(node.pgData)} --source-server ${shellQuote(source)} </dev/null 2>&1`,
    ].join('\n'),
    { timeoutMs: 3_600_000 },
  );
  return /no rewind required/.test(out) ? 'not-needed' : 'rewound';
}

/** Moves the node's server logs aside there (`<pgdata>.logs-<time>`), so what happened to it stays readable. */
async function keepRemoteLogs(node: RemoteCluster): Promise<string | null> {
  const kept = `${node.pgData}.logs-${new Date().toISOString().replaceAll(':', '-')}`;
  const logDir = shellQuote(join(node.pgData, 'log'));
  const out = await mustRunRemote(node.remote, 'keeping the server logs', `if [ -d ${logDir} ]; then mv ${logDir} ${shellQuote(kept)} && echo kept; fi`);
  return out.trim() === 'kept' ? kept : null;
}

/**
 * A fresh base backup there. The old directory is moved aside first and back if the copy fails
 * (a directory that could not be moved aside is never deleted).
 */
async function replaceWithBaseBackup(ctx: ReplicationContext, name: string, node: RemoteCluster, primary: LocalCluster, upstreamHost: string): Promise<void> {
  const dir = shellQuote(node.pgData);
  const aside = shellQuote(`${node.pgData}.replaced-${Date.now()}`);
  /** Whether the old directory was moved aside; null while nothing was touched. */
  let moved: boolean | null = null;
  try {
    const out = await mustRunRemote(
      node.remote,
      'moving the old data directory aside',
      `if [ -e ${dir} ]; then mv ${dir} ${aside} || exit 1; echo moved; fi\nmkdir -p ${dir} && chmod 700 ${dir} || { rmdir ${dir} 2>/dev/null; [ -e ${aside} ] && mv ${aside} ${dir}; exit 1; }`,
    );
    moved = out.trim() === 'moved';
    await ensureSlot(primary, name);
    await remoteBaseBackup(ctx, node.remote, primary, name, upstreamHost);
  } catch (err) {
    if (moved !== null) await runRemote(node.remote, moved ? `rm -rf ${dir} && mv ${aside} ${dir}` : `rm -rf ${dir}`).catch(() => undefined);
    throw err;
  }
  await runRemote(node.remote, `rm -rf ${aside}`).catch(() => undefined);
}

/** Refuses (exit 4) when the slot of `name` stays in use after the node stopped: another server streams as that node. */
async function assertSlotReleased(primary: LocalCluster, primaryName: string, name: string, node: RemoteCluster): Promise<void> {
  const released = await poll(async () => ((await slotActive(primary, name)) ? undefined : true), SLOT_RELEASE_MS, 200);
  if (!released) {
    throw new UserError(
      `the replication slot ${slotName(name)} on ${primaryName} is in use by another server although node ${name} (${node.describe()}) is stopped (or by a connection of the node's that ended without the primary noticing yet: it gives up after wal_sender_timeout); stop that server, or wait a minute, then run the rebuild again`,
      4,
    );
  }
}

/**
 * The stopped node rewound or copied, configured, started and streaming. On any failure it is
 * stopped and made what it was: fenced again if it was fenced, else a standby of the primary.
 */
async function rebuildStopped(
  ctx: ReplicationContext,
  topology: Topology,
  options: { name: string; node: RemoteCluster; primary: LocalCluster; fresh: boolean; state: DataDirState },
): Promise<{ method: 'rewind' | 'base-backup'; keptLogs: string | null }> {
  const { name, node, primary, state } = options;
  await ensureReplicationAccess(ctx, primary, topology.credentialVersion);
  await sendSecrets(ctx, node.remote, topology.credentialVersion);
  const files = nodeReplicationFiles(ctx, { remote: node.remote });
  // The address recorded for the primary when it was given (`--primary-host`), so a node rebuilt after a role change reaches it where it was told to.
  const upstreamHost = remoteUpstreamHost(ctx, primary, topology.nodes[topology.primary]);
  const conninfo = upstreamConninfo(files, primary.port, name, upstreamHost);
  const keptLogs = state === 'cluster' ? await keepRemoteLogs(node) : null;
  let method: 'rewind' | 'base-backup' = 'base-backup';
  try {
    if (!options.fresh && state === 'cluster') {
      try {
        await remoteRewind(ctx, node, primary, upstreamHost);
        method = 'rewind';
      } catch (err) {
        ctx.log.warn({ node: name, err: (err as Error).message }, 'pg_rewind there failed; making a fresh base backup instead');
      }
    }
    if (method === 'base-backup') await replaceWithBaseBackup(ctx, name, node, primary, upstreamHost);
    else await ensureSlot(primary, name);
    // A rewound or copied directory carries the primary's configuration: its own port, address and certificate files instead.
    // …and, with backups configured, WAL archiving through its own spool (wal-spool.ts).
    node.configureCopy(
      { primaryConninfo: conninfo, slotName: slotName(name) },
      { ssl_cert_file: files.serverCert, ssl_key_file: files.serverKey, ssl_ca_file: files.caCert, ...remoteArchiveSettings(ctx.config, node.remote) },
    );
    await node.start();
    await waitStreaming(primary, node, name);
  } catch (err) {
    await node.stop('immediate').catch(() => undefined);
    const record = topology.nodes[name];
    try {
      if (record?.role === 'fenced') node.fence(record.fence?.reason ?? `fenced; its rebuild failed at ${new Date().toISOString()}`);
      else node.writeStandbySettings({ primaryConninfo: conninfo, slotName: slotName(name) });
    } catch (e) {
      ctx.log.warn({ node: name, err: (e as Error).message }, 'the node could not be made what it was before the rebuild');
    }
    throw err;
  }
  return { method, keptLogs };
}

/**
 * Stops the remote `node`, rewinds it to follow `primary` (or copies it afresh) there, configures
 * it as a standby, starts it and waits until it streams. The topology is the caller's to write.
 * A refusal or failure leaves it as it was (a standby that ran runs again).
 */
export async function rejoinRemote(
  ctx: ReplicationContext,
  topology: Topology,
  options: { name: string; node: RemoteCluster; primary: LocalCluster; fresh: boolean },
): Promise<{ method: 'rewind' | 'base-backup'; keptLogs: string | null }> {
  const { name, node, primary } = options;
  const { state, running: wasRunning } = await inspect(name, node);
  if (wasRunning) await node.stop('fast').catch(() => node.stop('immediate'));
  try {
    await assertSlotReleased(primary, topology.primary, name, node);
    const result = await rebuildStopped(ctx, topology, { ...options, state });
    ctx.log.info({ node: name, remote: describeRemote(node.remote), method: result.method }, 'remote node rebuilt');
    return result;
  } catch (err) {
    if (wasRunning && topology.nodes[name]?.role === 'standby') await node.start().catch(() => undefined);
    throw err;
  }
}
