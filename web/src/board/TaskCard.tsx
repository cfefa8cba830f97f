/**
 * A task on the board. Dragged by mouse, touch or keyboard (its handle); the "Move" menu offers the
 * same moves as buttons, for whoever prefers them. Only moves the workflow allows are offered.
 */
import { useDraggable } from '@dnd-kit/core';
import { useCallback, useEffect, useRef } from 'react';
import type { Task } from '../api/types.ts';
import type { WorkflowStatus } from '../api/workflow.ts';
import { formatDate } from '../components/format.ts';
import { Link } from '../router.tsx';

export interface TaskCardProps {
  task: Task;
  /** Where this task may move; empty when the user may not move it. */
  targets: readonly WorkflowStatus[];
  /** A change of this task is on its way to the server. */
  busy: boolean;
  /** Take the focus once shown (after a move re-created the card in its new column). */
  takeFocus: boolean;
  onFocused: () => void;
  onMove: (task: Task, to: string) => void;
}

export function TaskCard({ task, targets, busy, takeFocus, onFocused, onMove }: TaskCardProps) {
  const movable = targets.length > 0 && !busy;
  const { attributes, listeners, setNodeRef, setActivatorNodeRef, transform, isDragging } = useDraggable({ id: task.id, disabled: !movable, data: { status: task.status.id } });
  const handle = useRef<HTMLButtonElement | null>(null);
  const setHandle = useCallback(
    (element: HTMLButtonElement | null) => {
      handle.current = element;
      setActivatorNodeRef(element);
    },
    [setActivatorNodeRef],
  );
  const menu = useRef<HTMLDetailsElement>(null);

  useEffect(() => {
    if (!takeFocus) return;
    (handle.current ?? menu.current?.querySelector('summary'))?.focus();
    onFocused();
  }, [takeFocus, onFocused]);

  // Set through the DOM (CSSOM), which the page's Content-Security-Policy allows; no style attribute.
  const style = transform ? { transform: `translate3d(${transform.x}px, ${transform.y}px, 0)` } : undefined;
  const classes = ['card', isDragging ? 'card-dragging' : '', busy ? 'card-busy' : ''].filter(Boolean).join(' ');
  return (
    <li ref={setNodeRef} className={classes} style={style} aria-busy={busy || undefined} data-task={task.key} {...listeners}>
      <div className="card-top">
        {targets.length > 0 ? (
          <button type="button" ref={setHandle} className="card-handle" {...attributes} aria-label={`Move ${task.key}`}>
            <span aria-hidden="true">⠿</span>
          </button>
        ) : null}
        <Link to={`/tasks/${task.id}`} className="card-title">
          <span className="card-key">{task.key}</span> {task.title}
        </Link>
      </div>
      <div className="card-meta">
        <span className={`badge badge-${task.priority}`}>{task.priority}</span>
        {task.dueDate ? <span className="card-due">Due {formatDate(task.dueDate)}</span> : null}
        {task.assignee ? <span className="card-assignee">{task.assignee.displayName}</span> : null}
        {targets.length > 0 ? (
          <details className="card-move" ref={menu}>
            <summary>
              Move<span className="visually-hidden"> {task.key}</span>
            </summary>
            <ul className="card-move-menu">
              {targets.map((status) => (
                <li key={status.id}>
                  <button
                    type="button"
                    className="button button-quiet"
                    disabled={!movable}
                    onClick={() => {
                      if (menu.current) menu.current.open = false;
                      onMove(task, status.id);
                    }}
                  >
                    To {status.name}
                  </button>
                </li>
              ))}
            </ul>
          </details>
        ) : null}
      </div>
    </li>
  );
}
