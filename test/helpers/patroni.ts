/**
 * A real Patroni cluster on loopback for the suites: one etcd member and two Patroni nodes (Debian's
 * `etcd-server` and `patroni` packages), each node running its own PostgreSQL 15 in a temporary
 * directory as the PostgreSQL OS user. Timings are small (ttl 6 s, loop_wait 1 s) so a failover
 * takes seconds; synchronous_mode is on, so an acknowledged commit is on both nodes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { freePort } from '../../src/platform/postgres/local-cluster.ts';
import { resolveRunAs } from '../../src/platform/postgres/tools.ts';
import { tempDir } from './platform.ts';

const BIN_DIR = process.env.TASKFLOW_PG_BINDIR ?? '/usr/lib/postgresql/15/bin';
const SCOPE = 'taskflow-test';

export interface PatroniNode {
  name: string;
  apiPort: number;
  pgPort: number;
  pgData: string;
  endpoint: string;
  process: ChildProcess;
}

export interface PatroniCluster {
  nodes: PatroniNode[];
  /** The REST API of every node, for postgres.patroni.endpoints. */
  endpoints: string[];
  /** A databaseUrl with the Patroni superuser's credentials (its host and port are the first node's). */
  databaseUrl: string;
  /** The member holding the leader lock and running as primary, once there is one. */
  waitForLeader(timeoutMs: number, except?: string): Promise<string>;
  /** Waits until the cluster has a synchronous standby (commits then wait for it). */
  waitForSyncStandby(timeoutMs: number): Promise<void>;
  node(name: string): PatroniNode;
  /** SIGKILL of a node's Patroni and of its PostgreSQL (postmaster and children), as a crash would. */
  kill(name: string): void;
  /** Where a node's logs are, for failures. */
  logs(name: string): string;
  cleanup(): Promise<void>;
}

interface ClusterView {
  members: { name: string; role: string; state?: string }[];
}

async function getJson<T>(url: string): Promise<T | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return (await res.json()) as T;
  } catch {
    return null;
  }
}

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, logs: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${logs()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}

/** SIGKILL of a process and, if it leads one, its process group. */
function killGroup(pid: number | undefined): void {
  if (!pid) return;
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      /* no such group, or already gone */
    }
  }
}

function nodeConfig(o: { name: string; dir: string; apiPort: number; pgPort: number; etcdPort: number; superuser: string; replicator: string }): string {
  return `scope: ${SCOPE}
name: ${o.name}
log:
  level: INFO
restapi:
  listen: 127.0.0.1:${o.apiPort}
  connect_address: 127.0.0.1:${o.apiPort}
etcd3:
  hosts: 127.0.0.1:${o.etcdPort}
bootstrap:
  dcs:
    ttl: 6
    loop_wait: 1
    retry_timeout: 2
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_level: replica
        hot_standby: 'on'
        max_wal_senders: 10
        max_replication_slots: 10
        wal_log_hints: 'on'
        max_connections: 200
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
    - data-checksums
    - auth-host: scram-sha-256
    - auth-local: scram-sha-256
  pg_hba:
    - host replication replicator 127.0.0.1/32 scram-sha-256
    - host all all 127.0.0.1/32 scram-sha-256
postgresql:
  listen: 127.0.0.1:${o.pgPort}
  connect_address: 127.0.0.1:${o.pgPort}
  data_dir: ${join(o.dir, 'data')}
  bin_dir: ${BIN_DIR}
  pgpass: ${join(o.dir, 'pgpass')}
  authentication:
    superuser:
      username: postgres
      password: '${o.superuser}'
    replication:
      username: replicator
      password: '${o.replicator}'
  parameters:
    unix_socket_directories: '${o.dir}'
    password_encryption: scram-sha-256
watchdog:
  mode: off
`;
}

/** Starts etcd and two Patroni nodes and waits until one leads and the other is its synchronous standby. */
export async function startPatroniCluster(): Promise<PatroniCluster> {
  const runAs = resolveRunAs('postgres');
  if (!runAs) throw new Error('the Patroni suite runs as root (PostgreSQL runs as the postgres OS user)');
  const root = tempDir('patroni');
  const work = join(root, 'work');
  mkdirSync(work, { mode: 0o700 });
  chownSync(work, runAs.uid, runAs.gid);
  const owned = (path: string) => {
    mkdirSync(path, { recursive: true, mode: 0o700 });
    chownSync(path, runAs.uid, runAs.gid);
    return path;
  };
  const spawnAs = (command: string, args: string[], log: string): ChildProcess => {
    const fd = openSync(log, 'a', 0o600);
    chownSync(log, runAs.uid, runAs.gid);
    // Its own process group, so that a kill reaches everything it started (but not PostgreSQL,
    // which Patroni starts in a session of its own).
    return spawn(command, args, { uid: runAs.uid, gid: runAs.gid, detached: true, stdio: ['ignore', fd, fd], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, LANG: 'C.UTF-8' } });
  };

  const [etcdPort, peerPort] = [await freePort(), await freePort()];
  const etcdLog = join(work, 'etcd.log');
  const etcd = spawnAs(
    'etcd',
    [
      '--name', 'e1', '--data-dir', owned(join(work, 'etcd')),
      '--listen-client-urls', `http://127.0.0.1:${etcdPort}`, '--advertise-client-urls', `http://127.0.0.1:${etcdPort}`,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster', `e1=http://127.0.0.1:${peerPort}`, '--initial-cluster-state', 'new',
      '--heartbeat-interval', '100', '--election-timeout', '1000',
    ],
    etcdLog,
  );
  const superuser = randomBytes(18).toString('base64url');
  const replicator = randomBytes(18).toString('base64url');
  const nodes: PatroniNode[] = [];
  const allLogs = () => [`etcd:\n${tail(etcdLog)}`, ...nodes.map((n) => `${n.name}:\n${tail(join(work, n.name, 'patroni.log'))}`)].join('\n');
  const cleanup = async () => {
    for (const n of nodes) {
      killGroup(n.process.pid);
      try {
        killGroup(Number(readFileSync(join(n.pgData, 'postmaster.pid'), 'utf8').split('\n')[0]));
      } catch {
        /* not running */
      }
    }
    killGroup(etcd.pid);
    await new Promise((r) => setTimeout(r, 300));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await until('etcd', 20_000, async () => ((await getJson<{ health?: string }>(`http://127.0.0.1:${etcdPort}/health`))?.health === 'true' ? true : undefined), allLogs);
    for (const name of ['pg1', 'pg2']) {
      const dir = owned(join(work, name));
      const [apiPort, pgPort] = [await freePort(), await freePort()];
      const config = join(dir, 'patroni.yml');
      writeFileSync(config, nodeConfig({ name, dir, apiPort, pgPort, etcdPort, superuser, replicator }), { mode: 0o600 });
      chownSync(config, runAs.uid, runAs.gid);
      const proc = spawnAs('patroni', [config], join(dir, 'patroni.log'));
      nodes.push({ name, apiPort, pgPort, pgData: join(dir, 'data'), endpoint: `http://127.0.0.1:${apiPort}`, process: proc });
      // The first one bootstraps the cluster; the second is cloned from it.
      if (nodes.length === 1) await leader(90_000);
    }
  } catch (err) {
    await cleanup();
    throw err;
  }

  async function leader(timeoutMs: number, except?: string): Promise<string> {
    return until(`a Patroni leader${except ? ` other than ${except}` : ''}`, timeoutMs, async () => {
      for (const n of nodes) {
        if (n.name === except) continue;
        const self = await getJson<{ role?: string; state?: string }>(`${n.endpoint}/patroni`);
        const view = await getJson<ClusterView>(`${n.endpoint}/cluster`);
        const leads = view?.members.some((m) => m.name === n.name && m.role === 'leader');
        if (leads && (self?.role === 'master' || self?.role === 'primary') && self.state === 'running') return n.name;
      }
      return undefined;
    }, allLogs);
  }

  const first = nodes[0];
  if (!first) throw new Error('no node');
  return {
    nodes,
    endpoints: nodes.map((n) => n.endpoint),
    databaseUrl: `postgres://postgres:${superuser}@127.0.0.1:${first.pgPort}/postgres`,
    waitForLeader: leader,
    async waitForSyncStandby(timeoutMs) {
      await until('a synchronous standby', timeoutMs, async () => {
        const view = await getJson<ClusterView>(`${first.endpoint}/cluster`);
        return view?.members.some((m) => m.role === 'sync_standby' && m.state === 'running') ? true : undefined;
      }, allLogs);
    },
    node(name) {
      const n = nodes.find((x) => x.name === name);
      if (!n) throw new Error(`no node ${name}`);
      return n;
    },
    kill(name) {
      const n = nodes.find((x) => x.name === name);
      if (!n) throw new Error(`no node ${name}`);
      const postmaster = Number(readFileSync(join(n.pgData, 'postmaster.pid'), 'utf8').split('\n')[0]);
      killGroup(n.process.pid);
      killGroup(postmaster);
    },
    logs: (name) => tail(join(work, name, 'patroni.log')),
    cleanup,
  };
}
