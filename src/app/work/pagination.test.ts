import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../../errors.ts';
import { afterCursorSql, decodeCursor, encodeCursor, toPage } from './pagination.ts';

const ID = '0b7f6d1e-4a57-4c4f-9a8b-2f1d3c4e5a6b';

function isInvalidCursor(err: unknown): boolean {
  return err instanceof AppError && err.code === 'invalid-cursor' && err.status === 400;
}

describe('cursors', () => {
  test('round-trip a position exactly, microseconds included', () => {
    const position = { micros: '1712345678123456', id: ID };
    const cursor = encodeCursor(position);
    assert.match(cursor, /^[A-Za-z0-9_-]+$/, 'URL-safe without escaping');
    assert.deepEqual(decodeCursor(cursor), position);
  });

  test('refuse anything we did not make', () => {
    const bad = [
      'not base64!',
      Buffer.from('not json').toString('base64url'),
      Buffer.from('{"micros":"1","id":"x"}').toString('base64url'),
      Buffer.from(JSON.stringify(['1.5', ID])).toString('base64url'),
      Buffer.from(JSON.stringify(['1', 'DROP TABLE'])).toString('base64url'),
      Buffer.from(JSON.stringify(['1', ID, 'extra'])).toString('base64url'),
      Buffer.from(JSON.stringify([1, ID])).toString('base64url'),
    ];
    for (const cursor of bad) assert.throws(() => decodeCursor(cursor), isInvalidCursor, cursor);
  });

  test('the condition uses placeholders for the position', () => {
    const params: unknown[] = ['first'];
    const sql = afterCursorSql('t', { micros: '5', id: ID }, params);
    assert.deepEqual(params, ['first', '5', ID]);
    assert.match(sql, /\$2::bigint/);
    assert.match(sql, /\$3::uuid/);
  });
});

describe('toPage', () => {
  const rows = [1, 2, 3].map((n) => ({ id: `${ID.slice(0, -1)}${n}`, page_micros: String(n) }));

  test('the extra row means there is a next page, starting after the last row shown', () => {
    const page = toPage(rows, 2, (r) => r.id);
    assert.deepEqual(page.items, [rows[0]!.id, rows[1]!.id]);
    assert.ok(page.nextCursor);
    assert.deepEqual(decodeCursor(page.nextCursor), { micros: '2', id: rows[1]!.id });
  });

  test('no extra row means the last page', () => {
    assert.equal(toPage(rows, 3, (r) => r.id).nextCursor, null);
    assert.deepEqual(toPage([], 3, (r: { id: string; page_micros: string }) => r.id), { items: [], nextCursor: null });
  });
});
