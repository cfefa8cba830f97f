/**
 * `taskflow restore …`: a whole cluster from the repository alone (disaster recovery), or one
 * tenant to a point in time beside the live cluster; and the databases tenant restores set aside.
 */
import { Command } from 'commander';
import { UserError } from '../errors.ts';
import { loadRestoreIdentity } from '../platform/backup/physical/identity.ts';
import { restoreCluster, type RestoreClusterResult } from '../platform/backup/physical/restore-cluster.ts';
import { restoreTenant, type RestoreTenantResult } from '../platform/backup/physical/restore-tenant.ts';
import { dropAside, listAside } from '../platform/backup/physical/tenant-swap.ts';
import { formatBytes } from '../platform/replication/lsn.ts';
import { cliActor, configFrom, withGlobalOptions, withPlatform, type GlobalOptions } from './context.ts';
import { note, printFields, printJson, printTable } from './output.ts';

/** A point in time with its zone: `2026-11-23T14:05:07Z`, `2026-11-23 15:05:07+01:00`. */
export function parseRestoreTime(text: string): Date {
  const trimmed = text.trim();
  const zone = /(?:Z|[+-]\d\d|[+-]\d\d:?\d\d)$/i.exec(trimmed)?.[0];
  if (!zone || !/^\d{4}-\d\d-\d\d[T ]\d\d:\d\d/.test(trimmed)) {
    throw new UserError(`--at ${JSON.stringify(text)}: give a date and time with its zone, such as 2026-11-23T14:05:07Z or 2026-11-23T15:05:07+01:00`, 2);
  }
  const normalised = trimmed.replace(' ', 'T').replace(/([+-]\d\d)(\d\d)$/, '$1:$2').replace(/([+-]\d\d)$/, '$1:00');
  const at = new Date(normalised);
  if (Number.isNaN(at.getTime())) throw new UserError(`--at ${JSON.stringify(text)} is not a valid time`, 2);
  return at;
}

type TenantOpts = GlobalOptions & { at: string; as?: string; force?: boolean; identityFile?: string; repository?: string; json?: boolean };
type ClusterOpts = GlobalOptions & { at: string; to: string; identityFile?: string; repository?: string; systemId?: string; port?: string; keepRunning?: boolean; json?: boolean };

/** Where a restore got to, as the rows both results share. */
function reachedRows(r: Pick<RestoreTenantResult, 'at' | 'reached' | 'snapshot'>): [string, string | number | null][] {
  return [
    ['restored to', r.at],
    ['last transaction kept', r.reached.lastTransactionAt],
    ['first transaction left out', r.reached.stoppedBeforeCommitAt ?? (r.reached.endOfArchive ? 'none: nothing was committed after it in the archive' : null)],
    ['from snapshot', r.snapshot],
  ];
}

function printTenantResult(r: RestoreTenantResult): void {
  printFields([
    ['tenant', r.restoredInto === r.tenant ? r.tenant : `${r.tenant}, restored as new tenant ${r.restoredInto}`],
    ...reachedRows(r),
    ['database', r.database],
    ['replaced database kept as', r.asideDatabase],
    ['took', `${(r.timings.totalMs ?? 0) / 1000} s`],
  ]);
  if (r.apiToken) note(`API token of ${r.restoredInto} (shown once): ${r.apiToken}`);
  note('every session of the restored tenant was ended: its users sign in again');
}

function printClusterResult(r: RestoreClusterResult): void {
  printFields([
    ['data directory', r.dataDirectory],
    ...reachedRows(r),
    ['timeline', r.reached.timeline],
    ['system identifier', r.systemIdentifier],
    ['port', r.port],
    ['state', r.running ? 'running' : 'stopped cleanly'],
    ['took', `${(r.timings.totalMs ?? 0) / 1000} s`],
  ]);
}

export function restoreCommand(): Command {
  const restore = new Command('restore').description('restore a whole cluster (disaster recovery) or one tenant to a point in time (docs/backups.md)');

  withGlobalOptions(restore.command('tenant'))
    .description("bring one tenant back to a point in time; the other tenants are not touched, the replaced database is kept aside")
    .argument('<slug>', 'the tenant')
    .requiredOption('--at <time>', 'the point in time, with its zone (2026-11-23T14:05:07Z): every transaction committed until then is kept')
    .option('--as <new-slug>', 'restore into a new tenant beside the original instead of replacing it')
    .option('--force', 'disconnect whoever uses the tenant instead of refusing')
    .option('--identity-file <file>', 'the age identity (else TASKFLOW_BACKUP_IDENTITY or TASKFLOW_BACKUP_IDENTITY_FILE)')
    .option('--repository <name>', 'restore from this repository (default: the primary)')
    .option('--json', 'print JSON')
    .action(async (slug: string, opts: TenantOpts) => {
      const at = parseRestoreTime(opts.at);
      const identity = loadRestoreIdentity(opts.identityFile === undefined ? {} : { file: opts.identityFile });
      await withPlatform(opts, async (platform) => {
        const result = await restoreTenant({
          platform, slug, at, identity, actor: cliActor(),
          ...(opts.as !== undefined ? { asSlug: opts.as } : {}),
          ...(opts.force ? { force: true } : {}),
          ...(opts.repository !== undefined ? { repository: opts.repository } : {}),
          ...(opts.json ? {} : { onPhase: (phase: string) => { note(`${phase}…`); } }),
        });
        if (opts.json) printJson(result);
        else printTenantResult(result);
      });
    });

  withGlobalOptions(restore.command('cluster'))
    .description('disaster recovery: restore the whole cluster to a point in time into a new directory, from the repository and the identity alone')
    .requiredOption('--at <time>', 'the point in time, with its zone (2026-11-23T14:05:07Z)')
    .requiredOption('--to <dir>', 'the new data directory (must not exist, or be empty)')
    .option('--identity-file <file>', 'the age identity (else TASKFLOW_BACKUP_IDENTITY or TASKFLOW_BACKUP_IDENTITY_FILE)')
    .option('--repository <name>', 'restore from this repository (default: the primary)')
    .option('--system-id <id>', 'the cluster, when the repository holds several')
    .option('--port <n>', 'port of the restored cluster (default: a free one)')
    .option('--keep-running', 'leave it running (default: stopped cleanly once recovered)')
    .option('--json', 'print JSON')
    .action(async (opts: ClusterOpts) => {
      const at = parseRestoreTime(opts.at);
      const port = opts.port === undefined ? undefined : Number(opts.port);
      if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) throw new UserError('--port must be from 1 to 65535', 2);
      const identity = loadRestoreIdentity(opts.identityFile === undefined ? {} : { file: opts.identityFile });
      // No platform here: the control database may be what was lost.
      const config = configFrom(opts);
      const result = await restoreCluster({
        config, at, to: opts.to, identity,
        ...(opts.repository !== undefined ? { repository: opts.repository } : {}),
        ...(opts.systemId !== undefined ? { systemIdentifier: opts.systemId } : {}),
        ...(port !== undefined ? { port } : {}),
        ...(opts.keepRunning ? { keepRunning: true } : {}),
        ...(opts.json ? {} : { onPhase: (phase: string) => { note(`${phase}…`); } }),
      });
      if (opts.json) printJson(result);
      else printClusterResult(result);
    });

  withGlobalOptions(restore.command('aside'))
    .description('list the databases tenant restores replaced and set aside, or drop one')
    .option('--drop <database>', 'drop this set-aside database for good')
    .option('--json', 'print JSON')
    .action(async (opts: GlobalOptions & { drop?: string; json?: boolean }) => {
      await withPlatform(opts, async (platform) => {
        if (opts.drop !== undefined) {
          await dropAside(platform.target, opts.drop);
          note(`dropped ${opts.drop}`);
          return;
        }
        const rows = await listAside(platform.target);
        if (opts.json) printJson(rows);
        else {
          printTable(['database', 'tenant id', 'set aside at', 'size'], rows.map((r) => [r.database, r.tenantId, r.setAsideAt, formatBytes(r.bytes)]));
          if (rows.length === 0) note('no database is set aside');
        }
      });
    });

  return restore;
}
