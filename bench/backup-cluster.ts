/**
 * The cluster the snapshot benchmark backs up: PostgreSQL in a temporary directory, run as the
 * `postgres` OS user (as root) and reached over a Unix socket with peer authentication only
 * (no TCP, no passwords), populated with `pgbench -i`. With pgBackRest present, WAL is archived
 * to its repository, so its backups are complete ones, like pg_basebackup's with `-X fetch`.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chownSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectionTarget } from '../src/platform/postgres/connection.ts';
import { freePort } from '../src/platform/postgres/local-cluster.ts';
import { scramVerifier } from '../src/platform/tenants/credentials.ts';
import { findPgTools, resolveRunAs, runTool, type OsIdentity, type PgTools } from '../src/platform/postgres/tools.ts';
import { tempDir } from '../test/helpers/platform.ts';

type Progress = (message: string) => void;

export const STANZA = 'bench';

export interface BenchCluster {
  dir: string;
  pgData: string;
  port: number;
  socketDir: string;
  runAs: OsIdentity | null;
  tools: PgTools;
  /** pgBackRest's configuration file, when pgBackRest is installed. */
  pgbackrestConfig: string | null;
  /** Connection arguments of the client tools (socket, port, user). */
  connectArgs: string[];
  /** Runs a SQL statement in `database`; returns psql's unaligned output. */
  sql(database: string, statement: string): Promise<string>;
  /** The superuser over TCP on 127.0.0.1 with a password, the way TaskFlow reaches its managed cluster. */
  target: ConnectionTarget;
  cleanup(): Promise<void>;
}

/** The pgbackrest command, installing Debian's package first when it is missing and we may (as root with apt). */
export function ensurePgbackrest(progress: Progress): { command: string } | { unavailable: string } {
  const installed = (): boolean => spawnSync('pgbackrest', ['version']).status === 0;
  if (installed()) return { command: 'pgbackrest' };
  if (process.getuid?.() !== 0 || spawnSync('apt-get', ['--version']).status !== 0) {
    return { unavailable: 'pgbackrest is not installed and this is not root on Debian: apt-get install pgbackrest' };
  }
  progress('backup/snapshot: installing pgbackrest (apt-get install pgbackrest)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore' });
  const out = spawnSync('apt-get', ['install', '-y', '-qq', 'pgbackrest'], { env, encoding: 'utf8' });
  if (out.status !== 0 || !installed()) return { unavailable: `apt-get install pgbackrest failed: ${out.stderr.trim().slice(-500)}` };
  return { command: 'pgbackrest' };
}

function ownedDir(path: string, runAs: OsIdentity | null): string {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  if (runAs) chownSync(path, runAs.uid, runAs.gid);
  return path;
}

/** Initialises, starts and populates the cluster (`pgbench -i -s scale`, about 15 MiB per scale step). */
export async function startBenchCluster(progress: Progress, options: { scale: number; pgbackrest: string | null }): Promise<BenchCluster> {
  const tools = findPgTools(process.env.TASKFLOW_PG_BINDIR);
  const runAs = resolveRunAs('postgres');
  const dir = tempDir('bench-backup');
  const pgData = join(dir, 'pgdata');
  const socketDir = ownedDir(join(dir, 'socket'), runAs);
  const port = await freePort();
  const as = { runAs, timeoutMs: 30 * 60_000 };
  const connectArgs = ['--host', socketDir, '--port', String(port), '--username', 'postgres'];
  let started = false;
  const cleanup = async (): Promise<void> => {
    if (started) await runTool(tools.path('pg_ctl'), ['stop', '--pgdata', pgData, '--mode', 'fast', '--wait'], as).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    ownedDir(pgData, runAs);
    await runTool(tools.path('initdb'), ['--pgdata', pgData, '--username', 'postgres', '--auth-local', 'peer', '--auth-host', 'scram-sha-256', '--encoding', 'UTF8', '--no-instructions'], as);
    let pgbackrestConfig: string | null = null;
    let archive = 'archive_mode = off\n';
    if (options.pgbackrest) {
      const home = ownedDir(join(dir, 'pgbackrest'), runAs);
      pgbackrestConfig = join(home, 'pgbackrest.conf');
      // zstd level 3 and encryption, like TaskFlow's pipeline; the cipher passphrase is a throwaway.
      writeFileSync(
        pgbackrestConfig,
        [
          '[global]',
          `repo1-path=${ownedDir(join(home, 'repo'), runAs)}`,
          'repo1-retention-full=99',
          'expire-auto=n',
          'repo1-cipher-type=aes-256-cbc',
          `repo1-cipher-pass=${randomBytes(24).toString('base64')}`,
          'compress-type=zst',
          'compress-level=3',
          'start-fast=y',
          `log-path=${ownedDir(join(home, 'log'), runAs)}`,
          `lock-path=${ownedDir(join(home, 'lock'), runAs)}`,
          'log-level-console=warn',
          'log-level-file=off',
          '',
          `[${STANZA}]`,
          `pg1-path=${pgData}`,
          `pg1-port=${port}`,
          `pg1-socket-path=${socketDir}`,
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      if (runAs) chownSync(pgbackrestConfig, runAs.uid, runAs.gid);
      archive = `archive_mode = on\narchive_command = '${options.pgbackrest} --config=${pgbackrestConfig} --stanza=${STANZA} archive-push %p'\n`;
    }
    appendFileSync(
      join(pgData, 'postgresql.conf'),
      `\n# taskflow bench\nlisten_addresses = '127.0.0.1'\nport = ${port}\nunix_socket_directories = '${socketDir}'\nwal_level = replica\nmax_wal_senders = 4\nshared_buffers = '128MB'\nmax_wal_size = '2GB'\n${archive}`,
    );
    await runTool(tools.path('pg_ctl'), ['start', '--pgdata', pgData, '--log', join(pgData, 'server.log'), '--wait', '--timeout', '120'], as);
    started = true;
    const psql = async (database: string, statement: string): Promise<string> =>
      (await runTool(tools.path('psql'), [...connectArgs, '--dbname', database, '--no-psqlrc', '--tuples-only', '--no-align', '--set', 'ON_ERROR_STOP=1', '--command', statement], as)).stdout.trim();
    await psql('postgres', 'CREATE DATABASE bench');
    // Only the SCRAM verifier goes on psql's command line, never the password.
    const password = randomBytes(18).toString('base64url');
    await psql('postgres', `ALTER ROLE postgres PASSWORD '${scramVerifier(password)}'`);
    const target: ConnectionTarget = { host: '127.0.0.1', port, user: 'postgres', password };
    progress(`backup/snapshot: pgbench -i -s ${options.scale} (about ${options.scale * 15} MiB)`);
    await runTool(join(tools.binDir, 'pgbench'), [...connectArgs, '--initialize', '--scale', String(options.scale), '--quiet', 'bench'], as);
    await psql('bench', 'CHECKPOINT');
    if (options.pgbackrest && pgbackrestConfig) {
      await runTool(options.pgbackrest, [`--config=${pgbackrestConfig}`, `--stanza=${STANZA}`, 'stanza-create'], as);
    }
    return { dir, pgData, port, socketDir, runAs, tools, pgbackrestConfig, connectArgs, sql: psql, target, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
