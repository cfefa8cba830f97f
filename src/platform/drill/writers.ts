/**
 * The writer load of a drill: N clients, each inserting numbered rows into `drill_writes` of the
 * drill database (`taskflow_drill`, never a tenant's) as fast as the primary acknowledges them.
 * Every acknowledged write is recorded on the client side, in memory and in a CSV file, with the
 * moment the acknowledgement arrived and the node that gave it. A failed write is not retried under
 * the same number: its number is skipped, so a row that committed without its acknowledgement
 * reaching us shows up afterwards as a survivor nobody was told about, never as a duplicate.
 * After a connection is lost each writer reconnects to wherever `target()` says the primary is now.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import pg from 'pg';
import { clientConfig, escapeIdentifier, withAdminClient, type ConnectionTarget } from '../postgres/connection.ts';
import type { LocalCluster } from '../postgres/local-cluster.ts';

/** The database drills write to; it holds nothing but drill rows. */
export const DRILL_DATABASE = 'taskflow_drill';

const RETRY_MS = 50;
const CONNECT_TIMEOUT_MS = 2000;
/** A write that hangs longer (a synchronous standby that is gone too) counts as failed. */
const WRITE_TIMEOUT_MS = 15_000;
const PAYLOAD = 'x'.repeat(100);

export interface Ack {
  writer: number;
  seq: number;
  /** When the acknowledgement arrived, in epoch milliseconds (sub-millisecond precision). */
  at: number;
  /** The node that acknowledged it. */
  node: string;
}

/** Where writes go now: the node name and how to reach it as the administrator. */
export interface WriteTarget {
  node: string;
  target: ConnectionTarget;
}

/** Epoch milliseconds with the precision of the monotonic clock. */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Creates the drill database and its table if needed (as the administrator, on the primary) and,
 * unless `keepRows`, empties the table. A cluster restored from backups may predate them.
 */
export async function prepareDrillDatabase(primary: LocalCluster | ConnectionTarget, options: { keepRows?: boolean } = {}): Promise<void> {
  const target = 'target' in primary ? primary.target() : primary;
  await withAdminClient(target, 'postgres', async (client) => {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DRILL_DATABASE]);
    if (exists.rowCount === 0) {
      await client.query(`CREATE DATABASE ${escapeIdentifier(DRILL_DATABASE)}`);
      await client.query(`REVOKE ALL ON DATABASE ${escapeIdentifier(DRILL_DATABASE)} FROM PUBLIC`);
    }
  });
  const client = new pg.Client({ ...clientConfig(target, DRILL_DATABASE), connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS drill_writes (
      drill_id uuid NOT NULL, writer integer NOT NULL, seq integer NOT NULL,
      written_at timestamptz NOT NULL DEFAULT clock_timestamp(), payload text NOT NULL,
      PRIMARY KEY (drill_id, writer, seq))`);
    // Only the latest drill's rows are needed; the evidence is in the control database.
    if (!options.keepRows) await client.query('TRUNCATE drill_writes');
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The rows of one drill that a node has, as `writer:seq` keys. */
export async function survivingWrites(target: ConnectionTarget, drillId: string): Promise<Set<string>> {
  const client = new pg.Client({ ...clientConfig(target, DRILL_DATABASE), connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const res = await client.query<{ writer: number; seq: number }>('SELECT writer, seq FROM drill_writes WHERE drill_id = $1', [drillId]);
    return new Set(res.rows.map((r) => ackKey(r.writer, r.seq)));
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function ackKey(writer: number, seq: number): string {
  return `${writer}:${seq}`;
}

export class WriterLoad {
  readonly acks: Ack[] = [];
  /** Writes that failed (connection lost, refused, read-only), by reason. */
  readonly failures = new Map<string, number>();
  /** Why the CSV file of acknowledged writes is incomplete, if it is. */
  fileError: string | null = null;
  readonly #drillId: string;
  readonly #writers: number;
  readonly #target: () => WriteTarget;
  readonly #file: WriteStream;
  #stopped = false;
  #stopping: Promise<void> | null = null;
  #loops: Promise<void>[] = [];
  readonly #waiters: { node: string; resolve: (ack: Ack) => void }[] = [];

  constructor(options: { drillId: string; writers: number; target: () => WriteTarget; ackFile: string }) {
    this.#drillId = options.drillId;
    this.#writers = options.writers;
    this.#target = options.target;
    this.#file = createWriteStream(options.ackFile, { flags: 'wx', mode: 0o600 });
    // The file is a copy for people; the figures come from memory, so a full disk must not stop the drill.
    this.#file.on('error', (err) => {
      this.fileError ??= err.message;
    });
    this.#file.write('writer,seq,acked_at,node\n');
  }

  start(): void {
    this.#loops = Array.from({ length: this.#writers }, (_, i) => this.#run(i + 1));
  }

  /** Resolves with the first acknowledgement from `node` (now, if there already is one). */
  firstAckFrom(node: string): Promise<Ack> {
    const seen = this.acks.find((a) => a.node === node);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ node, resolve }));
  }

  /** Stops every writer (in-flight writes finish or fail) and closes the file; calling it again waits for the same. */
  stop(): Promise<void> {
    this.#stopped = true;
    this.#stopping ??= (async () => {
      await Promise.all(this.#loops);
      await new Promise<void>((resolve) => this.#file.end(resolve));
    })();
    return this.#stopping;
  }

  #record(ack: Ack): void {
    this.acks.push(ack);
    this.#file.write(`${ack.writer},${ack.seq},${new Date(ack.at).toISOString()},${ack.node}\n`);
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const waiter = this.#waiters[i];
      if (waiter?.node === ack.node) {
        this.#waiters.splice(i, 1);
        waiter.resolve(ack);
      }
    }
  }

  #fail(err: unknown): void {
    const reason = failureReason(err);
    this.failures.set(reason, (this.failures.get(reason) ?? 0) + 1);
  }

  async #run(writer: number): Promise<void> {
    let seq = 0;
    let client: pg.Client | null = null;
    let node = '';
    while (!this.#stopped) {
      if (!client) {
        const where = this.#target();
        const fresh = new pg.Client({
          ...clientConfig(where.target, DRILL_DATABASE),
          connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
          query_timeout: WRITE_TIMEOUT_MS,
        });
        fresh.on('error', () => undefined);
        try {
          await fresh.connect();
          client = fresh;
          node = where.node;
        } catch (err) {
          this.#fail(err);
          await fresh.end().catch(() => undefined);
          await sleep(RETRY_MS);
          continue;
        }
      }
      seq += 1;
      try {
        await client.query('INSERT INTO drill_writes (drill_id, writer, seq, payload) VALUES ($1, $2, $3, $4)', [this.#drillId, writer, seq, PAYLOAD]);
        this.#record({ writer, seq, at: preciseNow(), node });
      } catch (err) {
        this.#fail(err);
        await client.end().catch(() => undefined);
        client = null;
        await sleep(RETRY_MS);
      }
    }
    await client?.end().catch(() => undefined);
  }
}

/** A short name for why a write failed: PostgreSQL's or the socket's error code, else what node-postgres said, shortened. */
function failureReason(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e.code) return e.code === '25006' ? 'read-only (25006)' : e.code;
  const text = e.message ?? String(err);
  if (/terminated|not queryable|ended unexpectedly/i.test(text)) return 'connection lost';
  if (/timeout/i.test(text)) return 'timeout';
  return text.slice(0, 40);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
