import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../../../errors.ts';
import { afterPositionSql, decodeTaskCursor, encodeTaskCursor, orderBySql, pageKeysSql, taskOrderOf, toTaskPage, type TaskOrder } from './order.ts';

const ID = '0b7f6d1e-4a57-4c4f-9a8b-2f1d3c4e5a6b';
const BY_DUE: TaskOrder = { sort: 'due', direction: 'asc' };

function invalidCursor(err: unknown): boolean {
  return err instanceof AppError && err.code === 'invalid-cursor';
}

describe('task order', () => {
  test('every sort ends with the id, in one direction', () => {
    assert.equal(orderBySql({ sort: 'created', direction: 'asc' }), 't.created_at ASC, t.id ASC');
    assert.equal(orderBySql({ sort: 'priority', direction: 'desc' }), 't.priority_rank DESC, t.created_at DESC, t.id DESC');
    assert.equal(orderBySql(BY_DUE), "COALESCE(t.due_date, 'infinity'::date) ASC, t.created_at ASC, t.id ASC");
    assert.equal(orderBySql({ sort: 'due', direction: 'desc' }), "COALESCE(t.due_date, '-infinity'::date) DESC, t.created_at DESC, t.id DESC");
    assert.match(pageKeysSql({ sort: 'updated', direction: 'asc' }), /^ARRAY\[\(extract\(epoch FROM t\.updated_at\)/);
  });

  test('board order goes by column, then rank; relevance by the search rank in whole billionths, then creation', () => {
    assert.equal(orderBySql({ sort: 'rank', direction: 'asc' }), 's.position ASC, t.rank ASC, t.id ASC');
    assert.equal(orderBySql({ sort: 'relevance', direction: 'desc' }), 'round(ts_rank(t.search, tsq)::float8 * 1e9)::bigint DESC, t.created_at DESC, t.id DESC');
    const cursor = encodeTaskCursor({ sort: 'rank', direction: 'asc' }, { values: ['2', '-65536'], id: ID });
    assert.deepEqual(decodeTaskCursor(cursor, { sort: 'rank', direction: 'asc' }).values, ['2', '-65536']);
  });

  test('the default order: by relevance, most relevant first, when searching; oldest first otherwise', () => {
    assert.deepEqual(taskOrderOf({}), { sort: 'created', direction: 'asc' });
    assert.deepEqual(taskOrderOf({ q: 'x' }), { sort: 'relevance', direction: 'desc' });
    assert.deepEqual(taskOrderOf({ q: 'x', sort: 'due' }), { sort: 'due', direction: 'asc' });
    assert.deepEqual(taskOrderOf({ q: 'x', order: 'asc' }), { sort: 'relevance', direction: 'asc' });
    assert.throws(() => taskOrderOf({ sort: 'relevance' }), (err) => err instanceof AppError && err.code === 'validation-failed');
  });

  test('cursors round-trip exactly', () => {
    const position = { values: ['2030-01-31', '1712345678123456'], id: ID };
    const cursor = encodeTaskCursor(BY_DUE, position);
    assert.match(cursor, /^[A-Za-z0-9_-]+$/);
    assert.deepEqual(decodeTaskCursor(cursor, BY_DUE), position);
    const undated = { values: ['infinity', '1'], id: ID };
    assert.deepEqual(decodeTaskCursor(encodeTaskCursor(BY_DUE, undated), BY_DUE), undated);
  });

  test('a cursor of another sort or direction is refused, saying why', () => {
    const cursor = encodeTaskCursor(BY_DUE, { values: ['2030-01-31', '1'], id: ID });
    assert.throws(() => decodeTaskCursor(cursor, { sort: 'due', direction: 'desc' }), (err) => invalidCursor(err) && /sorted by due asc/.test((err as AppError).message));
    assert.throws(() => decodeTaskCursor(cursor, { sort: 'created', direction: 'asc' }), invalidCursor);
  });

  test('anything we did not make is refused', () => {
    const order: TaskOrder = { sort: 'priority', direction: 'asc' };
    const bad = [
      'not base64!',
      Buffer.from('not json').toString('base64url'),
      Buffer.from(JSON.stringify(['priority', 'asc', '5', '1', ID])).toString('base64url'),
      Buffer.from(JSON.stringify(['priority', 'asc', '1', ID])).toString('base64url'),
      Buffer.from(JSON.stringify(['priority', 'asc', '1', '1', 'DROP TABLE'])).toString('base64url'),
      Buffer.from(JSON.stringify(['priority', 'asc', 1, '1', ID])).toString('base64url'),
      Buffer.from(JSON.stringify(['priority', 'asc', "1'--", '1', ID])).toString('base64url'),
      Buffer.from(JSON.stringify({ sort: 'priority' })).toString('base64url'),
    ];
    for (const cursor of bad) assert.throws(() => decodeTaskCursor(cursor, order), invalidCursor, cursor);
  });

  test('the condition compares the whole key with placeholders, in the sort direction', () => {
    const params: unknown[] = ['first'];
    const sql = afterPositionSql(BY_DUE, { values: ['2030-01-31', '5'], id: ID }, params);
    assert.deepEqual(params, ['first', '2030-01-31', '5', ID]);
    assert.equal(sql, "(COALESCE(t.due_date, 'infinity'::date), t.created_at, t.id) > ($2::date, (timestamptz 'epoch' + $3::bigint * interval '1 microsecond'), $4::uuid)");
    assert.match(afterPositionSql({ sort: 'created', direction: 'desc' }, { values: ['5'], id: ID }, []), /\) < \(/);
  });

  test('the extra row means a next page, starting after the last row shown', () => {
    const rows = [1, 2, 3].map((n) => ({ id: `${ID.slice(0, -1)}${n}`, page_keys: [String(n)] }));
    const order: TaskOrder = { sort: 'created', direction: 'asc' };
    const page = toTaskPage(rows, 2, order, (r) => r.id);
    assert.deepEqual(page.items, [rows[0]!.id, rows[1]!.id]);
    assert.deepEqual(decodeTaskCursor(page.nextCursor ?? '', order), { values: ['2'], id: rows[1]!.id });
    assert.equal(toTaskPage(rows, 3, order, (r) => r.id).nextCursor, null);
  });
});
