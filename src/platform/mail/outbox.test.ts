import assert from 'node:assert/strict';
import { test } from 'node:test';
import { retryDelayMs } from './outbox.ts';

test('retries back off by doubling, up to the cap', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 8].map((attempt) => retryDelayMs(attempt, 30_000, 3_600_000)),
    [30_000, 60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000],
  );
  assert.equal(retryDelayMs(0, 1000, 10_000), 1000);
  assert.equal(retryDelayMs(500, 1000, 10_000), 10_000);
});
