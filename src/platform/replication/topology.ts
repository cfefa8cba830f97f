/**
 * The replication topology of the managed cluster, kept in `<dataDir>/replication.json`: which node
 * is the primary, each node's port and role, the replication mode, fenced nodes, an unfinished role
 * change and the history of role changes. Without the file there is one node, `main`: the cluster
 * the first start made in `postgres/main`. Every node's PGDATA is `<dataDir>/postgres/<name>`.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { UserError } from '../../errors.ts';
import { readState, type DataDir } from '../data-dir.ts';
import type { RemoteNode } from './remote-shell.ts';

/** The node the first start made. */
export const FIRST_NODE = 'main';
/** Node names: they are PGDATA directory names, application_name and part of the slot name. */
export const NODE_NAME_PATTERN = '^[a-z][a-z0-9_]{0,29}$';
const NODE_NAME = new RegExp(NODE_NAME_PATTERN);
export const TOPOLOGY_VERSION = 1;

export type NodeRole = 'primary' | 'standby' | 'fenced';
export type ReplicationMode = 'async' | 'sync';

export interface Fence {
  at: string;
  reason: string;
  /** The node that took over (failover), or that was being promoted. */
  replacedBy: string;
}

export interface NodeRecord {
  port: number;
  role: NodeRole;
  /** The node a standby streams from. */
  upstream?: string;
  addedAt: string;
  fence?: Fence;
  /** A node on another machine, reached over SSH (absent: a directory under `<dataDir>/postgres`). */
  remote?: RemoteNode;
  /** The node's site when it was given on the command line (else configuration says). */
  site?: string;
  /**
   * The address or DNS name standbys on other machines reach this node at, when one was given
   * (`standby add --remote --primary-host` records it on the primary of the moment); absent: a
   * remote node's own address, else the default of this machine (reachability.ts, remoteUpstreamHost).
   */
  connectHost?: string;
}

/** A failover or switchover that started and has not finished; the same command finishes it. */
export interface RoleChange {
  action: 'failover' | 'switchover';
  from: string;
  to: string;
  startedAt: string;
}

export interface RoleChangeRecord extends RoleChange {
  finishedAt: string;
  /** The new primary's timeline. */
  timeline: number | null;
  /** Failover only: bytes of the old primary's WAL the new primary never received, and the committed transactions in them. */
  lostWalBytes?: number;
  lostCommits?: number;
  forced?: boolean;
  /** Failover only, when commits were lost: 'no' when they were never acknowledged (synchronous mode), 'maybe' when --force lost them. */
  lostCommitsAcknowledged?: 'no' | 'maybe';
  lastLostCommitAt?: string | null;
}

export interface Topology {
  version: number;
  primary: string;
  mode: ReplicationMode;
  /** Bumped to rotate the replication role's password. */
  credentialVersion: number;
  nodes: Record<string, NodeRecord>;
  pending: RoleChange | null;
  history: RoleChangeRecord[];
}

export function topologyPath(dir: DataDir): string {
  return join(dir.root, 'replication.json');
}

/** PGDATA of a node. */
export function nodeDataDir(dir: DataDir, name: string): string {
  return name === FIRST_NODE ? dir.pgData : join(dir.root, 'postgres', name);
}

/** The physical replication slot a standby streams through (on whichever node is its upstream). */
export function slotName(node: string): string {
  return `taskflow_${node}`;
}

export function isNodeName(name: string): boolean {
  return NODE_NAME.test(name);
}

/** Refuses a malformed node name (exit 2). */
export function assertNodeName(name: string): void {
  if (!NODE_NAME.test(name)) {
    throw new UserError(`'${name}' is not a valid node name: use a lower-case letter, then up to 29 lower-case letters, digits or _`, 2);
  }
}

/** Whether the data directory records more than the single first node. */
export function hasTopology(dir: DataDir): boolean {
  return existsSync(topologyPath(dir));
}

/** The recorded topology; the single first node on `mainPort` when none was recorded. */
export function readTopology(dir: DataDir, mainPort: number): Topology {
  const path = topologyPath(dir);
  if (!existsSync(path)) {
    return {
      version: TOPOLOGY_VERSION,
      primary: FIRST_NODE,
      mode: 'async',
      credentialVersion: 1,
      nodes: { [FIRST_NODE]: { port: mainPort, role: 'primary', addedAt: readState(dir)?.createdAt ?? new Date().toISOString() } },
      pending: null,
      history: [],
    };
  }
  let parsed: Topology;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as Topology;
  } catch (err) {
    throw new UserError(`${path} is damaged (${(err as Error).message}); restore it from a backup`);
  }
  if (parsed.version > TOPOLOGY_VERSION) throw new UserError(`${path} was written by a newer TaskFlow (version ${parsed.version}); upgrade TaskFlow`);
  if (typeof parsed.primary !== 'string' || typeof parsed.nodes !== 'object' || !(parsed.primary in parsed.nodes)) {
    throw new UserError(`${path} is damaged (no primary node recorded); restore it from a backup`);
  }
  for (const [name, node] of Object.entries(parsed.nodes)) {
    if (node.connectHost !== undefined && !isConnectHost(node.connectHost)) {
      throw new UserError(`${path} is damaged (node ${name}: connectHost ${JSON.stringify(node.connectHost)} is not an IP address or DNS name); correct it or restore the file from a backup`);
    }
  }
  return parsed;
}

/** An IP address or a DNS name: what a node's `connectHost` may be (it goes into a conninfo string). */
export function isConnectHost(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  if (isIP(value) !== 0) return true;
  return value.length > 0 && value.length <= 253 && value.split('.').every((label) => /^[A-Za-z0-9-]{1,63}$/.test(label) && !label.startsWith('-') && !label.endsWith('-'));
}

/** Writes the topology atomically (a crash leaves the old or the new file, never half of one). */
export function writeTopology(dir: DataDir, topology: Topology): void {
  const path = topologyPath(dir);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(topology, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
}

/** The record of a node, or a not-found error (exit 3) listing the nodes there are. */
export function requireNode(topology: Topology, name: string): NodeRecord {
  const node = topology.nodes[name];
  if (!node) {
    throw new UserError(`there is no node '${name}' (nodes: ${Object.keys(topology.nodes).join(', ')})`, 3);
  }
  return node;
}

/** Names of the nodes that stream from the primary, sorted. */
export function standbyNames(topology: Topology): string[] {
  return Object.entries(topology.nodes)
    .filter(([, node]) => node.role === 'standby')
    .map(([name]) => name)
    .sort();
}

/** Refuses to act while a failover or switchover is unfinished, unless it is the one being finished. */
export function assertNoPendingChange(topology: Topology): void {
  const pending = topology.pending;
  if (pending) {
    throw new UserError(
      `a ${pending.action} from ${pending.from} to ${pending.to} started at ${pending.startedAt} and did not finish; run 'taskflow cluster ${pending.action} --to ${pending.to}' to finish it`,
      4,
    );
  }
}

/**
 * Serialises commands that change the topology (`<dataDir>/replication.lock` holds the owner's pid);
 * a lock left by a process that no longer runs is taken over.
 */
export async function withTopologyLock<T>(dir: DataDir, fn: () => Promise<T>): Promise<T> {
  const path = join(dir.root, 'replication.lock');
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) {
        throw new UserError(`another cluster command is changing the replication topology (${path}); wait for it to finish`, 4);
      }
      const holder = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && processAlive(holder)) {
        throw new UserError(`another cluster command (pid ${holder}) is changing the replication topology; wait for it to finish`, 4);
      }
      rmSync(path, { force: true });
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
