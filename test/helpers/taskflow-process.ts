/** `taskflow start` as a user runs it: a child process, ready once it says so on stderr. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TASKFLOW_BIN } from './cli.ts';

export interface StartedTaskflow {
  child: ChildProcess;
  /** Everything the server wrote to stderr so far. */
  stderr: () => string;
  /** The demo API token, printed on the start that made the demo tenant. */
  token: string | null;
}

/** The environment of the test run without any TASKFLOW_* setting, plus `extra`. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TASKFLOW_')) env[k] = v;
  return { ...env, ...extra };
}

/**
 * Starts `taskflow start ARGS` (stdout ignored) and resolves once it printed "Press Ctrl-C";
 * rejects with its stderr if it exits first or is not up within `timeoutMs`. `onSpawn` gets the
 * child at once, so a caller can kill it even when the start fails.
 */
export async function startTaskflow(options: { args: string[]; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; onSpawn?: (child: ChildProcess) => void }): Promise<StartedTaskflow> {
  const child = spawn(process.execPath, [TASKFLOW_BIN, 'start', ...options.args], {
    env: options.env ?? cleanEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
  options.onSpawn?.(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`start did not come up: ${stderr}`));
    }, options.timeoutMs ?? 90_000);
    child.stderr.on('data', () => {
      if (stderr.includes('Press Ctrl-C')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`start exited with ${code}: ${stderr}`));
    });
  });
  const token = /Demo API token \(shown once\): (tf_\S+)/.exec(stderr)?.[1] ?? null;
  return { child, stderr: () => stderr, token };
}

/** Resolves with the child's exit code once it exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else
      child.on('exit', (code) => {
        resolve(code);
      });
  });
}

/** The postmaster's pid from PGDATA's postmaster.pid, or null when there is none. */
export function postmasterPid(pgData: string): number | null {
  try {
    return Number(readFileSync(join(pgData, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return null;
  }
}

/** SIGKILL to the postmaster's process group: pg_ctl starts it in its own session, with its children. */
export function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/** After a test: kills the servers it started and, if one failed half way, the cluster they left. */
export function killServers(running: ChildProcess[], pgData: string): void {
  for (const child of running) child.kill('SIGKILL');
  const pid = postmasterPid(pgData);
  if (pid) killGroup(pid);
}
