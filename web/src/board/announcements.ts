/** What a screen reader hears while a card is dragged (with the mouse or the keyboard). */
import type { Announcements, ScreenReaderInstructions, UniqueIdentifier } from '@dnd-kit/core';

export const INSTRUCTIONS: ScreenReaderInstructions = {
  draggable:
    'To move this task to another column, press space or enter, use the arrow keys to choose the column, then press space or enter to drop it there. Escape cancels. Columns the workflow does not allow are skipped.',
};

/** `cardName` names a card by its id ("WEB-12 Draft the homepage"), `columnName` a column by its id. */
export function boardAnnouncements(cardName: (id: UniqueIdentifier) => string, columnName: (id: UniqueIdentifier) => string): Announcements {
  return {
    onDragStart: ({ active }) => `Picked up ${cardName(active.id)}.`,
    onDragOver: ({ active, over }) => (over ? `${cardName(active.id)} is over ${columnName(over.id)}.` : `${cardName(active.id)} is not over a column it may move to.`),
    onDragEnd: ({ active, over }) => (over ? `${cardName(active.id)} was dropped in ${columnName(over.id)}.` : `${cardName(active.id)} was put back.`),
    onDragCancel: ({ active }) => `Moving ${cardName(active.id)} was cancelled; it stays where it was.`,
  };
}
