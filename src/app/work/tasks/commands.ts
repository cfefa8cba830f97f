/** Task commands: each takes one props object with the tenant's database and does one thing. */
import { AppError } from '../../../errors.ts';
import type { Db } from '../../tenant-db.ts';
import { afterCursorSql, decodeCursor, DEFAULT_PAGE_SIZE, positionSql, toPage, type Page } from '../pagination.ts';
import type { CreateTaskInput, TaskFilter, TaskView, UpdateTaskInput } from './schema.ts';

interface TaskRow {
  id: string;
  project_id: string;
  project_key: string;
  number: number;
  title: string;
  description: string;
  status: TaskView['status'];
  priority: TaskView['priority'];
  due_date: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
  page_micros: string;
}

/** Columns of a task row `t` joined to its project `p`; dates as text so no time zone can shift them. */
const COLUMNS = `t.id, t.project_id, p.key AS project_key, t.number, t.title, t.description, t.status, t.priority,
  to_char(t.due_date, 'YYYY-MM-DD') AS due_date, t.version, t.created_at, t.updated_at, ${positionSql('t')} AS page_micros`;

/** Body fields and the columns they set; nothing else can reach an UPDATE. */
const UPDATABLE: Record<keyof UpdateTaskInput, string> = {
  title: 'title',
  description: 'description',
  status: 'status',
  priority: 'priority',
  dueDate: 'due_date',
};

function view(row: TaskRow): TaskView {
  return {
    id: row.id,
    key: `${row.project_key}-${row.number}`,
    projectId: row.project_id,
    number: row.number,
    title: row.title,
    description: row.description,
    status: row.status,
    priority: row.priority,
    dueDate: row.due_date,
    version: row.version,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

function notFound(what = 'task'): AppError {
  return new AppError('not-found', `no such ${what}`);
}

/**
 * Creates a task in a project, numbering it from the project's counter. Run it in a transaction:
 * the counter's row lock serialises concurrent creates in one project, so numbers never repeat.
 */
export async function createTask(props: { db: Db; projectId: string; input: CreateTaskInput }): Promise<TaskView> {
  const { db, projectId, input } = props;
  const counter = await db.query<{ number: number }>(
    'UPDATE projects SET next_task_number = next_task_number + 1 WHERE id = $1 RETURNING next_task_number - 1 AS number',
    [projectId],
  );
  const number = counter.rows[0]?.number;
  if (number === undefined) throw notFound('project');
  const res = await db.query<TaskRow>(
    `WITH t AS (
       INSERT INTO tasks (project_id, number, title, description, status, priority, due_date)
       VALUES ($1, $2, $3, $4, $5, $6, $7::date) RETURNING *
     )
     SELECT ${COLUMNS} FROM t JOIN projects p ON p.id = t.project_id`,
    [projectId, number, input.title, input.description ?? '', input.status ?? 'todo', input.priority ?? 'medium', input.dueDate ?? null],
  );
  const row = res.rows[0];
  if (!row) throw new Error('INSERT returned no row');
  return view(row);
}

/** One page of tasks, oldest first, optionally of one project and/or in one status. */
export async function listTasks(props: { db: Db; filter: TaskFilter; cursor?: string; limit?: number }): Promise<Page<TaskView>> {
  const limit = props.limit ?? DEFAULT_PAGE_SIZE;
  const params: unknown[] = [];
  const where: string[] = [];
  if (props.filter.projectId !== undefined) where.push(`t.project_id = $${params.push(props.filter.projectId)}`);
  if (props.filter.status !== undefined) where.push(`t.status = $${params.push(props.filter.status)}`);
  if (props.cursor !== undefined) where.push(afterCursorSql('t', decodeCursor(props.cursor), params));
  const res = await props.db.query<TaskRow>(
    `SELECT ${COLUMNS} FROM tasks t JOIN projects p ON p.id = t.project_id
     WHERE ${where.length > 0 ? where.join(' AND ') : 'TRUE'}
     ORDER BY t.created_at, t.id LIMIT $${params.push(limit + 1)}`,
    params,
  );
  return toPage(res.rows, limit, view);
}

export async function getTask(props: { db: Db; id: string }): Promise<TaskView> {
  const res = await props.db.query<TaskRow>(`SELECT ${COLUMNS} FROM tasks t JOIN projects p ON p.id = t.project_id WHERE t.id = $1`, [props.id]);
  const row = res.rows[0];
  if (!row) throw notFound();
  return view(row);
}

/**
 * Why a change matched no row: the task is gone (404, whatever If-Match said), or it is not at any
 * of the versions given (412; an empty list is an If-Match that names no version in our form).
 */
async function missedBecause(db: Db, id: string, versions: number[] | null): Promise<AppError> {
  const res = await db.query<{ version: number }>('SELECT version FROM tasks WHERE id = $1', [id]);
  const current = res.rows[0]?.version;
  if (current === undefined) return notFound();
  const detail = versions?.length === 0 ? `If-Match names no version in our form; the task's ETag is "${current}"` : `the task is at version ${current}`;
  return new AppError('precondition-failed', detail, { extra: { currentVersion: current } });
}

/**
 * Changes the fields given and bumps the version. With `versions` (from If-Match) the change only
 * happens if the task is still at one of them: 412 otherwise, or 404 if there is no such task.
 */
export async function updateTask(props: { db: Db; id: string; changes: UpdateTaskInput; versions: number[] | null }): Promise<TaskView> {
  const { db, id, changes, versions } = props;
  const params: unknown[] = [id];
  const sets: string[] = [];
  for (const field of Object.keys(UPDATABLE) as (keyof UpdateTaskInput)[]) {
    if (!(field in changes)) continue;
    const cast = field === 'dueDate' ? '::date' : '';
    sets.push(`${UPDATABLE[field]} = $${params.push(changes[field] ?? null)}${cast}`);
  }
  if (sets.length === 0) throw new AppError('validation-failed', 'name at least one field to change');
  const guard = versions === null ? '' : ` AND version = ANY($${params.push(versions)}::int[])`;
  const res = await db.query<TaskRow>(
    `WITH t AS (
       UPDATE tasks SET ${sets.join(', ')}, version = version + 1, updated_at = clock_timestamp()
       WHERE id = $1${guard} RETURNING *
     )
     SELECT ${COLUMNS} FROM t JOIN projects p ON p.id = t.project_id`,
    params,
  );
  const row = res.rows[0];
  if (!row) throw await missedBecause(db, id, versions);
  return view(row);
}

/** Deletes a task; with `versions` (from If-Match) only if it is still at one of them. */
export async function deleteTask(props: { db: Db; id: string; versions: number[] | null }): Promise<void> {
  const { db, id, versions } = props;
  const res =
    versions === null
      ? await db.query('DELETE FROM tasks WHERE id = $1', [id])
      : await db.query('DELETE FROM tasks WHERE id = $1 AND version = ANY($2::int[])', [id, versions]);
  if (res.rowCount === 0) throw await missedBecause(db, id, versions);
}
