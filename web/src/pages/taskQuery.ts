/**
 * The task list's filters and order as they stand in the address (`/tasks?project=…&q=…`), so a
 * list can be bookmarked, shared and reloaded.
 */
import type { TaskFilter, TaskOrder, TaskSort } from '../api/tasks.ts';
import { CATEGORIES, PRIORITIES, type Priority, type StatusCategory } from '../api/types.ts';

export interface TaskQuery {
  filter: TaskFilter;
  order: TaskOrder;
}

const SORTS: readonly TaskSort[] = ['created', 'updated', 'due', 'priority', 'rank', 'relevance'];

function oneOf<T extends string>(values: readonly T[], value: string | null): T | null {
  return values.find((v) => v === value) ?? null;
}

/** Reads the query string; unknown values are left out rather than sent to the server. */
export function parseTaskQuery(query: string): TaskQuery {
  const search = new URLSearchParams(query);
  const text = (name: string) => {
    const value = search.get(name)?.trim() ?? '';
    return value === '' ? null : value;
  };
  return {
    filter: {
      projectId: text('project'),
      status: text('status'),
      category: oneOf<StatusCategory>(CATEGORIES, search.get('category')),
      assignee: text('assignee'),
      priority: oneOf<Priority>(PRIORITIES, search.get('priority')),
      label: text('label'),
      q: text('q'),
    },
    order: { sort: oneOf(SORTS, search.get('sort')), order: oneOf(['asc', 'desc'] as const, search.get('order')) },
  };
}

/** The address of the list with these filters. */
export function taskQueryPath(query: TaskQuery): string {
  const search = new URLSearchParams();
  const { filter, order } = query;
  const put = (name: string, value: string | null | undefined) => {
    if (value) search.set(name, value);
  };
  put('project', filter.projectId);
  put('status', filter.status);
  put('category', filter.category);
  put('assignee', filter.assignee);
  put('priority', filter.priority);
  put('label', filter.label);
  put('q', filter.q);
  put('sort', order.sort);
  put('order', order.order);
  const text = search.toString();
  return text === '' ? '/tasks' : `/tasks?${text}`;
}
