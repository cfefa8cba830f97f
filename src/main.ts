/** The `taskflow` command line: parses, dispatches to a command group, turns errors into exit codes. */
import { CommanderError } from 'commander';
import { AppError, UserError } from './errors.ts';
import { buildProgram, exitCodeFor } from './cli/program.ts';

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exit code 0; usage errors were already printed.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    const code = exitCodeFor(err);
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`taskflow: ${message}\n`);
    if (code === 1 && !(err instanceof UserError) && !(err instanceof AppError) && process.env.TASKFLOW_DEBUG) {
      process.stderr.write(`${(err as Error).stack ?? ''}\n`);
    }
    process.exitCode = code;
  }
}

await main();
