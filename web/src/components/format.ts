/** Dates and times as the user's browser writes them. */

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const date = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' });

export function formatDateTime(iso: string): string {
  return dateTime.format(new Date(iso));
}

/** A calendar date (YYYY-MM-DD), which has no time zone. */
export function formatDate(day: string): string {
  return date.format(new Date(`${day}T00:00:00Z`));
}
