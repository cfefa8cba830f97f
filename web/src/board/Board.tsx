/**
 * The board: a column per status of the project's workflow, cards dragged between them (pointer
 * or keyboard, @dnd-kit) or moved with their menu. While a card is dragged, the columns it may not
 * enter are marked and refuse it.
 */
import {
  DndContext,
  KeyboardSensor,
  PointerSensor,
  pointerWithin,
  rectIntersection,
  useSensor,
  useSensors,
  type CollisionDetection,
  type DragEndEvent,
  type DragStartEvent,
  type UniqueIdentifier,
} from '@dnd-kit/core';
import { useCallback, useMemo, useRef, useState } from 'react';
import type { Role, Task } from '../api/types.ts';
import { canMove, targetsFrom, type Workflow } from '../api/workflow.ts';
import { boardAnnouncements, INSTRUCTIONS } from './announcements.ts';
import { BoardColumn, type DropState } from './BoardColumn.tsx';
import { columnKeyboardCoordinates } from './keyboard.ts';
import { TaskCard } from './TaskCard.tsx';

/**
 * A pointer drop counts for the column under the pointer, and only that one (a column the card may
 * not enter is out of the running, so a drop there moves nothing); a keyboard move, which has no
 * pointer, for the column the card overlaps most.
 */
const collisionDetection: CollisionDetection = (args) => (args.pointerCoordinates ? pointerWithin(args) : rectIntersection(args));

export interface BoardProps {
  workflow: Workflow;
  tasks: readonly Task[];
  role: Role;
  /** Tasks with a change on its way to the server. */
  busy: ReadonlySet<string>;
  onMove: (task: Task, to: string) => void;
}

export function Board({ workflow, tasks, role, busy, onMove }: BoardProps) {
  const [activeId, setActiveId] = useState<string | null>(null);
  const [focusId, setFocusId] = useState<string | null>(null);
  const current = useRef({ workflow, tasks });
  current.current = { workflow, tasks };

  const taskById = useCallback((id: UniqueIdentifier) => current.current.tasks.find((t) => t.id === id) ?? null, []);
  const coordinateGetter = useMemo(
    () =>
      columnKeyboardCoordinates(
        () => current.current.workflow.statuses.map((s) => s.id),
        (id) => taskById(id)?.status.id ?? null,
      ),
    [taskById],
  );
  const sensors = useSensors(useSensor(PointerSensor, { activationConstraint: { distance: 5 } }), useSensor(KeyboardSensor, { coordinateGetter }));
  const announcements = useMemo(
    () =>
      boardAnnouncements(
        (id) => {
          const task = taskById(id);
          return task ? `${task.key} ${task.title}` : 'the task';
        },
        (id) => current.current.workflow.statuses.find((s) => s.id === id)?.name ?? 'a column',
      ),
    [taskById],
  );

  const active = activeId === null ? null : taskById(activeId);
  const dropState = (status: string): DropState => {
    if (!active) return 'idle';
    if (status === active.status.id) return 'origin';
    return canMove(workflow, active.status.id, status, role) ? 'allowed' : 'forbidden';
  };

  const start = (event: DragStartEvent) => {
    setActiveId(String(event.active.id));
  };
  const end = (event: DragEndEvent) => {
    setActiveId(null);
    const task = taskById(event.active.id);
    const to = event.over ? String(event.over.id) : null;
    if (!task || to === null || to === task.status.id || !canMove(workflow, task.status.id, to, role)) return;
    // The card is re-created in its new column: give it the focus there after a keyboard move.
    if (event.activatorEvent instanceof KeyboardEvent) setFocusId(task.id);
    onMove(task, to);
  };
  const move = (task: Task, to: string) => {
    setFocusId(task.id);
    onMove(task, to);
  };
  const focused = useCallback(() => {
    setFocusId(null);
  }, []);

  return (
    <DndContext
      sensors={sensors}
      collisionDetection={collisionDetection}
      accessibility={{ announcements, screenReaderInstructions: INSTRUCTIONS }}
      onDragStart={start}
      onDragEnd={end}
      onDragCancel={() => {
        setActiveId(null);
      }}
    >
      <div className={active ? 'board board-dragging' : 'board'}>
        {workflow.statuses.map((status) => {
          const inColumn = tasks.filter((t) => t.status.id === status.id);
          return (
            <BoardColumn key={status.id} status={status} count={inColumn.length} dropState={dropState(status.id)}>
              {inColumn.map((task) => (
                <TaskCard
                  key={task.id}
                  task={task}
                  targets={targetsFrom(workflow, task.status.id, role)}
                  busy={busy.has(task.id)}
                  takeFocus={focusId === task.id}
                  onFocused={focused}
                  onMove={move}
                />
              ))}
            </BoardColumn>
          );
        })}
      </div>
    </DndContext>
  );
}
