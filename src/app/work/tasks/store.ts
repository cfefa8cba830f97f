/** Reading tasks from the tenant database: the one place their columns are mapped to the API's shape. */
import { AppError } from '../../../errors.ts';
import type { Db } from '../../tenant-db.ts';
import { actorView, type ActorKindValue } from '../actor.ts';
import type { CategoryValue } from '../schema.ts';
import type { TaskPriorityValue, TaskView } from './schema.ts';

export interface TaskRow {
  id: string;
  project_id: string;
  project_key: string;
  number: number;
  title: string;
  description: string;
  status_id: string;
  status_name: string;
  status_category: CategoryValue;
  priority: TaskPriorityValue;
  due_date: string | null;
  labels: string[];
  assignee_id: string | null;
  assignee_name: string | null;
  reporter_kind: ActorKindValue;
  reporter_id: string | null;
  reporter_name: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

/** Columns of a task `t` with its project `p`, status `s`, assignee `a` and reporter `r`; dates as text. */
export const TASK_COLUMNS = `t.id, t.project_id, p.key AS project_key, t.number, t.title, t.description,
  s.id AS status_id, s.name AS status_name, s.category AS status_category, t.priority,
  to_char(t.due_date, 'YYYY-MM-DD') AS due_date, t.labels, t.assignee_id, a.display_name AS assignee_name,
  t.reporter_kind, t.reporter_id, r.display_name AS reporter_name, t.version, t.created_at, t.updated_at`;

export const TASK_FROM = `app.tasks t JOIN app.projects p ON p.id = t.project_id JOIN app.statuses s ON s.id = t.status_id
  LEFT JOIN app.users a ON a.id = t.assignee_id LEFT JOIN app.users r ON r.id = t.reporter_id`;

export function taskView(row: TaskRow): TaskView {
  return {
    id: row.id,
    key: `${row.project_key}-${row.number}`,
    projectId: row.project_id,
    number: row.number,
    title: row.title,
    description: row.description,
    status: { id: row.status_id, name: row.status_name, category: row.status_category },
    priority: row.priority,
    dueDate: row.due_date,
    labels: row.labels,
    assignee: row.assignee_id === null ? null : { id: row.assignee_id, displayName: row.assignee_name ?? '' },
    reporter: actorView(row.reporter_kind, row.reporter_id, row.reporter_name),
    version: row.version,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

export function noSuchTask(): AppError {
  return new AppError('not-found', 'no such task');
}

export async function getTask(props: { db: Db; id: string }): Promise<TaskView> {
  const res = await props.db.query<TaskRow>(`SELECT ${TASK_COLUMNS} FROM ${TASK_FROM} WHERE t.id = $1`, [props.id]);
  const row = res.rows[0];
  if (!row) throw noSuchTask();
  return taskView(row);
}

/** What a change to a task starts from: its fields as the API names them, locked for the transaction. */
export interface TaskState {
  id: string;
  projectId: string;
  version: number;
  title: string;
  description: string;
  status: { id: string; name: string; category: CategoryValue };
  priority: TaskPriorityValue;
  dueDate: string | null;
  assignee: { id: string; displayName: string } | null;
  labels: string[];
}

/** Locks a task for the rest of the transaction and returns its state; 404 if there is none. */
export async function lockTask(db: Db, id: string): Promise<TaskState> {
  const res = await db.query<TaskRow>(`SELECT ${TASK_COLUMNS} FROM ${TASK_FROM} WHERE t.id = $1 FOR UPDATE OF t`, [id]);
  const row = res.rows[0];
  if (!row) throw noSuchTask();
  const view = taskView(row);
  return {
    id: view.id,
    projectId: view.projectId,
    version: view.version,
    title: view.title,
    description: view.description,
    status: view.status,
    priority: view.priority,
    dueDate: view.dueDate,
    assignee: view.assignee,
    labels: view.labels,
  };
}

/** Throws 412 unless the task is at one of `versions` (null: any version will do). */
export function assertVersion(task: { version: number }, versions: number[] | null): void {
  if (versions === null || versions.includes(task.version)) return;
  const detail = versions.length === 0 ? `If-Match names no version in our form; the task's ETag is "${task.version}"` : `the task is at version ${task.version}`;
  throw new AppError('precondition-failed', detail, { extra: { currentVersion: task.version } });
}
