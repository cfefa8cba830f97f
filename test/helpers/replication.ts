/** A managed cluster in a temporary directory for the replication suites, driven through the real CLI. */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { generateIdentity } from '../../src/platform/backup/age-keys.ts';
import { freePort } from '../../src/platform/postgres/local-cluster.ts';
import { resolveRunAs, runTool } from '../../src/platform/postgres/tools.ts';
import type { ClusterStatus } from '../../src/platform/replication/status.ts';
import type { RemoteNode } from '../../src/platform/replication/remote-shell.ts';
import type { Topology } from '../../src/platform/replication/topology.ts';
import { runCli, type CliResult } from './cli.ts';
import { startTestPlatform, tempDir } from './platform.ts';

export interface ReplicatedCluster {
  dataDir: string;
  /** Runs `taskflow <args> --data-dir <dataDir>`. */
  cli(...args: string[]): Promise<CliResult>;
  /** `cluster status --json`, whatever its exit code. */
  status(): Promise<ClusterStatus>;
  topology(): Topology;
  port(node: string): number;
  pgData(node: string): string;
  /** Runs one statement as the administrator on a node's `postgres` database. */
  sql<R extends pg.QueryResultRow = Record<string, unknown>>(node: string, text: string, params?: unknown[]): Promise<R[]>;
  /** An open admin connection to a node, for statements that must wait. */
  connect(node: string): Promise<pg.Client>;
  /** kill -9 of a node's postmaster and its children (its process group), as a crash would. */
  kill(node: string): Promise<void>;
  /** pg_ctl as the PostgreSQL OS user, behind TaskFlow's back. */
  pgCtl(node: string, ...args: string[]): Promise<void>;
  cleanup(): Promise<void>;
}

const BIN_DIR = process.env.TASKFLOW_PG_BINDIR ?? '/usr/lib/postgresql/15/bin';

export async function startReplicatedCluster(): Promise<ReplicatedCluster> {
  const tp = await startTestPlatform();
  // The suites work through the CLI and direct connections; the cluster keeps running.
  await tp.platform.close({ stopCluster: false });
  const { dataDir } = tp;
  const password = readFileSync(join(dataDir, 'secrets', 'pg-superuser.password'), 'utf8').trim();
  const topology = (): Topology => {
    const path = join(dataDir, 'replication.json');
    if (!existsSync(path)) {
      const state = JSON.parse(readFileSync(join(dataDir, 'state.json'), 'utf8')) as { managed: { port: number } };
      return { version: 1, primary: 'main', mode: 'async', credentialVersion: 1, nodes: { main: { port: state.managed.port, role: 'primary', addedAt: '' } }, pending: null, history: [] };
    }
    return JSON.parse(readFileSync(path, 'utf8')) as Topology;
  };
  const port = (node: string): number => {
    const record = topology().nodes[node];
    if (!record) throw new Error(`no node ${node}`);
    return record.port;
  };
  const pgData = (node: string) => join(dataDir, 'postgres', node);
  const connect = async (node: string): Promise<pg.Client> => {
    const client = new pg.Client({ host: '127.0.0.1', port: port(node), user: 'taskflow_admin', password, database: 'postgres', connectionTimeoutMillis: 5000 });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  };
  const postmasterPid = (node: string): number | null => {
    try {
      return Number(readFileSync(join(pgData(node), 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return null;
    }
  };
  /**
   * SIGKILL to a postmaster and every process it started, as a machine that dies takes them all: by
   * its process group, and each child found by its parent pid (a postmaster started by a `taskflow`
   * command is not always a group leader). A backend left behind would keep waiting for a standby,
   * and the writers waiting on it with it, for ever.
   */
  const killGroup = (pid: number) => {
    const children = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((p) => {
      try {
        // `pid (comm) state ppid …`: the ppid is the second field after the command's closing parenthesis.
        return Number(readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]) === pid;
      } catch {
        return false;
      }
    });
    for (const target of [-pid, pid, ...children]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        /* already gone, or no such group */
      }
    }
  };
  // A killed postmaster is reparented to init, which may take a while to reap it: a zombie is dead.
  const alive = (pid: number) => {
    try {
      return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  return {
    dataDir,
    cli: (...args) => runCli([...args, '--data-dir', dataDir], { timeoutMs: 180_000 }),
    async status() {
      const r = await runCli(['cluster', 'status', '--json', '--data-dir', dataDir]);
      if (r.code !== 0 && r.code !== 4) throw new Error(`cluster status failed (${r.code}): ${r.stderr}`);
      return JSON.parse(r.stdout) as ClusterStatus;
    },
    topology,
    port,
    pgData,
    async sql<R extends pg.QueryResultRow>(node: string, text: string, params: unknown[] = []) {
      const client = await connect(node);
      try {
        return (await client.query<R>(text, params)).rows;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    connect,
    async kill(node) {
      const pid = postmasterPid(node);
      if (!pid) throw new Error(`node ${node} is not running`);
      killGroup(pid);
      for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
      if (alive(pid)) throw new Error(`the postmaster of ${node} survived SIGKILL`);
    },
    async pgCtl(node, ...args) {
      // The server's output goes to a log file: a server holding our pipe open would keep us waiting.
      await runTool(join(BIN_DIR, 'pg_ctl'), [...args, '--pgdata', pgData(node), '--silent', '--log', join(pgData(node), 'log', 'startup.log')], {
        runAs: resolveRunAs('postgres'),
        timeoutMs: 60_000,
      });
    },
    async cleanup() {
      const root = join(dataDir, 'postgres');
      for (const entry of existsSync(root) ? readdirSync(root) : []) {
        const pid = postmasterPid(entry);
        if (pid) killGroup(pid);
      }
      await new Promise((r) => setTimeout(r, 200));
      rmSync(join(dataDir, '..'), { recursive: true, force: true });
    },
  };
}

/** Runs `fn` with the SSH target recorded for remote node `node` in replication.json changed by `patch` (an unreachable port, other tools), and puts it back. */
export async function withRecordedRemote<T>(dataDir: string, node: string, patch: Partial<RemoteNode>, fn: () => Promise<T>): Promise<T> {
  const path = join(dataDir, 'replication.json');
  const saved = (JSON.parse(readFileSync(path, 'utf8')) as Topology).nodes[node]?.remote;
  if (!saved) throw new Error(`node ${node} is not remote`);
  const setRemote = (remote: RemoteNode) => {
    const now = JSON.parse(readFileSync(path, 'utf8')) as Topology;
    writeFileSync(path, JSON.stringify({ ...now, nodes: { ...now.nodes, [node]: { ...now.nodes[node], remote } } }));
  };
  setRemote({ ...saved, ...patch });
  try {
    return await fn();
  } finally {
    setRemote(saved);
  }
}

/** kill -9 of the postmaster running in `pgData` (a "remote" node's directory on this machine) and its process group, if one runs. */
export function killPostmasterIn(pgData: string): void {
  try {
    const pid = Number(readFileSync(join(pgData, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (pid > 0) process.kill(-pid, 'SIGKILL');
  } catch {
    /* not running */
  }
}

/** Polls `check` until it returns a value (not undefined); fails with `what` after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The node's entry in a status. */
export function nodeIn(status: ClusterStatus, name: string): ClusterStatus['nodes'][number] {
  const node = status.nodes.find((n) => n.name === name);
  if (!node) throw new Error(`no node ${name} in the status`);
  return node;
}

/** A real sshd on a loopback port that lets a throwaway key log in as PostgreSQL's OS user, with a shell: the "other machine" of remote standbys. */
export interface PostgresSshd {
  port: number;
  user: string;
  identityFile: string;
  knownHostsFile: string;
  /** An empty known_hosts file: the host key is unknown. */
  emptyKnownHostsFile: string;
  /** A directory the PostgreSQL OS user owns, for remote data directories. */
  workDir: string;
  /** How many logins sshd accepted so far (one per connection; sessions shared on one are not counted). */
  acceptedLogins(): number;
  cleanup(): Promise<void>;
}

/** `maxSessions`: sshd's MaxSessions (sessions one connection may carry; 10 by default). */
export async function startPostgresSshd(options: { maxSessions?: number } = {}): Promise<PostgresSshd> {
  const user = 'postgres';
  const runAs = resolveRunAs(user);
  // sshd reads AuthorizedKeysFile as the user, and (StrictModes) refuses one below a group- or
  // world-writable directory: a root-owned 0755 directory under /run satisfies both.
  const confDir = mkdtempSync(join('/run', 'taskflow-test-pg-sshd-'));
  chmodSync(confDir, 0o755);
  for (const key of ['host', 'user']) {
    const out = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `taskflow-test-${key}`, '-f', join(confDir, key)], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`ssh-keygen failed: ${out.stderr}`);
  }
  const authorized = join(confDir, 'authorized_keys');
  writeFileSync(authorized, readFileSync(join(confDir, 'user.pub')), { mode: 0o600 });
  if (runAs) chownSync(authorized, runAs.uid, runAs.gid);
  const port = await freePort();
  const hostKey = readFileSync(join(confDir, 'host.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  const knownHostsFile = join(confDir, 'known_hosts');
  writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${hostKey}\n`, { mode: 0o600 });
  const emptyKnownHostsFile = join(confDir, 'known_hosts.empty');
  writeFileSync(emptyKnownHostsFile, '', { mode: 0o600 });
  const config = join(confDir, 'sshd_config');
  // UsePAM: Debian's postgres account has a locked password, which sshd without PAM refuses even for keys.
  const lines = [
    'ListenAddress 127.0.0.1',
    `HostKey ${join(confDir, 'host')}`,
    `PidFile ${join(confDir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${authorized}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM yes',
    'PermitRootLogin no',
    `AllowUsers ${user}`,
    'AllowTcpForwarding no',
    'X11Forwarding no',
    // INFO: each login's "Accepted publickey" line, which acceptedLogins() counts.
    'LogLevel INFO',
    ...(options.maxSessions === undefined ? [] : [`MaxSessions ${options.maxSessions}`]),
  ];
  writeFileSync(config, lines.join('\n') + '\n', { mode: 0o600 });
  if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config, '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  await eventually(`sshd on port ${port}`, () => {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${stderr}`);
    const probe = spawnSync('ssh-keyscan', ['-p', String(port), '-T', '2', '127.0.0.1'], { encoding: 'utf8' });
    return Promise.resolve(probe.stdout.includes('ssh-ed25519') ? true : undefined);
  }, 15_000);
  const workDir = tempDir('remote');
  if (runAs) chownSync(workDir, runAs.uid, runAs.gid);
  chmodSync(workDir, 0o700);
  return {
    port,
    user,
    identityFile: join(confDir, 'user'),
    knownHostsFile,
    emptyKnownHostsFile,
    workDir,
    acceptedLogins: () => stderr.match(/^Accepted publickey for /gm)?.length ?? 0,
    async cleanup() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(confDir, { recursive: true, force: true });
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}

/**
 * `cluster standby add NAME --remote` through the loopback `sshd` into `pgdata` there, at site-b;
 * throws with the command's stderr if it fails.
 */
export async function addRemoteStandby(rc: ReplicatedCluster, sshd: PostgresSshd, pgdata: string, name = 'c'): Promise<void> {
  const added = await rc.cli(
    'cluster', 'standby', 'add', name, '--remote', `postgres@127.0.0.1:${sshd.port}`, '--port', String(await freePort()),
    '--ssh-key', sshd.identityFile, '--known-hosts', sshd.knownHostsFile, '--pgdata', pgdata, '--site', 'site-b',
  );
  if (added.code !== 0) throw new Error(`standby add ${name} --remote failed: ${added.stderr}`);
}

/** Switches over to the node `name` and waits until main streams from it; throws if the switchover fails. */
export async function switchoverTo(rc: ReplicatedCluster, name: string): Promise<void> {
  const moved = await rc.cli('cluster', 'switchover', '--to', name);
  if (moved.code !== 0) throw new Error(`switchover to ${name} failed: ${moved.stderr}`);
  await eventually(`main streaming from ${name}`, async () => (nodeIn(await rc.status(), 'main').receiver === 'streaming' ? true : undefined));
}

/**
 * Writes the cluster's backup configuration (config.json in its data directory): a filesystem
 * repository `local` beside it and a fresh age key, plus `extra` backup settings.
 */
export function writeBackupConfig(rc: ReplicatedCluster, extra: Record<string, unknown> = {}): { repositoryDir: string; identity: string } {
  const repositoryDir = join(rc.dataDir, '..', 'repo');
  mkdirSync(repositoryDir);
  chmodSync(repositoryDir, 0o711);
  const keys = generateIdentity();
  const backup = {
    allowedJurisdictions: ['DE'],
    recipients: [keys.recipient],
    repositories: [{ name: 'local', kind: 'filesystem', region: 'fra1', jurisdiction: 'DE', path: repositoryDir }],
    ...extra,
  };
  writeFileSync(join(rc.dataDir, 'config.json'), JSON.stringify({ backup }));
  return { repositoryDir, identity: keys.identity };
}
