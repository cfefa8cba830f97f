/**
 * Keyboard moves on the board, for @dnd-kit's KeyboardSensor: once a card is picked up (space or
 * enter on its handle), left and right jump it to the previous or next column, skipping the columns
 * the workflow does not allow it to enter; up and down move it one place up or down in the column
 * it is over; space or enter drops it, escape puts it back. The keys mean the same whether the
 * columns stand side by side or, on a narrow screen, one above the other.
 */
import type { ClientRect, CollisionDetection, KeyboardCoordinateGetter, UniqueIdentifier } from '@dnd-kit/core';
import { rectIntersection } from '@dnd-kit/core';

const NEXT_COLUMN = 'ArrowRight';
const PREVIOUS_COLUMN = 'ArrowLeft';
const STEPS: Record<string, -1 | 1> = { ArrowUp: -1, ArrowDown: 1 };

/** Where the board's cards are on screen. */
export interface CardGeometry {
  /** The column ids in board order. */
  columnOrder(): readonly string[];
  /** The column a card starts in. */
  statusOf(id: UniqueIdentifier): string | null;
  /** The boxes of a column's cards, top to bottom, without the card being moved. */
  cardRects(statusId: string, leaving: UniqueIdentifier): DOMRect[];
}

/** The slot of a column (0: above its first card) that a point at height `y` falls in. */
export function slotAt(rects: readonly { top: number; bottom: number }[], y: number): number {
  return rects.filter((r) => (r.top + r.bottom) / 2 < y).length;
}

/** The height that stands for slot `slot`: in the gap above, between or below the cards. */
function slotY(rects: readonly DOMRect[], slot: number): number {
  const above = rects[slot - 1];
  const below = rects[slot];
  if (above && below) return (above.bottom + below.top) / 2;
  if (below) return below.top - 2;
  return (above?.bottom ?? 0) + 2;
}

export function boardKeyboardCoordinates(geometry: CardGeometry): KeyboardCoordinateGetter {
  return (event, { context }) => {
    const { collisionRect, droppableRects, droppableContainers, over, active } = context;
    if (!collisionRect || !active) return undefined;
    const from = over ? String(over.id) : geometry.statusOf(active.id);
    const step = STEPS[event.code];
    if (step !== undefined) {
      event.preventDefault();
      if (from === null) return undefined;
      const rects = geometry.cardRects(from, active.id);
      const center = collisionRect.top + collisionRect.height / 2;
      const slot = Math.min(Math.max(slotAt(rects, center) + step, 0), rects.length);
      if (rects.length === 0) return undefined;
      return { x: collisionRect.left, y: slotY(rects, slot) - collisionRect.height / 2 };
    }
    const direction = event.code === NEXT_COLUMN ? 1 : event.code === PREVIOUS_COLUMN ? -1 : 0;
    if (direction === 0) return undefined;
    event.preventDefault();
    const order = geometry.columnOrder();
    const start = from === null ? -1 : order.indexOf(from);
    for (let i = start + direction; i >= 0 && i < order.length; i += direction) {
      const id = order[i];
      if (id === undefined) break;
      const rect = droppableRects.get(id);
      if (!rect || droppableContainers.get(id)?.disabled !== false) continue;
      // Centred in the target column, at its top: above its first card, whatever its height.
      const first = geometry.cardRects(id, active.id)[0];
      const y = first ? first.top - 2 - collisionRect.height / 2 : rect.top + Math.max(0, Math.min(48, rect.height - collisionRect.height));
      return { x: rect.left + Math.max(0, (rect.width - collisionRect.width) / 2), y };
    }
    return undefined;
  };
}

function contains(rect: ClientRect, x: number, y: number): boolean {
  return x >= rect.left && x <= rect.left + rect.width && y >= rect.top && y <= rect.top + rect.height;
}

/**
 * A keyboard move counts for the column that holds the middle of the card (a card in the gap
 * below a column's last card reaches into the next column when the columns are stacked); should
 * none hold it, for the column the card overlaps most.
 */
export const keyboardCollision: CollisionDetection = (args) => {
  const { collisionRect, droppableContainers, droppableRects } = args;
  const x = collisionRect.left + collisionRect.width / 2;
  const y = collisionRect.top + collisionRect.height / 2;
  for (const container of droppableContainers) {
    const rect = droppableRects.get(container.id);
    if (rect && contains(rect, x, y)) return [{ id: container.id, data: { droppableContainer: container, value: 0 } }];
  }
  return rectIntersection(args);
};
