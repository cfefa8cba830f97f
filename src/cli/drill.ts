/** `taskflow drill …`: failover and site-loss drills on the managed cluster, and the evidence they leave. */
import { Command } from 'commander';
import { pino, type Logger } from 'pino';
import { UserError } from '../errors.ts';
import { runFailoverDrill } from '../platform/drill/failover-drill.ts';
import { runPatroniDrill } from '../platform/drill/patroni-drill.ts';
import type { DrillReport } from '../platform/drill/session.ts';
import { runSiteLossDrill } from '../platform/drill/site-loss.ts';
import { getDrill, listDrills, type DrillKind } from '../platform/drill/store.ts';
import { createLogger } from '../platform/log.ts';
import { openReplication, type ReplicationContext } from '../platform/replication/context.ts';
import { cliActor, configFrom, withGlobalOptions, withPlatform, type GlobalOptions } from './context.ts';
import { note, printJson, printTable } from './output.ts';

type LoadOpts = GlobalOptions & { writers: string; duration: string; json?: boolean; yesThisIsProduction?: boolean };

function cliLogger(opts: GlobalOptions): Logger {
  return createLogger({ level: opts.logLevel ?? 'warn', destination: pino.destination({ fd: 2, sync: true }) });
}

function withReplication<T>(opts: GlobalOptions, fn: (ctx: ReplicationContext) => Promise<T>): Promise<T> {
  return fn(openReplication(configFrom(opts), cliLogger(opts)));
}

function leaf(parent: Command, name: string, description: string): Command {
  return withGlobalOptions(parent.command(name).description(description));
}

function withLoadOptions(command: Command): Command {
  return command
    .option('--writers <n>', 'concurrent clients writing into the drill database (0: none before the loss; one starts at it)', '4')
    .option('--duration <seconds>', 'seconds of writer load before the loss', '5')
    .option('--yes-this-is-production', 'drill a cluster that serves tenants other than the demo tenant')
    .option('--json', 'print the report as JSON instead of Markdown');
}

function loadOptions(opts: LoadOpts): { writers: number; durationSeconds: number } {
  const writers = Number(opts.writers);
  if (!Number.isInteger(writers) || writers < 0 || writers > 64) throw new UserError('--writers must be an integer from 0 to 64', 2);
  const durationSeconds = Number(opts.duration);
  if (!Number.isFinite(durationSeconds) || durationSeconds < 1 || durationSeconds > 300) throw new UserError('--duration must be a number of seconds from 1 to 300', 2);
  return { writers, durationSeconds };
}

/**
 * Runs a drill so that a first Ctrl-C does not cut it off half way (with the primary killed and no
 * other one yet): the drill goes on, puts the cluster back and records itself. A second one abandons it.
 */
async function shielded<T>(fn: () => Promise<T>): Promise<T> {
  let asked = false;
  const onSignal = () => {
    if (asked) process.exit(130);
    asked = true;
    note('drill: stopping now could leave the cluster without a primary, so the drill goes on, puts the cluster back and records itself; Ctrl-C again abandons it as it stands');
  };
  process.on('SIGINT', onSignal);
  try {
    return await fn();
  } finally {
    process.off('SIGINT', onSignal);
  }
}

function printReport(report: DrillReport, json: boolean): void {
  if (json) printJson(report);
  else process.stdout.write(report.reportMarkdown);
  if (report.storeError) throw new UserError(`the drill ${report.id} ${report.outcome}, but its report could not be stored in the control database: ${report.storeError}`);
  if (report.outcome === 'failed') {
    note(`drill ${report.id} failed; 'taskflow alerts list' shows the alert, 'taskflow cluster status' the cluster`);
    process.exitCode = 1;
  } else note(`drill ${report.id} passed; 'taskflow drill show ${report.id}' prints this report again`);
}

export function drillCommand(): Command {
  const drill = new Command('drill').description('rehearse the loss of the primary or of a whole site on the real cluster, and keep the evidence (docs/high-availability.md#drills)');

  withLoadOptions(leaf(drill, 'failover', 'kill the primary under a writer load, fail over, measure RTO and RPO, rebuild the old primary as a standby'))
    .option('--mode <mode>', 'replication mode to drill in, sync or async (default: the current one; put back afterwards; manual engine only)')
    .option('--engine <engine>', "what fails over: manual (TaskFlow's failover command, on the managed cluster) or patroni (Patroni elects the new leader; postgres.patroni)", 'manual')
    .action(async (opts: LoadOpts & { mode?: string; engine: string }) => {
      if (opts.engine !== 'manual' && opts.engine !== 'patroni') throw new UserError(`--engine must be manual or patroni, not '${opts.engine}'`, 2);
      if (opts.mode !== undefined && opts.mode !== 'sync' && opts.mode !== 'async') throw new UserError(`--mode must be sync or async, not '${opts.mode}'`, 2);
      if (opts.mode !== undefined && opts.engine === 'patroni') throw new UserError("--mode goes with the manual engine: Patroni's synchronous_mode decides the mode of a Patroni cluster ('patronictl edit-config')", 2);
      const load = loadOptions(opts);
      const common = {
        ...load,
        yesThisIsProduction: opts.yesThisIsProduction ?? false,
        operator: cliActor(),
        progress: (line: string) => {
          note(`drill: ${line}`);
        },
      };
      if (opts.engine === 'patroni') {
        const report = await shielded(() => runPatroniDrill(configFrom(opts), cliLogger(opts), common));
        printReport(report, opts.json ?? false);
        return;
      }
      await withReplication(opts, async (ctx) => {
        const report = await shielded(() => runFailoverDrill(ctx, { ...common, ...(opts.mode ? { mode: opts.mode as 'sync' | 'async' } : {}) }));
        printReport(report, opts.json ?? false);
      });
    });

  withLoadOptions(leaf(drill, 'site-loss', "lose the primary's whole site (its nodes and local repository), recover every tenant at another site"))
    .option('--assume-standby-lost', 'the standby is lost too: restore the cluster from an off-site backup repository onto the node at the other site')
    .option('--identity-file <file>', 'with --assume-standby-lost: the age identity (else TASKFLOW_BACKUP_IDENTITY or TASKFLOW_BACKUP_IDENTITY_FILE)')
    .action(async (opts: LoadOpts & { assumeStandbyLost?: boolean; identityFile?: string }) => {
      if (opts.identityFile !== undefined && !opts.assumeStandbyLost) throw new UserError('--identity-file goes with --assume-standby-lost', 2);
      const load = loadOptions(opts);
      await withReplication(opts, async (ctx) => {
        const report = await shielded(() => runSiteLossDrill(ctx, {
          ...load,
          assumeStandbyLost: opts.assumeStandbyLost ?? false,
          ...(opts.identityFile === undefined ? {} : { identityFile: opts.identityFile }),
          yesThisIsProduction: opts.yesThisIsProduction ?? false,
          operator: cliActor(),
          progress: (line) => {
            note(`drill: ${line}`);
          },
        }));
        printReport(report, opts.json ?? false);
      });
    });

  leaf(drill, 'list', 'drills run on this installation, newest first')
    .option('--kind <kind>', 'only failover or site-loss drills')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print JSON (with figures, without the reports)')
    .action(async (opts: GlobalOptions & { kind?: string; limit: string; json?: boolean }) => {
      if (opts.kind !== undefined && opts.kind !== 'failover' && opts.kind !== 'site-loss') throw new UserError(`--kind must be failover or site-loss, not '${opts.kind}'`, 2);
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UserError('--limit must be an integer from 1 to 10000', 2);
      await withPlatform(opts, async (platform) => {
        const rows = await listDrills(platform.control, { limit, ...(opts.kind ? { kind: opts.kind as DrillKind } : {}) });
        if (opts.json) {
          printJson(rows.map(({ reportMarkdown: _report, ...rest }) => rest));
          return;
        }
        printTable(
          ['id', 'kind', 'started', 'outcome', 'mode', 'engine', 'rto s', 'lost writes', 'rpo s', 'operator'],
          rows.map((d) => {
            const load = (d.figures as { load?: { rtoSeconds: number | null; lostAcknowledged: number; rpoSeconds: number } | null }).load;
            const engine = typeof d.parameters.engine === 'string' ? d.parameters.engine : null;
            return [d.id, d.kind, d.startedAt, d.outcome, typeof d.parameters.mode === 'string' ? d.parameters.mode : null, engine, load?.rtoSeconds ?? null, load?.lostAcknowledged ?? null, load?.rpoSeconds ?? null, d.operator];
          }),
        );
        if (rows.length === 0) note("no drill has been run; 'taskflow drill failover' runs one");
      });
    });

  leaf(drill, 'show', "one drill's report (Markdown), or its whole record with --json")
    .argument('<id>')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: GlobalOptions & { json?: boolean }) => {
      await withPlatform(opts, async (platform) => {
        const record = await getDrill(platform.control, id);
        if (!record) throw new UserError(`there is no drill ${id} ('taskflow drill list' shows them)`, 3);
        if (opts.json) printJson(record);
        else process.stdout.write(record.reportMarkdown || `drill ${record.id} (${record.kind}) is ${record.outcome} and has no report yet\n`);
      });
    });

  return drill;
}
