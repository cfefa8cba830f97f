/** What a screen reader hears while a card is dragged (with the mouse or the keyboard). */
import type { Announcements, ScreenReaderInstructions, UniqueIdentifier } from '@dnd-kit/core';

export const INSTRUCTIONS: ScreenReaderInstructions = {
  draggable:
    'To move this task, press space or enter, use the left and right arrow keys to choose the column and the up and down arrow keys to choose its place in the column, then press space or enter to drop it there. Escape cancels. Columns the workflow does not allow are skipped.',
};

/** Where a dragged card would land: a column, and its place there (1-based) among `of` cards. */
export interface Landing {
  column: UniqueIdentifier;
  place: number;
  of: number;
}

/**
 * `cardName` names a card by its id ("WEB-12 Draft the homepage"), `columnName` a column by its id,
 * and `landing` says where the dragged card would land now. A move within a column is announced
 * only when the card's place changes.
 */
export function boardAnnouncements(
  cardName: (id: UniqueIdentifier) => string,
  columnName: (id: UniqueIdentifier) => string,
  landing: () => Landing | null,
): Announcements {
  let said = '';
  const where = (id: UniqueIdentifier) => {
    const at = landing();
    said = at ? `${String(at.column)}:${at.place}` : '';
    return at ? `${cardName(id)} is over ${columnName(at.column)}, at place ${at.place} of ${at.of}.` : `${cardName(id)} is not over a column it may move to.`;
  };
  return {
    onDragStart: ({ active }) => {
      said = '';
      return `Picked up ${cardName(active.id)}.`;
    },
    onDragOver: ({ active }) => where(active.id),
    onDragMove: ({ active }) => {
      const at = landing();
      return at && `${String(at.column)}:${at.place}` !== said ? where(active.id) : undefined;
    },
    onDragEnd: ({ active, over }) => (over ? `${cardName(active.id)} was dropped in ${columnName(over.id)}.` : `${cardName(active.id)} was put back.`),
    onDragCancel: ({ active }) => `Moving ${cardName(active.id)} was cancelled; it stays where it was.`,
  };
}
