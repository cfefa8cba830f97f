/**
 * The board: a column per status of the project's workflow, cards dragged between and within them
 * (pointer or keyboard, @dnd-kit) or moved with their menu. While a card is dragged, the columns it
 * may not enter are marked and refuse it, and a line shows where in the column it would land.
 */
import {
  DndContext,
  KeyboardSensor,
  PointerSensor,
  pointerWithin,
  useSensor,
  useSensors,
  type CollisionDetection,
  type DragEndEvent,
  type DragMoveEvent,
  type DragStartEvent,
  type UniqueIdentifier,
} from '@dnd-kit/core';
import { useCallback, useMemo, useRef, useState } from 'react';
import type { Placement } from '../api/tasks.ts';
import type { Person, Role, Task } from '../api/types.ts';
import { canMove, targetsFrom, type Workflow } from '../api/workflow.ts';
import { mayEditTasks } from '../permissions.ts';
import { boardAnnouncements, INSTRUCTIONS, type Landing } from './announcements.ts';
import { BoardColumn, type DropState } from './BoardColumn.tsx';
import { boardKeyboardCoordinates, keyboardCollision, slotAt } from './keyboard.ts';
import { cardsOf, isWhereItIs, placementAt, stepPlacement } from './placement.ts';
import { TaskCard } from './TaskCard.tsx';

/**
 * A pointer drop counts for the column under the pointer, and only that one (a column the card may
 * not enter is out of the running, so a drop there moves nothing); a keyboard move, which has no
 * pointer, for the column that holds the middle of the card.
 */
const collisionDetection: CollisionDetection = (args) => (args.pointerCoordinates ? pointerWithin(args) : keyboardCollision(args));

/** Where a dragged card would land: a column and the slot in it (0: above its first other card). */
interface DropAt {
  status: string;
  index: number;
}

export interface BoardProps {
  workflow: Workflow;
  tasks: readonly Task[];
  role: Role;
  /** Who tasks can be assigned to (the cards' editors offer them). */
  people: readonly Person[];
  /** Tasks with a change on its way to the server. */
  busy: ReadonlySet<string>;
  onMove: (task: Task, to: string, placement: Placement) => void;
  /** A card's editor saved a change, or found someone else's. */
  onChanged: (task: Task, announcement: string | null) => void;
}

export function Board({ workflow, tasks, role, people, busy, onMove, onChanged }: BoardProps) {
  const [activeId, setActiveId] = useState<string | null>(null);
  const [dropAt, setDropAt] = useState<DropAt | null>(null);
  const [focusId, setFocusId] = useState<string | null>(null);
  const boardRef = useRef<HTMLDivElement>(null);
  const current = useRef({ workflow, tasks });
  current.current = { workflow, tasks };
  // What the announcements read while a card is dragged, before React has drawn it.
  const dropRef = useRef<DropAt | null>(null);
  const activeRef = useRef<string | null>(null);

  const taskById = useCallback((id: UniqueIdentifier) => current.current.tasks.find((t) => t.id === id) ?? null, []);
  const cardRects = useCallback((statusId: string, leaving: UniqueIdentifier) => {
    const column = boardRef.current?.querySelector(`[data-status-id="${CSS.escape(statusId)}"]`);
    const cards = column ? [...column.querySelectorAll<HTMLElement>('[data-task-id]')] : [];
    return cards.filter((card) => card.dataset.taskId !== String(leaving)).map((card) => card.getBoundingClientRect());
  }, []);
  const coordinateGetter = useMemo(
    () =>
      boardKeyboardCoordinates({
        columnOrder: () => current.current.workflow.statuses.map((s) => s.id),
        statusOf: (id) => taskById(id)?.status.id ?? null,
        cardRects,
      }),
    [taskById, cardRects],
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
        (): Landing | null => {
          const at = dropRef.current;
          return at ? { column: at.status, place: at.index + 1, of: cardsOf(current.current.tasks, at.status, activeRef.current).length + 1 } : null;
        },
      ),
    [taskById],
  );

  /** Where the dragged card would land now: the column `over`, at the slot its middle is in. */
  const landing = (event: DragMoveEvent | DragEndEvent, over: UniqueIdentifier | undefined): DropAt | null => {
    const rect = event.active.rect.current.translated;
    if (over === undefined || !rect) return null;
    const status = String(over);
    return { status, index: slotAt(cardRects(status, event.active.id), rect.top + rect.height / 2) };
  };
  const track = (event: DragMoveEvent) => {
    // The collisions are this moment's; `over` may still be the previous column.
    const at = landing(event, event.collisions?.[0]?.id);
    const was = dropRef.current;
    dropRef.current = at;
    if (at?.status !== was?.status || at?.index !== was?.index) setDropAt(at);
  };
  const reset = () => {
    activeRef.current = null;
    dropRef.current = null;
    setActiveId(null);
    setDropAt(null);
  };

  const active = activeId === null ? null : taskById(activeId);
  const dropState = (status: string): DropState => {
    if (!active) return 'idle';
    if (status === active.status.id) return 'origin';
    return canMove(workflow, active.status.id, status, role) ? 'allowed' : 'forbidden';
  };

  const start = (event: DragStartEvent) => {
    activeRef.current = String(event.active.id);
    setActiveId(String(event.active.id));
  };
  const end = (event: DragEndEvent) => {
    const at = landing(event, event.over?.id);
    reset();
    const task = taskById(event.active.id);
    if (!task || !at) return;
    if (at.status !== task.status.id && !canMove(workflow, task.status.id, at.status, role)) return;
    if (isWhereItIs(tasks, task, at.status, at.index)) return;
    // The card is re-created in its new place: give it the focus there after a keyboard move.
    if (event.activatorEvent instanceof KeyboardEvent) setFocusId(task.id);
    onMove(task, at.status, placementAt(cardsOf(tasks, at.status, task.id), at.index));
  };
  const move = (task: Task, to: string, placement: Placement) => {
    setFocusId(task.id);
    onMove(task, to, placement);
  };
  const focused = useCallback(() => {
    setFocusId(null);
  }, []);

  const editable = mayEditTasks(role);
  return (
    <DndContext
      sensors={sensors}
      collisionDetection={collisionDetection}
      accessibility={{ announcements, screenReaderInstructions: INSTRUCTIONS }}
      onDragStart={start}
      onDragMove={track}
      onDragOver={track}
      onDragEnd={end}
      onDragCancel={reset}
    >
      <div ref={boardRef} className={active ? 'board board-dragging' : 'board'}>
        {workflow.statuses.map((status) => {
          const inColumn = cardsOf(tasks, status.id);
          const others = inColumn.filter((t) => t.id !== activeId);
          const showDrop = active !== null && dropAt?.status === status.id && !isWhereItIs(tasks, active, status.id, dropAt.index);
          const dropBefore = showDrop ? (others[dropAt.index]?.id ?? null) : null;
          return (
            <BoardColumn key={status.id} status={status} count={inColumn.length} dropState={dropState(status.id)} dropAtEnd={showDrop && dropBefore === null}>
              {inColumn.map((task) => (
                <TaskCard
                  key={task.id}
                  task={task}
                  editable={editable}
                  targets={targetsFrom(workflow, task.status.id, role)}
                  up={stepPlacement(tasks, task, -1)}
                  down={stepPlacement(tasks, task, 1)}
                  people={people}
                  busy={busy.has(task.id)}
                  dropBefore={dropBefore === task.id}
                  takeFocus={focusId === task.id}
                  onFocused={focused}
                  onMove={move}
                  onChanged={onChanged}
                />
              ))}
            </BoardColumn>
          );
        })}
      </div>
    </DndContext>
  );
}
