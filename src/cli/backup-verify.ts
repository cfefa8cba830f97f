/**
 * `taskflow backup verify [--restore]`: the stored checksum of every copy of every object, or (with
 * --restore) a snapshot restored into a scratch cluster and proven (pg_verifybackup, amcheck, row
 * counts). Added under `taskflow backup` by src/cli/backup.ts.
 */
import { Command } from 'commander';
import { UserError } from '../errors.ts';
import { loadRestoreIdentity } from '../platform/backup/physical/identity.ts';
import { verifyObjects } from '../platform/backup/physical/verify-objects.ts';
import { renderVerifyReport, verifyRestore } from '../platform/backup/physical/verify-restore.ts';
import { requireBackups } from '../platform/backup/service.ts';
import { withGlobalOptions, withPlatform, type GlobalOptions } from './context.ts';
import { note, printJson, printTable } from './output.ts';
import { progressBar } from './progress.ts';

type VerifyOpts = GlobalOptions & { restore?: boolean; snapshot?: string; object?: string; identityFile?: string; json?: boolean; markdown?: boolean };

export function backupVerifyCommand(): Command {
  return withGlobalOptions(new Command('verify'))
    .description('check every stored copy against its checksum; with --restore, restore a snapshot into a scratch cluster and prove it')
    .option('--restore', 'restore a snapshot plus WAL into a scratch cluster: pg_verifybackup, amcheck, row counts; stores the evidence')
    .option('--snapshot <id>', 'with --restore: this snapshot (default: the newest complete one)')
    .option('--object <id>', 'without --restore: only this object')
    .option('--identity-file <file>', 'with --restore: the age identity (else TASKFLOW_BACKUP_IDENTITY or TASKFLOW_BACKUP_IDENTITY_FILE)')
    .option('--markdown', 'with --restore: print the evidence report as Markdown')
    .option('--json', 'print JSON')
    .action(async (opts: VerifyOpts) => {
      if (!opts.restore && (opts.snapshot !== undefined || opts.markdown)) throw new UserError('--snapshot and --markdown go with --restore', 2);
      if (opts.restore && opts.object !== undefined) throw new UserError('--object goes without --restore (use --snapshot)', 2);
      const identity = opts.restore ? loadRestoreIdentity(opts.identityFile === undefined ? {} : { file: opts.identityFile }) : null;
      await withPlatform(opts, async (platform) => {
        requireBackups(platform.config);
        if (identity) {
          const report = await verifyRestore(platform, {
            identity,
            ...(opts.snapshot !== undefined ? { snapshot: opts.snapshot } : {}),
            ...(opts.json || opts.markdown ? {} : { onPhase: (phase: string) => { note(`${phase}…`); } }),
          });
          if (opts.json) printJson(report);
          else process.stdout.write(renderVerifyReport(report));
          if (!report.ok) process.exitCode = 1;
          return;
        }
        const bar = progressBar({ json: opts.json, title: 'verifying', unit: 'objects' });
        let checks;
        try {
          checks = await verifyObjects(platform, { ...(opts.object !== undefined ? { object: opts.object } : {}), onCheck: (c, done, total) => { bar.update(done, total, c.name); } });
        } finally {
          bar.stop();
        }
        const bad = checks.filter((c) => !c.ok);
        if (opts.json) printJson(checks);
        else {
          if (bad.length > 0) printTable(['id', 'kind', 'name', 'repository', 'problem'], bad.map((c) => [c.id, c.kind, c.name, c.repository, c.problem ?? '']));
          note(`${checks.length - bad.length} of ${checks.length} stored copies match their checksums${bad.length > 0 ? `; ${bad.length} do not (alerts raised)` : ''}`);
        }
        if (bad.length > 0) process.exitCode = 1;
      });
    });
}
