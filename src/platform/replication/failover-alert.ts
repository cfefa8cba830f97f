/** The `replication.failover` alert: a record, in the new primary's control database, that the primary role moved and what it cost. */
import pg from 'pg';
import { ControlDbAlerts } from '../alerts/alerts.ts';
import { CONTROL_DB } from '../control-plane.ts';
import { clientConfig } from '../postgres/connection.ts';
import { loadTopology, nodeCluster, type ReplicationContext } from './context.ts';
import type { FailoverResult } from './failover.ts';
import { formatBytes } from './lsn.ts';

/** What the alert says about a failover. */
export function failoverAlertSummary(r: FailoverResult): string {
  const d = r.discarded;
  const cost = !d
    ? r.forced
      ? '; forced without knowing what the old primary held beyond it'
      : '; no committed transaction was lost'
    : d.acknowledged === 'no'
      ? `; discarded ${d.commits} unacknowledged commit(s) (${formatBytes(d.bytes)} of WAL${d.lastCommitAt ? `, the last made at ${d.lastCommitAt}` : ''}) that ${r.to} never received and no client saw succeed`
      : `; lost ${d.commits} committed transaction(s) (${formatBytes(d.bytes)} of WAL${d.lastCommitAt ? `, the last at ${d.lastCommitAt}` : ''}) by --force, which may have been acknowledged`;
  return `failover from ${r.from} to ${r.to} (timeline ${r.timeline ?? '?'})${cost}`;
}

/**
 * Raises the alert on the new primary, on a connection of its own that does not wait for a standby
 * (right after a failover the remaining standbys may not stream yet). Never throws: the failover is
 * done, and the alert is logged even when it cannot be stored.
 */
export async function raiseFailoverAlert(ctx: ReplicationContext, r: FailoverResult): Promise<void> {
  const client = new pg.Client({ ...clientConfig(nodeCluster(ctx, loadTopology(ctx), r.to).target(), CONTROL_DB), connectionTimeoutMillis: 5_000, application_name: 'taskflow-failover' });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query("SET synchronous_commit = 'local'; SET statement_timeout = '5s'");
    await new ControlDbAlerts(client, ctx.log).raise({
      code: 'replication.failover',
      severity: r.discarded || r.forced ? 'warning' : 'info',
      key: `replication.failover:${r.to}:${r.timeline ?? 'unknown'}`,
      summary: failoverAlertSummary(r),
      details: { from: r.from, to: r.to, timeline: r.timeline, forced: r.forced, discarded: r.discarded, gap: r.gap },
    });
  } catch (err) {
    ctx.log.warn({ err: (err as Error).message, summary: failoverAlertSummary(r) }, 'the failover alert could not be stored');
  } finally {
    await client.end().catch(() => undefined);
  }
}
