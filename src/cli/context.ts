/** What every CLI command shares: global options, configuration, a logger and the opened platform. */
import type { Command } from 'commander';
import { pino } from 'pino';
import { loadConfig, type Config } from '../config.ts';
import { UserError } from '../errors.ts';
import { createLogger } from '../platform/log.ts';
import { openPlatform, type Platform } from '../platform/platform.ts';

export interface GlobalOptions {
  dataDir?: string;
  config?: string;
  databaseUrl?: string;
  logLevel?: string;
}

/** Adds the options every command takes. */
export function withGlobalOptions(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'data directory (env TASKFLOW_DATA_DIR)', undefined)
    .option('--config <file>', 'JSON configuration file (env TASKFLOW_CONFIG; default <data-dir>/config.json)')
    .option('--database-url <url>', 'use this existing PostgreSQL cluster instead of the managed one; no password here (put it in env TASKFLOW_DATABASE_URL)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (env TASKFLOW_LOG_LEVEL)');
}

export function configFrom(options: GlobalOptions, extra: Record<string, unknown> = {}): Config {
  if (options.databaseUrl && /^[a-z]+:\/\/[^/@]*:[^/@]*@/i.test(options.databaseUrl)) {
    // Anyone on the host can read a command line; passwords go in the environment or the config file.
    throw new UserError('--database-url must not contain a password (other users can read command lines); put the URL in TASKFLOW_DATABASE_URL or the config file instead', 2);
  }
  return loadConfig({
    ...(options.config ? { configFile: options.config } : {}),
    overrides: { dataDir: options.dataDir, databaseUrl: options.databaseUrl, logLevel: options.logLevel, ...extra },
  });
}

/**
 * Opens the platform for one command and closes it after. CLI commands log warnings to stderr only,
 * so their stdout stays clean for --json. A managed cluster that was stopped is started for the
 * command and stopped again after it.
 */
export async function withPlatform<T>(options: GlobalOptions, fn: (platform: Platform) => Promise<T>): Promise<T> {
  const config = configFrom(options);
  const log = createLogger({ level: options.logLevel ?? 'warn', destination: pino.destination({ fd: 2, sync: true }) });
  const platform = await openPlatform(config, { log });
  try {
    return await fn(platform);
  } finally {
    await platform.close();
  }
}

/** The operator name recorded for CLI actions. */
export function cliActor(): string {
  return `cli:${process.env.SUDO_USER ?? process.env.USER ?? 'unknown'}`;
}
