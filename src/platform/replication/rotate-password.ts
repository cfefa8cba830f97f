/**
 * `cluster rotate-password`: a new password for the replication role, and every node's passfile.
 *
 * 1. The new credential version is recorded first, so that a rotation cut off half way is finished
 *    by the next command that prepares replication (or by running this one again).
 * 2. The role gets the new password (as a SCRAM verifier) and this machine's passfile, which every
 *    local node reads, is rewritten (ensureReplicationAccess).
 * 3. Each remote node gets its passfile `<pgdata>.replication/replicator.pgpass` over SSH, the
 *    password in a here-document on the channel's stdin, never on a command line, together with
 *    fresh TLS material (its own server certificate issued again for a year, the current client
 *    certificate and authority), and is reloaded so that it serves the new certificate: a
 *    rotation also renews a remote node's certificates, which nothing else does short of a rebuild.
 * 4. A standby reads its passfile only when it connects: each one that was streaming has its WAL
 *    sender ended on the primary and must stream again within a timeout, which proves the new
 *    password works there. One at a time, so in sync mode another standby keeps confirming commits.
 *
 * A remote node that cannot be reached keeps streaming on its current connection but cannot
 * reconnect: it is reported, and the alert `replication.credential-undelivered` is raised. The
 * rotation is not undone for the nodes that have the new password.
 */
import { join } from 'node:path';
import { UserError } from '../../errors.ts';
import type { LocalCluster } from '../postgres/local-cluster.ts';
import { ensureReplicationAccess } from './access.ts';
import { assertSinglePrimary, loadTopology, nodeCluster, type ReplicationContext } from './context.ts';
import { primaryView, withNodeClient } from './probe.ts';
import { mustRunRemote, shellQuote } from './remote-shell.ts';
import { sendSecrets } from './remote-standby.ts';
import { waitStreaming, writablePrimary } from './standby.ts';
import { withPrimaryAlerts } from './status-alerts.ts';
import { assertNoPendingChange, withTopologyLock, writeTopology, type NodeRecord } from './topology.ts';

const RECONNECT_TIMEOUT_MS = 30_000;

export type DeliveryOutcome =
  /** The passfile has the new password and the standby streams again on a new connection. */
  | 'reconnected'
  /** The passfile has it; the node was not streaming (down, fenced, or the primary), so it uses it when it next connects. */
  | 'written'
  /** The passfile has it, but the standby did not stream again within the timeout. */
  | 'not-reconnected'
  /** The machine could not be reached over SSH: its passfile has the old password. */
  | 'unreachable';

export interface NodeDelivery {
  name: string;
  remote: boolean;
  outcome: DeliveryOutcome;
  error?: string;
}

export interface RotationResult {
  credentialVersion: number;
  nodes: NodeDelivery[];
  tookMs: number;
}

/**
 * Writes a remote node's secrets there (0600 in its 0700 directory: passfile, certificates), then
 * reloads it if it runs, so that it serves its re-issued server certificate.
 */
async function sendCredentials(ctx: ReplicationContext, record: NodeRecord, version: number): Promise<void> {
  if (!record.remote) return;
  await sendSecrets(ctx, record.remote, version);
  const pgCtl = shellQuote(join(record.remote.pgBin, 'pg_ctl'));
  const dataDir = shellQuote(record.remote.dataDir);
  await mustRunRemote(record.remote, 'reloading PostgreSQL', `if ${pgCtl} status --pgdata ${dataDir} >/dev/null 2>&1; then ${pgCtl} reload --pgdata ${dataDir} >/dev/null || exit 1; fi`);
}

/** Ends the WAL sender of `name` on the primary, so that its standby connects again with what its passfile holds. */
async function forceReconnect(ctx: ReplicationContext, primary: LocalCluster, name: string): Promise<DeliveryOutcome> {
  await withNodeClient(primary, (c) => c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = $1', [name]));
  try {
    await waitStreaming(primary, nodeCluster(ctx, loadTopology(ctx), name), name, RECONNECT_TIMEOUT_MS);
    return 'reconnected';
  } catch {
    return 'not-reconnected';
  }
}

function alertKey(name: string): string {
  return `replication.credential-undelivered:${name}`;
}

/** Raises the alert for each node that did not get or use the new password; resolves it for those that did. */
async function recordDeliveryAlerts(ctx: ReplicationContext, primary: LocalCluster, nodes: NodeDelivery[]): Promise<void> {
  await withPrimaryAlerts(ctx, primary, async (alerts) => {
    for (const node of nodes) {
      if (node.outcome === 'unreachable' || node.outcome === 'not-reconnected') {
        const why = node.outcome === 'unreachable' ? `its machine could not be reached (${node.error ?? 'unknown'})` : 'it did not stream again with it';
        await alerts.raise({
          code: 'replication.credential-undelivered',
          severity: 'critical',
          key: alertKey(node.name),
          summary: `node ${node.name} lacks the rotated replication password: ${why}; it cannot reconnect once its stream breaks. Run 'taskflow cluster rotate-password' again when it is reachable, or 'taskflow cluster rebuild ${node.name}'`,
          details: { node: node.name, outcome: node.outcome },
        });
      } else {
        await alerts.resolve(alertKey(node.name), `node ${node.name} has the current replication password`);
      }
    }
  });
}

/** Gives the replication role a new password and every node its passfile; see the module comment. */
export async function rotateReplicationPassword(ctx: ReplicationContext): Promise<RotationResult> {
  return withTopologyLock(ctx.dir, async () => {
    const started = performance.now();
    const topology = loadTopology(ctx);
    assertNoPendingChange(topology);
    await assertSinglePrimary(ctx, topology);
    const primary = await writablePrimary(ctx, topology);
    const streaming = new Set((await primaryView(primary)).senders.filter((s) => s.state === 'streaming').map((s) => s.name));
    const version = topology.credentialVersion + 1;
    writeTopology(ctx.dir, { ...topology, credentialVersion: version });
    await ensureReplicationAccess(ctx, primary, version);

    const nodes: NodeDelivery[] = [];
    for (const [name, record] of Object.entries(topology.nodes)) {
      const remote = record.remote !== undefined;
      try {
        await sendCredentials(ctx, record, version);
      } catch (err) {
        nodes.push({ name, remote, outcome: 'unreachable', error: (err as Error).message });
        continue;
      }
      const outcome = name !== topology.primary && streaming.has(name) ? await forceReconnect(ctx, primary, name) : 'written';
      nodes.push({ name, remote, outcome });
    }
    await recordDeliveryAlerts(ctx, primary, nodes).catch((err: unknown) => {
      ctx.log.warn({ err: (err as Error).message }, 'the rotation alerts could not be recorded');
    });
    ctx.log.info({ credentialVersion: version, nodes: nodes.map((n) => `${n.name}:${n.outcome}`) }, 'replication password rotated');
    return { credentialVersion: version, nodes, tookMs: Math.round(performance.now() - started) };
  });
}

/** The refusal (exit 1) a CLI prints after a rotation that did not reach every node: what happened and what to do. */
export function undeliveredError(result: RotationResult): UserError | null {
  const failed = result.nodes.filter((n) => n.outcome === 'unreachable' || n.outcome === 'not-reconnected');
  if (failed.length === 0) return null;
  const list = failed.map((n) => `${n.name} (${n.outcome === 'unreachable' ? `unreachable: ${n.error ?? 'unknown'}` : 'did not stream again'})`).join('; ');
  return new UserError(
    `the replication password was rotated (version ${result.credentialVersion}) and is in use on the primary, but ${failed.length === 1 ? 'a node lacks' : 'some nodes lack'} it: ${list}. ` +
      `They keep streaming until their connection breaks, then cannot reconnect. The rotation stays for the other nodes; when they are reachable run 'taskflow cluster rotate-password' again, or 'taskflow cluster rebuild NODE' (the alert replication.credential-undelivered stays open until then)`,
  );
}
