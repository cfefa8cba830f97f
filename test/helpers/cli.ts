/** Runs the real `taskflow` command as a child process. */
import { spawn, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const TASKFLOW_BIN = fileURLToPath(new URL('../../bin/taskflow.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `command args` to completion, collecting its output. */
export function runProcess(command: string, args: string[], options: SpawnOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs `taskflow ...args` to completion with a clean TASKFLOW_* environment plus `env`. */
export function runCli(args: string[], options: { env?: Record<string, string>; uid?: number; gid?: number; timeoutMs?: number } = {}): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TASKFLOW_')) env[k] = v;
  Object.assign(env, options.env);
  const spawnOptions: SpawnOptions = { env, timeout: options.timeoutMs ?? 60_000 };
  if (options.uid !== undefined) spawnOptions.uid = options.uid;
  if (options.gid !== undefined) spawnOptions.gid = options.gid;
  return runProcess(process.execPath, [TASKFLOW_BIN, ...args], spawnOptions);
}
