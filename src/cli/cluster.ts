/** `taskflow cluster …`: standbys, replication mode, status, failover, switchover and rebuild of the managed cluster. */
import { Command } from 'commander';
import { pino } from 'pino';
import { UserError } from '../errors.ts';
import { createLogger } from '../platform/log.ts';
import { openReplication, type ReplicationContext } from '../platform/replication/context.ts';
import { failover } from '../platform/replication/failover.ts';
import { formatBytes } from '../platform/replication/lsn.ts';
import { replicationMetrics } from '../platform/replication/metrics.ts';
import { setMode } from '../platform/replication/mode.ts';
import { addStandby, rebuildNode, removeNode, startNodes, stopNodes, type AddedStandby } from '../platform/replication/standby.ts';
import { addRemoteStandby, remoteStandbyOptions, type RemoteStandbyFlags } from '../platform/replication/remote-standby.ts';
import { rotateReplicationPassword, undeliveredError } from '../platform/replication/rotate-password.ts';
import { clusterStatus, type ClusterStatus } from '../platform/replication/status.ts';
import { switchover } from '../platform/replication/switchover.ts';
import { configFrom, withGlobalOptions, type GlobalOptions } from './context.ts';
import { note, printFields, printJson, printTable } from './output.ts';

type Opts = GlobalOptions & { json?: boolean };

async function withReplication<T>(opts: GlobalOptions, fn: (ctx: ReplicationContext) => Promise<T>): Promise<T> {
  const config = configFrom(opts);
  const log = createLogger({ level: opts.logLevel ?? 'warn', destination: pino.destination({ fd: 2, sync: true }) });
  return fn(openReplication(config, log));
}

function leaf(parent: Command, name: string, description: string): Command {
  return withGlobalOptions(parent.command(name).description(description));
}

function bytes(value: number | null): string | null {
  return value === null ? null : formatBytes(value);
}

function printStatus(status: ClusterStatus): void {
  const sync = status.synchronousStandbyNames ? ` (synchronous_standby_names ${status.synchronousStandbyNames})` : '';
  process.stdout.write(`primary ${status.primary}; mode ${status.mode}${sync}${status.certificatesExpireAt ? `; replication certificates valid until ${status.certificatesExpireAt.slice(0, 10)}` : ''}\n`);
  printTable(
    ['node', 'role', 'state', 'site', 'port', 'timeline', 'lsn', 'lag', 'lag s', 'sync', 'tls', 'slot', 'active', 'restart lsn', 'wal kept'],
    status.nodes.map((n) => [
      n.name,
      n.role,
      n.actual === 'standby' && n.replayPaused ? 'standby (paused)' : n.actual,
      n.site,
      n.port,
      n.timeline,
      n.lsn,
      bytes(n.lagBytes),
      n.lagSeconds,
      n.syncState,
      n.tls,
      n.slot?.name ?? null,
      n.slot ? (n.slot.active ? 'yes' : 'no') : null,
      n.slot?.restartLsn ?? null,
      bytes(n.slot?.walRetainedBytes ?? null),
    ]),
  );
  if (status.lastChange) {
    const c = status.lastChange;
    note(`last change: ${c.action} from ${c.from} to ${c.to} at ${c.finishedAt} (timeline ${c.timeline ?? '?'})`);
  }
  for (const problem of status.problems) note(`problem: ${problem}`);
}

export function clusterCommand(): Command {
  const cluster = new Command('cluster').description('replication of the managed PostgreSQL: standbys, sync or async, failover and switchover (docs/high-availability.md)');

  leaf(cluster, 'status', "each node's role, site, timeline, lag and slot, and the replication mode")
    .option('--json', 'print JSON')
    .option('--metrics', 'print Prometheus metrics (text exposition format)')
    .action(async (opts: Opts & { metrics?: boolean }) => {
      if (opts.json && opts.metrics) throw new UserError('--json and --metrics are two formats of the same status: choose one', 2);
      await withReplication(opts, async (ctx) => {
        const status = await clusterStatus(ctx);
        if (opts.json) printJson(status);
        else if (opts.metrics) process.stdout.write((await replicationMetrics(status)).text);
        else printStatus(status);
        // The status is shown either way; two primaries are a conflict the caller must see in the exit code.
        if (status.splitBrain) process.exitCode = 4;
      });
    });

  const standby = new Command('standby').description('add and remove standbys');
  cluster.addCommand(standby);
  leaf(standby, 'add', 'build a standby of the primary (pg_basebackup over TLS, a replication slot), start it and wait until it streams')
    .argument('<name>', 'node name: a lower-case letter, then up to 29 lower-case letters, digits or _; its data goes to <data-dir>/postgres/<name>')
    .option('--port <port>', 'port of the new node (default: a free one)')
    .option('--remote <user@host[:port]>', 'build it on another machine, reached over SSH as this user (docs/high-availability.md#remote-standbys)')
    .option('--ssh-key <file>', 'with --remote: the private key to log in with')
    .option('--known-hosts <file>', "with --remote: known_hosts holding the machine's host key")
    .option('--pgdata <dir>', 'with --remote: its data directory there (new or empty)')
    .option('--site <site>', 'with --remote: the site it runs at')
    .option('--pg-bin <dir>', 'with --remote: the PostgreSQL server tools there (default: the same directory as here)')
    .option('--primary-host <host>', "with --remote: the address or DNS name the standby reaches the primary at (default: the first of postgres.listenAddresses that is not loopback)")
    .option('--json', 'print JSON')
    .action(async (name: string, opts: Opts & RemoteStandbyFlags & { port?: string }) => {
      const port = opts.port === undefined ? undefined : Number(opts.port);
      if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) throw new UserError('--port must be a port number from 1 to 65535', 2);
      await withReplication(opts, async (ctx) => {
        const added: AddedStandby & { remote?: string } = opts.remote !== undefined ? await addRemoteStandby(ctx, remoteStandbyOptions(name, port, opts)) : await addStandby(ctx, { name, ...(port ? { port } : {}) });
        if (opts.json) printJson(added);
        else note(`standby ${added.name} streams from ${added.upstream} on port ${added.port} (data in ${added.remote ? `${added.remote}:` : ''}${added.pgData}); built in ${added.tookMs} ms`);
      });
    });
  leaf(standby, 'remove', 'stop a standby or fenced node, drop its slot and delete its data directory')
    .argument('<name>')
    .option('--yes', 'confirm: its data directory is deleted')
    .action(async (name: string, opts: Opts & { yes?: boolean }) => {
      if (!opts.yes) throw new UserError(`removing node ${name} deletes its data directory; add --yes to confirm`, 2);
      await withReplication(opts, async (ctx) => {
        await removeNode(ctx, name);
        note(`node ${name} removed`);
      });
    });

  leaf(cluster, 'mode', 'switch between asynchronous and synchronous replication (no restart, no rebuild)')
    .argument('<mode>', 'sync (a commit waits until a standby has it) or async')
    .option('--force', 'switch to sync even when no standby is streaming now (commits wait until one is)')
    .option('--json', 'print JSON')
    .action(async (mode: string, opts: Opts & { force?: boolean }) => {
      if (mode !== 'sync' && mode !== 'async') throw new UserError(`mode must be sync or async, not '${mode}'`, 2);
      await withReplication(opts, async (ctx) => {
        const result = await setMode(ctx, mode, { force: opts.force ?? false });
        if (opts.json) printJson(result);
        else note(`replication is ${result.mode}${result.synchronousStandbyNames ? `: commits wait for ${result.synchronousStandbyNames}` : ''}`);
      });
    });

  leaf(cluster, 'failover', 'promote a standby because the primary is lost; the old primary is fenced')
    .requiredOption('--to <node>', 'the standby to promote')
    .option('--force', 'promote even when the standby lacks committed transactions of the old primary that may have been acknowledged, or when that cannot be told (they are lost)')
    .option('--json', 'print JSON')
    .action(async (opts: Opts & { to: string; force?: boolean }) => {
      await withReplication(opts, async (ctx) => {
        const result = await failover(ctx, { to: opts.to, force: opts.force ?? false });
        if (opts.json) printJson(result);
        else {
          const gap = result.gap?.known ? `; WAL ${result.to} never received: ${formatBytes(result.gap.missingBytes)}, ${result.gap.missingCommits} committed transaction(s)` : '';
          note(
            `${result.resumed ? 'finished the interrupted failover: ' : ''}${result.to} is the primary (timeline ${result.timeline ?? '?'}); ${result.from} is fenced (${result.oldPrimary === 'stopped' ? 'it was stopped' : 'it was down'})${gap}; took ${result.tookMs} ms`,
          );
          const d = result.discarded;
          if (d) {
            const what = `${d.commits} ${d.acknowledged === 'no' ? 'unacknowledged commit(s)' : 'committed transaction(s), possibly acknowledged,'} (${formatBytes(d.bytes)} of WAL${d.lastCommitAt ? `, the last made at ${d.lastCommitAt}` : ''})`;
            note(d.acknowledged === 'no' ? `discarded ${what} that ${result.to} never received: ${d.why}` : `lost by --force: ${what}`);
          }
          note(`make ${result.from} a standby again with 'taskflow cluster rebuild ${result.from}'`);
        }
      });
    });

  leaf(cluster, 'switchover', 'move the primary role to a standby with no data loss; the old primary follows the new one')
    .option('--to <node>', 'the standby to promote (needed when there are several)')
    .option('--json', 'print JSON')
    .action(async (opts: Opts & { to?: string }) => {
      await withReplication(opts, async (ctx) => {
        const result = await switchover(ctx, opts.to === undefined ? {} : { to: opts.to });
        if (opts.json) printJson(result);
        else {
          printFields([
            ['primary', `${result.to} (timeline ${result.timeline ?? '?'})`],
            ['old primary', result.rejoined ? `${result.from}, now a standby of ${result.to}` : `${result.from}, fenced: ${result.rejoinError ?? ''}`],
            ['final lsn', result.finalLsn],
            ['writes stopped', `${result.writeStopMs} ms`],
            ['took', `${result.tookMs} ms`],
          ]);
        }
        if (!result.rejoined) throw new UserError(`the switchover is done, but ${result.from} did not rejoin; run 'taskflow cluster rebuild ${result.from}'`);
      });
    });

  leaf(cluster, 'rebuild', 'make a fenced old primary (or a broken standby) a standby of the primary: pg_rewind, else a fresh base backup')
    .argument('<node>')
    .option('--fresh', 'always make a fresh base backup')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: Opts & { fresh?: boolean }) => {
      await withReplication(opts, async (ctx) => {
        const result = await rebuildNode(ctx, { name, fresh: opts.fresh ?? false });
        if (opts.json) printJson(result);
        else note(`${result.name} streams from ${result.upstream} (${result.method}, ${result.tookMs} ms)${result.keptLogs ? `; its earlier logs are in ${result.keptLogs}` : ''}`);
      });
    });

  leaf(cluster, 'rotate-password', "give the replication role a new password and send it to every node's passfile (over SSH to remote ones)")
    .option('--json', 'print JSON')
    .action(async (opts: Opts) => {
      await withReplication(opts, async (ctx) => {
        const result = await rotateReplicationPassword(ctx);
        if (opts.json) printJson(result);
        else {
          printTable(['node', 'where', 'outcome', 'error'], result.nodes.map((n) => [n.name, n.remote ? 'remote' : 'local', n.outcome, n.error ?? null]));
          note(`replication password version ${result.credentialVersion}; took ${result.tookMs} ms`);
        }
        const undelivered = undeliveredError(result);
        if (undelivered) throw undelivered;
      });
    });

  leaf(cluster, 'start', 'start one node, or every node that is not fenced')
    .argument('[node]')
    .action(async (name: string | undefined, opts: Opts) => {
      await withReplication(opts, async (ctx) => {
        for (const r of await startNodes(ctx, name)) note(`${r.name}: ${r.outcome}`);
      });
    });

  leaf(cluster, 'stop', 'stop one node, or every node (the primary first, so standbys receive its last WAL)')
    .argument('[node]')
    .action(async (name: string | undefined, opts: Opts) => {
      await withReplication(opts, async (ctx) => {
        const stopped = await stopNodes(ctx, name);
        note(stopped.length > 0 ? `stopped ${stopped.join(', ')}` : 'nothing was running');
      });
    });

  return cluster;
}
