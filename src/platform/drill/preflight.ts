/**
 * What must hold before a drill kills anything: one primary that runs, no unfinished role change,
 * a standby that streams and is caught up to take over, and, on a cluster that serves tenants,
 * the operator's explicit word. A refused drill changes nothing.
 *
 * "Production" is any tenant other than the demo tenant: the drill writes only to its own
 * database, but it kills the primary every tenant is served from, and in asynchronous mode the
 * failover loses what the standby had not received.
 */
import type pg from 'pg';
import { UserError } from '../../errors.ts';
import type { ReplicationContext } from '../replication/context.ts';
import { formatBytes } from '../replication/lsn.ts';
import { clusterStatus, type ClusterStatus, type NodeStatus } from '../replication/status.ts';
import { DEMO_SLUG } from '../tenants/demo.ts';
import { listTenants } from '../tenants/registry.ts';

export const PRODUCTION_FLAG = '--yes-this-is-production';

export interface Readiness {
  status: ClusterStatus;
  primary: NodeStatus;
  /** The standby the drill fails over to: the most caught-up of those ready. */
  target: NodeStatus;
}

function refuse(reason: string, exitCode = 4): never {
  throw new UserError(`refusing the drill: ${reason}`, exitCode);
}

/** Why a standby cannot take over in a drill, or null when it can. */
export function unreadiness(node: NodeStatus, maxLagBytes: number): string | null {
  if (node.actual === 'down') return `${node.name} is unreachable (${node.error ?? 'unknown'})`;
  if (node.actual !== 'standby') return `${node.name} is not in recovery`;
  if (node.receiver !== 'streaming') return `${node.name} is not streaming (${node.receiver ?? 'no WAL receiver'})`;
  if (node.replayPaused) return `${node.name} has its replay paused`;
  if (node.lagBytes === null) return `${node.name} does not report how far behind it is`;
  if (node.lagBytes > maxLagBytes) return `${node.name} is ${formatBytes(node.lagBytes)} behind the primary (more than replication.switchoverMaxLagBytes, ${formatBytes(maxLagBytes)})`;
  return null;
}

/** Checks that the cluster has one running primary and no unfinished role change; refuses (exit 4) otherwise. */
export async function assessPrimary(ctx: ReplicationContext): Promise<{ status: ClusterStatus; primary: NodeStatus }> {
  const status = await clusterStatus(ctx);
  if (status.pending) {
    const p = status.pending;
    refuse(`a ${p.action} from ${p.from} to ${p.to} did not finish; finish it first ('taskflow cluster ${p.action} --to ${p.to}')`);
  }
  if (status.splitBrain) refuse(`two nodes claim to be primary. ${(status.problems[0] ?? '').replace(/^refusing to continue: /, '')}`);
  const primary = status.nodes.find((n) => n.name === status.primary);
  if (primary?.actual !== 'primary') {
    refuse(`the primary ${status.primary} is not running (${primary?.error ?? 'unknown'}); start it ('taskflow cluster start') before drilling its loss`);
  }
  return { status, primary };
}

/**
 * Checks the cluster and picks the standby to fail over to among `candidates` (default: every
 * standby). Refuses (exit 4) with the reason when the drill cannot run.
 */
export async function assessCluster(ctx: ReplicationContext, options: { candidates?: (node: NodeStatus) => boolean; noCandidate?: string } = {}): Promise<Readiness> {
  const { status, primary } = await assessPrimary(ctx);
  const standbys = status.nodes.filter((n) => n.role === 'standby');
  if (standbys.length === 0) refuse(`${status.primary} has no standby to fail over to; add one first ('taskflow cluster standby add NAME')`);
  const candidates = standbys.filter(options.candidates ?? (() => true));
  if (candidates.length === 0) refuse(options.noCandidate ?? 'no standby qualifies');
  const maxLag = ctx.config.replication.switchoverMaxLagBytes;
  const problems = candidates.map((n) => unreadiness(n, maxLag));
  const ready = candidates.filter((_, i) => problems[i] === null).sort((a, b) => (a.lagBytes ?? 0) - (b.lagBytes ?? 0) || a.name.localeCompare(b.name));
  const target = ready[0];
  if (!target) {
    refuse(
      `no standby is ready to take over (${problems.filter((p) => p !== null).join('; ')}); a drill would measure a broken standby rather than a failover. See 'taskflow cluster status'`,
    );
  }
  return { status, primary, target };
}

/** The tenants that make a cluster production: every one but the demo tenant. */
export async function productionTenants(control: Pick<pg.Pool, 'query'>): Promise<string[]> {
  return (await listTenants(control)).filter((t) => t.slug !== DEMO_SLUG).map((t) => t.slug);
}

/** Refuses (exit 2) a drill against a production cluster unless the operator said so. */
export function assertDrillAllowed(tenants: string[], yesThisIsProduction: boolean): void {
  if (tenants.length === 0 || yesThisIsProduction) return;
  const shown = tenants.slice(0, 5).join(', ') + (tenants.length > 5 ? `, … (${tenants.length} in all)` : '');
  refuse(
    `this cluster serves tenants (${shown}): it is production. A drill kills its primary, every tenant is unavailable until the failover is done, and in asynchronous mode what the standby had not received is lost. Add ${PRODUCTION_FLAG} to run it anyway`,
    2,
  );
}
