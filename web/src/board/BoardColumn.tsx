/** One column of the board: the tasks in one status, and a drop target while a card is dragged. */
import { useDroppable } from '@dnd-kit/core';
import type { ReactNode } from 'react';
import type { WorkflowStatus } from '../api/workflow.ts';

/** While a card is dragged: its own column, a column it may enter, or one the workflow keeps it out of. */
export type DropState = 'idle' | 'origin' | 'allowed' | 'forbidden';

export interface BoardColumnProps {
  status: WorkflowStatus;
  count: number;
  dropState: DropState;
  /** The dragged card would land below the column's last card. */
  dropAtEnd: boolean;
  children: ReactNode;
}

export function BoardColumn({ status, count, dropState, dropAtEnd, children }: BoardColumnProps) {
  const { setNodeRef, isOver } = useDroppable({ id: status.id, disabled: dropState === 'forbidden' });
  const headingId = `column-${status.id}`;
  const classes = ['column', `column-${dropState}`, isOver && dropState !== 'forbidden' ? 'column-over' : ''].filter(Boolean).join(' ');
  return (
    <section ref={setNodeRef} className={classes} aria-labelledby={headingId} data-column={status.name} data-status-id={status.id}>
      <h2 id={headingId} className="column-heading">
        {status.name} <span className="column-count">{count}</span>
        <span className="visually-hidden"> {count === 1 ? 'task' : 'tasks'}</span>
      </h2>
      {count === 0 ? <p className="column-empty">No tasks</p> : <ul className={dropAtEnd ? 'card-list card-list-drop-end' : 'card-list'}>{children}</ul>}
    </section>
  );
}
