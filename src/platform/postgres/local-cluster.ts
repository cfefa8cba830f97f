/** A PostgreSQL cluster in a local directory that TaskFlow initialises, starts and stops itself. */
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createServer } from 'node:net';
import { UserError } from '../../errors.ts';
import { runTool, type OsIdentity, type PgTools } from './tools.ts';
import type { Logger } from 'pino';
import { withAdminClient, type ConnectionTarget } from './connection.ts';
import { isLoopback } from './network.ts';

export const SUPERUSER = 'taskflow_admin';

export interface LocalClusterOptions {
  /** PGDATA. */
  pgData: string;
  port: number;
  tools: PgTools;
  runAs: OsIdentity | null;
  superuserPassword: string;
  listenAddress?: string;
  /** max_slot_wal_keep_size in MB (-1: unlimited); replication.maxSlotWalKeepSizeMb. */
  maxSlotWalKeepSizeMb?: number;
}

/** The default cap on WAL a replication slot keeps (replication.maxSlotWalKeepSizeMb). */
export const DEFAULT_MAX_SLOT_WAL_KEEP_SIZE_MB = 4096;

/** Settings every managed cluster gets: loopback (plus postgres.listenAddresses on the primary), SCRAM, ready for replication and WAL archiving. */
export function clusterSettings(port: number, listenAddress: string, maxSlotWalKeepSizeMb = DEFAULT_MAX_SLOT_WAL_KEEP_SIZE_MB): string {
  return `# Written by TaskFlow. Local overrides belong in postgresql.auto.conf (ALTER SYSTEM).
listen_addresses = '${listenAddress}'
port = ${port}
unix_socket_directories = ''
password_encryption = 'scram-sha-256'
max_connections = 300
shared_buffers = '128MB'
# Replication: standbys and pg_basebackup need these; changing them later needs a restart.
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '512MB'
# A standby gone for good must not fill the primary's disk: past this, its slot is given up
# (the standby must then be rebuilt; 'cluster status' says so).
max_slot_wal_keep_size = ${maxSlotWalKeepSizeMb < 0 ? -1 : `'${maxSlotWalKeepSizeMb}MB'`}
hot_standby = on
wal_log_hints = on
# WAL archiving: archive_mode needs a restart, so it is on from the start; the backup
# engine replaces this no-op archive_command (a reload) when a repository is configured.
archive_mode = on
archive_command = '/bin/true'
archive_timeout = 60
# Durability: never trade committed data for speed.
fsync = on
synchronous_commit = on
full_page_writes = on
logging_collector = on
log_directory = 'log'
log_filename = 'postgresql-%a.log'
log_truncate_on_rotation = on
log_rotation_age = '1d'
log_line_prefix = '%m [%p] %q%u@%d '
`;
}

const HBA = `# Written by TaskFlow: TCP on loopback only, SCRAM for everyone, no trust anywhere.
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
host    replication     all             127.0.0.1/32            scram-sha-256
host    replication     all             ::1/128                 scram-sha-256
`;

/**
 * Gives the running primary the configured max_slot_wal_keep_size (a reload, no restart) when it has
 * another one: a cluster made before the setting existed, or a changed configuration.
 */
export async function ensureSlotWalKeepSize(target: ConnectionTarget, sizeMb: number, log: Logger): Promise<void> {
  const wanted = sizeMb < 0 ? '-1' : `${sizeMb}MB`;
  await withAdminClient(target, target.database ?? 'postgres', async (client) => {
    const res = await client.query<{ mb: string }>("SELECT setting AS mb FROM pg_settings WHERE name = 'max_slot_wal_keep_size'");
    if (Number(res.rows[0]?.mb) === (sizeMb < 0 ? -1 : sizeMb)) return;
    // ALTER SYSTEM writes postgresql.auto.conf only (no WAL), so it never waits for a standby.
    await client.query(`ALTER SYSTEM SET max_slot_wal_keep_size = '${wanted}'`);
    await client.query('SELECT pg_reload_conf()');
    log.info({ maxSlotWalKeepSize: wanted }, 'max_slot_wal_keep_size set');
  });
}

/** Asks the OS for a free loopback TCP port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

export class LocalCluster {
  readonly pgData: string;
  readonly port: number;
  readonly tools: PgTools;
  readonly runAs: OsIdentity | null;
  readonly listenAddress: string;
  readonly maxSlotWalKeepSizeMb: number;
  readonly #password: string;

  constructor(options: LocalClusterOptions) {
    this.pgData = options.pgData;
    this.port = options.port;
    this.tools = options.tools;
    this.runAs = options.runAs;
    this.listenAddress = options.listenAddress ?? '127.0.0.1';
    this.maxSlotWalKeepSizeMb = options.maxSlotWalKeepSizeMb ?? DEFAULT_MAX_SLOT_WAL_KEEP_SIZE_MB;
    this.#password = options.superuserPassword;
  }

  /** Admin connection to this cluster (TCP on loopback, SCRAM; over TLS to a node on another machine, whose pg_hba allows only that). */
  target(): ConnectionTarget {
    return { host: this.listenAddress, port: this.port, user: SUPERUSER, password: this.#password, ...(isLoopback(this.listenAddress) || this.listenAddress === 'localhost' ? {} : { ssl: true }) };
  }

  isInitialised(): boolean {
    return existsSync(join(this.pgData, 'PG_VERSION'));
  }

  #own(path: string, mode: number): void {
    chmodSync(path, mode);
    if (this.runAs) chownSync(path, this.runAs.uid, this.runAs.gid);
  }

  /**
   * Runs initdb into a scratch directory beside PGDATA and renames it into place only when complete,
   * so an interrupted init never leaves a cluster that looks real.
   */
  async init(): Promise<void> {
    if (this.isInitialised()) throw new UserError(`${this.pgData} already holds a PostgreSQL cluster`);
    if (existsSync(this.pgData)) throw new UserError(`${this.pgData} exists but holds no PostgreSQL cluster; move it away first`);
    const parent = dirname(this.pgData);
    mkdirSync(parent, { recursive: true });
    const scratch = `${this.pgData}.initdb-${randomBytes(4).toString('hex')}`;
    mkdirSync(scratch, { mode: 0o700 });
    this.#own(scratch, 0o700);
    this.#assertReachable(parent);
    // initdb wants an empty directory; the password file sits beside it for the duration.
    const pwdir = `${scratch}.pw`;
    mkdirSync(pwdir, { mode: 0o700 });
    this.#own(pwdir, 0o700);
    const pwpath = join(pwdir, 'pw');
    writeFileSync(pwpath, this.#password + '\n', { mode: 0o600 });
    this.#own(pwpath, 0o600);
    try {
      await runTool(
        this.tools.path('initdb'),
        [
          '--pgdata', scratch,
          '--username', SUPERUSER,
          '--pwfile', pwpath,
          '--auth-host', 'scram-sha-256',
          '--auth-local', 'scram-sha-256',
          '--encoding', 'UTF8',
          '--locale', 'C.UTF-8',
          '--data-checksums',
        ],
        { runAs: this.runAs },
      );
      writeFileSync(join(scratch, 'taskflow.conf'), clusterSettings(this.port, this.listenAddress, this.maxSlotWalKeepSizeMb), { mode: 0o600 });
      this.#own(join(scratch, 'taskflow.conf'), 0o600);
      writeFileSync(join(scratch, 'pg_hba.conf'), HBA, { mode: 0o600 });
      const conf = join(scratch, 'postgresql.conf');
      writeFileSync(conf, readFileSync(conf, 'utf8') + "\ninclude_if_exists = 'taskflow.conf'\n");
      renameSync(scratch, this.pgData);
    } catch (err) {
      rmSync(scratch, { recursive: true, force: true });
      throw err;
    } finally {
      rmSync(pwdir, { recursive: true, force: true });
    }
  }

  /** Fails with a clear message when the PostgreSQL OS user cannot reach the cluster's directory. */
  #assertReachable(dir: string): void {
    if (!this.runAs) return;
    const path: string[] = [];
    for (let d = dir; ; d = dirname(d)) {
      path.push(d);
      if (dirname(d) === d) break;
    }
    for (const d of path) {
      const st = statSync(d);
      const others = (st.mode & 0o001) !== 0;
      const byGroup = st.gid === this.runAs.gid && (st.mode & 0o010) !== 0;
      const byOwner = st.uid === this.runAs.uid && (st.mode & 0o100) !== 0;
      if (!others && !byGroup && !byOwner) {
        throw new UserError(
          `the '${this.runAs.name}' OS user that runs PostgreSQL cannot enter ${d} (mode ${(st.mode & 0o777).toString(8)}); allow it (chmod o+x ${d}) or choose a --data-dir it can reach`,
        );
      }
    }
  }

  async isRunning(): Promise<boolean> {
    if (!this.isInitialised()) return false;
    try {
      await runTool(this.tools.path('pg_ctl'), ['status', '--pgdata', this.pgData], { runAs: this.runAs });
      return true;
    } catch {
      return false;
    }
  }

  /** Starts the cluster and waits until it accepts connections; a running cluster is adopted as is. */
  async start(): Promise<'started' | 'already-running'> {
    if (!this.isInitialised()) throw new UserError(`no PostgreSQL cluster in ${this.pgData}`);
    if (await this.isRunning()) return 'already-running';
    const logDir = join(this.pgData, 'log');
    if (!existsSync(logDir)) {
      mkdirSync(logDir, { mode: 0o700 });
      this.#own(logDir, 0o700);
    }
    try {
      await runTool(
        this.tools.path('pg_ctl'),
        ['start', '--pgdata', this.pgData, '--wait', '--timeout', '120', '--silent', '--log', join(logDir, 'startup.log')],
        { runAs: this.runAs, timeoutMs: 130_000 },
      );
    } catch (err) {
      const tail = this.#logTail(join(logDir, 'startup.log'));
      throw new UserError(`PostgreSQL in ${this.pgData} did not start: ${(err as Error).message}${tail ? `\n${tail}` : ''}`);
    }
    return 'started';
  }

  #logTail(file: string): string {
    try {
      return readFileSync(file, 'utf8').trim().split('\n').slice(-8).join('\n');
    } catch {
      return '';
    }
  }

  /** Stops the cluster: `fast` rolls back open transactions and checkpoints, so nothing committed is lost. */
  async stop(mode: 'smart' | 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (!(await this.isRunning())) return;
    await runTool(this.tools.path('pg_ctl'), ['stop', '--pgdata', this.pgData, '--mode', mode, '--wait', '--timeout', '120', '--silent'], {
      runAs: this.runAs,
      timeoutMs: 130_000,
    });
  }

  /**
   * Rewrites taskflow.conf for this cluster's own port and address (a copied cluster carries its
   * source's); `listenAddresses` replaces the one address (postgres.listenAddresses, network.ts).
   */
  writeSettings(listenAddresses?: string[]): void {
    const path = join(this.pgData, 'taskflow.conf');
    writeFileSync(path, clusterSettings(this.port, listenAddresses?.join(',') ?? this.listenAddress, this.maxSlotWalKeepSizeMb), { mode: 0o600 });
    this.#own(path, 0o600);
  }

  /** Restarts the running cluster (settings such as listen_addresses need it): a fast shutdown, so nothing committed is lost. */
  async restart(): Promise<void> {
    await runTool(
      this.tools.path('pg_ctl'),
      ['restart', '--pgdata', this.pgData, '--mode', 'fast', '--wait', '--timeout', '120', '--silent', '--log', join(this.pgData, 'log', 'startup.log')],
      { runAs: this.runAs, timeoutMs: 250_000 },
    );
  }

  /** The lines of a block writeHbaBlock wrote into this (local) cluster's pg_hba.conf, or null when there is none. */
  hbaBlock(block: string): string[] | null {
    const current = readFileSync(join(this.pgData, 'pg_hba.conf'), 'utf8').split('\n');
    const start = current.indexOf(`# TaskFlow ${block} (begin)`);
    const stop = current.indexOf(`# TaskFlow ${block} (end)`);
    return start >= 0 && stop > start ? current.slice(start + 1, stop) : null;
  }

  /**
   * Puts `lines` at the top of pg_hba.conf between markers named `block`, replacing an earlier copy
   * of the block, so they win over the general lines below (pg_hba.conf is first match). Takes
   * effect on the next reload.
   */
  writeHbaBlock(block: string, lines: string[]): void {
    const path = join(this.pgData, 'pg_hba.conf');
    const begin = `# TaskFlow ${block} (begin)`;
    const end = `# TaskFlow ${block} (end)`;
    const current = readFileSync(path, 'utf8');
    const start = current.indexOf(begin);
    const stop = current.indexOf(end);
    const rest = start >= 0 && stop > start ? current.slice(0, start) + current.slice(stop + end.length + 1) : current;
    writeFileSync(path, [begin, ...lines, end, ''].join('\n') + rest, { mode: 0o600 });
    this.#own(path, 0o600);
  }

  /**
   * Makes this stopped cluster start as a standby: standby.signal, and in postgresql.auto.conf the
   * upstream's connection string and replication slot (what `pg_basebackup -R` writes). Replication
   * slots and server logs that came with a copy are removed: they belong to the source. `extra`
   * settings go into postgresql.auto.conf too (a copy's own certificate files).
   */
  writeStandbySettings(settings: { primaryConninfo: string; slotName: string; extra?: Record<string, string> }): void {
    this.#setAutoConf({ ...settings.extra, primary_conninfo: settings.primaryConninfo, primary_slot_name: settings.slotName });
    this.#writeOwned('standby.signal', '');
    this.#emptyDir('pg_replslot');
    this.#emptyDir('log');
  }

  /**
   * Fences this stopped cluster: standby.signal and no upstream, so whoever starts it gets a
   * read-only server that cannot take writes, and TASKFLOW_FENCED says why.
   */
  fence(reason: string): void {
    this.#setAutoConf({ primary_conninfo: null, primary_slot_name: null });
    this.#writeOwned('standby.signal', '');
    this.#writeOwned('TASKFLOW_FENCED', `${reason}\n`);
  }

  /** Lifts the fence (before this cluster is rewound or restarted as the primary it was). */
  unfence(): void {
    rmSync(join(this.pgData, 'TASKFLOW_FENCED'), { force: true });
    rmSync(join(this.pgData, 'standby.signal'), { force: true });
  }

  isFenced(): boolean {
    return existsSync(join(this.pgData, 'TASKFLOW_FENCED'));
  }

  /** `pg_controldata` of this cluster, as field name to value. */
  async controlData(): Promise<Record<string, string>> {
    const { stdout } = await runTool(join(this.tools.binDir, 'pg_controldata'), [this.pgData], { runAs: this.runAs });
    const fields: Record<string, string> = {};
    for (const line of stdout.split('\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) fields[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
    }
    return fields;
  }

  /** Sets (a string) or removes (null) settings in postgresql.auto.conf of a stopped cluster. */
  #setAutoConf(settings: Record<string, string | null>): void {
    const path = join(this.pgData, 'postgresql.auto.conf');
    const names = Object.keys(settings);
    const kept = (existsSync(path) ? readFileSync(path, 'utf8') : '# Do not edit this file manually!\n')
      .split('\n')
      .filter((line) => line !== '' && !names.includes(line.split('=')[0]?.trim() ?? ''));
    for (const [name, value] of Object.entries(settings)) {
      // The configuration file syntax: a quote is doubled, a backslash escaped.
      if (value !== null) kept.push(`${name} = '${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`);
    }
    writeFileSync(path, kept.join('\n') + '\n', { mode: 0o600 });
    this.#own(path, 0o600);
  }

  #writeOwned(name: string, content: string): void {
    const path = join(this.pgData, name);
    writeFileSync(path, content, { mode: 0o600 });
    this.#own(path, 0o600);
  }

  #emptyDir(name: string): void {
    const path = join(this.pgData, name);
    if (!existsSync(path)) return;
    for (const entry of readdirSync(path)) rmSync(join(path, entry), { recursive: true, force: true });
  }

  /** The postmaster's PID while it runs (from postmaster.pid), for tests that kill it. */
  postmasterPid(): number | null {
    return postmasterPidIn(this.pgData);
  }
}

/** The PID postmaster.pid in a data directory names (null without one); the process may be gone. */
export function postmasterPidIn(pgData: string): number | null {
  try {
    const first = readFileSync(join(pgData, 'postmaster.pid'), 'utf8').split('\n')[0];
    return first ? Number(first) : null;
  } catch {
    return null;
  }
}
