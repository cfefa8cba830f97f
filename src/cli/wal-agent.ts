/**
 * `wal archive` and `wal fetch`: what PostgreSQL itself runs (archive_command, restore_command),
 * with the settings file TaskFlow wrote for it. Kept apart from the rest of the CLI, with its
 * modules loaded only when a command runs, so the lean entry point (wal-entry.ts) that PostgreSQL
 * starts once per WAL segment loads little more than the pipeline.
 */
import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { FETCH_BROKEN_EXIT_CODE } from '../platform/backup/physical/wal-fetch.ts';


function failWith(code: number, err: unknown): never {
  // PostgreSQL copies this line into its log: say what failed, for whoever reads it there.
  throw new UserError(err instanceof Error ? err.message : String(err), code);
}

/** Adds the hidden `archive` and `fetch` subcommands to a `wal` command. */
export function addWalAgentCommands(wal: Command): Command {
  wal
    .command('archive', { hidden: true })
    .description("archive one WAL file (PostgreSQL's archive_command)")
    .requiredOption('--settings <file>', 'the settings file TaskFlow wrote for the archiver')
    .argument('<path>', '%p: the file, relative to the data directory')
    .argument('<file>', '%f: its name')
    .action(async (path: string, file: string, opts: { settings: string }) => {
      try {
        const [{ archiveWalFile }, { ARCHIVE_SETTINGS_FORMAT, readSettings }, { createLogger }, { pino }] = await Promise.all([
          import('../platform/backup/physical/wal-archiver.ts'),
          import('../platform/backup/physical/wal-settings.ts'),
          import('../platform/log.ts'),
          import('pino'),
        ]);
        const settings = readSettings<import('../platform/backup/physical/wal-settings.ts').ArchiveSettings>(opts.settings, ARCHIVE_SETTINGS_FORMAT);
        const log = createLogger({ level: 'warn', destination: pino.destination({ fd: 2, sync: true }) });
        await archiveWalFile({ settings, pgData: process.cwd(), path, file, log });
      } catch (err) {
        failWith(1, err);
      }
    });

  wal
    .command('fetch', { hidden: true })
    .description("restore one archived WAL file (PostgreSQL's restore_command during a restore)")
    .requiredOption('--settings <file>', 'the settings file TaskFlow wrote for the restore')
    .argument('<file>', '%f: the file PostgreSQL wants')
    .argument('<path>', '%p: where to put it')
    .action(async (file: string, path: string, opts: { settings: string }) => {
      let outcome;
      try {
        const [{ fetchWalFile }, { FETCH_SETTINGS_FORMAT, readSettings }] = await Promise.all([import('../platform/backup/physical/wal-fetch.ts'), import('../platform/backup/physical/wal-settings.ts')]);
        const settings = readSettings<import('../platform/backup/physical/wal-settings.ts').FetchSettings>(opts.settings, FETCH_SETTINGS_FORMAT);
        outcome = await fetchWalFile({ settings, file, destination: path, cwd: process.cwd() });
      } catch (err) {
        failWith(FETCH_BROKEN_EXIT_CODE, err);
      }
      // Not in the archive: PostgreSQL asks for files that may not exist (the next timeline's history); stay quiet.
      if (outcome === 'not-found') process.exitCode = 1;
    });
  return wal;
}
