/** Comment commands: each records itself in the task's history, in the same transaction. */
import { AppError } from '../../../errors.ts';
import { mayDeleteComment, mayEditComment, type CommentAuthor, type WorkActor } from '../../policies.ts';
import type { Db } from '../../tenant-db.ts';
import { actorColumns, actorView, type ActorKindValue } from '../actor.ts';
import { afterCursorSql, decodeCursor, DEFAULT_PAGE_SIZE, positionSql, toPage, type Page } from '../pagination.ts';
import { recordTaskEvents } from '../tasks/history.ts';
import { noSuchTask } from '../tasks/store.ts';
import type { CommentView } from './schema.ts';

interface CommentRow {
  id: string;
  task_id: string;
  body: string;
  author_kind: ActorKindValue;
  author_id: string | null;
  author_name: string | null;
  created_at: Date;
  edited_at: Date | null;
  page_micros: string;
}

const COLUMNS = `c.id, c.task_id, c.body, c.author_kind, c.author_id, u.display_name AS author_name, c.created_at, c.edited_at, ${positionSql('c')} AS page_micros`;
const FROM = 'app.comments c LEFT JOIN app.users u ON u.id = c.author_id';

function view(row: CommentRow): CommentView {
  return {
    id: row.id,
    taskId: row.task_id,
    body: row.body,
    author: actorView(row.author_kind, row.author_id, row.author_name),
    createdAt: row.created_at.toISOString(),
    updatedAt: (row.edited_at ?? row.created_at).toISOString(),
    edited: row.edited_at !== null,
  };
}

function authorOf(row: CommentRow): CommentAuthor {
  return row.author_kind === 'user' ? { kind: 'user', id: row.author_id ?? '' } : { kind: row.author_kind };
}

async function assertTaskExists(db: Db, taskId: string): Promise<void> {
  const res = await db.query('SELECT 1 FROM app.tasks WHERE id = $1', [taskId]);
  if (res.rowCount === 0) throw noSuchTask();
}

/** A comment of this task, locked; 404 for no such task, or no such comment on it. */
async function lockComment(db: Db, taskId: string, commentId: string): Promise<CommentRow> {
  await assertTaskExists(db, taskId);
  const res = await db.query<CommentRow>(`SELECT ${COLUMNS} FROM ${FROM} WHERE c.id = $1 AND c.task_id = $2 FOR UPDATE OF c`, [commentId, taskId]);
  const row = res.rows[0];
  if (!row) throw new AppError('not-found', 'no such comment on this task');
  return row;
}

async function readComment(db: Db, id: string): Promise<CommentView> {
  const res = await db.query<CommentRow>(`SELECT ${COLUMNS} FROM ${FROM} WHERE c.id = $1`, [id]);
  const row = res.rows[0];
  if (!row) throw new Error('comment vanished');
  return view(row);
}

/** One page of a task's comments, oldest first. */
export async function listComments(props: { db: Db; taskId: string; cursor?: string; limit?: number }): Promise<Page<CommentView>> {
  const limit = props.limit ?? DEFAULT_PAGE_SIZE;
  await assertTaskExists(props.db, props.taskId);
  const params: unknown[] = [props.taskId];
  const after = props.cursor === undefined ? '' : ` AND ${afterCursorSql('c', decodeCursor(props.cursor), params)}`;
  const res = await props.db.query<CommentRow>(`SELECT ${COLUMNS} FROM ${FROM} WHERE c.task_id = $1${after} ORDER BY c.created_at, c.id LIMIT $${params.push(limit + 1)}`, params);
  return toPage(res.rows, limit, view);
}

/** Adds a comment to a task. */
export async function createComment(props: { db: Db; actor: WorkActor; taskId: string; body: string }): Promise<CommentView> {
  const { db, actor, taskId, body } = props;
  // A share lock: the task cannot be deleted between this check and the insert.
  const task = await db.query('SELECT 1 FROM app.tasks WHERE id = $1 FOR SHARE', [taskId]);
  if (task.rowCount === 0) throw noSuchTask();
  const [kind, id] = actorColumns(actor);
  const res = await db.query<{ id: string }>('INSERT INTO app.comments (task_id, author_kind, author_id, body) VALUES ($1, $2, $3, $4) RETURNING id', [taskId, kind, id, body]);
  const commentId = res.rows[0]?.id;
  if (commentId === undefined) throw new Error('INSERT returned no row');
  await recordTaskEvents(db, taskId, actor, [{ kind: 'commented', after: { commentId, body } }]);
  return readComment(db, commentId);
}

/** Changes a comment's body; only its author may (policies.ts). */
export async function editComment(props: { db: Db; actor: WorkActor; taskId: string; commentId: string; body: string }): Promise<CommentView> {
  const { db, actor, taskId, commentId, body } = props;
  const row = await lockComment(db, taskId, commentId);
  if (!mayEditComment(actor, authorOf(row))) throw new AppError('forbidden', 'only its author can change a comment');
  if (row.body === body) return view(row);
  await db.query('UPDATE app.comments SET body = $2, edited_at = clock_timestamp() WHERE id = $1', [commentId, body]);
  await recordTaskEvents(db, taskId, actor, [{ kind: 'comment-edited', before: { commentId, body: row.body }, after: { commentId, body } }]);
  return readComment(db, commentId);
}

/** Deletes a comment; its author or an admin may (policies.ts). The history keeps what it said. */
export async function deleteComment(props: { db: Db; actor: WorkActor; taskId: string; commentId: string }): Promise<void> {
  const { db, actor, taskId, commentId } = props;
  const row = await lockComment(db, taskId, commentId);
  if (!mayDeleteComment(actor, authorOf(row))) throw new AppError('forbidden', 'only its author or an admin can delete a comment');
  await db.query('DELETE FROM app.comments WHERE id = $1', [commentId]);
  await recordTaskEvents(db, taskId, actor, [{ kind: 'comment-deleted', before: { commentId, body: row.body } }]);
}
