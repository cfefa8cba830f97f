/**
 * A task's history: one row per change (its creation, each field that changed, each comment added,
 * edited or deleted), written by the command in the same transaction as the change itself.
 */
import type { WorkActor } from '../../policies.ts';
import type { Db } from '../../tenant-db.ts';
import { actorColumns, actorView, type ActorKindValue } from '../actor.ts';
import { afterCursorSql, decodeCursor, DEFAULT_PAGE_SIZE, positionSql, toPage, type Page } from '../pagination.ts';
import type { TaskEventView } from './schema.ts';

export type TaskEventKind = TaskEventView['kind'];

export interface TaskEvent {
  kind: TaskEventKind;
  field?: string;
  before?: unknown;
  after?: unknown;
}

/** Records events of one task, in the order given. */
export async function recordTaskEvents(db: Db, taskId: string, actor: WorkActor, events: TaskEvent[]): Promise<void> {
  if (events.length === 0) return;
  const [kind, id] = actorColumns(actor);
  const rows = events.map((e) => ({ kind: e.kind, field: e.field ?? null, before: e.before ?? null, after: e.after ?? null }));
  await db.query(
    `INSERT INTO app.task_events (task_id, actor_kind, actor_id, kind, field, before, after)
     SELECT $1, $2, $3, x.e ->> 'kind', x.e ->> 'field', NULLIF(x.e -> 'before', 'null'), NULLIF(x.e -> 'after', 'null')
       FROM jsonb_array_elements($4::jsonb) WITH ORDINALITY AS x (e, n)
      ORDER BY x.n`,
    [taskId, kind, id, JSON.stringify(rows)],
  );
}

interface EventRow {
  id: string;
  kind: TaskEventKind;
  field: string | null;
  before: unknown;
  after: unknown;
  actor_kind: ActorKindValue;
  actor_id: string | null;
  actor_name: string | null;
  created_at: Date;
  page_micros: string;
}

/** One page of a task's history, oldest first; the caller has checked that the task exists. */
export async function listTaskHistory(props: { db: Db; taskId: string; cursor?: string; limit?: number }): Promise<Page<TaskEventView>> {
  const limit = props.limit ?? DEFAULT_PAGE_SIZE;
  const params: unknown[] = [props.taskId];
  const after = props.cursor === undefined ? '' : ` AND ${afterCursorSql('e', decodeCursor(props.cursor), params)}`;
  const res = await props.db.query<EventRow>(
    `SELECT e.id, e.kind, e.field, e.before, e.after, e.actor_kind, e.actor_id, u.display_name AS actor_name, e.created_at, ${positionSql('e')} AS page_micros
       FROM app.task_events e LEFT JOIN app.users u ON u.id = e.actor_id
      WHERE e.task_id = $1${after}
      ORDER BY e.created_at, e.id LIMIT $${params.push(limit + 1)}`,
    params,
  );
  return toPage(res.rows, limit, (row) => ({
    id: row.id,
    kind: row.kind,
    field: row.field,
    before: row.before ?? null,
    after: row.after ?? null,
    actor: actorView(row.actor_kind, row.actor_id, row.actor_name),
    at: row.created_at.toISOString(),
  }));
}
