/** Listing tasks: filters, full-text search, sorting and keyset pagination. */
import type { Db } from '../../tenant-db.ts';
import { DEFAULT_PAGE_SIZE, type Page } from '../pagination.ts';
import { afterPositionSql, decodeTaskCursor, orderBySql, pageKeysSql, taskOrderOf, toTaskPage, type TaskOrder } from './order.ts';
import type { TaskFilter, TaskView } from './schema.ts';
import { TASK_COLUMNS, TASK_FROM, taskView, type TaskRow } from './store.ts';

/** The text search configuration of the `search` column (migration 0003): English stemming. */
const SEARCH_CONFIG = 'english';

/** The WHERE conditions of a filter, appending their parameters to `params`. */
function filterSql(filter: TaskFilter, params: unknown[]): string[] {
  const where: string[] = [];
  if (filter.projectId !== undefined) where.push(`t.project_id = $${params.push(filter.projectId)}`);
  if (filter.status !== undefined) where.push(`t.status_id = $${params.push(filter.status)}`);
  if (filter.category !== undefined) where.push(`s.category = $${params.push(filter.category)}`);
  if (filter.assignee === 'none') where.push('t.assignee_id IS NULL');
  else if (filter.assignee !== undefined) where.push(`t.assignee_id = $${params.push(filter.assignee)}`);
  if (filter.label !== undefined) where.push(`t.labels @> ARRAY[$${params.push(filter.label)}]::text[]`);
  if (filter.priority !== undefined) where.push(`t.priority = $${params.push(filter.priority)}`);
  if (filter.dueBefore !== undefined) where.push(`t.due_date < $${params.push(filter.dueBefore)}::date`);
  if (filter.dueAfter !== undefined) where.push(`t.due_date > $${params.push(filter.dueAfter)}::date`);
  if (filter.q !== undefined) where.push('t.search @@ tsq');
  return where;
}

/** The tables of a listing: with a search, its query `tsq` too, for the filter and for relevance. */
function fromSql(filter: TaskFilter, params: unknown[]): string {
  if (filter.q === undefined) return TASK_FROM;
  return `${TASK_FROM} CROSS JOIN websearch_to_tsquery('${SEARCH_CONFIG}', $${params.push(filter.q)}) AS tsq`;
}

/**
 * One page of the tasks matching `filter`, in `order` (by default oldest first; taskOrderOf gives
 * the API's defaults). Sorting by relevance needs `filter.q`.
 */
export async function listTasks(props: { db: Db; filter: TaskFilter; order?: TaskOrder; cursor?: string; limit?: number }): Promise<Page<TaskView>> {
  const limit = props.limit ?? DEFAULT_PAGE_SIZE;
  const order = props.order ?? taskOrderOf({ q: props.filter.q });
  const params: unknown[] = [];
  const from = fromSql(props.filter, params);
  const where = filterSql(props.filter, params);
  if (props.cursor !== undefined) where.push(afterPositionSql(order, decodeTaskCursor(props.cursor, order), params));
  const res = await props.db.query<TaskRow & { page_keys: string[] }>(
    `SELECT ${TASK_COLUMNS}, ${pageKeysSql(order)} AS page_keys FROM ${from}
      WHERE ${where.length > 0 ? where.join(' AND ') : 'TRUE'}
      ORDER BY ${orderBySql(order)} LIMIT $${params.push(limit + 1)}`,
    params,
  );
  return toTaskPage(res.rows, limit, order, taskView);
}

/** The labels used in a project's tasks, most used first; 404 for no such project is the caller's. */
export async function listProjectLabels(props: { db: Db; projectId: string }): Promise<{ name: string; count: number }[]> {
  const res = await props.db.query<{ name: string; count: number }>(
    `SELECT label AS name, count(*)::int AS count FROM app.tasks, unnest(labels) AS label
      WHERE project_id = $1 GROUP BY label ORDER BY count(*) DESC, label LIMIT 500`,
    [props.projectId],
  );
  return res.rows;
}
