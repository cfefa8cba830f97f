/** A task's history, oldest first: who created it, changed which field from what to what, commented. */
import { taskHistory } from '../api/tasks.ts';
import type { TaskEvent } from '../api/types.ts';
import { ErrorAlert, LoadFailed, Loading } from '../components/Alerts.tsx';
import { formatDate, formatDateTime } from '../components/format.ts';
import { useAction, useLoad } from '../hooks/useAsync.ts';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A field's value as a sentence shows it. */
function shown(field: string, value: unknown): string {
  if (value === null || value === undefined || value === '') return 'nothing';
  if (isRecord(value)) {
    if (typeof value.name === 'string') return value.name;
    if (typeof value.displayName === 'string') return value.displayName;
  }
  if (Array.isArray(value)) return value.length === 0 ? 'none' : value.map(String).join(', ');
  if (field === 'dueDate' && typeof value === 'string') return formatDate(value);
  if (typeof value === 'string') return `“${value.length > 80 ? `${value.slice(0, 80)}…` : value}”`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

const FIELD_NAMES: Record<string, string> = { dueDate: 'due date', assignee: 'assignee', labels: 'labels', title: 'title', priority: 'priority' };

/** What happened, as a sentence after the actor's name. */
export function describeEvent(event: TaskEvent): string {
  switch (event.kind) {
    case 'created':
      return 'created the task';
    case 'commented':
      return 'commented';
    case 'comment-edited':
      return 'edited a comment';
    case 'comment-deleted':
      return 'deleted a comment';
    case 'changed': {
      const field = event.field ?? '';
      if (field === 'status') return `moved it from ${shown(field, event.before)} to ${shown(field, event.after)}`;
      if (field === 'description') return 'changed the description';
      if (field === 'assignee' && (event.after === null || event.after === undefined)) return `unassigned ${shown(field, event.before)}`;
      if (field === 'assignee' && (event.before === null || event.before === undefined)) return `assigned it to ${shown(field, event.after)}`;
      if (field === 'dueDate' && (event.after === null || event.after === undefined)) return 'removed the due date';
      const name = FIELD_NAMES[field] ?? field;
      return `changed the ${name} from ${shown(field, event.before)} to ${shown(field, event.after)}`;
    }
  }
}

/** `refresh` changes whenever the task or its comments change, so the history follows. */
export function History({ taskId, refresh }: { taskId: string; refresh: string }) {
  const history = useLoad(() => taskHistory(taskId), [taskId, refresh]);
  const more = useAction(async (cursor: string) => {
    const page = await taskHistory(taskId, cursor);
    history.set((loaded) => ({ items: [...loaded.items, ...page.items], nextCursor: page.nextCursor }));
  });
  return (
    <section aria-labelledby="history" className="section">
      <h2 id="history">History</h2>
      {history.status === 'loading' ? <Loading what="the history" /> : null}
      {history.status === 'error' ? <LoadFailed error={history.error} retry={history.reload} /> : null}
      {history.status === 'ready' ? (
        <>
          <ol className="history">
            {history.data.items.map((event) => (
              <li key={event.id}>
                <time dateTime={event.at}>{formatDateTime(event.at)}</time> <strong>{event.actor.displayName}</strong> {describeEvent(event)}
              </li>
            ))}
          </ol>
          {history.data.nextCursor !== null ? (
            <>
              <ErrorAlert error={more.error} />
              <button type="button" className="button" disabled={more.pending} onClick={() => void more.run(history.data.nextCursor ?? '')}>
                Show more of the history
              </button>
            </>
          ) : null}
        </>
      ) : null}
    </section>
  );
}
