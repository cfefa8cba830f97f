import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rowCountSample } from './row-counts.ts';

const DAY = 86_400_000;
const dbs = ['tenant_e', 'tenant_a', 'tenant_d', 'tenant_b', 'tenant_c'];

test('at most the limit: every database, in name order', () => {
  assert.deepEqual(rowCountSample(dbs, 5, new Date(0)), ['tenant_a', 'tenant_b', 'tenant_c', 'tenant_d', 'tenant_e']);
  assert.deepEqual(rowCountSample(dbs, 25, new Date(7 * DAY)), ['tenant_a', 'tenant_b', 'tenant_c', 'tenant_d', 'tenant_e']);
  assert.deepEqual(rowCountSample([], 25, new Date()), []);
});

test('more than the limit: that many, in turn from day to day, so a few days cover every database', () => {
  const day = (n: number) => rowCountSample(dbs, 2, new Date(n * DAY + 2 * 3_600_000));
  assert.deepEqual(day(0), ['tenant_a', 'tenant_b']);
  assert.deepEqual(day(1), ['tenant_c', 'tenant_d']);
  assert.deepEqual(day(2), ['tenant_e', 'tenant_a'], 'wrapping round');
  const covered = new Set([0, 1, 2].flatMap(day));
  assert.equal(covered.size, dbs.length, 'ceil(5 / 2) = 3 days count every database');
  assert.deepEqual(rowCountSample(dbs, 2, new Date(DAY - 1)), day(0), 'the same all day: two snapshots of one day count the same ones');
  assert.deepEqual(rowCountSample(dbs, 0, new Date()), [], '0 counts no tenant (the control database is still counted)');
});
