/**
 * A task on the board. Dragged by mouse, touch or keyboard (its handle); the "Move" menu offers the
 * same moves as buttons (a place up or down in the column, another column the workflow allows), and
 * "Edit" changes the assignee and labels in place.
 */
import { useDraggable } from '@dnd-kit/core';
import { useCallback, useEffect, useRef } from 'react';
import type { Placement } from '../api/tasks.ts';
import type { Person, Task } from '../api/types.ts';
import type { WorkflowStatus } from '../api/workflow.ts';
import { formatDate } from '../components/format.ts';
import { Link } from '../router.tsx';
import { CardEditor } from './CardEditor.tsx';

export interface TaskCardProps {
  task: Task;
  /** The user may change tasks: move, reorder and edit them. */
  editable: boolean;
  /** Where this task may move; empty when the user may not move it to another column. */
  targets: readonly WorkflowStatus[];
  /** The place one up and one down in the column; null at the top and at the bottom. */
  up: Placement;
  down: Placement;
  people: readonly Person[];
  /** A change of this task is on its way to the server. */
  busy: boolean;
  /** A dragged card would land just above this one. */
  dropBefore: boolean;
  /** Take the focus once shown (after a move re-created the card in its new place). */
  takeFocus: boolean;
  onFocused: () => void;
  onMove: (task: Task, to: string, placement: Placement) => void;
  onChanged: (task: Task, announcement: string | null) => void;
}

export function TaskCard({ task, editable, targets, up, down, people, busy, dropBefore, takeFocus, onFocused, onMove, onChanged }: TaskCardProps) {
  const movable = editable && !busy;
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

  const choose = (to: string, placement: Placement) => {
    if (menu.current) menu.current.open = false;
    onMove(task, to, placement);
  };
  const step = (label: string, placement: Placement) =>
    placement ? (
      <li>
        <button type="button" className="button button-quiet" disabled={!movable} onClick={() => choose(task.status.id, placement)}>
          {label}
          <span className="visually-hidden"> {task.key}</span>
        </button>
      </li>
    ) : null;

  // Set through the DOM (CSSOM), which the page's Content-Security-Policy allows; no style attribute.
  const style = transform ? { transform: `translate3d(${transform.x}px, ${transform.y}px, 0)` } : undefined;
  const classes = ['card', isDragging ? 'card-dragging' : '', busy ? 'card-busy' : '', dropBefore ? 'card-drop-before' : ''].filter(Boolean).join(' ');
  return (
    <li ref={setNodeRef} className={classes} style={style} aria-busy={busy || undefined} data-task={task.key} data-task-id={task.id} {...listeners}>
      <div className="card-top">
        {editable ? (
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
        {task.labels.length > 0 ? (
          <span className="labels card-labels">
            <span className="visually-hidden">Labels: </span>
            {task.labels.map((label) => (
              <span key={label} className="label">
                {label}
              </span>
            ))}
          </span>
        ) : null}
      </div>
      {editable ? (
        <div className="card-actions">
          <CardEditor task={task} people={people} onChanged={onChanged} />
          {targets.length > 0 || up || down ? (
            <details className="card-move" ref={menu}>
              <summary>
                Move<span className="visually-hidden"> {task.key}</span>
              </summary>
              {up || down ? (
                <ul className="card-step-menu">
                  {step('Up one place', up)}
                  {step('Down one place', down)}
                </ul>
              ) : null}
              {targets.length > 0 ? (
                <ul className="card-move-menu">
                  {targets.map((status) => (
                    <li key={status.id}>
                      <button type="button" className="button button-quiet" disabled={!movable} onClick={() => choose(status.id, null)}>
                        To {status.name}
                      </button>
                    </li>
                  ))}
                </ul>
              ) : null}
            </details>
          ) : null}
        </div>
      ) : null}
    </li>
  );
}
