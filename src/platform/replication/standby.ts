/** Standbys of the managed cluster: add, rebuild, remove, start and stop them. */
import { existsSync, renameSync, rmSync } from 'node:fs';
import { UserError } from '../../errors.ts';
import { freePort, type LocalCluster } from '../postgres/local-cluster.ts';
import { ensureReplicationAccess, replicationFiles } from './access.ts';
import { assertSinglePrimary, clusterAt, loadTopology, nodeCluster, type ReplicationContext } from './context.ts';
import { baseBackup, configureStandby, dropSlot, ensureSlot, keepLogs, rewind } from './copy.ts';
import { applySynchronousNames } from './mode.ts';
import { awaitReaped } from './processes.ts';
import { poll, primaryView, probeNode } from './probe.ts';
import { RemoteCluster } from './remote-cluster.ts';
import { rejoinRemote } from './remote-rebuild.ts';
import {
  assertNoPendingChange,
  assertNodeName,
  nodeDataDir,
  requireNode,
  standbyNames,
  withTopologyLock,
  writeTopology,
  type Topology,
} from './topology.ts';

const STREAMING_TIMEOUT_MS = 60_000;

/** The primary, reachable and accepting writes, or a refusal (exit 4) saying what to do. */
export async function writablePrimary(ctx: ReplicationContext, topology: Topology): Promise<LocalCluster> {
  const primary = nodeCluster(ctx, topology, topology.primary);
  const probe = await probeNode(primary);
  if (!probe.reachable) {
    throw new UserError(`the primary ${topology.primary} is not reachable (${probe.error ?? 'unknown'}); start it ('taskflow cluster start') or fail over ('taskflow cluster failover --to NODE')`, 4);
  }
  if (probe.inRecovery) throw new UserError(`the recorded primary ${topology.primary} is in recovery (read-only); see 'taskflow cluster status'`, 4);
  return primary;
}

/** Waits until the primary reports `name` streaming; refuses with the node's log when it does not. */
export async function waitStreaming(primary: LocalCluster, standby: LocalCluster, name: string, timeoutMs = STREAMING_TIMEOUT_MS): Promise<void> {
  const ok = await poll(async () => {
    const view = await primaryView(primary).catch(() => null);
    return view?.senders.some((s) => s.name === name && s.state === 'streaming') ? true : undefined;
  }, timeoutMs, 200);
  if (!ok) throw new UserError(`node ${name} did not start streaming within ${Math.round(timeoutMs / 1000)} s; see its log in ${standby.pgData}/log`);
}

export interface AddedStandby {
  name: string;
  port: number;
  pgData: string;
  upstream: string;
  tookMs: number;
}

/** Builds a standby of the primary in `<dataDir>/postgres/<name>` on a free port, starts it and waits until it streams. */
export async function addStandby(ctx: ReplicationContext, options: { name: string; port?: number }): Promise<AddedStandby> {
  const { name } = options;
  assertNodeName(name);
  return withTopologyLock(ctx.dir, async () => {
    const started = performance.now();
    const topology = loadTopology(ctx);
    assertNoPendingChange(topology);
    if (topology.nodes[name]) throw new UserError(`node ${name} already exists (a ${topology.nodes[name].role}); choose another name`, 4);
    const pgData = nodeDataDir(ctx.dir, name);
    if (existsSync(pgData)) throw new UserError(`${pgData} already exists; move it away or choose another name`, 4);
    await assertSinglePrimary(ctx, topology);
    const primary = await writablePrimary(ctx, topology);
    const usedPorts = new Set(Object.values(topology.nodes).map((n) => n.port));
    const port = options.port ?? (await freePort());
    if (usedPorts.has(port)) throw new UserError(`port ${port} belongs to another node`, 4);

    await ensureReplicationAccess(ctx, primary, topology.credentialVersion);
    await ensureSlot(primary, name);
    let standby: LocalCluster;
    try {
      standby = await baseBackup(ctx, { upstream: primary, name, pgData, port });
    } catch (err) {
      await dropSlot(primary, name).catch(() => undefined);
      throw err;
    }
    const next: Topology = {
      ...topology,
      nodes: { ...topology.nodes, [name]: { port, role: 'standby', upstream: topology.primary, addedAt: new Date().toISOString() } },
    };
    writeTopology(ctx.dir, next);
    await standby.start();
    await waitStreaming(primary, standby, name);
    await applySynchronousNames(primary, next);
    ctx.log.info({ node: name, port }, 'standby added');
    return { name, port, pgData, upstream: topology.primary, tookMs: Math.round(performance.now() - started) };
  });
}

export interface RebuiltNode {
  name: string;
  upstream: string;
  method: 'rewind' | 'base-backup';
  /** Where the node's server logs from before the rebuild were kept. */
  keptLogs: string | null;
  tookMs: number;
}

/**
 * Makes a node that is not the primary (a fenced old primary, or a broken standby) a standby of
 * the primary again: pg_rewind when the node's history allows it, else (or with `fresh`) a new
 * base backup. The node is stopped first, whatever it was doing.
 */
export async function rebuildNode(ctx: ReplicationContext, options: { name: string; fresh?: boolean }): Promise<RebuiltNode> {
  return withTopologyLock(ctx.dir, async () => {
    const started = performance.now();
    const topology = loadTopology(ctx);
    assertNoPendingChange(topology);
    const { name } = options;
    requireNode(topology, name);
    if (name === topology.primary) throw new UserError(`node ${name} is the primary; rebuild a standby or fenced node, or switch over first`, 4);
    const node = nodeCluster(ctx, topology, name);
    // The node being rebuilt may be the very intruder a split brain is about; it is stopped below.
    await assertSinglePrimary(ctx, topology, { skip: [name] });
    const primary = await writablePrimary(ctx, topology);
    const result = await rejoin(ctx, topology, { name, node, primary, fresh: options.fresh ?? false });
    const next = asStandby(topology, name, topology.primary);
    writeTopology(ctx.dir, next);
    await applySynchronousNames(primary, next);
    return { name, upstream: topology.primary, ...result, tookMs: Math.round(performance.now() - started) };
  });
}

/** The topology with `name` recorded as a standby of `upstream`, its fence lifted. */
export function asStandby(topology: Topology, name: string, upstream: string): Topology {
  const current = requireNode(topology, name);
  const { fence: _fence, ...rest } = current;
  return { ...topology, nodes: { ...topology.nodes, [name]: { ...rest, role: 'standby', upstream } } };
}

/**
 * Stops `node`, rewinds it to follow `primary` (or copies it afresh), configures it as a standby,
 * starts it and waits until it streams; a node on another machine over SSH (remote-rebuild.ts). The
 * topology is the caller's to write.
 */
export async function rejoin(
  ctx: ReplicationContext,
  topology: Topology,
  options: { name: string; node: LocalCluster; primary: LocalCluster; fresh: boolean },
): Promise<{ method: 'rewind' | 'base-backup'; keptLogs: string | null }> {
  const { name, node, primary } = options;
  if (node instanceof RemoteCluster) return rejoinRemote(ctx, topology, { ...options, node });
  await awaitReaped(node);
  await node.stop('fast').catch(() => node.stop('immediate'));
  await ensureReplicationAccess(ctx, primary, topology.credentialVersion);
  const files = replicationFiles(ctx);
  const keptLogs = existsSync(node.pgData) ? keepLogs(node) : null;
  let method: 'rewind' | 'base-backup' = 'base-backup';
  if (!options.fresh && node.isInitialised()) {
    try {
      await rewind(ctx, node, primary);
      method = 'rewind';
    } catch (err) {
      ctx.log.warn({ node: name, err: (err as Error).message }, 'pg_rewind failed; making a fresh base backup instead');
    }
  }
  await ensureSlot(primary, name);
  if (method === 'rewind') {
    configureStandby(node, files, name, primary);
  } else {
    const aside = `${node.pgData}.replaced-${Date.now()}`;
    const hadData = existsSync(node.pgData);
    if (hadData) renameSync(node.pgData, aside);
    try {
      await baseBackup(ctx, { upstream: primary, name, pgData: node.pgData, port: node.port });
    } catch (err) {
      if (hadData) renameSync(aside, node.pgData);
      throw err;
    }
    if (hadData) rmSync(aside, { recursive: true, force: true });
  }
  const standby = clusterAt(ctx, node.pgData, node.port);
  await standby.start();
  await waitStreaming(primary, standby, name);
  return { method, keptLogs };
}

/** Removes a standby or fenced node: stops it, drops its slot on the primary and deletes its data directory. */
export async function removeNode(ctx: ReplicationContext, name: string): Promise<void> {
  await withTopologyLock(ctx.dir, async () => {
    const topology = loadTopology(ctx);
    assertNoPendingChange(topology);
    requireNode(topology, name);
    if (name === topology.primary) throw new UserError(`node ${name} is the primary; switch over or fail over to another node before removing it`, 4);
    const node = nodeCluster(ctx, topology, name);
    await awaitReaped(node);
    await node.stop('fast').catch(() => node.stop('immediate'));
    const { [name]: _removed, ...nodes } = topology.nodes;
    const next: Topology = { ...topology, nodes };
    const primary = nodeCluster(ctx, topology, topology.primary);
    if ((await probeNode(primary)).reachable) {
      await dropSlot(primary, name);
      await applySynchronousNames(primary, next);
    } else {
      ctx.log.warn({ node: name }, `the primary is down: drop the slot ${name} on it later ('taskflow cluster status' shows it)`);
    }
    writeTopology(ctx.dir, next);
    if (node instanceof RemoteCluster) await node.removeData();
    else rmSync(node.pgData, { recursive: true, force: true });
    ctx.log.info({ node: name }, 'node removed');
  });
}

/** Starts the named node, or every node that is not fenced (primary first). A fenced node is refused. */
export async function startNodes(ctx: ReplicationContext, name?: string): Promise<{ name: string; outcome: 'started' | 'already-running' }[]> {
  const topology = loadTopology(ctx);
  const names = name ? [name] : [topology.primary, ...standbyNames(topology)];
  const results: { name: string; outcome: 'started' | 'already-running' }[] = [];
  for (const n of names) {
    const record = requireNode(topology, n);
    if (record.role === 'fenced') {
      throw new UserError(
        `node ${n} is fenced (${record.fence?.reason ?? 'replaced'} at ${record.fence?.at ?? '?'}) and must not run as it is; make it a standby of ${topology.primary} with 'taskflow cluster rebuild ${n}'`,
        4,
      );
    }
    results.push({ name: n, outcome: await nodeCluster(ctx, topology, n).start() });
  }
  await assertSinglePrimary(ctx, topology);
  return results;
}

/** Stops the named node, or every running node (standbys last, so they receive the primary's final WAL). */
export async function stopNodes(ctx: ReplicationContext, name?: string): Promise<string[]> {
  const topology = loadTopology(ctx);
  const names = name ? [name] : [topology.primary, ...Object.keys(topology.nodes).filter((n) => n !== topology.primary)];
  if (name) requireNode(topology, name);
  const stopped: string[] = [];
  for (const n of names) {
    const cluster = nodeCluster(ctx, topology, n);
    if (await cluster.isRunning()) {
      await cluster.stop('fast');
      stopped.push(n);
    }
  }
  return stopped;
}
