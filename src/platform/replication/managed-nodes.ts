/**
 * How the platform opens a managed cluster that has standbys: it uses the node recorded as primary
 * (which a failover or switchover may have moved off `main`, or onto another machine, where it is
 * checked but not started), starts and stops the standbys with it (over SSH on other machines), and
 * refuses to run while another node also accepts writes.
 */
import type { Logger } from 'pino';
import { UserError } from '../../errors.ts';
import type { DataDir } from '../data-dir.ts';
import type { ConnectionTarget } from '../postgres/connection.ts';
import { LocalCluster } from '../postgres/local-cluster.ts';
import { replicationFiles } from './access.ts';
import { probeNode } from './probe.ts';
import { RemoteCluster } from './remote-cluster.ts';
import { describeRemote, type RemoteNode } from './remote-shell.ts';
import { assertSinglePrimaryOf } from './split-brain.ts';
import { hasTopology, nodeDataDir, readTopology, standbyNames, type Topology } from './topology.ts';

export interface RecordedPrimary {
  name: string;
  pgData: string;
  port: number;
  /** A primary on another machine (after a failover or switchover to a remote node). */
  remote?: RemoteNode;
}

/** The node to use as primary: `main` on `mainPort`, unless the topology records another. */
export function recordedPrimary(dir: DataDir, mainPort: number): RecordedPrimary {
  const topology = readTopology(dir, mainPort);
  if (topology.pending) {
    const p = topology.pending;
    throw new UserError(
      `a ${p.action} from ${p.from} to ${p.to} started at ${p.startedAt} and did not finish, so there is no primary to use; finish it with 'taskflow cluster ${p.action} --to ${p.to}'`,
      4,
    );
  }
  const node = topology.nodes[topology.primary];
  if (!node) throw new UserError(`the recorded primary ${topology.primary} is not among the nodes; restore replication.json from a backup`);
  if (node.remote) return { name: topology.primary, pgData: node.remote.dataDir, port: node.port, remote: node.remote };
  return { name: topology.primary, pgData: nodeDataDir(dir, topology.primary), port: node.port };
}

/**
 * Starts the recorded primary when it is on this machine. One on another machine is not started
 * from here (its machine runs it, and other app hosts may use it): it must answer, as a primary, at
 * its address, else the start is refused (exit 4) saying what to do.
 */
export async function startRecordedPrimary(cluster: LocalCluster, name: string): Promise<'started' | 'already-running'> {
  if (!(cluster instanceof RemoteCluster)) return cluster.start();
  const probe = await probeNode(cluster);
  const where = `${cluster.listenAddress}:${cluster.port} (${describeRemote(cluster.remote)})`;
  if (!probe.reachable) {
    throw new UserError(
      `the primary ${name} runs on another machine and does not answer at ${where}: ${probe.error ?? 'unknown'}; start it there ('taskflow cluster start ${name}'), or fail over to another node ('taskflow cluster failover --to NODE')`,
      4,
    );
  }
  if (probe.inRecovery) throw new UserError(`the recorded primary ${name} at ${where} is in recovery (read-only); see 'taskflow cluster status'`, 4);
  return 'already-running';
}

/**
 * The administrator's connection to the managed cluster's primary: over TLS once a node is on
 * another machine (every node then has the replication certificates and ssl on), verifying the
 * primary's certificate against the cluster's CA (it names loopback and the node's address).
 */
export function managedCredentials(dir: DataDir, mainPort: number, primary: LocalCluster): ConnectionTarget {
  const topology = readTopology(dir, mainPort);
  const remoteNodes = Object.values(topology.nodes).some((n) => n.remote !== undefined);
  return remoteNodes ? { ...primary.target(), ssl: true, ca: replicationFiles({ dir }).caCert } : primary.target();
}

export interface ManagedStandbys {
  /** Stops the standbys this open started, or (`all`) every standby recorded now (standbys added while it ran included). */
  stop(all: boolean): Promise<void>;
}

/** The cluster of node `name`, with the tools, OS user and password of `primary`: over SSH when it is on another machine. */
export function managedNodeCluster(primary: LocalCluster, dir: DataDir, topology: Topology, name: string): LocalCluster {
  const record = topology.nodes[name];
  const options = { port: record?.port ?? 0, tools: primary.tools, runAs: primary.runAs, superuserPassword: primary.target().password, maxSlotWalKeepSizeMb: primary.maxSlotWalKeepSizeMb };
  // A standby on another machine is started over SSH, like `cluster start` does.
  if (record?.remote) return new RemoteCluster({ ...options, ca: replicationFiles({ dir }).caCert }, record.remote);
  return new LocalCluster({ ...options, pgData: nodeDataDir(dir, name) });
}

/**
 * Starts the local standbys that are down (fenced nodes stay down), then refuses (exit 4) when any
 * node other than the primary accepts writes. Without a recorded topology it does nothing.
 */
export async function startManagedStandbys(options: { dir: DataDir; primary: LocalCluster; mainPort: number; log: Logger }): Promise<ManagedStandbys> {
  const { dir, primary, log } = options;
  const stopAll = async () => {
    if (!hasTopology(dir)) return;
    const now = readTopology(dir, options.mainPort);
    for (const name of standbyNames(now)) await managedNodeCluster(primary, dir, now, name).stop().catch(() => undefined);
  };
  if (!hasTopology(dir)) return { stop: (all) => (all ? stopAll() : Promise.resolve()) };
  const topology = readTopology(dir, options.mainPort);
  const clusters = new Map(Object.keys(topology.nodes).map((name) => [name, name === topology.primary ? primary : managedNodeCluster(primary, dir, topology, name)] as const));
  const standbys = standbyNames(topology).map((name) => ({ name, cluster: clusters.get(name) ?? managedNodeCluster(primary, dir, topology, name) }));
  const started: LocalCluster[] = [];
  const stopStarted = async () => {
    for (const cluster of started) await cluster.stop().catch(() => undefined);
  };
  for (const { name, cluster } of standbys) {
    try {
      if ((await cluster.start()) === 'started') {
        started.push(cluster);
        log.info({ node: name, port: cluster.port }, 'standby started');
      }
    } catch (err) {
      log.warn({ node: name, err: (err as Error).message }, 'standby did not start; replication to it is stopped');
    }
  }
  try {
    await assertSinglePrimaryOf(topology, clusters);
  } catch (err) {
    await stopStarted();
    throw err;
  }
  if (topology.mode === 'sync' && standbys.length > 0 && started.length === 0 && !(await anyRunning(standbys.map((s) => s.cluster)))) {
    log.warn('sync mode and no standby is running: every commit waits until one is');
  }
  return {
    stop: (all) => (all ? stopAll() : stopStarted()),
  };
}

async function anyRunning(clusters: LocalCluster[]): Promise<boolean> {
  for (const cluster of clusters) if (await cluster.isRunning()) return true;
  return false;
}
