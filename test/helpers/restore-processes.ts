/**
 * What restores leave running, for the suites that kill restores or feed them damaged backups:
 * whether a process runs, which PostgreSQL servers run on data directories under a path, and a
 * `taskflow` child killed with SIGKILL at a chosen moment.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { poll } from '../../src/platform/replication/probe.ts';
import { TASKFLOW_BIN } from './cli.ts';

/** Whether `pid` runs (a zombie, exited but not yet reaped, does not). */
export function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The pids of running postmasters whose data directory (`-D`, as pg_ctl starts them) is `dir` or under it. */
export function postmastersUnder(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const pgData = args[args.indexOf('-D') + 1];
      if (args[0]?.endsWith('/postgres') && args.includes('-D') && pgData && (pgData === dir || pgData.startsWith(`${dir}/`)) && running(Number(entry))) found.push(Number(entry));
    } catch {
      /* exited meanwhile */
    }
  }
  return found;
}

/**
 * Starts `taskflow args` (environment: PATH plus `env`), waits until `ready` says so, then kills
 * it with SIGKILL; fails if it exited before getting there.
 */
export async function killCliWhen(args: string[], env: NodeJS.ProcessEnv, ready: () => boolean | Promise<boolean>): Promise<void> {
  const child = spawn(process.execPath, [TASKFLOW_BIN, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  let done = false;
  const exited = new Promise((r) => child.on('close', r)).then(() => (done = true));
  const reached = await poll(async () => ((await ready()) ? true : done ? false : undefined), 120_000, 20);
  child.kill('SIGKILL');
  await exited;
  if (!reached) throw new Error(`taskflow ${args[0] ?? ''} ${args[1] ?? ''} never got there: ${stderr}`);
}
