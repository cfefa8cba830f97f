/**
 * /api/tasks. A task's ETag is its version in quotes; changes send it as If-Match so that nobody
 * overwrites a change they have not seen (412 precondition-failed otherwise).
 */
import { get, query, request } from './http.ts';
import type { Page, Priority, StatusCategory, Task, TaskEvent } from './types.ts';

export interface TaskFilter {
  projectId?: string | null;
  /** A status id (of the project's workflow). */
  status?: string | null;
  category?: StatusCategory | null;
  /** A user id, or `none` for unassigned tasks. */
  assignee?: string | null;
  label?: string | null;
  priority?: Priority | null;
  dueBefore?: string | null;
  dueAfter?: string | null;
  /** Full-text search of title and description. */
  q?: string | null;
}

/** `rank`: board order (column, then place in it); `relevance`: best match to `q` first (its default). */
export type TaskSort = 'created' | 'updated' | 'due' | 'priority' | 'rank' | 'relevance';

export interface TaskOrder {
  sort?: TaskSort | null;
  order?: 'asc' | 'desc' | null;
}

export interface TaskChanges {
  title?: string;
  description?: string;
  /** A move; only along a transition of the workflow open to the user's role. */
  statusId?: string;
  priority?: Priority;
  dueDate?: string | null;
  assigneeId?: string | null;
  labels?: string[];
}

/** The If-Match value for the version of a task that was read. */
export function etagOf(task: Pick<Task, 'version'>): string {
  return `"${task.version}"`;
}

const id = encodeURIComponent;

export function listTasks(filter: TaskFilter, order: TaskOrder = {}, cursor?: string | null, limit = 50): Promise<Page<Task>> {
  return get<Page<Task>>(`/api/tasks${query({ ...filter, sort: order.sort, order: order.order, limit, cursor })}`);
}

/** Every task of a project in board order, page after page, up to `max` (a board shows them all at once). */
export async function allTasksOf(projectId: string, max = 2000): Promise<{ tasks: Task[]; truncated: boolean }> {
  const tasks: Task[] = [];
  let cursor: string | null = null;
  do {
    const page: Page<Task> = await listTasks({ projectId }, { sort: 'rank' }, cursor, 100);
    tasks.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== null && tasks.length < max);
  return { tasks, truncated: cursor !== null };
}

export function getTask(taskId: string): Promise<Task> {
  return get<Task>(`/api/tasks/${id(taskId)}`);
}

export async function createTask(projectId: string, input: Omit<TaskChanges, 'title'> & { title: string }): Promise<Task> {
  return (await request<Task>('POST', `/api/projects/${id(projectId)}/tasks`, { body: input })).data;
}

/** Changes a task if it is still at the version read (`base`); rejects with 412 otherwise. */
export async function updateTask(base: Pick<Task, 'id' | 'version'>, changes: TaskChanges): Promise<Task> {
  return (await request<Task>('PATCH', `/api/tasks/${id(base.id)}`, { body: changes, ifMatch: etagOf(base) })).data;
}

/** Where a card goes in its column: just above or below another card of it; none: the end. */
export type Placement = { beforeTaskId: string } | { afterTaskId: string } | null;

/**
 * Moves a task on the board, if it is still at the version read: to another status of its workflow
 * (`toStatusId`; none: it stays in its column) and to `placement` in the column.
 */
export async function moveTask(base: Pick<Task, 'id' | 'version'>, toStatusId: string | null, placement: Placement = null): Promise<Task> {
  const body = { ...(toStatusId === null ? {} : { toStatusId }), ...placement };
  return (await request<Task>('POST', `/api/tasks/${id(base.id)}/move`, { body, ifMatch: etagOf(base) })).data;
}

export async function deleteTask(base: Pick<Task, 'id' | 'version'>): Promise<void> {
  await request('DELETE', `/api/tasks/${id(base.id)}`, { ifMatch: etagOf(base) });
}

/** A page of the task's history, oldest first. */
export function taskHistory(taskId: string, cursor?: string | null): Promise<Page<TaskEvent>> {
  return get<Page<TaskEvent>>(`/api/tasks/${id(taskId)}/history${query({ limit: 100, cursor })}`);
}

/** The labels used in a project's tasks, with how often. */
export async function projectLabels(projectId: string): Promise<{ name: string; count: number }[]> {
  return (await get<{ items: { name: string; count: number }[] }>(`/api/projects/${id(projectId)}/labels`)).items;
}
