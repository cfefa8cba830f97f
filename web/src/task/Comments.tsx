/** A task's discussion: comments in Markdown, oldest first; their authors edit them, admins delete any. */
import { useState } from 'react';
import type { SubmitEvent } from 'react';
import { addComment, deleteComment, editComment, listComments } from '../api/comments.ts';
import type { Comment } from '../api/types.ts';
import { ErrorAlert, LoadFailed, Loading } from '../components/Alerts.tsx';
import { TextAreaField } from '../components/Fields.tsx';
import { formatDateTime } from '../components/format.ts';
import { Markdown } from '../components/Markdown.tsx';
import { useAction, useLoad } from '../hooks/useAsync.ts';
import { mayDeleteComment, mayEditComment, mayEditTasks } from '../permissions.ts';
import { useUser } from '../session.tsx';

export function Comments({ taskId, onChanged }: { taskId: string; onChanged: () => void }) {
  const user = useUser();
  const comments = useLoad(() => listComments(taskId), [taskId]);
  const more = useAction(async (cursor: string) => {
    const page = await listComments(taskId, cursor);
    comments.set((loaded) => ({ items: [...loaded.items, ...page.items], nextCursor: page.nextCursor }));
  });
  const replace = (id: string, next: Comment | null) => {
    comments.set((loaded) => ({ ...loaded, items: next ? loaded.items.map((c) => (c.id === id ? next : c)) : loaded.items.filter((c) => c.id !== id) }));
    onChanged();
  };
  return (
    <section aria-labelledby="comments" className="section">
      <h2 id="comments">Comments</h2>
      {comments.status === 'loading' ? <Loading what="comments" /> : null}
      {comments.status === 'error' ? <LoadFailed error={comments.error} retry={comments.reload} /> : null}
      {comments.status === 'ready' ? (
        <>
          {comments.data.items.length === 0 ? <p className="hint">No comments yet.</p> : null}
          <ol className="comments">
            {comments.data.items.map((comment) => (
              <CommentItem key={comment.id} comment={comment} onReplace={replace} />
            ))}
          </ol>
          {comments.data.nextCursor !== null ? (
            <>
              <ErrorAlert error={more.error} />
              <button type="button" className="button" disabled={more.pending} onClick={() => void more.run(comments.data.nextCursor ?? '')}>
                Show more comments
              </button>
            </>
          ) : null}
          {mayEditTasks(user.role) ? (
            <NewComment
              taskId={taskId}
              onAdded={(comment) => {
                comments.set((loaded) => ({ ...loaded, items: [...loaded.items, comment] }));
                onChanged();
              }}
            />
          ) : null}
        </>
      ) : null}
    </section>
  );
}

function NewComment({ taskId, onAdded }: { taskId: string; onAdded: (comment: Comment) => void }) {
  const [body, setBody] = useState('');
  const action = useAction(async () => {
    const comment = await addComment(taskId, body);
    setBody('');
    onAdded(comment);
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    void action.run();
  };
  return (
    <form onSubmit={submit} className="form">
      <ErrorAlert error={action.error} />
      <TextAreaField label="Add a comment" name="comment" rows={4} required maxLength={20000} hint="Markdown works here." value={body} onChange={(e) => setBody(e.target.value)} />
      <div className="form-actions">
        <button type="submit" className="button button-primary" disabled={action.pending}>
          Comment
        </button>
      </div>
    </form>
  );
}

function CommentItem({ comment, onReplace }: { comment: Comment; onReplace: (id: string, next: Comment | null) => void }) {
  const user = useUser();
  const [mode, setMode] = useState<'view' | 'edit' | 'confirm-delete'>('view');
  const [body, setBody] = useState(comment.body);
  const save = useAction(async () => {
    onReplace(comment.id, await editComment(comment, body));
    setMode('view');
  });
  const remove = useAction(async () => {
    await deleteComment(comment);
    onReplace(comment.id, null);
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    void save.run();
  };
  // An edit starts from the comment as it is, not from an earlier edit that was cancelled.
  const startEditing = () => {
    setBody(comment.body);
    save.clearError();
    setMode('edit');
  };
  return (
    <li className="comment">
      <p className="comment-meta">
        <strong>{comment.author.displayName}</strong>, {formatDateTime(comment.createdAt)}
        {comment.edited ? <span className="hint"> (edited {formatDateTime(comment.updatedAt)})</span> : null}
      </p>
      <ErrorAlert error={save.error ?? remove.error} />
      {mode === 'edit' ? (
        <form onSubmit={submit} className="form">
          <TextAreaField label="Your comment" name="body" rows={4} required maxLength={20000} value={body} onChange={(e) => setBody(e.target.value)} />
          <div className="form-actions">
            <button type="submit" className="button button-primary" disabled={save.pending}>
              Save the comment
            </button>
            <button type="button" className="button" onClick={() => setMode('view')}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <Markdown text={comment.body} />
      )}
      {mode === 'view' ? (
        <div className="form-actions">
          {mayEditComment(user, comment.author) ? (
            <button type="button" className="button button-quiet" onClick={startEditing}>
              Edit<span className="visually-hidden"> your comment of {formatDateTime(comment.createdAt)}</span>
            </button>
          ) : null}
          {mayDeleteComment(user, comment.author) ? (
            <button type="button" className="button button-quiet" onClick={() => setMode('confirm-delete')}>
              Delete<span className="visually-hidden"> the comment of {formatDateTime(comment.createdAt)}</span>
            </button>
          ) : null}
        </div>
      ) : null}
      {mode === 'confirm-delete' ? (
        <div className="form-actions">
          <p>Delete this comment?</p>
          <button type="button" className="button button-danger" disabled={remove.pending} onClick={() => void remove.run()}>
            Delete the comment
          </button>
          <button type="button" className="button" onClick={() => setMode('view')}>
            Keep it
          </button>
        </div>
      ) : null}
    </li>
  );
}
