/**
 * `taskflow wal …`: the continuous WAL archive. `archive` and `fetch` are what PostgreSQL itself
 * runs (archive_command and restore_command) with a settings file TaskFlow wrote for it; they are
 * hidden from help. `status` is for people: how far the archive reaches and whether it keeps up.
 */
import { Command } from 'commander';
import { UserError } from '../errors.ts';
import { checkWalArchive, ensureWalArchiving } from '../platform/backup/physical/wal-archive.ts';
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

  return wal;
}
