/**
 * The order of the cards in a board's column. Each task has a rank (a bigint) within its status; a
 * column lists its tasks by rank, then id. Ranks are RANK_GAP apart when a column is numbered, so a
 * card placed between two others takes the whole number halfway between theirs; when there is none
 * (the gap is used up, or two cards share a rank), the column is renumbered in board order, in the
 * same transaction, and the card placed again. A rank is where a card sits, not part of the task:
 * it is not in the task's representation, and changing it changes no version.
 *
 * Every change of ranks in a project happens under the project's row lock, taken before any task's
 * row lock (lockBoardOf; creating a task takes it with the project's task counter), so concurrent
 * placements in one project queue instead of computing the same rank, and cannot deadlock.
 */
import { AppError } from '../../../errors.ts';
import type { Db } from '../../tenant-db.ts';
import { noSuchTask } from './store.ts';

/** The distance between neighbouring ranks after a column is numbered (migration 0004 uses it too). */
export const RANK_GAP = 65_536n;

/** Where a card goes in its column: next to another card of it, or (null) at the end. */
export type Placement = { before: string } | { after: string } | null;

/** The placement a move's body asks for: `beforeTaskId` or `afterTaskId`, not both (400). */
export function placementOf(body: { beforeTaskId?: string; afterTaskId?: string }): Placement {
  const { beforeTaskId, afterTaskId } = body;
  if (beforeTaskId !== undefined && afterTaskId !== undefined) {
    throw new AppError('validation-failed', 'name one neighbour: beforeTaskId or afterTaskId, not both', {
      extra: { errors: [{ in: 'body', pointer: '/afterTaskId', message: 'cannot be given with beforeTaskId' }] },
    });
  }
  if (beforeTaskId !== undefined) return { before: beforeTaskId };
  return afterTaskId === undefined ? null : { after: afterTaskId };
}

/**
 * Locks the board a task is on (its project's row) for the rest of the transaction; answers the
 * project's id. 404 if there is no such task.
 */
export async function lockBoardOf(db: Db, taskId: string): Promise<string> {
  const res = await db.query<{ id: string }>('SELECT p.id FROM app.tasks t JOIN app.projects p ON p.id = t.project_id WHERE t.id = $1 FOR NO KEY UPDATE OF p', [taskId]);
  const row = res.rows[0];
  if (!row) throw noSuchTask();
  return row.id;
}

/** SQL for the rank at the end of a status's column (`$n` names the status); for new tasks. */
export function rankAtEndSql(statusParam: string): string {
  return `(SELECT COALESCE(max(rank), 0) + ${RANK_GAP} FROM app.tasks WHERE status_id = ${statusParam})`;
}

interface Neighbour {
  id: string;
  rank: bigint;
}

async function neighbour(db: Db, statusId: string, taskId: string, from: Neighbour, side: 'before' | 'after'): Promise<Neighbour | null> {
  const [cmp, dir] = side === 'before' ? ['<', 'DESC'] : ['>', 'ASC'];
  const res = await db.query<{ id: string; rank: string }>(
    `SELECT id, rank FROM app.tasks WHERE status_id = $1 AND id <> $2 AND (rank, id) ${cmp} ($3::bigint, $4::uuid) ORDER BY rank ${dir}, id ${dir} LIMIT 1`,
    [statusId, taskId, from.rank.toString(), from.id],
  );
  const row = res.rows[0];
  return row ? { id: row.id, rank: BigInt(row.rank) } : null;
}

/** The card a placement names, which must be another card of the column; 409 invalid-position otherwise. */
async function anchorOf(db: Db, statusId: string, taskId: string, anchorId: string): Promise<Neighbour> {
  if (anchorId === taskId) throw new AppError('invalid-position', 'a task cannot be placed next to itself', { extra: { anchorTaskId: anchorId } });
  const res = await db.query<{ id: string; rank: string; in_column: boolean }>('SELECT id, rank, status_id = $2 AS in_column FROM app.tasks WHERE id = $1', [anchorId, statusId]);
  const row = res.rows[0];
  if (!row?.in_column) {
    throw new AppError('invalid-position', `task ${anchorId} is not in the column the task is going to; the board has changed, so read it again`, { extra: { anchorTaskId: anchorId } });
  }
  return { id: row.id, rank: BigInt(row.rank) };
}

/** A rank strictly between the placement's neighbours, or null when no whole number is left there. */
async function freeRank(db: Db, statusId: string, taskId: string, placement: Placement): Promise<bigint | null> {
  let previous: Neighbour | null;
  let next: Neighbour | null;
  if (placement === null) {
    const res = await db.query<{ rank: string | null }>('SELECT max(rank) AS rank FROM app.tasks WHERE status_id = $1 AND id <> $2', [statusId, taskId]);
    const last = res.rows[0]?.rank ?? null;
    return last === null ? RANK_GAP : BigInt(last) + RANK_GAP;
  }
  if ('before' in placement) {
    next = await anchorOf(db, statusId, taskId, placement.before);
    previous = await neighbour(db, statusId, taskId, next, 'before');
  } else {
    previous = await anchorOf(db, statusId, taskId, placement.after);
    next = await neighbour(db, statusId, taskId, previous, 'after');
  }
  if (previous === null) return (next?.rank ?? RANK_GAP) - RANK_GAP;
  if (next === null) return previous.rank + RANK_GAP;
  return next.rank - previous.rank >= 2n ? previous.rank + (next.rank - previous.rank) / 2n : null;
}

/** Numbers a column RANK_GAP apart in its current order, leaving out the card being placed. */
async function renumberColumn(db: Db, statusId: string, taskId: string): Promise<void> {
  await db.query(
    `UPDATE app.tasks t SET rank = r.n * ${RANK_GAP}
       FROM (SELECT id, row_number() OVER (ORDER BY rank, id) AS n FROM app.tasks WHERE status_id = $1 AND id <> $2) AS r
      WHERE t.id = r.id AND t.rank IS DISTINCT FROM r.n * ${RANK_GAP}`,
    [statusId, taskId],
  );
}

/**
 * Gives a task the rank of `placement` in the column of `statusId` (the status it is in, or is
 * being moved to in this transaction). Run it in a transaction, after lockBoardOf.
 */
export async function placeTask(props: { db: Db; taskId: string; statusId: string; placement: Placement }): Promise<void> {
  const { db, taskId, statusId, placement } = props;
  let rank = await freeRank(db, statusId, taskId, placement);
  if (rank === null) {
    await renumberColumn(db, statusId, taskId);
    rank = await freeRank(db, statusId, taskId, placement);
    if (rank === null) throw new Error(`no free rank in status ${statusId} after renumbering`);
  }
  await db.query('UPDATE app.tasks SET rank = $2 WHERE id = $1', [taskId, rank.toString()]);
}
