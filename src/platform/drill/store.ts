/**
 * The evidence of drills, in the control database (`drills`): a row written when a drill starts
 * (outcome `running`) and completed when it ends, with its figures and its Markdown report. The
 * row is written again in full at the end, on whichever node is primary by then, so a row the old
 * primary took with it (asynchronous mode) is not lost with it.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import type pg from 'pg';

export type DrillKind = 'failover' | 'site-loss';
export type DrillOutcome = 'running' | 'passed' | 'failed';

export interface DrillRecord {
  id: string;
  kind: DrillKind;
  startedAt: string;
  finishedAt: string | null;
  outcome: DrillOutcome;
  /** The PostgreSQL system identifier of the replicated cluster. */
  cluster: string;
  parameters: Record<string, unknown>;
  figures: Record<string, unknown>;
  reportMarkdown: string;
  operator: string;
}

type Queryable = Pick<pg.Pool, 'query'>;

const TIME = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const SELECT = `SELECT id::text, kind, ${TIME('started_at')} AS "startedAt", ${TIME('finished_at')} AS "finishedAt", outcome, cluster,
  parameters, figures, report_markdown AS "reportMarkdown", operator FROM drills`;

/** Writes the whole record (insert, or replace the row with that id). */
export async function saveDrill(db: Queryable, record: DrillRecord): Promise<void> {
  await db.query(
    `INSERT INTO drills (id, kind, started_at, finished_at, outcome, cluster, parameters, figures, report_markdown, operator)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (id) DO UPDATE SET finished_at = EXCLUDED.finished_at, outcome = EXCLUDED.outcome, parameters = EXCLUDED.parameters,
       figures = EXCLUDED.figures, report_markdown = EXCLUDED.report_markdown`,
    [
      record.id,
      record.kind,
      record.startedAt,
      record.finishedAt,
      record.outcome,
      record.cluster,
      JSON.stringify(record.parameters),
      JSON.stringify(record.figures),
      record.reportMarkdown,
      record.operator,
    ],
  );
}

/** Drills, newest first. */
export async function listDrills(db: Queryable, filter: { kind?: DrillKind; limit?: number } = {}): Promise<DrillRecord[]> {
  const res = await db.query<DrillRecord>(`${SELECT} WHERE ($1::text IS NULL OR kind = $1) ORDER BY started_at DESC, id LIMIT $2`, [filter.kind ?? null, filter.limit ?? 50]);
  return res.rows;
}

/** One drill by id, or null (also for a string that is not a uuid). */
export async function getDrill(db: Queryable, id: string): Promise<DrillRecord | null> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) return null;
  const res = await db.query<DrillRecord>(`${SELECT} WHERE id = $1`, [id]);
  return res.rows[0] ?? null;
}

/** Where the process running a drill is, recorded in its parameters so a dead one can be told from a live one. */
export function drillProcess(): { pid: number; host: string } {
  return { pid: process.pid, host: hostname() };
}

/** Linux, like the rest of the managed cluster's process handling (replication/processes.ts). */
function processAlive(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/**
 * Drills still marked running: one whose process runs on this host is returned (another drill is
 * under way); those whose process is gone are marked failed (interrupted) and their ids returned.
 */
export async function settleRunningDrills(db: Queryable): Promise<{ live: DrillRecord | null; interrupted: string[] }> {
  const running = (await db.query<DrillRecord>(`${SELECT} WHERE outcome = 'running' ORDER BY started_at`)).rows;
  const here = hostname();
  let live: DrillRecord | null = null;
  const interrupted: string[] = [];
  for (const drill of running) {
    const { pid, host } = drill.parameters as { pid?: unknown; host?: unknown };
    // Drills run where the managed cluster's data directory is, so the process is on this host;
    // this process runs one drill at a time, so a row of its own that is still open was cut off.
    if (typeof pid === 'number' && host === here && pid !== process.pid && processAlive(pid)) {
      live ??= drill;
      continue;
    }
    await db.query(
      `UPDATE drills SET outcome = 'failed', finished_at = now(),
         figures = figures || jsonb_build_object('failure', jsonb_build_object('stage', 'interrupted', 'error', 'the drill process ended before the drill finished')),
         report_markdown = report_markdown || E'\n\n**Interrupted**: the drill process ended before the drill finished; marked failed by a later drill.\n'
       WHERE id = $1 AND outcome = 'running'`,
      [drill.id],
    );
    interrupted.push(drill.id);
  }
  return { live, interrupted };
}
