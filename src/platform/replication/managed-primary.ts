/**
 * The primary of the managed cluster, for a process that keeps running: the node replication.json
 * records (failover and switchover rewrite it, atomically), none while a failover or switchover is
 * under way, and none while another node also accepts writes. The file is watched, and read again
 * whenever the locator asks; the other nodes are asked whether they accept writes every
 * `splitBrainCheckMs`, as every command and every start does once (split-brain.ts).
 */
import { watch } from 'node:fs';
import type { DataDir } from '../data-dir.ts';
import type { LocalCluster } from '../postgres/local-cluster.ts';
import { managedNodeCluster } from './managed-nodes.ts';
import type { LookupResult, PrimaryLookup, SplitBrain } from './primary-locator.ts';
import { probeNode, type NodeProbe } from './probe.ts';
import { splitBrainProblem, writableNodes } from './split-brain.ts';
import { readTopology, topologyPath, type Topology } from './topology.ts';

export interface ManagedPrimaryOptions {
  dir: DataDir;
  /** Port of `main` in state.json, for a data directory without replication.json. */
  mainPort: number;
  /** Any node of the cluster, for the tools, OS user, address and password every node shares. */
  cluster: LocalCluster;
  splitBrainCheckMs: number;
  /** A primary whose nodes were all just asked (as every start does), so the first check can wait its turn. */
  checkedPrimary?: string;
}

/** Where the managed cluster's primary is; see the module comment. */
export class ManagedPrimaryLookup implements PrimaryLookup {
  readonly source = 'managed';
  readonly #o: ManagedPrimaryOptions;
  #lastSplitCheck = 0;
  #split: SplitBrain | null = null;
  #checkedPrimary: string | null = null;

  constructor(options: ManagedPrimaryOptions) {
    this.#o = options;
    if (options.checkedPrimary !== undefined) {
      this.#checkedPrimary = options.checkedPrimary;
      this.#lastSplitCheck = Date.now();
    }
  }

  async find(): Promise<LookupResult> {
    let topology: Topology;
    try {
      topology = readTopology(this.#o.dir, this.#o.mainPort);
    } catch (err) {
      return { primary: null, reason: (err as Error).message };
    }
    const pending = topology.pending;
    if (pending) return { primary: null, reason: `a ${pending.action} from ${pending.from} to ${pending.to} is under way` };
    const node = topology.nodes[topology.primary];
    if (!node) return { primary: null, reason: `the recorded primary ${topology.primary} is not among the nodes of ${topologyPath(this.#o.dir)}` };
    // A new primary is checked at once: the old one may have come back.
    if (this.#checkedPrimary !== topology.primary || Date.now() - this.#lastSplitCheck >= this.#o.splitBrainCheckMs) {
      this.#lastSplitCheck = Date.now();
      this.#checkedPrimary = topology.primary;
      this.#split = await this.#checkSplit(topology);
    }
    if (this.#split) return { primary: null, reason: this.#split.summary, splitBrain: this.#split };
    return { primary: { name: topology.primary, host: this.#clusterOf(topology, topology.primary).listenAddress, port: node.port } };
  }

  watch(wake: () => void): () => void {
    try {
      // replication.json is replaced by a rename, so the directory is what is watched.
      const watcher = watch(this.#o.dir.root, (_event, file) => {
        if (file === 'replication.json') wake();
      });
      watcher.on('error', () => undefined);
      watcher.unref();
      return () => {
        watcher.close();
      };
    } catch {
      // No file notifications here: the locator's interval still reads the file.
      return () => undefined;
    }
  }

  /** The node recorded as primary now, when it is on this machine (to stop it when the platform closes; one elsewhere is not ours to stop). */
  recordedPrimary(): LocalCluster | null {
    try {
      const topology = readTopology(this.#o.dir, this.#o.mainPort);
      if (topology.nodes[topology.primary]?.remote) return null;
      return this.#clusterOf(topology, topology.primary);
    } catch {
      return null;
    }
  }

  async #checkSplit(topology: Topology): Promise<SplitBrain | null> {
    const names = Object.keys(topology.nodes);
    if (names.length < 2) return null;
    const probes = new Map<string, NodeProbe>();
    await Promise.all(names.map(async (name) => probes.set(name, await probeNode(this.#clusterOf(topology, name)))));
    const problem = splitBrainProblem(topology, probes);
    return problem ? { summary: problem, nodes: writableNodes(probes).map((w) => w.name) } : null;
  }

  /** A node as a cluster: at its machine's address when it is remote, on loopback here otherwise. */
  #clusterOf(topology: Topology, name: string): LocalCluster {
    return managedNodeCluster(this.#o.cluster, this.#o.dir, topology, name);
  }
}
