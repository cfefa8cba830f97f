/**
 * `taskflow wal …`: the continuous WAL archive. `archive` and `fetch` are what PostgreSQL itself
 * runs (archive_command and restore_command) with a settings file TaskFlow wrote for it; they are
 * hidden from help. `status` is for people: how far the archive reaches and whether it keeps up.
 * `pull` archives what waits in the spools of nodes on other machines (wal-pull.ts).
 */
import { Command } from 'commander';
import { UserError } from '../errors.ts';
import { backupsConfigured } from '../platform/backup/config.ts';
import { checkWalArchive, ensureWalArchiving } from '../platform/backup/physical/wal-archive.ts';
import { pullWalSpools } from '../platform/backup/physical/wal-pull.ts';
import { isSpoolArchiveCommand } from '../platform/backup/physical/wal-spool.ts';
import { addWalAgentCommands } from './wal-agent.ts';
import { withGlobalOptions, withPlatform, type GlobalOptions } from './context.ts';
import { note, printFields, printJson } from './output.ts';

export function walCommand(): Command {
  const wal = new Command('wal').description('the continuous WAL archive (docs/backups.md)');

  addWalAgentCommands(wal);

  withGlobalOptions(wal.command('status'))
    .description('how far the WAL archive reaches, what waits, and whether it fails (raises or resolves its alerts)')
    .option('--install', 'install or refresh archive_command first (done by every snapshot, too)')
    .option('--json', 'print JSON')
    .action(async (opts: GlobalOptions & { json?: boolean; install?: boolean }) => {
      await withPlatform(opts, async (platform) => {
        if (opts.install) {
          const state = await ensureWalArchiving(platform);
          if (!state.installed) throw new UserError(`WAL archiving is not installed: ${state.reason ?? 'unknown'}`, 2);
        }
        const status = await checkWalArchive(platform);
        if (opts.json) {
          printJson(status);
          return;
        }
        printFields([
          ['installed', status.installed ? 'yes' : 'no (archive_command is not taskflow wal archive)'],
          ['archive_command', isSpoolArchiveCommand(status.archiveCommand) ? 'spools here for this host to pull (remote primary)' : null],
          ['archive_mode', status.archiveMode],
          ['archive_timeout', `${status.timeoutSeconds} s`],
          ['last archived', status.lastArchivedWal ? `${status.lastArchivedWal} at ${status.lastArchivedAt ?? '?'}` : null],
          ['archived', status.archivedCount],
          ['writing now', `${status.currentWal} (${status.currentLsn})`],
          ['waiting segments', status.waitingSegments],
          ['lag', `${status.lagSeconds} s`],
          ['failures', status.failedCount > 0 ? `${status.failedCount}, last ${status.lastFailedWal ?? '?'} at ${status.lastFailedAt ?? '?'}` : 0],
        ]);
        if (status.failing) note('the last archive attempt failed: see the PostgreSQL log and taskflow alerts list');
      });
    });

  withGlobalOptions(wal.command('pull'))
    .description("archive what waits in the WAL spools of nodes on other machines (a remote primary's archive_command spools there; taskflow start pulls every backup.remoteWalPullSeconds)")
    .option('--primary-only', "only the primary's spool (default: every remote node's, an old primary's last files too)")
    .option('--json', 'print JSON')
    .action(async (opts: GlobalOptions & { json?: boolean; primaryOnly?: boolean }) => {
      await withPlatform(opts, async (platform) => {
        if (!backupsConfigured(platform.config.backup)) throw new UserError('backups are not configured (docs/backups.md)', 2);
        const reports = await pullWalSpools(platform, { all: opts.primaryOnly !== true, waitMs: 60_000 });
        if (reports === null) throw new UserError('another host has been pulling for a minute; try again later', 4);
        if (opts.json) printJson(reports);
        else if (reports.length === 0) note('no node is on another machine: nothing is spooled');
        for (const r of opts.json ? [] : reports) {
          printFields([
            ['node', `${r.node}${r.primary ? ' (primary)' : ''}`],
            ['archived', `${r.archived} file(s), ${r.bytes} bytes`],
            ['already archived', r.alreadyArchived],
            ['left in the spool', r.left.length > 0 ? r.left.join(', ') : 0],
            ['error', r.error ?? null],
          ]);
        }
        const failed = reports.filter((r) => r.error);
        if (failed.length > 0) throw new UserError(`pulling failed for ${failed.map((r) => `${r.node} (${r.error ?? ''})`).join('; ')}`, 1);
      });
    });

  return wal;
}
