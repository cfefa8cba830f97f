/**
 * Keyset pagination on (created_at, id). The cursor is opaque to clients (base64url JSON) and holds
 * the last row's position exactly: created_at in whole microseconds, because a JavaScript Date
 * keeps only milliseconds and would repeat or skip rows created within the same millisecond.
 */
import { Type, type TSchema } from 'typebox';
import { AppError } from '../../errors.ts';

export const DEFAULT_PAGE_SIZE = 50;

export const Cursor = Type.String({ minLength: 1, maxLength: 200 });
export const Limit = Type.Integer({ minimum: 1, maximum: 100 });

/** A page of items and the cursor of the next page (null on the last one). */
export function PageOf<T extends TSchema>(item: T) {
  return Type.Object({ items: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false });
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface Position {
  /** created_at as microseconds since the Unix epoch, in decimal. */
  micros: string;
  id: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MICROS = /^-?[0-9]{1,18}$/;

export function encodeCursor(position: Position): string {
  return Buffer.from(JSON.stringify([position.micros, position.id]), 'utf8').toString('base64url');
}

/** The position a cursor holds; a 400 invalid-cursor problem for anything we did not make. */
export function decodeCursor(cursor: string): Position {
  const invalid = () => new AppError('invalid-cursor', 'use the nextCursor of an earlier page, unchanged');
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) throw invalid();
  const [micros, id] = parsed as unknown[];
  if (typeof micros !== 'string' || !MICROS.test(micros) || typeof id !== 'string' || !UUID.test(id)) throw invalid();
  return { micros, id };
}

/** SQL for a row's position; select it `AS page_micros` so pages can be cut. */
export function positionSql(table: string): string {
  return `(extract(epoch FROM ${table}.created_at) * 1000000)::bigint::text`;
}

/**
 * The WHERE condition "after this cursor" for `table`, appending its parameters to `params`.
 * Built from `$n` placeholders only; `table` is an alias chosen by our own code.
 */
export function afterCursorSql(table: string, position: Position, params: unknown[]): string {
  params.push(position.micros, position.id);
  const micros = `$${params.length - 1}`;
  const id = `$${params.length}`;
  return `(${table}.created_at, ${table}.id) > (timestamptz 'epoch' + ${micros}::bigint * interval '1 microsecond', ${id}::uuid)`;
}

/** Cuts `limit + 1` fetched rows into a page: the extra row only says that there is a next page. */
export function toPage<Row extends { id: string; page_micros: string }, T>(rows: Row[], limit: number, view: (row: Row) => T): Page<T> {
  const more = rows.length > limit;
  const shown = more ? rows.slice(0, limit) : rows;
  const last = shown[shown.length - 1];
  return { items: shown.map(view), nextCursor: more && last ? encodeCursor({ micros: last.page_micros, id: last.id }) : null };
}
