/**
 * Checking a new workflow against the current one, without a database: which statuses are kept,
 * created and removed, where the tasks of removed statuses go, and every inconsistency at once
 * (422 invalid-workflow, with a field error for each) or a removed status whose tasks would be left
 * without a place (409 status-has-tasks). The commands apply a plan in one transaction.
 */
import { AppError } from '../../../errors.ts';
import type { FieldError } from '../../problem.ts';
import type { CategoryValue } from '../schema.ts';
import type { TransitionRoleValue, WorkflowChange } from './schema.ts';

export interface CurrentStatus {
  id: string;
  name: string;
  category: CategoryValue;
  taskCount: number;
}

export interface WorkflowPlan {
  /** The new statuses in board order; `id` null for those to create. */
  statuses: { id: string | null; name: string; category: CategoryValue; position: number }[];
  /** Statuses to remove, and the name of the status their tasks move to (null when they have none). */
  removed: { id: string; name: string; category: CategoryValue; taskCount: number; moveTo: string | null }[];
  /** Transitions between the new statuses, by name. */
  transitions: { from: string; to: string; roles: TransitionRoleValue[] | null }[];
}

/** Names are unique per project whatever their letter case. */
function nameKey(name: string): string {
  return name.toLowerCase();
}

/** The plan for replacing `current` by `change`; throws the problem that says what is wrong. */
export function planWorkflow(current: readonly CurrentStatus[], change: WorkflowChange): WorkflowPlan {
  const errors: FieldError[] = [];
  const fail = (pointer: string, message: string) => errors.push({ in: 'body', pointer, message });
  const byId = new Map(current.map((s) => [s.id, s]));

  const names = new Map<string, string>();
  const kept = new Set<string>();
  change.statuses.forEach((status, i) => {
    const key = nameKey(status.name);
    if (names.has(key)) fail(`/statuses/${i}/name`, `another status is named '${names.get(key) ?? status.name}'`);
    else names.set(key, status.name);
    if (status.id === undefined) return;
    if (!byId.has(status.id)) fail(`/statuses/${i}/id`, "is not one of this project's statuses");
    else if (kept.has(status.id)) fail(`/statuses/${i}/id`, 'is listed twice');
    kept.add(status.id);
  });

  const pairs = new Set<string>();
  change.transitions.forEach((t, i) => {
    const from = names.get(nameKey(t.from));
    const to = names.get(nameKey(t.to));
    if (from === undefined) fail(`/transitions/${i}/from`, `names no status of the workflow: '${t.from}'`);
    if (to === undefined) fail(`/transitions/${i}/to`, `names no status of the workflow: '${t.to}'`);
    if (from === undefined || to === undefined) return;
    if (from === to) fail(`/transitions/${i}`, 'goes from a status to itself');
    const pair = `${nameKey(from)}\u0000${nameKey(to)}`;
    if (pairs.has(pair)) fail(`/transitions/${i}`, `is listed twice: '${from}' to '${to}'`);
    pairs.add(pair);
  });

  const removedIds = new Set(current.filter((s) => !kept.has(s.id)).map((s) => s.id));
  const moveTo = new Map<string, string>();
  (change.moves ?? []).forEach((m, i) => {
    const target = names.get(nameKey(m.to));
    if (!byId.has(m.fromStatusId)) fail(`/moves/${i}/fromStatusId`, "is not one of this project's statuses");
    else if (!removedIds.has(m.fromStatusId)) fail(`/moves/${i}/fromStatusId`, 'is a status that stays; only the tasks of removed statuses are moved');
    else if (moveTo.has(m.fromStatusId)) fail(`/moves/${i}/fromStatusId`, 'is listed twice');
    if (target === undefined) fail(`/moves/${i}/to`, `names no status of the workflow: '${m.to}'`);
    else moveTo.set(m.fromStatusId, target);
  });

  if (errors.length > 0) {
    const first = errors[0];
    throw new AppError('invalid-workflow', first ? `body${first.pointer} ${first.message}` : undefined, { extra: { errors: errors.slice(0, 20) } });
  }

  const removed = current.filter((s) => removedIds.has(s.id)).map((s) => ({ ...s, moveTo: moveTo.get(s.id) ?? null }));
  const stranded = removed.filter((s) => s.taskCount > 0 && s.moveTo === null);
  if (stranded.length > 0) {
    const list = stranded.map((s) => `'${s.name}' (${s.taskCount})`).join(', ');
    throw new AppError('status-has-tasks', `say in moves where the tasks of ${list} go`, {
      extra: { statuses: stranded.map((s) => ({ id: s.id, name: s.name, taskCount: s.taskCount })) },
    });
  }

  return {
    statuses: change.statuses.map((s, position) => ({ id: s.id ?? null, name: s.name, category: s.category, position })),
    removed,
    transitions: change.transitions.map((t) => ({
      from: names.get(nameKey(t.from)) ?? t.from,
      to: names.get(nameKey(t.to)) ?? t.to,
      roles: t.roles ?? null,
    })),
  };
}
