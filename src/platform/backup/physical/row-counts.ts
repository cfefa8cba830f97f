/**
 * Per-table row counts that a restore can reproduce exactly: every tenant database's (and the
 * control database's) tables counted in snapshots that all correspond to one WAL position, so
 * restoring the snapshot plus the archived WAL up to that position (recovery_target_lsn) must show
 * the same numbers. `backup verify --restore` compares them.
 *
 * How the moment is made without stopping writes for the length of a count:
 * 1. In each database, one session takes SHARE locks on all its tables (NOWAIT-like: a short
 *    lock_timeout). That waits out, then holds off, every writer of those tables. Writers finish
 *    their commit, including becoming visible, before they release their locks, so at this point
 *    no committed change to these tables is invisible and no change commits until we let go.
 * 2. A second session per database opens a REPEATABLE READ transaction and takes its snapshot
 *    while the locks are held.
 * 3. With every database locked, the WAL insert position is read: every commit that touched a
 *    counted table lies before it, none after it until the locks go.
 * 4. The locks are released (writers wait milliseconds), and the rows are counted at leisure in
 *    the held snapshots.
 * The lock timeout stays below deadlock_timeout, so if a writer and we ever wait on each other,
 * we give up first and retry, and no user transaction is aborted for us. Only after ten such tries
 * does it wait longer than deadlock_timeout, which makes an autovacuum in the way step aside (and,
 * in the rare cycle with a multi-table writer, could let PostgreSQL abort that writer instead).
 */
import pg from 'pg';
import { clientConfig, escapeIdentifier, type ConnectionTarget } from '../../postgres/connection.ts';

export interface RowCounts {
  /** The WAL position at which the counts hold; restore to it to reproduce them. */
  lsn: string;
  /** When the counts' moment was taken. */
  at: string;
  /** database → `schema.table` → rows. */
  databases: Record<string, Record<string, number>>;
}

const USER_TABLES = `
  SELECT n.nspname AS schema, c.relname AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = 'r' AND c.relpersistence = 'p'
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
   ORDER BY 1, 2`;

interface Table {
  schema: string;
  name: string;
}

const qualified = (t: Table) => `${escapeIdentifier(t.schema)}.${escapeIdentifier(t.name)}`;

async function open(target: ConnectionTarget, database: string): Promise<pg.Client> {
  const client = new pg.Client({ ...clientConfig(target, database), application_name: 'taskflow-row-counts' });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** The persistent user tables of a database. */
export async function listTables(client: pg.ClientBase): Promise<Table[]> {
  return (await client.query<Table>(USER_TABLES)).rows;
}

/** Counts the rows of `tables` (all user tables by default) with `client`, in its current snapshot. */
export async function countTables(client: pg.ClientBase, tables?: Table[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const t of tables ?? (await listTables(client))) {
    const res = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ONLY ${qualified(t)}`);
    counts[`${t.schema}.${t.name}`] = Number(res.rows[0]?.n ?? 0);
  }
  return counts;
}

class Busy extends Error {}

interface Held {
  database: string;
  tables: Table[];
  locker: pg.Client;
  reader: pg.Client;
}

/** One try at the moment: locks everywhere, snapshots, the position. Throws Busy when a lock was not free in time. */
async function takeMoment(target: ConnectionTarget, databases: string[], lockTimeoutMs: number, held: Held[]): Promise<string> {
  for (const database of databases) {
    const locker = await open(target, database);
    const reader = await open(target, database).catch(async (err: unknown) => {
      await locker.end();
      throw err;
    });
    const entry: Held = { database, tables: await listTables(locker), locker, reader };
    held.push(entry);
    await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    await locker.query('BEGIN');
    await locker.query(`SET LOCAL lock_timeout = ${lockTimeoutMs}`);
    if (entry.tables.length > 0) {
      try {
        await locker.query(`LOCK TABLE ${entry.tables.map(qualified).join(', ')} IN SHARE MODE`);
      } catch (err) {
        if ((err as { code?: string }).code === '55P03') throw new Busy(`a table of ${database} stayed busy`);
        throw err;
      }
    }
    // The first statement fixes a repeatable-read snapshot: now, while the tables are held.
    await reader.query('SELECT 1');
  }
  const first = held[0];
  if (!first) throw new Error('no database to count');
  const res = await first.locker.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
  return res.rows[0]?.lsn ?? '0/0';
}

async function releaseLocks(held: Held[]): Promise<void> {
  await Promise.all(held.map((h) => h.locker.query('ROLLBACK').catch(() => undefined).then(() => h.locker.end().catch(() => undefined))));
}

async function closeAll(held: Held[]): Promise<void> {
  await releaseLocks(held);
  await Promise.all(held.map((h) => h.reader.end().catch(() => undefined)));
}

/**
 * The databases a snapshot counts: all of them when there are at most `limit`, otherwise `limit`
 * consecutive ones (in name order, wrapping) starting where the day's turn begins, so successive
 * daily snapshots cover every database within ceil(n / limit) days.
 */
export function rowCountSample(databases: readonly string[], limit: number, at: Date): string[] {
  const sorted = [...databases].sort();
  if (sorted.length <= limit) return sorted;
  if (limit <= 0) return [];
  const day = Math.floor(at.getTime() / 86_400_000);
  const start = (day * limit) % sorted.length;
  return Array.from({ length: limit }, (_, i) => sorted[(start + i) % sorted.length] as string);
}

export interface CountOptions {
  /** Give up after this long (default 30 s). */
  timeoutMs?: number;
  now?: () => Date;
}

/**
 * Counts every table of `databases` at one WAL position (see the module comment) on the node
 * `target` names when called: its host and port are read once, so a target that follows the primary
 * (the platform's) cannot spread the sessions over two nodes when the primary moves meanwhile.
 */
export async function countRowsAtOnePosition(moving: ConnectionTarget, databases: string[], options: CountOptions = {}): Promise<RowCounts> {
  const target: ConnectionTarget = { ...moving, host: moving.host, port: moving.port };
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (let attempt = 1; ; attempt++) {
    const held: Held[] = [];
    try {
      const lsn = await takeMoment(target, databases, attempt <= 10 ? 500 : 1500, held);
      const at = (options.now?.() ?? new Date()).toISOString();
      await releaseLocks(held);
      const result: RowCounts = { lsn, at, databases: {} };
      for (const h of held) {
        result.databases[h.database] = await countTables(h.reader, h.tables);
        await h.reader.query('COMMIT');
      }
      return result;
    } catch (err) {
      if (!(err instanceof Busy) || Date.now() > deadline) {
        throw err instanceof Busy ? new Error(`could not count rows: ${err.message} for ${options.timeoutMs ?? 30_000} ms`) : err;
      }
      await new Promise((r) => setTimeout(r, 50 + Math.floor(Math.random() * 200)));
    } finally {
      await closeAll(held);
    }
  }
}
