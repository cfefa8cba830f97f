/**
 * A project's workflow (GET/PUT /api/projects/{id}/workflow): its statuses in board order and the
 * moves allowed between them, each open to everybody who edits tasks or only to some roles. The
 * board, the task page and the filters take their columns, choices and allowed moves from here.
 */
import { get, request } from './http.ts';
import type { Role, StatusCategory } from './types.ts';

export type TransitionRole = 'member' | 'admin' | 'owner';

export interface WorkflowStatus {
  id: string;
  name: string;
  category: StatusCategory;
  /** The status's column on the board: 0, 1, 2… */
  position: number;
  /** Tasks in it now. */
  taskCount: number;
}

export interface Transition {
  fromStatusId: string;
  toStatusId: string;
  /** Only these roles may make the move; null: everybody who may edit tasks. */
  roles: TransitionRole[] | null;
}

export interface Workflow {
  projectId: string;
  /** Goes up on every change; sent back as If-Match. */
  version: number;
  /** In board order. */
  statuses: WorkflowStatus[];
  transitions: Transition[];
}

/** A whole new workflow: statuses in board order (with `id`: an existing one), moves by status name. */
export interface WorkflowChange {
  statuses: { id?: string; name: string; category: StatusCategory }[];
  transitions: { from: string; to: string; roles?: TransitionRole[] | null }[];
  /** Where the tasks of each removed status that has tasks go. */
  moves?: { fromStatusId: string; to: string }[];
}

export const CATEGORY_NAMES: Record<StatusCategory, string> = { todo: 'To do', in_progress: 'In progress', done: 'Done' };

export async function loadWorkflow(projectId: string): Promise<Workflow> {
  const workflow = await get<Workflow>(`/api/projects/${encodeURIComponent(projectId)}/workflow`);
  return { ...workflow, statuses: [...workflow.statuses].sort((a, b) => a.position - b.position) };
}

/** Replaces the workflow if it is still at the version read (412 otherwise). */
export async function replaceWorkflow(base: Workflow, change: WorkflowChange): Promise<Workflow> {
  const projectId = encodeURIComponent(base.projectId);
  const { data } = await request<Workflow>('PUT', `/api/projects/${projectId}/workflow`, { body: change, ifMatch: `"${base.version}"` });
  return { ...data, statuses: [...data.statuses].sort((a, b) => a.position - b.position) };
}

/** Whether someone of `role` may move a task from one status to another. */
export function canMove(workflow: Workflow, from: string, to: string, role: Role): boolean {
  if (from === to || role === 'viewer') return false;
  return workflow.transitions.some((t) => t.fromStatusId === from && t.toStatusId === to && (t.roles === null || t.roles.includes(role)));
}

/** The statuses a task in `from` may move to, in board order. */
export function targetsFrom(workflow: Workflow, from: string, role: Role): WorkflowStatus[] {
  return workflow.statuses.filter((s) => canMove(workflow, from, s.id, role));
}
