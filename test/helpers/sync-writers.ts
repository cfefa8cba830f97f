/** Writers for the synchronous-mode failover suites: acknowledged writes recorded client-side, a WAL sender frozen, the sync setting settled. */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { SYNC_SETTLE_MS } from '../../src/platform/replication/failover-decision.ts';
import type { ReplicatedCluster } from './replication.ts';

/** Writers committing numbered rows on a node; a write counts as acknowledged only when COMMIT came back with no warning. */
export function startWriters(rc: ReplicatedCluster, node: string, count: number, firstSeq = 0) {
  const acked = new Set<string>();
  const clients: pg.Client[] = [];
  let attempted = 0;
  const loops = Array.from({ length: count }, async (_, writer) => {
    const client = await rc.connect(node);
    clients.push(client);
    // PostgreSQL answers COMMIT with a warning when the wait for the standby was cancelled: not an acknowledgement.
    const warnings = { count: 0 };
    client.on('notice', (n) => {
      if (/synchronous replication/.test(n.message ?? '')) warnings.count++;
    });
    for (let seq = firstSeq; ; seq++) {
      attempted++;
      const warned = warnings.count;
      try {
        await client.query('INSERT INTO sync_rows (writer, seq) VALUES ($1, $2)', [writer, seq]);
      } catch {
        return;
      }
      if (warnings.count === warned) acked.add(`${writer}:${seq}`);
    }
  });
  return {
    acked,
    attempted: () => attempted,
    async done() {
      await Promise.all(loops);
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    },
  };
}

/** Waits until the primary's synchronous_standby_names (ALTER SYSTEM) has surely taken effect: a commit sooner could have been made without waiting. */
export async function syncSettled(pgData: string): Promise<void> {
  const written = statSync(join(pgData, 'postgresql.auto.conf')).mtimeMs;
  await new Promise((r) => setTimeout(r, Math.max(0, written + SYNC_SETTLE_MS + 200 - Date.now())));
}

export async function rowsOn(rc: ReplicatedCluster, node: string): Promise<Set<string>> {
  return new Set((await rc.sql<{ k: string }>(node, "SELECT writer || ':' || seq AS k FROM sync_rows")).map((r) => r.k));
}

/**
 * Stops the primary's WAL sender to a standby (SIGSTOP), as a network that stops delivering would:
 * the primary goes on writing WAL and its commits wait for the standby, unacknowledged.
 */
export async function freezeWalSender(rc: ReplicatedCluster, primary: string, standby: string): Promise<void> {
  const pid = Number((await rc.sql<{ pid: number }>(primary, 'SELECT pid FROM pg_stat_replication WHERE application_name = $1', [standby]))[0]?.pid);
  assert.ok(pid > 0, `a WAL sender on ${primary} for ${standby}`);
  process.kill(pid, 'SIGSTOP');
}
