/**
 * The lean entry point PostgreSQL runs for every WAL segment: `node src/cli/wal-entry.ts archive …`
 * (archive_command) and `… fetch …` (restore_command). The same commands as `taskflow wal archive`
 * and `taskflow wal fetch`, without loading the rest of the CLI, which would cost each segment
 * seconds on a busy machine.
 */
import { Command, CommanderError } from 'commander';
import { UserError } from '../errors.ts';
import { addWalAgentCommands } from './wal-agent.ts';

const program = addWalAgentCommands(new Command('taskflow-wal').exitOverride());
for (const sub of program.commands) sub.exitOverride();
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exitCode = err.exitCode === 0 ? 0 : 2;
  else {
    process.stderr.write(`taskflow wal: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = err instanceof UserError ? err.exitCode : 1;
  }
}
