/**
 * Sorting tasks with keyset pagination. Each sort is a list of keys ending in the task's id, all in
 * one direction, so "after this row" is one row comparison that an index can serve. The cursor
 * holds the sort, the direction and the last row's key values exactly (timestamps in whole
 * microseconds), and is refused for a listing sorted differently.
 */
import { AppError } from '../../../errors.ts';
import type { Page } from '../pagination.ts';

export const TASK_SORTS = ['created', 'updated', 'due', 'priority', 'rank', 'relevance'] as const;
export type TaskSortName = (typeof TASK_SORTS)[number];
export type SortDirection = 'asc' | 'desc';

interface SortKey {
  /** The SQL expression sorted on, over the task row `t`. */
  expression: string;
  /** SQL turning the placeholder (a text value from a cursor) into a value comparable with it. */
  fromText(placeholder: string): string;
  /** SQL giving the row's value as text for a cursor. */
  toText: string;
  /** What a value in a cursor must look like. */
  valid: RegExp;
}

const MICROS = /^-?[0-9]{1,18}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function instant(column: string): SortKey {
  return {
    expression: `t.${column}`,
    fromText: (p) => `(timestamptz 'epoch' + ${p}::bigint * interval '1 microsecond')`,
    toText: `(extract(epoch FROM t.${column}) * 1000000)::bigint::text`,
    valid: MICROS,
  };
}

/** Tasks without a due date come last either way: after every date ascending, after every date descending. */
function due(direction: SortDirection): SortKey {
  const expression = `COALESCE(t.due_date, '${direction === 'asc' ? 'infinity' : '-infinity'}'::date)`;
  return {
    expression,
    fromText: (p) => `${p}::date`,
    toText: `CASE WHEN isfinite(${expression}) THEN to_char(${expression}, 'YYYY-MM-DD') ELSE ${expression}::text END`,
    valid: /^(-?infinity|[0-9]{4}-[0-9]{2}-[0-9]{2})$/,
  };
}

const PRIORITY: SortKey = { expression: 't.priority_rank', fromText: (p) => `${p}::smallint`, toText: 't.priority_rank::text', valid: /^[1-4]$/ };

function integer(expression: string, cast: 'int' | 'bigint'): SortKey {
  return { expression, fromText: (p) => `${p}::${cast}`, toText: `${expression}::text`, valid: /^-?[0-9]{1,19}$/ };
}

/** Board order: the column's place in the workflow, then the card's place in the column (rank.ts). */
const BOARD = [integer('s.position', 'int'), integer('t.rank', 'bigint')];

/**
 * How well a task matches the search `tsq` (listing.ts joins it when `q` is given): ts_rank over
 * the search document, in which the title weighs more than the description. Counted in whole
 * billionths, so that a cursor holds the value exactly (a real's text depends on extra_float_digits).
 */
export const RELEVANCE: SortKey = integer('round(ts_rank(t.search, tsq)::float8 * 1e9)::bigint', 'bigint');

/** The keys of a sort before the id; ties within a due date, priority or relevance go by creation. */
function keysOf(sort: TaskSortName, direction: SortDirection): SortKey[] {
  switch (sort) {
    case 'created':
      return [instant('created_at')];
    case 'updated':
      return [instant('updated_at')];
    case 'due':
      return [due(direction), instant('created_at')];
    case 'priority':
      return [PRIORITY, instant('created_at')];
    case 'rank':
      return BOARD;
    case 'relevance':
      return [RELEVANCE, instant('created_at')];
  }
}

/**
 * The order of a listing: as asked, else by relevance when searching and by creation otherwise;
 * the most relevant first unless told otherwise, everything else ascending. Sorting by relevance
 * needs a search (400 validation-failed otherwise).
 */
export function taskOrderOf(query: { sort?: TaskSortName; order?: SortDirection; q?: string }): TaskOrder {
  const sort = query.sort ?? (query.q === undefined ? 'created' : 'relevance');
  if (sort === 'relevance' && query.q === undefined) {
    throw new AppError('validation-failed', 'sort=relevance orders the results of a search: give q too', {
      extra: { errors: [{ in: 'querystring', pointer: '/sort', message: 'relevance needs q' }] },
    });
  }
  return { sort, direction: query.order ?? (sort === 'relevance' ? 'desc' : 'asc') };
}

export interface TaskOrder {
  sort: TaskSortName;
  direction: SortDirection;
}

/** `ORDER BY` for the order. */
export function orderBySql(order: TaskOrder): string {
  const dir = order.direction === 'asc' ? 'ASC' : 'DESC';
  return [...keysOf(order.sort, order.direction).map((k) => `${k.expression} ${dir}`), `t.id ${dir}`].join(', ');
}

/** A select-list item giving each row's key values as text; select it `AS page_keys`. */
export function pageKeysSql(order: TaskOrder): string {
  return `ARRAY[${keysOf(order.sort, order.direction).map((k) => k.toText).join(', ')}]`;
}

export interface TaskPosition {
  values: string[];
  id: string;
}

export function encodeTaskCursor(order: TaskOrder, position: TaskPosition): string {
  return Buffer.from(JSON.stringify([order.sort, order.direction, ...position.values, position.id]), 'utf8').toString('base64url');
}

/** The position a cursor holds for this order; 400 invalid-cursor for anything else. */
export function decodeTaskCursor(cursor: string, order: TaskOrder): TaskPosition {
  const invalid = (detail = 'use the nextCursor of an earlier page, unchanged') => new AppError('invalid-cursor', detail);
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === 'string')) throw invalid();
  const [sort, direction, ...rest] = parsed;
  if (sort !== order.sort || direction !== order.direction) {
    if (TASK_SORTS.includes(sort as TaskSortName) && (direction === 'asc' || direction === 'desc')) {
      throw invalid(`this cursor is for tasks sorted by ${sort} ${direction}; send the same sort and order as for the first page`);
    }
    throw invalid();
  }
  const keys = keysOf(order.sort, order.direction);
  const id = rest.pop();
  if (rest.length !== keys.length || id === undefined || !UUID.test(id) || !keys.every((k, i) => k.valid.test(rest[i] ?? ''))) throw invalid();
  return { values: rest, id };
}

/**
 * The WHERE condition "after this position" in this order, appending its parameters to `params`.
 * Built from `$n` placeholders only.
 */
export function afterPositionSql(order: TaskOrder, position: TaskPosition, params: unknown[]): string {
  const keys = keysOf(order.sort, order.direction);
  const left = [...keys.map((k) => k.expression), 't.id'];
  const right = [...keys.map((k, i) => k.fromText(`$${params.push(position.values[i])}`)), `$${params.push(position.id)}::uuid`];
  return `(${left.join(', ')}) ${order.direction === 'asc' ? '>' : '<'} (${right.join(', ')})`;
}

/** Cuts `limit + 1` fetched rows into a page: the extra row only says that there is a next page. */
export function toTaskPage<Row extends { id: string; page_keys: string[] }, T>(rows: Row[], limit: number, order: TaskOrder, view: (row: Row) => T): Page<T> {
  const more = rows.length > limit;
  const shown = more ? rows.slice(0, limit) : rows;
  const last = shown[shown.length - 1];
  return { items: shown.map(view), nextCursor: more && last ? encodeTaskCursor(order, { values: last.page_keys, id: last.id }) : null };
}
