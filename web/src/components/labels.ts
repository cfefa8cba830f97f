/** Labels as people type them: one text, separated by commas. */

/** The labels in `text`, trimmed, without empty ones or repeats. */
export function parseLabels(text: string): string[] {
  return [...new Set(text.split(',').map((l) => l.trim()).filter((l) => l !== ''))];
}

/** The text that stands for `labels` in a field. */
export function labelsText(labels: readonly string[]): string {
  return labels.join(', ');
}

/** Whether two lists of labels are the same, in the same order. */
export function sameLabels(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((label, i) => label === b[i]);
}
