/**
 * Keyboard moves on the board, for @dnd-kit's KeyboardSensor: once a card is picked up (space or
 * enter on its handle), the arrow keys jump it from column to column, skipping the columns the
 * workflow does not allow it to enter; space or enter drops it, escape puts it back. Right and
 * down go to the next column, left and up to the previous one, so that the keys mean the same
 * whether the columns stand side by side or, on a narrow screen, one above the other.
 */
import type { KeyboardCoordinateGetter, UniqueIdentifier } from '@dnd-kit/core';

const NEXT = new Set(['ArrowRight', 'ArrowDown']);
const PREVIOUS = new Set(['ArrowLeft', 'ArrowUp']);

/** `columnOrder` gives the column ids in board order; `statusOf` the column a card starts in. */
export function columnKeyboardCoordinates(columnOrder: () => readonly string[], statusOf: (id: UniqueIdentifier) => string | null): KeyboardCoordinateGetter {
  return (event, { context }) => {
    const step = NEXT.has(event.code) ? 1 : PREVIOUS.has(event.code) ? -1 : 0;
    if (step === 0) return undefined;
    event.preventDefault();
    const { collisionRect, droppableRects, droppableContainers, over, active } = context;
    if (!collisionRect || !active) return undefined;
    const order = columnOrder();
    const from = over ? String(over.id) : statusOf(active.id);
    const start = from === null ? -1 : order.indexOf(from);
    for (let i = start + step; i >= 0 && i < order.length; i += step) {
      const id = order[i];
      if (id === undefined) break;
      const rect = droppableRects.get(id);
      if (!rect || droppableContainers.get(id)?.disabled !== false) continue;
      // Near the top of the target column, centred in it: inside it whatever its height.
      return {
        x: rect.left + Math.max(0, (rect.width - collisionRect.width) / 2),
        y: rect.top + Math.max(0, Math.min(48, rect.height - collisionRect.height)),
      };
    }
    return undefined;
  };
}
