/**
 * Where cards sit on the board. The board holds its tasks in board order (the server's `sort=rank`):
 * a column's cards are the tasks of its status, in the order they come. A card's new place is said
 * the way the API takes it, next to another card of the column, so that it means the same on the
 * server whatever else has moved meanwhile.
 */
import type { Placement } from '../api/tasks.ts';
import type { Task } from '../api/types.ts';

/** The cards of a column, in order, without `leaving` (the card being moved). */
export function cardsOf(tasks: readonly Task[], statusId: string, leaving: string | null = null): Task[] {
  return tasks.filter((t) => t.status.id === statusId && t.id !== leaving);
}

/** The placement of slot `index` among `others` (a column's cards without the one moved). */
export function placementAt(others: readonly Task[], index: number): Placement {
  const next = others[index];
  if (next) return { beforeTaskId: next.id };
  const last = others.at(-1);
  return last ? { afterTaskId: last.id } : null;
}

/** Whether `task` already sits at slot `index` of its own column. */
export function isWhereItIs(tasks: readonly Task[], task: Task, statusId: string, index: number): boolean {
  return statusId === task.status.id && cardsOf(tasks, statusId).findIndex((t) => t.id === task.id) === index;
}

/** The board with `moved` (its new status already set) taken out and put at `placement` in its column. */
export function withMove(tasks: readonly Task[], moved: Task, placement: Placement): Task[] {
  const rest = tasks.filter((t) => t.id !== moved.id);
  const indexOf = (id: string) => rest.findIndex((t) => t.id === id);
  let at: number;
  if (placement === null) at = rest.findLastIndex((t) => t.status.id === moved.status.id) + 1 || rest.length;
  else if ('beforeTaskId' in placement) at = indexOf(placement.beforeTaskId);
  else at = indexOf(placement.afterTaskId) + 1 || -1;
  // An anchor that is not on the board: at the end (the server, which knows better, is asked anyway).
  if (at < 0) at = rest.length;
  return [...rest.slice(0, at), moved, ...rest.slice(at)];
}

/** The neighbour above (-1) or below (+1) a card in its column, as a placement; null at the edge. */
export function stepPlacement(tasks: readonly Task[], task: Task, step: -1 | 1): Placement {
  const column = cardsOf(tasks, task.status.id);
  const neighbour = column[column.findIndex((t) => t.id === task.id) + step];
  if (!neighbour) return null;
  return step < 0 ? { beforeTaskId: neighbour.id } : { afterTaskId: neighbour.id };
}
