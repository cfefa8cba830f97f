/**
 * Task commands: each takes one props object with the tenant's database and the actor, does one
 * thing, and records what it changed in the task's history in the same transaction.
 */
import { AppError } from '../../../errors.ts';
import { mayUseTransition, type WorkActor } from '../../policies.ts';
import type { Db } from '../../tenant-db.ts';
import { actorColumns } from '../actor.ts';
import type { CategoryValue, PersonView, StatusRefView } from '../schema.ts';
import { recordTaskEvents, type TaskEvent } from './history.ts';
import type { TransitionRoleValue } from '../workflows/schema.ts';
import { lockBoardOf, placeTask, rankAtEndSql, type Placement } from './rank.ts';
import type { CreateTaskInput, TaskView, UpdateTaskInput } from './schema.ts';
import { assertVersion, getTask, lockTask, noSuchTask, type TaskState } from './store.ts';

/** A status of this project, or 422 unknown-status (another project's status included). */
async function statusInProject(db: Db, projectId: string, statusId: string): Promise<StatusRefView> {
  const res = await db.query<{ id: string; name: string; category: CategoryValue }>('SELECT id, name, category FROM app.statuses WHERE id = $1 AND project_id = $2', [statusId, projectId]);
  const row = res.rows[0];
  if (!row) throw new AppError('unknown-status', `status ${statusId} is not one of this project's statuses; GET /api/projects/${projectId}/workflow lists them`);
  return row;
}

/** The project's first status, where new tasks go unless told otherwise. */
async function firstStatus(db: Db, projectId: string): Promise<StatusRefView> {
  const res = await db.query<{ id: string; name: string; category: CategoryValue }>('SELECT id, name, category FROM app.statuses WHERE project_id = $1 ORDER BY position LIMIT 1', [projectId]);
  const row = res.rows[0];
  if (!row) throw new Error(`project ${projectId} has no statuses`);
  return row;
}

/** Throws 409 transition-not-allowed unless the workflow lets this actor move from `from` to `to`. */
async function assertTransition(db: Db, projectId: string, actor: WorkActor, from: StatusRefView, to: StatusRefView): Promise<void> {
  const res = await db.query<{ roles: TransitionRoleValue[] | null }>(
    'SELECT roles FROM app.transitions WHERE project_id = $1 AND from_status_id = $2 AND to_status_id = $3',
    [projectId, from.id, to.id],
  );
  const transition = res.rows[0];
  if (!transition) throw new AppError('transition-not-allowed', `the workflow has no move from '${from.name}' to '${to.name}'`, { extra: { from: from.id, to: to.id } });
  if (!mayUseTransition(actor, transition.roles)) {
    throw new AppError('transition-not-allowed', `only ${(transition.roles ?? []).join(', ')} may move tasks from '${from.name}' to '${to.name}'`, { extra: { from: from.id, to: to.id } });
  }
}

/** An active user of this tenant, to assign a task to; 422 invalid-assignee otherwise. */
async function assignable(db: Db, userId: string): Promise<PersonView> {
  const res = await db.query<{ id: string; display_name: string }>("SELECT id, display_name FROM app.users WHERE id = $1 AND status = 'active'", [userId]);
  const row = res.rows[0];
  if (!row) throw new AppError('invalid-assignee', `user ${userId} is not an active user of this organisation; GET /api/people lists them`);
  return { id: row.id, displayName: row.display_name };
}

/**
 * Creates a task in a project, numbering it from the project's counter, at the end of its column.
 * Run it in a transaction: the counter's row lock serialises concurrent creates in one project, so
 * numbers never repeat, and is the board's lock (rank.ts) too.
 */
export async function createTask(props: { db: Db; actor: WorkActor; projectId: string; input: CreateTaskInput }): Promise<TaskView> {
  const { db, actor, projectId, input } = props;
  const counter = await db.query<{ number: number }>(
    'UPDATE app.projects SET next_task_number = next_task_number + 1 WHERE id = $1 RETURNING next_task_number - 1 AS number',
    [projectId],
  );
  const number = counter.rows[0]?.number;
  if (number === undefined) throw new AppError('not-found', 'no such project');
  const status = input.statusId === undefined ? await firstStatus(db, projectId) : await statusInProject(db, projectId, input.statusId);
  const assignee = input.assigneeId ? await assignable(db, input.assigneeId) : null;
  const [reporterKind, reporterId] = actorColumns(actor);
  const res = await db.query<{ id: string }>(
    `INSERT INTO app.tasks (project_id, number, title, description, status_id, priority, due_date, assignee_id, labels, reporter_kind, reporter_id, rank)
     VALUES ($1, $2, $3, $4, $5, $6, $7::date, $8, $9::text[], $10, $11, ${rankAtEndSql('$5')}) RETURNING id`,
    [projectId, number, input.title, input.description ?? '', status.id, input.priority ?? 'medium', input.dueDate ?? null, assignee?.id ?? null, input.labels ?? [], reporterKind, reporterId],
  );
  const id = res.rows[0]?.id;
  if (id === undefined) throw new Error('INSERT returned no row');
  const task = await getTask({ db, id });
  await recordTaskEvents(db, id, actor, [
    {
      kind: 'created',
      after: { title: task.title, status: task.status, priority: task.priority, dueDate: task.dueDate, assignee: task.assignee, labels: task.labels },
    },
  ]);
  return task;
}

type Field = keyof UpdateTaskInput;

/** Body fields, the column each sets and the SQL cast of its parameter; nothing else reaches an UPDATE. */
const COLUMNS: Record<Field, { column: string; cast: string; history: string }> = {
  title: { column: 'title', cast: '', history: 'title' },
  description: { column: 'description', cast: '', history: 'description' },
  statusId: { column: 'status_id', cast: '::uuid', history: 'status' },
  priority: { column: 'priority', cast: '', history: 'priority' },
  dueDate: { column: 'due_date', cast: '::date', history: 'dueDate' },
  assigneeId: { column: 'assignee_id', cast: '::uuid', history: 'assignee' },
  labels: { column: 'labels', cast: '::text[]', history: 'labels' },
};

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Changes the fields given and bumps the version. Checks in the order RFC 9110 asks: the task must
 * exist (404), then If-Match (412, `versions` null means any), then the content: a status change
 * must follow a transition the actor may use (409 transition-not-allowed; another project's status
 * is 422 unknown-status) and an assignee must be an active user (422 invalid-assignee). Each field
 * that actually changed gets a history entry with its value before and after. A task that changes
 * status goes to `placement` in its new column (by default the end).
 */
export async function updateTask(props: { db: Db; actor: WorkActor; id: string; changes: UpdateTaskInput; versions: number[] | null; placement?: Placement }): Promise<TaskView> {
  const { db, actor, id, changes, versions } = props;
  // A change of status changes ranks: the board's lock comes before the task's (rank.ts).
  if (changes.statusId !== undefined) await lockBoardOf(db, id);
  const before: TaskState = await lockTask(db, id);
  assertVersion(before, versions);

  const after: Partial<Record<Field, unknown>> = {};
  const events: TaskEvent[] = [];
  const change = (field: Field, value: unknown, shown: unknown, was: unknown) => {
    after[field] = value;
    if (!same(shown, was)) events.push({ kind: 'changed', field: COLUMNS[field].history, before: was, after: shown });
  };

  if (changes.title !== undefined) change('title', changes.title, changes.title, before.title);
  if (changes.description !== undefined) change('description', changes.description, changes.description, before.description);
  let movedTo: string | null = null;
  if (changes.statusId !== undefined) {
    const status = changes.statusId === before.status.id ? before.status : await statusInProject(db, before.projectId, changes.statusId);
    if (status.id !== before.status.id) {
      await assertTransition(db, before.projectId, actor, before.status, status);
      movedTo = status.id;
    }
    change('statusId', status.id, status, before.status);
  }
  if (changes.priority !== undefined) change('priority', changes.priority, changes.priority, before.priority);
  if (changes.dueDate !== undefined) change('dueDate', changes.dueDate, changes.dueDate, before.dueDate);
  if (changes.assigneeId !== undefined) {
    const assignee = changes.assigneeId === null ? null : changes.assigneeId === before.assignee?.id ? before.assignee : await assignable(db, changes.assigneeId);
    change('assigneeId', assignee?.id ?? null, assignee, before.assignee);
  }
  if (changes.labels !== undefined) change('labels', changes.labels, changes.labels, before.labels);

  const fields = Object.keys(after) as Field[];
  if (fields.length === 0) throw new AppError('validation-failed', 'name at least one field to change');
  const params: unknown[] = [id];
  const sets = fields.map((field) => `${COLUMNS[field].column} = $${params.push(after[field] ?? null)}${COLUMNS[field].cast}`);
  await db.query(`UPDATE app.tasks SET ${sets.join(', ')}, version = version + 1, updated_at = clock_timestamp() WHERE id = $1`, params);
  if (movedTo !== null) await placeTask({ db, taskId: id, statusId: movedTo, placement: props.placement ?? null });
  await recordTaskEvents(db, id, actor, events);
  return getTask({ db, id });
}

/**
 * Moves a task on the board: to another status of its project (`toStatusId`, a status change as
 * updateTask makes it), to `placement` in its column (by default the end of a new column). A move
 * within the column the task is in changes only its place: no version, no history; without a
 * placement it changes nothing at all.
 */
export async function moveTask(props: { db: Db; actor: WorkActor; id: string; toStatusId?: string; placement?: Placement; versions: number[] | null }): Promise<TaskView> {
  const { db, id, versions } = props;
  const placement = props.placement ?? null;
  await lockBoardOf(db, id);
  const task = await lockTask(db, id);
  assertVersion(task, versions);
  if (props.toStatusId !== undefined && props.toStatusId !== task.status.id) {
    return updateTask({ db, actor: props.actor, id, changes: { statusId: props.toStatusId }, versions: null, placement });
  }
  if (placement !== null) await placeTask({ db, taskId: id, statusId: task.status.id, placement });
  return getTask({ db, id });
}

/**
 * Deletes a task, its comments and its history; with `versions` (from If-Match) only if it is
 * still at one of them: 412 otherwise, or 404 if there is no such task.
 */
export async function deleteTask(props: { db: Db; id: string; versions: number[] | null }): Promise<void> {
  const { db, id, versions } = props;
  const res = await db.query<{ version: number }>('SELECT version FROM app.tasks WHERE id = $1 FOR UPDATE', [id]);
  const task = res.rows[0];
  if (!task) throw noSuchTask();
  assertVersion(task, versions);
  await db.query('DELETE FROM app.tasks WHERE id = $1', [id]);
}

// Listing lives in listing.ts; re-exported here, where callers outside the app (bench/) import it from.
export { listTasks } from './listing.ts';
