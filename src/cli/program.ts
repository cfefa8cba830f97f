/** The `taskflow` program: its command groups and how errors become exit codes. */
import { Command } from 'commander';
import { ConfigError } from '../config.ts';
import { AppError, UserError } from '../errors.ts';
import { dbCommand } from './db.ts';
import { mailCommand } from './mail.ts';
import { startCommand } from './start.ts';
import { tenantCommand } from './tenant.ts';
import { scanCommand } from './scan.ts';
import { clusterCommand } from './cluster.ts';
import { alertsCommand } from './alerts.ts';
import { walCommand } from './wal.ts';
import { restoreCommand } from './restore.ts';
import { backupCommand } from './backup.ts';
import { drillCommand } from './drill.ts';
import packageJson from '../../package.json' with { type: 'json' };

/** Exit codes: 0 ok, 1 failed, 2 bad usage or configuration, 3 not found, 4 conflict. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof ConfigError) return 2;
  if (err instanceof UserError) return err.exitCode;
  if (err instanceof AppError) {
    if (err.code === 'validation-failed' || err.code === 'bad-request') return 2;
    if (err.code === 'not-found' || err.code === 'tenant-not-found') return 3;
    if (err.code === 'conflict') return 4;
  }
  return 1;
}

export function buildProgram(): Command {
  const program = new Command('taskflow')
    .description('TaskFlow: multi-tenant task and workflow platform')
    .version(packageJson.version)
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  for (const command of [startCommand(), tenantCommand(), dbCommand(), mailCommand(), scanCommand(), clusterCommand(), alertsCommand(), drillCommand(), backupCommand(), restoreCommand(), walCommand()]) program.addCommand(command);
  const overrideAll = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(overrideAll);
  };
  overrideAll(program);
  return program;
}

