/**
 * What replication commands work with. They do not open the platform (that needs a writable
 * primary, and a failover runs exactly when there is none): they read the data directory and reach
 * each node of the managed cluster directly.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../../config.ts';
import { UserError } from '../../errors.ts';
import { dataDirLayout, readSecret, readState, type DataDir } from '../data-dir.ts';
import { masterKeyFrom } from '../platform.ts';
import { LocalCluster } from '../postgres/local-cluster.ts';
import { findPgTools, resolveRunAs, type OsIdentity, type PgTools } from '../postgres/tools.ts';
import { replicationFiles } from './access.ts';
import type { NodeProbe } from './probe.ts';
import { RemoteCluster } from './remote-cluster.ts';
import { assertSinglePrimaryOf } from './split-brain.ts';
import { nodeDataDir, readTopology, requireNode, type Topology } from './topology.ts';

export interface ReplicationContext {
  config: Config;
  dir: DataDir;
  tools: PgTools;
  /** The OS user PostgreSQL runs as (as root), else null. */
  runAs: OsIdentity | null;
  superuserPassword: string;
  /** Key from which the replication role's password is derived; never logged. */
  masterKey: string;
  /** Port of `main` in state.json, the default when no topology was recorded. */
  mainPort: number;
  log: Logger;
}

/** The context for one command; refuses an external cluster (its own HA engine moves it) and an uninitialised data directory. */
export function openReplication(config: Config, log: Logger): ReplicationContext {
  if (config.databaseUrl) {
    throw new UserError(
      'replication commands manage the local cluster TaskFlow runs itself; an external cluster (databaseUrl) is replicated and failed over by its own HA engine (Patroni, CloudNativePG)',
      2,
    );
  }
  const dir = dataDirLayout(config.dataDir);
  const state = readState(dir);
  if (!state?.initialised || !state.managed) throw new UserError(`${dir.root} is not initialised; run 'taskflow start' first`);
  const superuserPassword = readSecret(dir, 'pg-superuser.password');
  if (!superuserPassword) throw new UserError(`${dir.secretsDir}/pg-superuser.password is missing; restore the data directory from a backup`);
  const tools = findPgTools(config.postgres.binDir);
  for (const tool of ['pg_rewind', 'pg_waldump', 'pg_controldata']) {
    if (!existsSync(join(tools.binDir, tool))) throw new UserError(`${tool} is missing from ${tools.binDir}; replication needs it`);
  }
  return {
    config,
    dir,
    tools,
    runAs: resolveRunAs(config.postgres.osUser),
    superuserPassword,
    masterKey: masterKeyFrom(dir),
    mainPort: state.managed.port,
    log,
  };
}

export function loadTopology(ctx: ReplicationContext): Topology {
  return readTopology(ctx.dir, ctx.mainPort);
}

/** The cluster of a recorded node: a local directory, or a RemoteCluster driven over SSH. */
export function nodeCluster(ctx: ReplicationContext, topology: Topology, name: string): LocalCluster {
  const node = requireNode(topology, name);
  if (node.remote) {
    return new RemoteCluster({ port: node.port, tools: ctx.tools, runAs: ctx.runAs, superuserPassword: ctx.superuserPassword, maxSlotWalKeepSizeMb: ctx.config.replication.maxSlotWalKeepSizeMb, ca: replicationFiles(ctx).caCert }, node.remote);
  }
  return clusterAt(ctx, nodeDataDir(ctx.dir, name), node.port);
}

export function clusterAt(ctx: ReplicationContext, pgData: string, port: number): LocalCluster {
  return new LocalCluster({ pgData, port, tools: ctx.tools, runAs: ctx.runAs, superuserPassword: ctx.superuserPassword, maxSlotWalKeepSizeMb: ctx.config.replication.maxSlotWalKeepSizeMb });
}

/** The site a node runs at (replication.nodes.<name>.site, else the site it was added with, else replication.defaultSite). */
export function siteOf(config: Config, name: string, recorded?: string): string {
  return config.replication.nodes[name]?.site ?? recorded ?? config.replication.defaultSite;
}

/** A PostgreSQL tool that is not among the ones every installation needs. */
export function extraTool(ctx: ReplicationContext, tool: 'pg_rewind' | 'pg_waldump'): string {
  return join(ctx.tools.binDir, tool);
}

/** Every node's local cluster, by name. */
export function allClusters(ctx: ReplicationContext, topology: Topology): Map<string, LocalCluster> {
  return new Map(Object.keys(topology.nodes).map((name) => [name, nodeCluster(ctx, topology, name)] as const));
}

/** Probes every node; refuses (exit 4) when a node other than the expected primary accepts writes. */
export function assertSinglePrimary(
  ctx: ReplicationContext,
  topology: Topology,
  options: { expectedPrimary?: string; skip?: string[] } = {},
): Promise<Map<string, NodeProbe>> {
  return assertSinglePrimaryOf(topology, allClusters(ctx, topology), options);
}
