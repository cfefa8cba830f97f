/** Finds the installed PostgreSQL server and client tools and runs them, as the right OS user. */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../errors.ts';

export const REQUIRED_TOOLS = [
  'initdb',
  'pg_ctl',
  'postgres',
  'psql',
  'pg_dump',
  'pg_restore',
  'pg_basebackup',
  'pg_receivewal',
  'pg_verifybackup',
  'pg_isready',
] as const;

export type PgTool = (typeof REQUIRED_TOOLS)[number];

export interface PgTools {
  binDir: string;
  major: number;
  path(tool: PgTool): string;
}

function majorOf(binDir: string): number {
  const out = spawnSync(join(binDir, 'pg_ctl'), ['--version'], { encoding: 'utf8' });
  const match = /(\d+)/.exec(out.stdout);
  return match?.[1] ? Number(match[1]) : 0;
}

/** Locates PostgreSQL 15+ tools: the given directory, else the newest under the usual Debian/RPM paths. */
export function findPgTools(preferred?: string): PgTools {
  const candidates: string[] = [];
  if (preferred) candidates.push(preferred);
  else {
    for (const base of ['/usr/lib/postgresql', '/usr/local/pgsql']) {
      if (!existsSync(base)) continue;
      if (existsSync(join(base, 'bin', 'pg_ctl'))) candidates.push(join(base, 'bin'));
      for (const entry of readdirSync(base)) candidates.push(join(base, entry, 'bin'));
    }
  }
  let best: { binDir: string; major: number } | undefined;
  for (const binDir of candidates) {
    if (!existsSync(join(binDir, 'pg_ctl'))) continue;
    const major = majorOf(binDir);
    if (major >= 15 && (!best || major > best.major)) best = { binDir, major };
  }
  if (!best) {
    throw new UserError(
      preferred
        ? `no PostgreSQL 15+ tools in ${preferred} (postgres.binDir / TASKFLOW_PG_BINDIR)`
        : 'PostgreSQL 15 or newer is not installed. On Debian: apt-get install postgresql postgresql-contrib (or run scripts/bootstrap.sh), or set TASKFLOW_PG_BINDIR.',
    );
  }
  const missing = REQUIRED_TOOLS.filter((t) => !existsSync(join(best.binDir, t)));
  if (missing.length > 0) {
    throw new UserError(`PostgreSQL tools missing from ${best.binDir}: ${missing.join(', ')}`);
  }
  const { binDir, major } = best;
  return { binDir, major, path: (tool) => join(binDir, tool) };
}

/** The OS identity that PostgreSQL processes run as. */
export interface OsIdentity {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** As root, the named OS user (PostgreSQL refuses root); otherwise the current user. */
export function resolveRunAs(osUser: string): OsIdentity | null {
  if (process.getuid?.() !== 0) return null;
  const out = spawnSync('getent', ['passwd', osUser], { encoding: 'utf8' });
  const fields = out.stdout.trim().split(':');
  if (out.status !== 0 || fields.length < 7) {
    throw new UserError(
      `running as root, TaskFlow runs PostgreSQL as the OS user '${osUser}', which does not exist. Create it (useradd --system postgres) or set postgres.osUser.`,
    );
  }
  return { name: osUser, uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5] ?? '/' };
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a tool to completion (as `runAs` when given); rejects with its stderr on a non-zero exit. */
export function runTool(
  file: string,
  args: string[],
  options: { runAs: OsIdentity | null; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number },
): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', ...options.env };
  if (options.runAs) {
    env.HOME = options.runAs.home;
    env.USER = options.runAs.name;
  }
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        env,
        cwd: options.cwd ?? '/',
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 16 * 1024 * 1024,
        ...(options.runAs ? { uid: options.runAs.uid, gid: options.runAs.gid } : {}),
      },
      (error, stdout, stderr) => {
        if (error) {
          const message = stderr.trim() || stdout.trim() || error.message;
          reject(Object.assign(new Error(`${file.split('/').pop() ?? file} failed: ${message}`), { stdout, stderr, code: error.code }));
        } else resolve({ stdout, stderr });
      },
    );
  });
}
