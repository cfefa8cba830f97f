/**
 * `taskflow drill site-loss`: the primary's whole site is lost, and every tenant is recovered at
 * another site.
 *
 * Sites come from configuration (`replication.nodes.<name>.site`, `replication.defaultSite`); a
 * backup repository is at a site when its `region` is the site's name or region. The drill counts
 * every tenant's rows, runs the writer load, then removes the site: SIGKILL of every node there,
 * their data directories and the site's filesystem repositories moved aside as if the disks were
 * gone. It fails over to the most caught-up standby at another site, or (the standby assumed lost
 * too) loses every node and restores the cluster from an off-site repository onto the node at the
 * other site. It reports, per tenant, when its own login role could write again and what rows it
 * lost. Then it puts the site back: the lost nodes are rebuilt from the new primary (fresh base
 * backups), the repositories moved back.
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import type { Config } from '../../config.ts';
import { UserError } from '../../errors.ts';
import type { RepositoryConfig } from '../backup/config.ts';
import { clusterAt, loadTopology, nodeCluster, siteOf, type ReplicationContext } from '../replication/context.ts';
import { rebuildNode } from '../replication/standby.ts';
import { DEMO_SLUG } from '../tenants/demo.ts';
import { listTenants, type Tenant } from '../tenants/registry.ts';
import { backupSource, restoreOnto, type BackupSource } from './from-backups.ts';
import { killNode, moveAside } from './kill.ts';
import { awaitWritesAndMeasure, failOverTo, RECOVERY_TIMEOUT_MS, recordedPrimaryTarget, runLoad } from './phases.ts';
import { assertDrillAllowed, assessCluster, assessPrimary } from './preflight.ts';
import { leaveOnePrimary } from './recovery.ts';
import { concludeSiteLoss, type Removed, type SiteLossResult } from './site-loss-report.ts';
import { managedScope, readControl, startDrill, systemIdentifierOf, type DrillReport, type DrillSession } from './session.ts';
import { awaitTenant, countRows, tenantRecovery, type TenantRecovery } from './tenant-check.ts';
import { prepareDrillDatabase, preciseNow, type WriterLoad } from './writers.ts';

export interface SiteLossDrillOptions {
  writers: number;
  durationSeconds: number;
  yesThisIsProduction: boolean;
  /** The standby is lost too: every node goes, and the cluster is restored from an off-site repository. */
  assumeStandbyLost: boolean;
  /** The age identity for that restore (else TASKFLOW_BACKUP_IDENTITY or TASKFLOW_BACKUP_IDENTITY_FILE). */
  identityFile?: string;
  operator: string;
  progress?: (line: string) => void;
}

/**
 * The backup repositories at a site: those whose region is the site's name or, when the site is
 * described (replication.sites), the site's region. A region shared with the surviving site counts
 * as lost too: a drill assumes the worse.
 */
export function repositoriesAt(config: Config, site: string): RepositoryConfig[] {
  const region = config.replication.sites[site]?.region;
  return config.backup.repositories.filter((r) => r.region === site || (region !== undefined && r.region === region));
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface Plan {
  lostSite: string;
  from: string;
  /** The node that becomes the primary. */
  to: string;
  recoverySite: string;
  mode: string;
  lostNodes: string[];
  lostRepositories: RepositoryConfig[];
  source: BackupSource | null;
}

/** Checks and decides what the drill loses and where it recovers; refuses (nothing changed) when it cannot run. */
async function plan(ctx: ReplicationContext, options: SiteLossDrillOptions): Promise<Plan> {
  const lostSite = siteOf(ctx.config, loadTopology(ctx).primary);
  const lostRepositories = repositoriesAt(ctx.config, lostSite);
  const elsewhere = `put a node at another site (replication.nodes.<name>.site)`;
  if (!options.assumeStandbyLost) {
    const { status, primary, target } = await assessCluster(ctx, {
      candidates: (n) => n.site !== lostSite,
      noCandidate: `every standby is at ${lostSite}, the primary's site, so losing the site loses them too; ${elsewhere}`,
    });
    const lostNodes = status.nodes.filter((n) => n.site === lostSite).map((n) => n.name);
    return { lostSite, from: primary.name, to: target.name, recoverySite: target.site, mode: status.mode, lostNodes, lostRepositories, source: null };
  }
  const { status, primary } = await assessPrimary(ctx);
  const onto = status.nodes.filter((n) => n.site !== lostSite).sort((a, b) => Number(a.role !== 'standby') - Number(b.role !== 'standby') || a.name.localeCompare(b.name))[0];
  if (!onto) throw new UserError(`refusing the drill: there is no node at a site other than ${lostSite} to restore the cluster onto; ${elsewhere}`, 4);
  const source = await backupSource(ctx.config, lostRepositories, await systemIdentifierOf(nodeCluster(ctx, loadTopology(ctx), primary.name)), options.identityFile);
  return { lostSite, from: primary.name, to: onto.name, recoverySite: onto.site, mode: status.mode, lostNodes: status.nodes.map((n) => n.name), lostRepositories, source };
}

export async function runSiteLossDrill(ctx: ReplicationContext, options: SiteLossDrillOptions): Promise<DrillReport> {
  const p = await plan(ctx, options);
  const tenants = await readControl(ctx, (db) => listTenants(db));
  assertDrillAllowed(tenants.filter((t) => t.slug !== DEMO_SLUG).map((t) => t.slug), options.yesThisIsProduction);
  const session = await startDrill(managedScope(ctx), {
    kind: 'site-loss',
    operator: options.operator,
    progress: options.progress,
    parameters: {
      mode: p.mode,
      writers: options.writers,
      durationSeconds: options.durationSeconds,
      yesThisIsProduction: options.yesThisIsProduction,
      assumeStandbyLost: options.assumeStandbyLost,
      lostSite: p.lostSite,
      recoverySite: p.recoverySite,
      lostNodes: p.lostNodes,
      lostRepositories: p.lostRepositories.map((r) => r.name),
      recoverOnto: p.to,
      ...(p.source ? { backupRepository: p.source.repository.name } : {}),
      tenants: tenants.length,
    },
  });
  const r: SiteLossResult = { ...p, options, removed: { nodes: [], repositories: [] }, failover: null, restored: null, figures: null, recoveries: [], rebuilt: [], failure: null };
  let stage = 'prepare';
  let load: WriterLoad | null = null;
  try {
    await prepareDrillDatabase(nodeCluster(ctx, loadTopology(ctx), p.from));
    const primaryTarget = recordedPrimaryTarget(ctx).target;
    const before = new Map<string, Record<string, number>>();
    for (const tenant of tenants) before.set(tenant.id, await countRows(primaryTarget, tenant.databaseName));
    session.event(`counted the rows of ${tenants.length} tenant database(s)`);
    stage = 'load';
    const run = await runLoad(session, options.writers, options.durationSeconds);
    load = run.load;
    stage = 'site-loss';
    const lostAt = await loseSite(ctx, session, p, r.removed);
    run.startProbe();
    const deadline = preciseNow() + RECOVERY_TIMEOUT_MS * (p.source ? 10 : 2);
    const reached = tenants.map((tenant) => awaitTenant(ctx, tenant, deadline));
    if (p.source) {
      stage = 'restore from backups';
      r.restored = await restoreOnto(ctx, session, p.source, p.to);
    } else {
      stage = 'failover';
      r.failover = await failOverTo(ctx, session, p.to);
    }
    stage = 'resume';
    r.figures = await awaitWritesAndMeasure(session, { ...run, writers: options.writers }, lostAt, p.to);
    r.recoveries = await tenantsAfter(ctx, session, tenants, before, await Promise.all(reached), lostAt);
    stage = 'restore the site';
    r.rebuilt = await restoreSite(ctx, session, r.removed, p.to);
  } catch (err) {
    await load?.stop().catch(() => undefined);
    session.event(`the drill failed during ${stage}: ${message(err)}`);
    const recovery = await recoverAfterFailure(ctx, p.from, r.removed);
    for (const line of recovery) session.event(`recovery: ${line}`);
    r.failure = { stage, error: message(err), recovery };
  }
  return concludeSiteLoss(session, r);
}

/** Kills every lost node at once, then moves their data directories and the site's repositories aside. Returns when the first was killed. */
async function loseSite(ctx: ReplicationContext, session: DrillSession, p: Plan, removed: Removed): Promise<number> {
  const topology = loadTopology(ctx);
  const killed = await Promise.all(p.lostNodes.map(async (name) => ({ name, killed: await killNode(nodeCluster(ctx, topology, name)) })));
  const lostAt = Math.min(...killed.map((k) => k.killed.at));
  const also = p.source ? ` and, the standby assumed lost too, every other node` : '';
  session.event(`site ${p.lostSite}${also} lost: SIGKILL to ${killed.map((k) => `${k.name} (pid ${k.killed.pid ?? 'not running'})`).join(', ')}`, lostAt);
  for (const { name, killed: k } of killed) {
    const pgData = nodeCluster(ctx, topology, name).pgData;
    removed.nodes.push({ name, pgData, aside: moveAside(pgData, 'site-loss'), pid: k.pid });
  }
  for (const repo of p.lostRepositories) {
    if (repo.kind !== 'filesystem') {
      removed.repositories.push({ name: repo.name, path: repo.path, aside: null, note: `${repo.kind} repository on another machine: not removed by the drill` });
      continue;
    }
    const aside = moveAside(repo.path, 'site-loss');
    removed.repositories.push({ name: repo.name, path: repo.path, aside, note: aside ? 'moved aside' : 'its directory did not exist' });
  }
  const repos = p.lostRepositories.length > 0 ? ` and repositories ${p.lostRepositories.map((r) => r.name).join(', ')}` : '';
  session.event(`data directories of ${p.lostNodes.join(', ')}${repos} moved aside`);
  return lostAt;
}

async function tenantsAfter(
  ctx: ReplicationContext,
  session: DrillSession,
  tenants: Tenant[],
  before: Map<string, Record<string, number>>,
  reached: { at: number | null; error: string | null }[],
  lostAt: number,
): Promise<TenantRecovery[]> {
  const target = recordedPrimaryTarget(ctx).target;
  const results: TenantRecovery[] = [];
  for (const [i, tenant] of tenants.entries()) {
    const r = reached[i] ?? { at: null, error: 'not checked' };
    const after = r.at === null ? null : await countRows(target, tenant.databaseName).catch(() => null);
    results.push(tenantRecovery(tenant, lostAt, r, before.get(tenant.id) ?? {}, after));
  }
  const back = results.filter((t) => t.recoverySeconds !== null).length;
  session.event(`${back} of ${tenants.length} tenant(s) write again on the new primary; ${results.reduce((n, t) => n + (t.rowsLost ?? 0), 0)} tenant row(s) lost`);
  return results;
}

/** Puts the site back: every lost node rebuilt from the new primary (then its old directory deleted), the repositories moved back. */
async function restoreSite(ctx: ReplicationContext, session: DrillSession, removed: Removed, primary: string): Promise<string[]> {
  const rebuilt: string[] = [];
  for (const node of removed.nodes) {
    if (node.name !== primary) {
      const result = await rebuildNode(ctx, { name: node.name, fresh: true });
      session.event(`${node.name} rebuilt at its place as a standby (${result.method}, ${result.tookMs} ms)`);
      rebuilt.push(node.name);
    }
    // The restored primary's old directory (when restored from backups) goes too: it was the lost standby's.
    if (node.aside) rmSync(node.aside, { recursive: true, force: true });
    node.aside = null;
  }
  putRepositoriesBack(removed);
  session.event('repositories of the site moved back');
  return rebuilt;
}

function putRepositoriesBack(removed: Removed): string[] {
  const notes: string[] = [];
  for (const repo of removed.repositories) {
    if (!repo.aside) continue;
    if (existsSync(repo.path)) notes.push(`repository ${repo.name}: ${repo.path} exists again, its old contents are in ${repo.aside}`);
    else {
      renameSync(repo.aside, repo.path);
      repo.aside = null;
      notes.push(`repository ${repo.name} moved back`);
    }
  }
  return notes;
}

/**
 * After a failure: if no node took over, the site comes back as it was (its directories moved back,
 * what a half-done restore left moved aside, its primary started); otherwise each lost node's
 * directory comes back fenced when the node is, to be rebuilt. Either way the repositories come
 * back and the cluster is left with one primary.
 */
async function recoverAfterFailure(ctx: ReplicationContext, from: string, removed: Removed): Promise<string[]> {
  const notes: string[] = [];
  const topology = loadTopology(ctx);
  const tookOver = topology.primary !== from || topology.pending !== null;
  for (const node of removed.nodes) {
    if (!node.aside) continue;
    if (existsSync(node.pgData)) {
      if (tookOver) {
        notes.push(`${node.name}: its directory from before the loss stays in ${node.aside} (a restored cluster took its place); delete it when done`);
        continue;
      }
      const leftover = moveAside(node.pgData, 'drill-leftover');
      notes.push(`${node.name}: what the drill left in ${node.pgData} was moved to ${leftover ?? '?'}`);
    }
    renameSync(node.aside, node.pgData);
    node.aside = null;
    const record = topology.nodes[node.name];
    if (tookOver && (record?.role === 'fenced' || topology.pending?.from === node.name)) {
      clusterAt(ctx, node.pgData, record?.port ?? 0).fence(`fenced after a failed site-loss drill; make it a standby with 'taskflow cluster rebuild ${node.name}'`);
    }
    notes.push(`${node.name}: data directory moved back${tookOver ? `; make it a standby with 'taskflow cluster rebuild ${node.name}'` : ''}`);
  }
  notes.push(...putRepositoriesBack(removed));
  notes.push(...(await leaveOnePrimary(ctx)));
  return notes;
}
