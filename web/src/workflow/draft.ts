/**
 * The workflow editor's working copy: statuses in order (existing ones keep their id), the allowed
 * moves between them with who may make them, and where the tasks of removed statuses go. Turned
 * into the API's WorkflowChange only when saved.
 */
import type { StatusCategory } from '../api/types.ts';
import type { TransitionRole, Workflow, WorkflowChange } from '../api/workflow.ts';

export interface DraftStatus {
  /** Stable while editing: the status id, or `new-…` for a status not saved yet. */
  key: string;
  id: string | null;
  name: string;
  category: StatusCategory;
  taskCount: number;
}

/** Who may make a move: a preset, or the roles as the server holds them. */
export type MoveRule = 'everyone' | 'admins' | 'owners' | `roles:${string}`;

export interface Draft {
  statuses: DraftStatus[];
  /** By `fromKey>toKey`; a move that is not here is not allowed. */
  moves: Record<string, MoveRule>;
  /** Removed statuses that had tasks, by id → the key of the status their tasks go to. */
  destinations: Record<string, string>;
  /** Statuses of the saved workflow that the draft has removed. */
  removed: DraftStatus[];
}

export function moveKey(from: string, to: string): string {
  return `${from}>${to}`;
}

function ruleOf(roles: readonly TransitionRole[] | null): MoveRule {
  if (roles === null) return 'everyone';
  const set = [...roles].sort().join(',');
  if (set === 'admin,owner') return 'admins';
  if (set === 'owner') return 'owners';
  return `roles:${set}`;
}

export function rolesOf(rule: MoveRule): TransitionRole[] | null {
  if (rule === 'everyone') return null;
  if (rule === 'admins') return ['admin', 'owner'];
  if (rule === 'owners') return ['owner'];
  return rule
    .slice('roles:'.length)
    .split(',')
    .filter((r): r is TransitionRole => r === 'member' || r === 'admin' || r === 'owner');
}

export function ruleLabel(rule: MoveRule): string {
  if (rule === 'everyone') return 'Everyone who edits tasks';
  if (rule === 'admins') return 'Admins and owners';
  if (rule === 'owners') return 'Owners only';
  return rolesOf(rule)?.join(', ') ?? '';
}

/** The draft of a saved workflow. */
export function draftOf(workflow: Workflow): Draft {
  const moves: Record<string, MoveRule> = {};
  for (const t of workflow.transitions) moves[moveKey(t.fromStatusId, t.toStatusId)] = ruleOf(t.roles);
  return {
    statuses: workflow.statuses.map((s) => ({ key: s.id, id: s.id, name: s.name, category: s.category, taskCount: s.taskCount })),
    moves,
    destinations: {},
    removed: [],
  };
}

let counter = 0;

export function newStatus(): DraftStatus {
  counter += 1;
  return { key: `new-${counter}`, id: null, name: '', category: 'in_progress', taskCount: 0 };
}

/** The draft without one status: its moves go, and its tasks (if any) need a destination. */
export function withoutStatus(draft: Draft, key: string): Draft {
  const gone = draft.statuses.find((s) => s.key === key);
  if (!gone) return draft;
  const statuses = draft.statuses.filter((s) => s.key !== key);
  const moves = Object.fromEntries(Object.entries(draft.moves).filter(([k]) => !k.startsWith(`${key}>`) && !k.endsWith(`>${key}`)));
  // A status that was a destination is no longer one.
  const destinations = Object.fromEntries(Object.entries(draft.destinations).filter(([, to]) => to !== key));
  const removed = gone.id !== null ? [...draft.removed, gone] : draft.removed;
  if (gone.id !== null && gone.taskCount > 0 && statuses[0]) destinations[gone.id] = statuses[0].key;
  return { statuses, moves, destinations, removed };
}

/** What to send: statuses in order, moves and destinations by name. */
export function changeOf(draft: Draft): WorkflowChange {
  const nameOf = (key: string) => draft.statuses.find((s) => s.key === key)?.name.trim() ?? '';
  const transitions: WorkflowChange['transitions'] = [];
  for (const from of draft.statuses) {
    for (const to of draft.statuses) {
      const rule = draft.moves[moveKey(from.key, to.key)];
      if (from.key === to.key || rule === undefined) continue;
      const roles = rolesOf(rule);
      transitions.push(roles === null ? { from: nameOf(from.key), to: nameOf(to.key) } : { from: nameOf(from.key), to: nameOf(to.key), roles });
    }
  }
  const moves = Object.entries(draft.destinations).map(([fromStatusId, to]) => ({ fromStatusId, to: nameOf(to) }));
  return {
    statuses: draft.statuses.map((s) => (s.id === null ? { name: s.name.trim(), category: s.category } : { id: s.id, name: s.name.trim(), category: s.category })),
    transitions,
    ...(moves.length > 0 ? { moves } : {}),
  };
}
