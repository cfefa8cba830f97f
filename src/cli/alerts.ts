/** `taskflow alerts …`: what the platform's own operations raised for an operator to act on. */
import { Command } from 'commander';
import { UserError } from '../errors.ts';
import { ControlDbAlerts, listAlerts, ALERT_CODES } from '../platform/alerts/alerts.ts';
import { withGlobalOptions, withPlatform, type GlobalOptions } from './context.ts';
import { note, printJson, printTable } from './output.ts';

type ListOpts = GlobalOptions & { json?: boolean; all?: boolean; code?: string; limit?: string };

export function alertsCommand(): Command {
  const alerts = new Command('alerts').description('list and resolve the alerts raised by backups, restores, replication and drills');

  withGlobalOptions(alerts.command('list').description('list open alerts, newest first (--all: also resolved ones)'))
    .option('--all', 'include resolved alerts')
    .option('--code <code>', `only this code (${ALERT_CODES.join(', ')})`)
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'print JSON')
    .action(async (opts: ListOpts) => {
      if (opts.code !== undefined && !(ALERT_CODES as readonly string[]).includes(opts.code)) throw new UserError(`unknown alert code '${opts.code}'; known: ${ALERT_CODES.join(', ')}`, 2);
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UserError('--limit must be an integer from 1 to 10000', 2);
      await withPlatform(opts, async (platform) => {
        const rows = await listAlerts(platform.control, { all: opts.all ?? false, limit, ...(opts.code ? { code: opts.code } : {}) });
        if (opts.json) {
          printJson(rows);
          return;
        }
        printTable(
          ['id', 'severity', 'code', 'last seen', 'count', 'summary', 'resolved'],
          rows.map((a) => [a.id, a.severity, a.code, a.lastAt, a.occurrences, a.summary, a.resolvedAt ?? '']),
        );
        if (rows.length === 0) note(opts.all ? 'no alerts have been raised' : 'no open alerts');
      });
    });

  withGlobalOptions(alerts.command('resolve').description('mark an open alert resolved, with what was done about it'))
    .argument('<key>', "the alert's key ('taskflow alerts list --json' shows it)")
    .requiredOption('--reason <text>', 'what was done (kept with the alert)')
    .action(async (key: string, opts: GlobalOptions & { reason: string }) => {
      if (opts.reason.trim() === '') throw new UserError('--reason must not be empty', 2);
      await withPlatform(opts, async (platform) => {
        const done = await new ControlDbAlerts(platform.control, platform.log).resolve(key, opts.reason.trim());
        if (!done) throw new UserError(`no open alert with key '${key}'`, 3);
        note(`resolved ${key}`);
      });
    });

  return alerts;
}
