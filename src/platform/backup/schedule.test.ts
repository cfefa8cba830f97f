import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../config.ts';

function load(backup: unknown): ReturnType<typeof loadConfig> {
  return loadConfig({ env: {}, overrides: { backup } });
}

function refused(backup: unknown, pattern: RegExp): void {
  assert.throws(
    () => load(backup),
    (err: unknown) => err instanceof ConfigError && pattern.test(err.message),
  );
}

test('schedules and retention default to the documents: snapshot 02:00, exports every 6 hours, 7 and 30 days', () => {
  const { schedule, retention } = loadConfig({ env: {} }).backup;
  assert.deepEqual(schedule, { timeZone: 'UTC', snapshot: '0 2 * * *', export: '0 */6 * * *', prune: '30 4 * * *', drill: 'off' });
  assert.deepEqual(retention, { snapshotDays: 7, exportDays: 30, asideDays: 7 });
});

test('each schedule and retention is configurable; off turns a schedule off', () => {
  const { schedule, retention } = load({ schedule: { timeZone: 'Europe/Berlin', snapshot: 'off', export: '15 */4 * * 1-5' }, retention: { exportDays: 90 } }).backup;
  assert.deepEqual(schedule, { timeZone: 'Europe/Berlin', snapshot: 'off', export: '15 */4 * * 1-5', prune: '30 4 * * *', drill: 'off' });
  assert.deepEqual(retention, { snapshotDays: 7, exportDays: 90, asideDays: 7 });
});

test('an unknown time zone, a malformed expression or a retention of 0 days is refused, naming the key', () => {
  refused({ schedule: { timeZone: 'Mars/Olympus' } }, /backup\.schedule\.timeZone.*'Mars\/Olympus' is not a time zone/);
  refused({ schedule: { export: 'every six hours' } }, /backup\.schedule\.export/);
  refused({ schedule: { snapshot: '0 2 * *' } }, /backup\.schedule\.snapshot/);
  refused({ retention: { snapshotDays: 0 } }, /backup\.retention\.snapshotDays/);
  refused({ schedule: { hourly: '0 * * * *' } }, /backup\.schedule\.hourly.*unknown key/);
});
