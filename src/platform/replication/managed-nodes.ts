/**
 * How the platform opens a managed cluster that has standbys: it uses the node recorded as primary
 * (which a failover or switchover may have moved off `main`), starts and stops the standbys with it
 * (over SSH on other machines), and refuses to run while another node also accepts writes.
 */
import type { Logger } from 'pino';
import { UserError } from '../../errors.ts';
import type { DataDir } from '../data-dir.ts';
import { LocalCluster } from '../postgres/local-cluster.ts';
import { RemoteCluster } from './remote-cluster.ts';
import { describeRemote } from './remote-shell.ts';
import { assertSinglePrimaryOf } from './split-brain.ts';
import { hasTopology, nodeDataDir, readTopology, standbyNames, type Topology } from './topology.ts';

export interface RecordedPrimary {
  name: string;
  pgData: string;
  port: number;
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
  if (node.remote) {
    throw new UserError(
      `the primary ${topology.primary} runs on another machine (${describeRemote(node.remote)}); serving from a remote primary is not supported yet: move the primary role back with 'taskflow cluster switchover --to NODE' (a local node)`,
      4,
    );
  }
  return { name: topology.primary, pgData: nodeDataDir(dir, topology.primary), port: node.port };
}

export interface ManagedStandbys {
  /** Stops the standbys this open started, or (`all`) every standby recorded now (standbys added while it ran included). */
  stop(all: boolean): Promise<void>;
}

function clusterLike(primary: LocalCluster, dir: DataDir, topology: Topology, name: string): LocalCluster {
  const record = topology.nodes[name];
  const options = { port: record?.port ?? 0, tools: primary.tools, runAs: primary.runAs, superuserPassword: primary.target().password, maxSlotWalKeepSizeMb: primary.maxSlotWalKeepSizeMb };
  // A standby on another machine is started over SSH, like `cluster start` does.
  if (record?.remote) return new RemoteCluster(options, record.remote);
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
    for (const name of standbyNames(now)) await clusterLike(primary, dir, now, name).stop().catch(() => undefined);
  };
  if (!hasTopology(dir)) return { stop: (all) => (all ? stopAll() : Promise.resolve()) };
  const topology = readTopology(dir, options.mainPort);
  const clusters = new Map(Object.keys(topology.nodes).map((name) => [name, name === topology.primary ? primary : clusterLike(primary, dir, topology, name)] as const));
  const standbys = standbyNames(topology).map((name) => ({ name, cluster: clusters.get(name) ?? clusterLike(primary, dir, topology, name) }));
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
