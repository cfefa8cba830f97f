/**
 * Making a node a copy of its upstream: a fresh base backup (pg_basebackup over TLS as the
 * replication role, through the standby's slot), or pg_rewind of a node that used to be primary,
 * which copies only what changed since the timelines forked.
 */
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UserError } from '../../errors.ts';
import { escapeLiteral } from '../postgres/connection.ts';
import { SUPERUSER, type LocalCluster } from '../postgres/local-cluster.ts';
import { runTool } from '../postgres/tools.ts';
import { replicationFiles, upstreamConninfo, type ReplicationFiles } from './access.ts';
import { clusterAt, extraTool, type ReplicationContext } from './context.ts';
import { withNodeClient } from './probe.ts';
import { slotName } from './topology.ts';

/**
 * Creates the physical slot `name` streams through on `upstream`, reserving WAL from now on. A
 * leftover inactive slot of that name is replaced; one in use means another server streams as
 * that node, which is refused.
 */
export async function ensureSlot(upstream: LocalCluster, name: string): Promise<void> {
  const slot = slotName(name);
  await withNodeClient(upstream, async (client) => {
    const existing = await client.query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if (existing.rows[0]?.active) {
      throw new UserError(`the replication slot ${slot} on port ${upstream.port} is in use by another server; stop it before adding or rebuilding node ${name}`, 4);
    }
    if (existing.rows[0]) await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
    await client.query('SELECT pg_create_physical_replication_slot($1, true)', [slot]);
  });
}

/** Drops the slot of node `name` on `upstream`, ending its WAL sender first, so no WAL is kept for a node that is gone. */
export async function dropSlot(upstream: LocalCluster, name: string): Promise<void> {
  const slot = slotName(name);
  await withNodeClient(upstream, async (client) => {
    await client.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL', [slot]);
    for (let i = 0; i < 50; i++) {
      const r = await client.query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
      if (!r.rows[0]) return;
      if (!r.rows[0].active) {
        await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new UserError(`the replication slot ${slot} on port ${upstream.port} stayed in use; drop it with pg_drop_replication_slot(${escapeLiteral(slot)})`);
  });
}

/**
 * Writes what makes a stopped copy the standby `name` of `upstream`: its own
 * port in taskflow.conf, standby.signal, primary_conninfo and primary_slot_name, and the
 * certificate files of this machine (a copy of a primary on another machine names that one's).
 */
export function configureStandby(cluster: LocalCluster, files: ReplicationFiles, name: string, upstream: LocalCluster): void {
  cluster.unfence();
  cluster.writeSettings();
  cluster.writeStandbySettings({
    primaryConninfo: upstreamConninfo(files, upstream.port, name, upstream.listenAddress),
    slotName: slotName(name),
    extra: { ssl_cert_file: files.serverCert, ssl_key_file: files.serverKey, ssl_ca_file: files.caCert },
  });
}

/**
 * Copies the upstream into `pgData` (which must not exist) with pg_basebackup, streaming the WAL
 * it needs through the slot of `name`. The copy is made in a scratch directory beside it and
 * renamed into place only when complete and configured, so a half-made copy never looks real.
 */
export async function baseBackup(ctx: ReplicationContext, options: { upstream: LocalCluster; name: string; pgData: string; port: number }): Promise<LocalCluster> {
  const files = replicationFiles(ctx);
  const scratch = `${options.pgData}.basebackup-${randomBytes(4).toString('hex')}`;
  mkdirSync(dirname(scratch), { recursive: true });
  mkdirSync(scratch, { mode: 0o700 });
  if (ctx.runAs) chownSync(scratch, ctx.runAs.uid, ctx.runAs.gid);
  try {
    await runTool(
      ctx.tools.path('pg_basebackup'),
      [
        '--pgdata', scratch,
        '--dbname', upstreamConninfo(files, options.upstream.port, options.name, options.upstream.listenAddress),
        '--wal-method', 'stream',
        '--slot', slotName(options.name),
        '--checkpoint', 'fast',
        '--no-password',
      ],
      { runAs: ctx.runAs, env: { PGPASSFILE: files.passfile }, timeoutMs: 3_600_000 },
    );
    const copy = clusterAt(ctx, scratch, options.port);
    configureStandby(copy, files, options.name, options.upstream);
    renameSync(scratch, options.pgData);
  } catch (err) {
    rmSync(scratch, { recursive: true, force: true });
    throw new UserError(`the base backup of node ${options.name} failed: ${(err as Error).message}`);
  }
  return clusterAt(ctx, options.pgData, options.port);
}

/**
 * Rewinds a stopped former primary to where its timeline forked from the upstream's (pg_rewind,
 * connecting as the administrator through a passfile that exists only for the run). A crashed
 * target is first brought to a clean shutdown by pg_rewind itself, which is why the fence comes
 * off first (single-user mode refuses standby.signal).
 */
export async function rewind(ctx: ReplicationContext, target: LocalCluster, upstream: LocalCluster): Promise<'rewound' | 'not-needed'> {
  target.unfence();
  const passfile = join(replicationFiles(ctx).dir, `rewind-${randomBytes(6).toString('hex')}.pgpass`);
  writeFileSync(passfile, `*:*:*:${SUPERUSER}:${ctx.superuserPassword}\n`, { mode: 0o600 });
  if (ctx.runAs) chownSync(passfile, ctx.runAs.uid, ctx.runAs.gid);
  try {
    const { stdout, stderr } = await runTool(
      extraTool(ctx, 'pg_rewind'),
      ['--target-pgdata', target.pgData, '--source-server', `host=${upstream.listenAddress} port=${upstream.port} user=${SUPERUSER} dbname=postgres connect_timeout=5`],
      { runAs: ctx.runAs, env: { PGPASSFILE: passfile }, timeoutMs: 3_600_000 },
    );
    return /no rewind required/.test(stdout + stderr) ? 'not-needed' : 'rewound';
  } finally {
    rmSync(passfile, { force: true });
  }
}

/** Moves a node's server logs aside before its data is replaced, so what happened to it stays readable. */
export function keepLogs(cluster: LocalCluster): string | null {
  const logDir = join(cluster.pgData, 'log');
  if (!existsSync(logDir)) return null;
  const kept = `${cluster.pgData}.logs-${new Date().toISOString().replaceAll(':', '-')}`;
  renameSync(logDir, kept);
  return kept;
}
