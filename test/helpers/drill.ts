/** What the drill suites read directly: any database of a node, as the administrator. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { ReplicatedCluster } from './replication.ts';

/** Runs one statement as the administrator on `database` of a node. */
export async function queryDatabase<R extends pg.QueryResultRow>(rc: ReplicatedCluster, node: string, database: string, text: string, params: unknown[] = []): Promise<R[]> {
  const password = readFileSync(join(rc.dataDir, 'secrets', 'pg-superuser.password'), 'utf8').trim();
  const client = new pg.Client({ host: '127.0.0.1', port: rc.port(node), user: 'taskflow_admin', password, database, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<R>(text, params)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** `writer:seq` of every row of a drill on a node, read from the drill database. */
export async function drillRows(rc: ReplicatedCluster, node: string, drillId: string): Promise<Set<string>> {
  const rows = await queryDatabase<{ k: string }>(rc, node, 'taskflow_drill', "SELECT writer || ':' || seq AS k FROM drill_writes WHERE drill_id = $1", [drillId]);
  return new Set(rows.map((r) => r.k));
}
